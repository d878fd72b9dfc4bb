/**
 * Blob store wrappers for tests: `ForwardingStore` passes every call to the
 * store it wraps, for wrappers that change one or two calls; `RecordingStore`
 * records every completed write and delete in order, and can fail ("crash") at
 * the n-th one, to check the engine's write order and its recovery.
 */
import type { Readable } from 'node:stream';
import type { BlobBody, BlobEntry, BlobInfo, BlobStore, ByteRange, OpOptions, PutOptions } from '../blobstore/blob-store.js';

export interface RecordedOp {
  readonly op: 'put' | 'delete';
  readonly key: string;
}

/** Passes every call to `inner`: extend it and override what a test needs to watch or hold. */
export class ForwardingStore implements BlobStore {
  constructor(readonly inner: BlobStore) {}

  get description(): string {
    return this.inner.description;
  }

  put(key: string, body: Uint8Array | Readable, options?: PutOptions): Promise<void> {
    return this.inner.put(key, body, options);
  }

  putFile(key: string, localPath: string, options?: PutOptions): Promise<void> {
    return this.inner.putFile(key, localPath, options);
  }

  get(key: string, options?: OpOptions & { readonly range?: ByteRange }): Promise<BlobBody> {
    return this.inner.get(key, options);
  }

  head(key: string, options?: OpOptions): Promise<BlobInfo> {
    return this.inner.head(key, options);
  }

  delete(key: string, options?: OpOptions): Promise<void> {
    return this.inner.delete(key, options);
  }

  list(prefix: string, options?: OpOptions): AsyncIterable<BlobEntry> {
    return this.inner.list(prefix, options);
  }

  sync(): Promise<void> {
    return this.inner.sync();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export class RecordingStore extends ForwardingStore {
  readonly ops: RecordedOp[] = [];
  /** Fail every write or delete from the n-th (1-based) on, as if the process had died there. */
  crashAt: number | null = null;
  #count = 0;

  #gate(op: 'put' | 'delete', key: string): void {
    this.#count++;
    if (this.crashAt !== null && this.#count >= this.crashAt) throw new Error(`simulated crash before ${op} ${key}`);
  }

  override async put(key: string, body: Uint8Array | Readable, options?: PutOptions): Promise<void> {
    this.#gate('put', key);
    await this.inner.put(key, body, options);
    this.ops.push({ op: 'put', key });
  }

  override async putFile(key: string, localPath: string, options?: PutOptions): Promise<void> {
    this.#gate('put', key);
    await this.inner.putFile(key, localPath, options);
    this.ops.push({ op: 'put', key });
  }

  override async delete(key: string, options?: OpOptions): Promise<void> {
    this.#gate('delete', key);
    await this.inner.delete(key, options);
    this.ops.push({ op: 'delete', key });
  }

  /** Forget the recorded ops (and the crash). */
  reset(): void {
    this.ops.length = 0;
    this.#count = 0;
    this.crashAt = null;
  }
}
