/**
 * A tree in a local folder, read with the file system directly: the edge's
 * fast path. Small pages are kept in memory and checked against the file with
 * one `stat` when a request comes more than `recheckMs` after the last check
 * (a page the publisher renames into place is a new inode, so the check cannot
 * miss a change; between checks, a replaced page is served at most that much
 * longer, as a complete earlier version); files are sent from
 * descriptors kept open and checked the same way (open-files.ts), each
 * pinning the version opened. Temp files (`.tmp/`) are never reached: the
 * routes build only layout keys.
 */
import { statSync, type Stats } from 'node:fs';
import { finished } from 'node:stream';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PyedgeError } from '../core/errors.js';
import { describePage, PageDescriber, type PageMeta } from './page-meta.js';
import { sendFileRange } from './file-sender.js';
import { errorCode, FileRangeStream, MISSING, OpenFiles, sameFile } from './open-files.js';
import { PAGE_KEEP_BYTES, type FileIntent, type TreeFile, type TreePage, type TreeSource } from './tree-source.js';

/** Read size for streaming large pages: large reads, few chunks. */
const STREAM_CHUNK = 256 * 1024;
/** Read size for files: a 1 MB file goes in one read and one socket write. */
const FILE_CHUNK = 1024 * 1024;

interface Kept {
  /** The file the page was read from. */
  readonly stats: Stats;
  /** When the file was last found to be this one (ms, performance.now()). */
  checkedAt: number;
  readonly meta: PageMeta;
  /** The page, for pages up to PAGE_KEEP_BYTES (else only its meta is kept). */
  readonly page: TreePage | null;
}

function inMemory(meta: PageMeta, body: Buffer): TreePage {
  return {
    meta,
    body,
    stream: () => {
      throw new Error('a page kept in memory has no stream');
    },
    release: () => undefined,
  };
}

/** Reads `size` bytes from the start of an open file. */
async function readWhole(fh: FileHandle, size: number): Promise<Buffer> {
  // Not from the shared pool: a kept page must not hold on to a pool slab.
  const buf = Buffer.allocUnsafeSlow(size);
  let off = 0;
  while (off < size) {
    const { bytesRead } = await fh.read(buf, off, size - off, off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  if (off !== size) throw new PyedgeError('PYEDGE_STORAGE', 'a page was shorter than its size while being read', { size, read: off });
  return buf;
}

/** The meta of a large page, read in pieces from an open file. */
async function describeOpen(fh: FileHandle, size: number): Promise<PageMeta> {
  const d = new PageDescriber();
  const buf = Buffer.allocUnsafe(Math.min(size, 1024 * 1024));
  let off = 0;
  while (off < size) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - off), off);
    if (bytesRead === 0) throw new PyedgeError('PYEDGE_STORAGE', 'a page was shorter than its size while being read', { size, read: off });
    d.update(buf.subarray(0, bytesRead));
    off += bytesRead;
  }
  return d.finish();
}

export interface FolderTreeOptions {
  /** Most bytes of small pages kept in memory (least recently used go first). */
  readonly keepBytes?: number;
  /** How long a kept page is served without checking its file again, in ms (default 100). */
  readonly recheckMs?: number;
}

export class FolderTreeSource implements TreeSource {
  readonly description: string;
  readonly #root: string;
  readonly #kept = new Map<string, Kept>();
  #keptBytes = 0;
  readonly #keepBytes: number;
  readonly #recheckMs: number;
  readonly #files = new OpenFiles();

  constructor(root: string, options: FolderTreeOptions = {}) {
    this.#root = path.resolve(root);
    this.description = `folder ${this.#root}`;
    this.#keepBytes = options.keepBytes ?? 64 * 1024 * 1024;
    this.#recheckMs = options.recheckMs ?? 100;
  }

