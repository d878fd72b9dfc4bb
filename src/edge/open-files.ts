/**
 * Descriptors of the files served most, kept open (nginx's open_file_cache):
 * a download then costs one `stat` of its path instead of an open, a stat and
 * a close on the thread pool. The `stat` at every request checks that the path
 * still names the same file (a file deleted or replaced is a new lookup, never
 * the old bytes), and a descriptor is closed only once no stream reads it.
 */
import { close, fstat, open, read, statSync, type Stats } from 'node:fs';
import { Readable } from 'node:stream';

/** The errors that mean "no such file" for a path built from a key. */
export const MISSING = new Set(['ENOENT', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG']);

/**
 * Whether two stats are of the same file with the same bytes: a writer that renames a new file
 * into place makes a new inode, and one that rewrites in place changes the times. Compared as
 * numbers, because this runs at every request.
 */
export function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.size === b.size && a.dev === b.dev;
}

/** One open file; `release()` once per `acquire()`. */
export interface OpenFile {
  readonly fd: number;
  readonly stats: Stats;
  release(): void;
}

interface Entry {
  readonly fd: number;
  readonly stats: Stats;
  users: number;
  /** Out of the cache: closed when its last user is done. */
  dropped: boolean;
}

export function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
}

function closeEntry(entry: Entry): void {
  close(entry.fd, () => undefined);
}

export class OpenFiles {
  readonly #entries = new Map<string, Entry>();

  constructor(private readonly max = 1000) {}

  /** The file at `path` now, opened (or still open), or null when there is no regular file there. */
  async acquire(path: string): Promise<OpenFile | null> {
    let st: Stats | undefined;
    try {
      st = statSync(path, { throwIfNoEntry: false });
    } catch (err) {
      if (!MISSING.has(errorCode(err))) throw err;
    }
    const cached = this.#entries.get(path);
    if (st === undefined || !st.isFile()) {
      if (cached) this.#drop(path, cached);
      return null;
    }
    if (cached !== undefined) {
      if (sameFile(cached.stats, st)) {
        // Most recently used last.
        this.#entries.delete(path);
        this.#entries.set(path, cached);
        return this.#use(cached);
      }
      this.#drop(path, cached);
    }
    const opened = await openRegular(path);
    if (opened === null) return null;
    const entry: Entry = { fd: opened.fd, stats: opened.stats, users: 0, dropped: false };
    const other = this.#entries.get(path);
    if (other !== undefined) this.#drop(path, other);
    this.#entries.set(path, entry);
    for (const [p, e] of this.#entries) {
      if (this.#entries.size <= this.max) break;
      this.#drop(p, e);
    }
    return this.#use(entry);
  }

  /** How many descriptors are open (cached or still read). */
  get size(): number {
    return this.#entries.size;
  }

  #use(entry: Entry): OpenFile {
    entry.users++;
    let released = false;
    return {
      fd: entry.fd,
      stats: entry.stats,
      release: () => {
        if (released) return;
        released = true;
        entry.users--;
        if (entry.dropped && entry.users === 0) closeEntry(entry);
      },
    };
  }

  #drop(path: string, entry: Entry): void {
    if (this.#entries.get(path) === entry) this.#entries.delete(path);
    if (entry.dropped) return;
    entry.dropped = true;
    if (entry.users === 0) closeEntry(entry);
  }

  /** Closes every descriptor no stream reads; the others close when their streams end. */
  closeAll(): void {
    for (const [p, e] of [...this.#entries]) this.#drop(p, e);
  }
}

/** An open descriptor of a regular file and its stat (callback API: fewer trips than promises), or null. */
function openRegular(path: string): Promise<{ fd: number; stats: Stats } | null> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (err, fd) => {
      if (err) return MISSING.has(err.code ?? '') ? resolve(null) : reject(err);
      fstat(fd, (err2, stats) => {
        if (err2 || !stats.isFile()) {
          close(fd, () => (err2 ? reject(err2) : resolve(null)));
          return;
        }
        resolve({ fd, stats });
      });
    });
  });
}

/**
 * Bytes `start`–`end` (inclusive) of an open file, read with positional reads
 * of up to `chunk` bytes. Unlike fs.ReadStream it never closes the descriptor,
 * which other streams may be reading (fs.ReadStream closes it when destroyed,
 * whatever `autoClose` says); it finishes any read under way before it reports
 * itself closed, so the descriptor can be closed then.
 */
export class FileRangeStream extends Readable {
  #pos: number;
  #reading = false;
  #onReadDone: (() => void) | null = null;

  constructor(
    private readonly fd: number,
    start: number,
    private readonly end: number,
    private readonly chunk: number,
  ) {
    super({ highWaterMark: chunk });
    this.#pos = start;
  }

  override _read(): void {
    const length = Math.min(this.chunk, this.end - this.#pos + 1);
    if (length <= 0) {
      this.push(null);
      return;
    }
    this.#reading = true;
    read(this.fd, Buffer.allocUnsafe(length), 0, length, this.#pos, (err, bytesRead, buf) => {
      this.#reading = false;
      const done = this.#onReadDone;
      this.#onReadDone = null;
      if (done) return done();
      if (err) return this.destroy(err);
      if (bytesRead === 0) return this.destroy(new Error(`the file ended at byte ${this.#pos}, before byte ${this.end}`));
      this.#pos += bytesRead;
      this.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
    });
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#reading) this.#onReadDone = () => callback(err);
    else callback(err);
  }
}
