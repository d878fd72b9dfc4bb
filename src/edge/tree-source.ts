/**
 * How the edge reads a static tree: pages with their ETag and serial, files as
 * streams. Two back-ends: a folder, read with the file system directly (the
 * fast path), and any blob store (S3). Both hand out one version of a key from
 * the moment it is opened to the last byte: a page or file the publisher
 * replaces meanwhile is never served half old, half new.
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { ByteRange } from '../blobstore/blob-store.js';
import type { PageMeta } from './page-meta.js';

export interface TreePage {
  readonly meta: PageMeta;
  /** The whole page, when it is small enough to keep in memory; else null and `stream()` reads it. */
  readonly body: Buffer | null;
  /** The page's bytes (the version `meta` describes); call at most once, and only when `body` is null. */
  stream(): Readable;
  /** Lets go of the page without reading it (HEAD, 304, an error). Harmless after `stream()`. */
  release(): void;
}

export interface TreeFile {
  readonly size: number;
  readonly lastModified: Date;
  /** The bytes of `range` (inclusive), or all of them; call at most once (and not with `send`). */
  stream(range: ByteRange | null): Promise<Readable>;
  /**
   * A back-end's faster way (the folder's): writes the bytes to `res`, whose headers are
   * written, and ends it; resolves when done or the client went away. Call at most once.
   */
  readonly send?: (res: ServerResponse, range: ByteRange | null) => Promise<void>;
  /** Lets go of the file without reading it. Harmless after `stream()`. */
  release(): void;
}

/** What the request will want of a file, so a back-end can open it in the fewest steps. */
export type FileIntent = 'head' | 'whole' | 'range';

export interface TreeSource {
  /** Human-readable location, for logs. */
  readonly description: string;
  /** A page, or null when the tree has no such key. */
  page(key: string): Promise<TreePage | null>;
  /**
   * The page at once when the back-end can tell without waiting (a page kept in memory and
   * still current, or a key that is missing): a page or null; undefined means ask `page()`.
   */
  readonly kept?: (key: string) => TreePage | null | undefined;
  /** A distribution file or metadata file, or null when the tree has no such key. */
  file(key: string, intent: FileIntent): Promise<TreeFile | null>;
  close(): Promise<void>;
}

/** The whole of a stream. */
export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}

/** Pages up to this size are kept whole (in memory, or read whole from a bucket); larger ones (a big root) stream. */
export const PAGE_KEEP_BYTES = 4 * 1024 * 1024;