  /** Keys come from the routes (layout names only, never `.` or `..`): joined as strings, without path.join's work. */
  #path(key: string): string {
    return `${this.#root}/${key}`;
  }

  /** The file at `key` now, or null. Synchronous: a stat of a cached path costs less than a trip to the thread pool. */
  #stat(key: string): Stats | null {
    try {
      const st = statSync(this.#path(key), { throwIfNoEntry: false });
      return st !== undefined && st.isFile() ? st : null;
    } catch (err) {
      if (MISSING.has(errorCode(err))) return null;
      throw err;
    }
  }

  async #open(key: string): Promise<{ fh: FileHandle; st: Stats } | null> {
    let fh: FileHandle;
    try {
      fh = await open(this.#path(key), 'r');
    } catch (err) {
      if (MISSING.has(errorCode(err))) return null;
      throw err;
    }
    try {
      const st = await fh.stat();
      if (st.isFile()) return { fh, st };
    } catch (err) {
      await fh.close();
      throw err;
    }
    await fh.close();
    return null;
  }

  #keep(key: string, kept: Kept): void {
    const old = this.#kept.get(key);
    if (old) {
      this.#kept.delete(key);
      this.#keptBytes -= old.page?.meta.size ?? 0;
    }
    this.#kept.set(key, kept);
    this.#keptBytes += kept.page?.meta.size ?? 0;
    for (const [k, v] of this.#kept) {
      if (this.#keptBytes <= this.#keepBytes && this.#kept.size <= 100_000) break;
      this.#kept.delete(k);
      this.#keptBytes -= v.page?.meta.size ?? 0;
    }
  }

  readonly kept = (key: string): TreePage | null | undefined => {
    const kept = this.#kept.get(key);
    const now = performance.now();
    if (kept !== undefined && kept.page !== null && now - kept.checkedAt < this.#recheckMs) return kept.page;
    const st = this.#stat(key);
    if (st === null) return null;
    if (kept === undefined || kept.page === null || !sameFile(kept.stats, st)) return undefined;
    kept.checkedAt = now;
    // Most recently used last.
    this.#kept.delete(key);
    this.#kept.set(key, kept);
    return kept.page;
  };

  async page(key: string): Promise<TreePage | null> {
    const now = this.kept(key);
    if (now !== undefined) return now;
    const kept = this.#kept.get(key);
    // What is opened is one whole version (writers rename into place), whatever the stat saw.
    const opened = await this.#open(key);
    if (opened === null) return null;
    const { fh, st: ost } = opened;
    try {
      if (ost.size <= PAGE_KEEP_BYTES) {
        const body = await readWhole(fh, ost.size);
        await fh.close();
        const meta = describePage(body);
        const page = inMemory(meta, body);
        this.#keep(key, { stats: ost, checkedAt: performance.now(), meta, page });
        return page;
      }
      // A large page: its meta is worked out once per version, its bytes stream from this descriptor.
      let meta = kept !== undefined && sameFile(kept.stats, ost) ? kept.meta : null;
      if (meta === null) {
        meta = await describeOpen(fh, ost.size);
        this.#keep(key, { stats: ost, checkedAt: performance.now(), meta, page: null });
      }
      let streamed = false;
      return {
        meta,
        body: null,
        stream: () => {
          streamed = true;
          return fh.createReadStream({ start: 0, end: ost.size - 1, highWaterMark: STREAM_CHUNK });
        },
        release: () => {
          if (!streamed) void fh.close().catch(() => undefined);
        },
      };
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  async file(key: string, intent: FileIntent): Promise<TreeFile | null> {
    if (intent === 'head') {
      const st = this.#stat(key);
      if (st === null) return null;
      return {
        size: st.size,
        lastModified: st.mtime,
        stream: () => Promise.reject(new Error('a file opened for HEAD has no stream')),
        release: () => undefined,
      };
    }
    const file = await this.#files.acquire(this.#path(key));
    if (file === null) return null;
    const { stats } = file;
    let streamed = false;
    return {
      size: stats.size,
      lastModified: stats.mtime,
      stream: async (range) => {
        streamed = true;
        const start = range?.start ?? 0;
        const end = range?.end ?? stats.size - 1;
        // One read for a file up to FILE_CHUNK: one chunk, one write to the socket.
        const body = new FileRangeStream(file.fd, start, end, FILE_CHUNK);
        // Once the stream is closed (ended, failed or cut off), with no read under way.
        finished(body, () => file.release());
        return body;
      },
      send: (res, range) => {
        streamed = true;
        return sendFileRange(res, file.fd, range?.start ?? 0, range?.end ?? stats.size - 1).finally(() => file.release());
      },
      release: () => {
        if (!streamed) file.release();
      },
    };
  }

  async close(): Promise<void> {
    this.#files.closeAll();
    this.#kept.clear();
    this.#keptBytes = 0;
  }
}
