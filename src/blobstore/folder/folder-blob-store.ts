/**
 * A blob store in a local folder: key `a/b/c` is the file `<root>/a/b/c`.
 * Every write goes to a temp file in `<root>/.tmp/`, is fsynced and renamed
 * into place, then the folder is fsynced: readers see whole blobs only, and a
 * put that resolved survives a crash. Opening a store clears the temp files
 * that writers which died mid-write left behind (temp-files.ts). The one
 * exception is putInPlace(), for bulk loads nobody reads until sync().
 */
import { mkdirSync, type Dirent } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { BlobNotFoundError, PyedgeError } from '../../core/errors.js';
import type { BlobBody, BlobEntry, BlobInfo, BlobStore, ByteRange, FolderListing, OpOptions, PutOptions } from '../blob-store.js';
import { assertValidKey, assertValidPrefix, assertValidRange, rangeNotSatisfiable } from '../blob-keys.js';
import { DurableDirs, errorCode, fsyncDir, type PreparedDir } from './durable-dirs.js';
import { copyStream, syncFile, writeAll } from './file-writes.js';
import { InPlaceWriter } from './in-place-writes.js';
import { SmallReader } from './small-reads.js';
import { removeStaleTemp, tempName } from './temp-files.js';

/** Temp files live inside the root so that the final rename never crosses filesystems. */
const TMP_DIR = '.tmp';
/** How many files of one folder `list` stats at once. */
const STAT_BATCH = 64;
/** Folders read ahead of the one a listing walks, beside it (see #walkRead). */
const READ_AHEAD = 32;

/** A folder's entry in a listing: a blob with its size, or a folder (size null). */
interface FolderItem {
  readonly name: string;
  readonly size: number | null;
}
const MISSING = new Set(['ENOENT', 'ENOTDIR']);

type EntryKind = 'blob' | 'folder' | null;

/** A folder entry as a blob, a folder, or neither; a symbolic link counts as what it points to (a stat). */
function kindOf(dir: string, entry: Dirent): EntryKind | Promise<EntryKind> {
  if (entry.isSymbolicLink()) {
    return stat(path.join(dir, entry.name)).then(
      (st) => (st.isDirectory() ? 'folder' : st.isFile() ? 'blob' : null),
      () => null,
    );
  }
  return entry.isDirectory() ? 'folder' : entry.isFile() ? 'blob' : null;
}

export class FolderBlobStore implements BlobStore {
  readonly description: string;
  readonly #root: string;
  readonly #tmpDir: string;
  readonly #dirs: DurableDirs;
  #inPlace: InPlaceWriter | null = null;
  #reader: SmallReader | null = null;

