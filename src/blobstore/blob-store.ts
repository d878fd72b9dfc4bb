/** The blob store interface: keys and blobs, not a filesystem. Folder and S3 back-ends. */
import type { Readable } from 'node:stream';

export interface BlobInfo {
  /** Size of the whole blob in bytes. */
  readonly size: number;
  readonly lastModified: Date;
}

/** An inclusive byte range, as HTTP Range gives it. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface BlobBody extends BlobInfo {
  /** The blob's bytes, or the requested range of them. Consumers must read or destroy it. */
  readonly body: Readable;
  /** Number of bytes `body` yields. */
  readonly contentLength: number;
}

export interface BlobEntry {
  readonly key: string;
  readonly size: number;
}

export interface OpOptions {
  readonly signal?: AbortSignal;
}

/** HTTP caching headers a store that serves its blobs itself (S3 behind a CDN) keeps with a blob. */
export interface CacheHeaders {
  readonly cacheControl?: string;
  /** Kept as `x-amz-meta-surrogate-control` on S3, which Fastly reads from S3 origins. */
  readonly surrogateControl?: string;
  /** Space-separated surrogate keys, kept as `x-amz-meta-surrogate-key`. */
  readonly surrogateKey?: string;
}

/** What a folder key holds right under it (BlobStore.listFolder). */
export interface FolderListing {
  readonly blobs: string[];
  readonly folders: string[];
}

export interface PutOptions extends OpOptions {
  readonly contentType?: string;
  /** Caching headers for stores that keep them (S3); the folder store ignores them, as it does `contentType`. */
  readonly cache?: CacheHeaders;
  /**
   * false: skip the per-blob flushes; the blob is durable only after `sync()`.
   * For bulk loads of many small blobs; every other write keeps the default (true).
   */
  readonly durable?: boolean;
}

/**
 * A store of immutable-ish blobs addressed by `/`-separated keys. Every
 * back-end turns its own "missing" into BlobNotFoundError; writes are atomic
 * (a reader sees the old blob, the new one, or none — never part of one).
 */
export interface BlobStore {
  /** Human-readable location, for logs. */
  readonly description: string;
  /** Store bytes under `key`, replacing any blob there, durably before resolving. */
  put(key: string, body: Uint8Array | Readable, options?: PutOptions): Promise<void>;
  /**
   * Store the content of a local file under `key`. The store takes the file
   * (the folder back-end renames it into place): once this resolves the file
   * is gone from `localPath`; if it rejects, the file may still be there.
   */
  putFile(key: string, localPath: string, options?: PutOptions): Promise<void>;
  get(key: string, options?: OpOptions & { readonly range?: ByteRange }): Promise<BlobBody>;
  head(key: string, options?: OpOptions): Promise<BlobInfo>;
  /** Delete a blob; deleting a missing blob is not an error. */
  delete(key: string, options?: OpOptions): Promise<void>;
  /** Every blob whose key starts with `prefix`, in key order. */
  list(prefix: string, options?: OpOptions): AsyncIterable<BlobEntry>;
  /**
   * What folder key `dirKey` (ending in `/`) holds right under it: the names of its blobs and of
   * its folders, in no order, without sizes. Only where one such call is cheap (a folder store:
   * one readdir); where it is missing, `list` is the way.
   */
  listFolder?(dirKey: string, options?: OpOptions): Promise<FolderListing>;
  /** Make every blob written with `durable: false` durable. */
  sync(): Promise<void>;
  close(): Promise<void>;
}
