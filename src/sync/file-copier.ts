/**
 * Copies one file from the source into the tree by streaming, checking its
 * SHA-256 (and size) on the way: a mismatch fails the stream, so the store
 * never puts the blob (the folder store drops its temp file, S3 never
 * completes the upload).
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { PyedgeError } from '../core/errors.js';
import { withRetry, type BackoffPolicy } from './retry.js';
import type { SyncSource } from './source.js';
import type { StaticTree } from './static-tree.js';

/** What the copied bytes must be. */
export interface ExpectedFile {
  readonly sha256: string;
  readonly size: number | null;
}

/**
 * A file the source already holds whole in memory (a full build gets small files
 * with the pages): checked and put as one buffer, without a stream per file.
 */
export class BufferBody extends Readable {
  constructor(readonly bytes: Buffer) {
    super();
  }

  override _read(): void {
    this.push(this.bytes);
    this.push(null);
  }
}

function mismatch(key: string, expected: ExpectedFile, sha256: string, size: number): PyedgeError {
  return new PyedgeError(
    'PYEDGE_DIGEST_MISMATCH',
    `The source's ${key} has sha256 ${sha256} (${size} bytes), but its page says ${expected.sha256}` +
      `${expected.size !== null ? ` (${expected.size} bytes)` : ''}; not copied.`,
    { key },
  );
}

/** Passes bytes through and fails at the end unless they hash to `expected`. */
export class DigestCheck extends Transform {
  readonly #hash: Hash = createHash('sha256');
  #size = 0;

  constructor(
    private readonly key: string,
    private readonly expected: ExpectedFile,
  ) {
    super();
  }

  get size(): number {
    return this.#size;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const sha256 = this.#hash.digest('hex');
    if (sha256 !== this.expected.sha256 || (this.expected.size !== null && this.#size !== this.expected.size)) {
      done(mismatch(this.key, this.expected, sha256, this.#size));
      return;
    }
    done();
  }
}

/** Copies `key` from `source` to `tree`, checked; retries transient failures. Resolves to the bytes copied. */
export function copyFile(
  source: SyncSource,
  tree: StaticTree,
  key: string,
  expected: ExpectedFile,
  options: { attempts?: number; backoff?: BackoffPolicy; signal?: AbortSignal | undefined } = {},
): Promise<number> {
  return withRetry(
    async () => {
      const body = await source.openFile(key, options.signal);
      if (body instanceof BufferBody) {
        const sha256 = createHash('sha256').update(body.bytes).digest('hex');
        if (sha256 !== expected.sha256 || (expected.size !== null && body.bytes.length !== expected.size)) throw mismatch(key, expected, sha256, body.bytes.length);
        await tree.putFile(key, body.bytes);
        return body.bytes.length;
      }
      const check = new DigestCheck(key, expected);
      // pipeline forwards a failure of the download into `check`, so the put sees it.
      pipeline(body, check, () => undefined);
      await tree.putFile(key, check);
      return check.size;
    },
    { attempts: options.attempts ?? 3, signal: options.signal, ...(options.backoff ? { policy: options.backoff } : {}) },
  );
}