  /** Opens (and creates if missing) a store rooted at `root`. */
  constructor(root: string) {
    this.#root = path.resolve(root);
    this.#tmpDir = path.join(this.#root, TMP_DIR);
    mkdirSync(this.#tmpDir, { recursive: true });
    this.#dirs = new DurableDirs(this.#root);
    this.description = `folder ${this.#root}`;
    // In the background: only temp files of dead writers go, never one this store is writing.
    void removeStaleTemp(this.#tmpDir);
  }

  async put(key: string, body: Uint8Array | Readable, options: PutOptions = {}): Promise<void> {
    const file = this.#fileOf(key);
    const { signal } = options;
    signal?.throwIfAborted();
    const tmp = this.#tmpPath();
    try {
      const fh = await open(tmp, 'wx');
      try {
        if (body instanceof Uint8Array) {
          await writeAll(fh, body);
        } else {
          await copyStream(body, fh, signal);
        }
        signal?.throwIfAborted();
        // fdatasync flushes the data and the size, all a reader needs.
        if (options.durable !== false) await fh.datasync();
      } finally {
        await fh.close();
      }
      if (options.durable === false) {
        // Bulk load: no flushes now; sync() makes the whole store durable once at the end.
        await mkdir(path.dirname(file), { recursive: true });
        await rename(tmp, file);
      } else {
        await this.#moveIntoPlace(tmp, file);
      }
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw storageError(err, key, 'write');
    }
  }

  /**
   * Writes `bytes` under `key` straight into place: no temp file, no flush,
   * and not atomic (a reader may see part of it; a crash may leave it short).
   * Only for a bulk load nobody reads until it is over: sync() makes it durable.
   * Many such writes are batched onto a few threads (in-place-writes.ts).
   * `sameAt` are keys that get the same bytes: hard links to the one file.
   * A later put() of either key renames a new file over that key alone.
   */
  async putInPlace(key: string, bytes: Uint8Array, sameAt: readonly string[] = []): Promise<void> {
    const file = this.#fileOf(key);
    const links = sameAt.map((k) => this.#fileOf(k));
    this.#inPlace ??= new InPlaceWriter(this.#root);
    try {
      await this.#inPlace.write(file, bytes, links);
    } catch (err) {
      throw storageError(err, key, 'write');
    }
  }

  async putFile(key: string, localPath: string, options: PutOptions = {}): Promise<void> {
    const file = this.#fileOf(key);
    options.signal?.throwIfAborted();
    try {
      await this.#moveIntoPlace(localPath, file, syncFile(localPath));
      return;
    } catch (err) {
      if (errorCode(err) !== 'EXDEV') throw storageError(err, key, `move ${localPath} into place as`);
    }
    // Another filesystem: copy to a temp file beside the target, then take the original away.
    const tmp = this.#tmpPath();
    try {
      await copyFile(localPath, tmp);
      await this.#moveIntoPlace(tmp, file, syncFile(tmp));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw storageError(err, key, `copy ${localPath} into place as`);
    }
    await rm(localPath, { force: true }).catch(() => undefined);
  }

  async get(key: string, options: OpOptions & { readonly range?: ByteRange } = {}): Promise<BlobBody> {
    const file = this.#fileOf(key);
    const { signal, range } = options;
    if (range) assertValidRange(range, key);
    signal?.throwIfAborted();
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw readError(err, key);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new BlobNotFoundError(key);
      let contentLength = st.size;
      let streamRange: { start: number; end: number } | undefined;
      if (range) {
        if (range.start >= st.size) throw rangeNotSatisfiable(range, key, st.size);
        // Like HTTP, an end past the blob means "to the end".
        streamRange = { start: range.start, end: Math.min(range.end, st.size - 1) };
        contentLength = streamRange.end - streamRange.start + 1;
      }
      // The open handle pins this version of the blob even if a put renames a new one over it.
      const body = fh.createReadStream(streamRange ?? {});
      if (signal) addAbortSignal(signal, body);
      return { size: st.size, lastModified: st.mtime, body, contentLength };
    } catch (err) {
      await fh.close();
      throw readError(err, key);
    }
  }

  /**
   * The bytes of many small blobs at once, read on a thread of their own in
   * one batch: null for a key with no blob, or one bigger than `maxBytes`.
   */
  async getSmall(keys: readonly string[], maxBytes: number): Promise<(Buffer | null)[]> {
    const files = keys.map((k) => this.#fileOf(k));
    this.#reader ??= new SmallReader();
    return this.#reader.read(files, maxBytes);
  }

  async head(key: string, options: OpOptions = {}): Promise<BlobInfo> {
    const file = this.#fileOf(key);
    options.signal?.throwIfAborted();
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new BlobNotFoundError(key);
      return { size: st.size, lastModified: st.mtime };
    } catch (err) {
      throw readError(err, key);
    }
  }

  async delete(key: string, options: OpOptions = {}): Promise<void> {
    const file = this.#fileOf(key);
    options.signal?.throwIfAborted();
    try {
      await unlink(file);
    } catch (err) {
      // EISDIR: the key names a folder, which is not a blob.
      const code = errorCode(err);
      if (code !== undefined && (MISSING.has(code) || code === 'EISDIR')) return;
      throw storageError(err, key, 'delete');
    }
    // Best effort: drop folders the delete left empty, so removed projects leave no trace.
    for (let dir = path.dirname(file); dir !== this.#root; dir = path.dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
      this.#dirs.forget(dir);
    }
  }

  async *list(prefix: string, options: OpOptions = {}): AsyncIterable<BlobEntry> {
    assertValidPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    yield* this.#walk(prefix.slice(0, slash + 1), prefix.slice(slash + 1), options.signal);
  }

  async listFolder(dirKey: string, options: OpOptions = {}): Promise<FolderListing> {
    assertValidPrefix(dirKey);
    if (dirKey !== '' && !dirKey.endsWith('/')) throw new PyedgeError('PYEDGE_BAD_REQUEST', `invalid folder key ${JSON.stringify(dirKey)}: it must end with /`, { key: dirKey });
    const blobs: string[] = [];
    const folders: string[] = [];
    for (const e of await this.#entries(dirKey, '', options.signal)) (e.isDir ? folders : blobs).push(e.name);
    return { blobs, folders };
  }

  async sync(): Promise<void> {
    await this.#inPlace?.drain();
    // syncfs(2) on the store's filesystem: one call for everything written with durable: false.
    await new Promise<void>((resolve, reject) => {
      execFile('sync', ['-f', this.#root], (err) => (err ? reject(storageError(err, '', 'sync')) : resolve()));
    });
  }

  async close(): Promise<void> {
    // Nothing is held open between calls but the threads of in-place writes and batched reads.
    const inPlace = this.#inPlace;
    const reader = this.#reader;
    this.#inPlace = null;
    this.#reader = null;
    await Promise.all([inPlace?.close(), reader?.close()]);
  }

  /** Yields the blobs under folder key `dirKey` (empty or ending in `/`) whose names start with `namePrefix`. */
  async *#walk(dirKey: string, namePrefix: string, signal: AbortSignal | undefined): AsyncGenerator<BlobEntry> {
    yield* this.#walkRead(dirKey, await this.#readFolder(dirKey, namePrefix, signal), signal);
  }

  /**
   * Yields the blobs of a folder read by #readFolder, in key order. The next READ_AHEAD folders
   * beside the one being walked are read meanwhile: at PyPI's size a tree has millions of small
   * folders, and reading one after another left the disk and the thread pool idle between reads.
   */
  async *#walkRead(dirKey: string, items: readonly FolderItem[], signal: AbortSignal | undefined): AsyncGenerator<BlobEntry> {
    const ahead = new Map<number, Promise<FolderItem[]>>();
    let next = 0;
    try {
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        if (item.size !== null) {
          yield { key: dirKey + item.name, size: item.size };
          continue;
        }
        for (next = Math.max(next, i); next < items.length && ahead.size < READ_AHEAD; next++) {
          const it = items[next]!;
          if (it.size !== null) continue;
          const reading = this.#readFolder(`${dirKey}${it.name}/`, '', signal);
          // Read ahead and maybe never awaited (the caller may stop early): never an unhandled rejection.
          reading.catch(() => undefined);
          ahead.set(next, reading);
        }
        const read = ahead.get(i)!;
        ahead.delete(i);
        yield* this.#walkRead(`${dirKey}${item.name}/`, await read, signal);
      }
    } finally {
      ahead.clear();
    }
  }

  /**
   * The blobs and folders right under folder key `dirKey` whose names start with `namePrefix`, in
   * no order (a symbolic link counts as what it points to); none when the folder is gone.
   */
  async #entries(dirKey: string, namePrefix: string, signal: AbortSignal | undefined): Promise<{ name: string; isDir: boolean }[]> {
    signal?.throwIfAborted();
    const dir = path.join(this.#root, dirKey);
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = errorCode(err);
      if (code !== undefined && MISSING.has(code)) return [];
      throw storageError(err, dirKey, 'list');
    }
    const found: { name: string; isDir: boolean }[] = [];
    for (const entry of entries) {
      if (!entry.name.startsWith(namePrefix) || (dirKey === '' && entry.name === TMP_DIR)) continue;
      let kind = kindOf(dir, entry);
      if (kind instanceof Promise) kind = await kind;
      if (kind !== null) found.push({ name: entry.name, isDir: kind === 'folder' });
    }
    return found;
  }

  /** A folder's blobs (with their sizes) and folders, sorted by key ("name/" for a folder); empty when it is gone. */
  async #readFolder(dirKey: string, namePrefix: string, signal: AbortSignal | undefined): Promise<FolderItem[]> {
    const dir = path.join(this.#root, dirKey);
    // A folder sorts as "name/" so that keys come out in plain string order ("a-b" < "a/x").
    const found = (await this.#entries(dirKey, namePrefix, signal)).map((e) => ({ ...e, sortKey: e.isDir ? `${e.name}/` : e.name }));
    found.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    const items: FolderItem[] = [];
    for (let i = 0; i < found.length; i += STAT_BATCH) {
      const run = found.slice(i, i + STAT_BATCH);
      const sizes = await Promise.all(
        run.map((it) =>
          it.isDir
            ? null
            : stat(path.join(dir, it.name)).then(
                (st) => st.size,
                (err: unknown) => {
                  // Deleted since readdir: simply not there any more.
                  if (errorCode(err) === 'ENOENT') return -1;
                  throw storageError(err, dirKey + it.name, 'list');
                },
              ),
        ),
      );
      run.forEach((it, k) => {
        const size = sizes[k]!;
        if (size === null || size >= 0) items.push({ name: it.name, size });
      });
    }
    return items;
  }

  #fileOf(key: string): string {
    assertValidKey(key);
    if (key === TMP_DIR || key.startsWith(`${TMP_DIR}/`)) {
      throw new PyedgeError('PYEDGE_BAD_REQUEST', `invalid blob key ${JSON.stringify(key)}: ${TMP_DIR}/ is reserved`, { key });
    }
    return path.join(this.#root, key);
  }

  #tmpPath(): string {
    return path.join(this.#tmpDir, tempName());
  }

  /**
   * Renames `from` to `file` once `flushed` (the flush of `from`'s data, which
   * runs while the folders are made) resolves, then flushes the folder. The
   * folder's flush and those of any new folders' parents run side by side.
   */
  async #moveIntoPlace(from: string, file: string, flushed: Promise<void> = Promise.resolve()): Promise<void> {
    const dir = path.dirname(file);
    // Settle the flush whatever happens to the folders, so its failure is never left unhandled.
    const flushing = flushed.then(
      () => null,
      (err: unknown) => ({ err }),
    );
    let prepared: PreparedDir;
    for (let attempt = 1; ; attempt++) {
      try {
        prepared = await this.#dirs.prepare(dir);
        const failed = await flushing;
        if (failed) throw failed.err;
        await rename(from, file);
        break;
      } catch (err) {
        // A concurrent delete may have removed an empty folder we thought was there.
        if (errorCode(err) !== 'ENOENT' || attempt >= 3 || (await flushing) !== null) throw err;
        this.#dirs.forgetWithAncestors(dir);
      }
    }
    await Promise.all([fsyncDir(dir), prepared.durable]);
  }
}

/** Maps "missing" to BlobNotFoundError and passes domain errors and aborts through. */
function readError(err: unknown, key: string): unknown {
  const code = errorCode(err);
  if (code !== undefined && MISSING.has(code)) return new BlobNotFoundError(key, { cause: err });
  if (code === 'EISDIR') return new BlobNotFoundError(key, { cause: err });
  return storageError(err, key, 'read');
}

function storageError(err: unknown, key: string, action: string): unknown {
  if (err instanceof PyedgeError || (err instanceof Error && err.name === 'AbortError')) return err;
  const code = errorCode(err);
  const why =
    code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST'
      ? 'a key and a key inside it (a and a/b) cannot both be stored in a folder store'
      : err instanceof Error
        ? err.message
        : String(err);
  return new PyedgeError('PYEDGE_STORAGE', `could not ${action} blob ${key}: ${why}`, { key, code }, { cause: err });
}
