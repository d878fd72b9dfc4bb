/**
 * Reads a documentation zip entry by entry and hands each file to a store
 * function, enforcing the limits of DocsLimits. The central directory is
 * checked whole first (names, links, duplicates, declared sizes), so most bad
 * zips are refused before a single byte is stored; sizes and ratios are then
 * checked again on the bytes really inflated, since headers can lie.
 */
import { randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';
import { PyedgeError, isPyedgeError } from '../../core/errors.js';
import { badEntry, checkEntryName, S_IFDIR, S_IFLNK, S_IFREG, unixFileType } from './docs-entry-names.js';
import { formatBytes, type DocsLimits } from './docs-limits.js';

/** One file's bytes: in memory when small, else in a spool file the store may take. */
export type EntryBody =
  | { readonly kind: 'bytes'; readonly bytes: Buffer }
  | { readonly kind: 'file'; readonly path: string; readonly size: number };

export interface ExtractOptions {
  readonly limits: DocsLimits;
  /** Folder for entries too large to hold in memory while they are stored. */
  readonly spoolDir: string;
  /** Stores one file at `path` (relative to the documentation root). */
  readonly store: (path: string, body: EntryBody) => Promise<void>;
  /** Stores in flight at once (default 8). */
  readonly concurrency?: number;
}

export interface ExtractResult {
  readonly files: number;
  /** Bytes of all files, as inflated. */
  readonly bytes: number;
}

/** Entries up to this size are held in memory while stored; larger ones are spooled to disk. */
const IN_MEMORY_ENTRY_BYTES = 1024 * 1024;

interface FileEntry {
  readonly entry: Entry;
  readonly name: string;
  readonly path: string;
}

function invalidZip(why: string, cause?: unknown): PyedgeError {
  return new PyedgeError(
    'PYEDGE_INVALID_DISTRIBUTION',
    `Invalid documentation upload: ${why}. Upload a .zip file of the built HTML folder.`,
    {},
    cause === undefined ? undefined : { cause },
  );
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Counts inflated bytes against the limits; throws the first limit passed. */
class InflateBudget {
  total = 0;

  constructor(
    private readonly limits: DocsLimits,
    private readonly zipSize: number,
  ) {}

  checkEntry(name: string, inflated: number, compressed: number): void {
    const { limits } = this;
    if (this.total > limits.maxTotalBytes) {
      throw new PyedgeError(
        'PYEDGE_TOO_LARGE',
        `Documentation too large: its files inflate to more than ${formatBytes(limits.maxTotalBytes)} (the limit), passed at the entry ${JSON.stringify(name)}. Upload smaller documentation.`,
        { entry: name, limit: limits.maxTotalBytes },
      );
    }
    if (inflated > limits.ratioGraceBytes && inflated > limits.maxEntryRatio * Math.max(compressed, 1)) {
      throw new PyedgeError(
        'PYEDGE_TOO_LARGE',
        `Documentation zip refused: the entry ${JSON.stringify(name)} inflates to more than ${limits.maxEntryRatio} times its compressed size (${formatBytes(compressed)}), the per-entry compression ratio limit. This looks like a zip bomb.`,
        { entry: name, limit: limits.maxEntryRatio },
      );
    }
    if (this.total > limits.ratioGraceBytes && this.total > limits.maxTotalRatio * Math.max(this.zipSize, 1)) {
      throw new PyedgeError(
        'PYEDGE_TOO_LARGE',
        `Documentation zip refused: its files inflate to more than ${limits.maxTotalRatio} times the zip's size (${formatBytes(this.zipSize)}), the compression ratio limit, passed at the entry ${JSON.stringify(name)}. This looks like a zip bomb.`,
        { entry: name, limit: limits.maxTotalRatio },
      );
    }
  }
}

/**
 * Extract the zip at `zipPath` through `options.store`. Throws
 * PYEDGE_INVALID_DISTRIBUTION (not a zip, unsafe or duplicate names, links,
 * encrypted or unsupported entries, damaged data) or PYEDGE_TOO_LARGE (entry
 * count, inflated size, compression ratios), naming the entry and the limit.
 * When it throws, every store call it started has settled and no spool file is
 * left; removing what was stored is the caller's business.
 */
export async function extractDocsZip(zipPath: string, options: ExtractOptions): Promise<ExtractResult> {
  let zip: ZipFile;
  try {
    // decodeStrings: false so that names are checked by our rules, with our messages.
    zip = await yauzl.openPromise(zipPath, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (err) {
    throw invalidZip(`the file is not a valid zip archive (${messageOf(err)})`, err);
  }
  try {
    const files = await scan(zip, options.limits);
    return await extract(zip, files, options);
  } finally {
    zip.close();
  }
}

/** Checks the central directory; returns the file entries to extract. */
async function scan(zip: ZipFile, limits: DocsLimits): Promise<FileEntry[]> {
  if (zip.entryCount > limits.maxEntries) throw tooManyEntries(`${zip.entryCount}`, limits.maxEntries);
  const files: FileEntry[] = [];
  const filePaths = new Set<string>();
  // Every folder some entry implies; a file may not share a path with one (a blob key cannot be both).
  const folderPaths = new Set<string>();
  let declaredTotal = 0;
  let seen = 0;
  const addFolders = (name: string, path: string): void => {
    for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
      const folder = path.slice(0, i);
      if (filePaths.has(folder)) throw badEntry(name, `lies inside ${JSON.stringify(folder)}, which is also a file in the zip`);
      folderPaths.add(folder);
    }
  };
  try {
    for await (const entry of zip.eachEntry()) {
      if (++seen > limits.maxEntries) throw tooManyEntries(`more than ${limits.maxEntries}`, limits.maxEntries);
      const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
      const checked = checkEntryName(name, limits.maxPathBytes, entry.fileNameRaw);
      const { path } = checked;
      const type = unixFileType(entry.externalFileAttributes);
      // Some tools mark folders by mode alone, without the trailing slash.
      const isFolder = checked.isFolder || type === S_IFDIR;
      if (type === S_IFLNK) {
        throw badEntry(name, 'is a symbolic link; links are not allowed in documentation (zip the files they point to instead)');
      }
      if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) throw badEntry(name, 'is a special file (device, FIFO or socket)');
      if (isFolder) {
        if (filePaths.has(path)) throw badEntry(name, 'is a folder with the same path as a file in the zip');
        addFolders(name, path);
        folderPaths.add(path);
        continue;
      }
      if (filePaths.has(path)) throw badEntry(name, 'appears twice in the zip; each path may occur once');
      if (folderPaths.has(path)) throw badEntry(name, 'is a file with the same path as a folder in the zip');
      addFolders(name, path);
      filePaths.add(path);
      if (entry.isEncrypted()) throw badEntry(name, 'is encrypted; upload an unencrypted zip');
      if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
        throw badEntry(name, `uses compression method ${entry.compressionMethod}, which is not supported; use deflate (the zip default)`);
      }
      // Refuse early on what the headers declare; the bytes are counted again while inflating.
      declaredTotal += entry.uncompressedSize;
      const declared = new InflateBudget(limits, zip.fileSize);
      declared.total = declaredTotal;
      declared.checkEntry(name, entry.uncompressedSize, entry.compressedSize);
      files.push({ entry, name, path });
    }
  } catch (err) {
    if (isPyedgeError(err)) throw err;
    throw invalidZip(`the zip's central directory is damaged (${messageOf(err)})`, err);
  }
  if (files.length === 0) throw invalidZip('the zip contains no files');
  return files;
}

function tooManyEntries(count: string, limit: number): PyedgeError {
  return new PyedgeError(
    'PYEDGE_TOO_LARGE',
    `Documentation zip refused: it has ${count} entries; the limit is ${limit}. Ship fewer files.`,
    { limit },
  );
}

async function extract(zip: ZipFile, files: readonly FileEntry[], options: ExtractOptions): Promise<ExtractResult> {
  const budget = new InflateBudget(options.limits, zip.fileSize);
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const inFlight = new Set<Promise<void>>();
  // An object, not a reassigned variable: the callbacks below set it while the loop runs.
  const storeFailure: { failed: boolean; err: unknown } = { failed: false, err: undefined };
  try {
    for (const file of files) {
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      if (storeFailure.failed) throw storeFailure.err;
      const body = await inflate(zip, file, budget, options.spoolDir);
      const task = options
        .store(file.path, body)
        .catch((err: unknown) => {
          if (storeFailure.failed) return;
          storeFailure.failed = true;
          storeFailure.err = err;
        })
        .finally(async () => {
          inFlight.delete(task);
          if (body.kind === 'file') await rm(body.path, { force: true });
        });
      inFlight.add(task);
    }
    await Promise.all(inFlight);
    if (storeFailure.failed) throw storeFailure.err;
    return { files: files.length, bytes: budget.total };
  } finally {
    await Promise.allSettled(inFlight);
  }
}

/** Inflates one entry, counting real bytes and checking its CRC. */
async function inflate(zip: ZipFile, file: FileEntry, budget: InflateBudget, spoolDir: string): Promise<EntryBody> {
  const { entry, name } = file;
  const inMemory = entry.uncompressedSize <= IN_MEMORY_ENTRY_BYTES;
  const chunks: Buffer[] = [];
  let spoolPath: string | null = null;
  let fh: FileHandle | null = null;
  let size = 0;
  let crc = 0;
  try {
    const stream = await zip.openReadStreamPromise(entry);
    if (!inMemory) {
      spoolPath = join(spoolDir, `docs-${randomBytes(12).toString('hex')}.part`);
      fh = await open(spoolPath, 'wx');
    }
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      budget.total += chunk.length;
      budget.checkEntry(name, size, entry.compressedSize);
      crc = crc32(chunk, crc);
      if (fh) {
        await fh.write(chunk);
      } else {
        // The header promised a small entry; never let one that lies grow in memory.
        if (size > IN_MEMORY_ENTRY_BYTES) throw badEntry(name, 'holds more data than its header declares');
        chunks.push(chunk);
      }
    }
    if (crc !== entry.crc32) throw badEntry(name, 'is damaged (its CRC-32 does not match its data)');
    if (fh) {
      await fh.close();
      fh = null;
      return { kind: 'file', path: spoolPath!, size };
    }
    return { kind: 'bytes', bytes: Buffer.concat(chunks, size) };
  } catch (err) {
    await fh?.close().catch(() => undefined);
    if (spoolPath) await rm(spoolPath, { force: true });
    if (isPyedgeError(err)) throw err;
    throw badEntry(name, `could not be inflated (${messageOf(err)}); the zip is damaged`);
  }
}
