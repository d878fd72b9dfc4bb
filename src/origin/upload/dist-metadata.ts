/**
 * Reading the core metadata out of an uploaded distribution file: a wheel's
 * `{name}-{version}.dist-info/METADATA`, an sdist's `{top}/PKG-INFO`. The raw
 * bytes are served as `<file>.metadata` (PEP 658), so they are returned as found.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { createGunzip, inflateRawSync } from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';
import { PyedgeError } from '../../core/errors.js';
import type { ParsedFilename } from '../../core/filenames.js';
import { parseCoreMetadata, validateCoreMetadata, type CoreMetadata } from '../../core/metadata.js';
import { normalizeName } from '../../core/names.js';
import { sameVersion } from '../../core/versions.js';

/** Bounds on the work one upload can cause while its metadata is read. */
export interface DistMetadataLimits {
  /** Largest METADATA / PKG-INFO accepted, in bytes, counted while inflating. */
  readonly maxMetadataBytes: number;
  /** Most zip entries scanned (wheels and zip sdists). */
  readonly maxZipEntries: number;
}

export const DEFAULT_DIST_METADATA_LIMITS: DistMetadataLimits = Object.freeze({
  maxMetadataBytes: 16 * 1024 * 1024,
  maxZipEntries: 100_000,
});

/** The core metadata of a distribution file: bytes as stored, and parsed. */
export interface DistMetadata {
  readonly raw: Buffer;
  readonly metadata: CoreMetadata;
}

/**
 * Read, parse and validate the core metadata inside the distribution: the
 * file at a local path, or its whole bytes when the caller holds them (small
 * uploads), which spares the file reads. Throws PYEDGE_INVALID_DISTRIBUTION
 * when the archive is corrupt or lacks the metadata file,
 * PYEDGE_INVALID_METADATA when the metadata is not UTF-8 or fails
 * validateCoreMetadata. I/O errors on a local path pass through.
 */
export async function readDistMetadata(
  source: string | Buffer,
  parsed: ParsedFilename,
  limits: DistMetadataLimits = DEFAULT_DIST_METADATA_LIMITS,
): Promise<DistMetadata> {
  let raw: Buffer;
  let member: string;
  if (parsed.kind === 'wheel') {
    [raw, member] = await readFromZip(source, parsed, limits, wheelMetadataIn);
  } else if (parsed.extension === '.zip') {
    [raw, member] = await readFromZip(source, parsed, limits, pkgInfoIn);
  } else {
    [raw, member] = await readFromTarGz(source, parsed, limits);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch (err) {
    throw new PyedgeError(
      'PYEDGE_INVALID_METADATA',
      `Invalid core metadata: ${member} in '${parsed.filename}' is not valid UTF-8. Rebuild the distribution with a current build backend.`,
      { filename: parsed.filename, member },
      { cause: err },
    );
  }
  const metadata = parseCoreMetadata(text);
  validateCoreMetadata(metadata);
  return { raw, metadata };
}

/** Picks the metadata entry of a zip from all its entries; throws when there is no single right one. */
type ZipChooser = (entries: readonly Entry[], parsed: ParsedFilename) => Entry;

async function readFromZip(
  source: string | Buffer,
  parsed: ParsedFilename,
  limits: DistMetadataLimits,
  choose: ZipChooser,
): Promise<[Buffer, string]> {
  let zip: ZipFile;
  try {
    zip =
      typeof source === 'string'
        ? await yauzl.openPromise(source, { lazyEntries: true, autoClose: false })
        : await yauzl.fromRandomAccessReaderPromise(new BufferReader(source), source.length, { lazyEntries: true, autoClose: false });
  } catch (err) {
    throw asInvalid(err, parsed.filename, 'zip archive');
  }
  try {
    if (zip.entryCount > limits.maxZipEntries) throw tooManyEntries(parsed.filename, limits.maxZipEntries);
    // Only entries that could be metadata are kept, so memory stays small for large archives.
    const interesting: Entry[] = [];
    let scanned = 0;
    for await (const entry of zip.eachEntry()) {
      if (++scanned > limits.maxZipEntries) throw tooManyEntries(parsed.filename, limits.maxZipEntries);
      if (entry.fileName.includes('.dist-info/') || entry.fileName.endsWith('PKG-INFO')) interesting.push(entry);
    }
    const entry = choose(interesting, parsed);
    const member = entry.fileName;
    if (entry.uncompressedSize > limits.maxMetadataBytes) throw tooLarge(parsed.filename, member, limits.maxMetadataBytes);
    const inMemory = typeof source === 'string' ? null : await extractInMemory(zip, entry, source);
    if (inMemory) return [inMemory, member];
    const stream = await zip.openReadStreamPromise(entry);
    return [await readBounded(stream, limits.maxMetadataBytes, () => tooLarge(parsed.filename, member, limits.maxMetadataBytes)), member];
  } catch (err) {
    throw asInvalid(err, parsed.filename, 'zip archive');
  } finally {
    zip.close();
  }
}

/**
 * yauzl's reads of a zip held in memory, answered at once. Its own buffer
 * reader answers each read on a later turn of the event loop, and listing a
 * wheel takes two reads per entry: on a busy server every turn waits for all
 * the other requests' callbacks, which made reading a small wheel take many
 * milliseconds.
 */
class BufferReader extends yauzl.RandomAccessReader {
  readonly #bytes: Buffer;

  constructor(bytes: Buffer) {
    super();
    this.#bytes = bytes;
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    // Like yauzl's own: a read past the end gives fewer bytes, which yauzl reports as an unexpected EOF.
    const n = Math.max(0, Math.min(length, buffer.length - offset, this.#bytes.length - position));
    if (n > 0) this.#bytes.copy(buffer, offset, position, position + n);
    (callback as (err: Error | null, bytesRead: number) => void)(null, n);
  }

  override _readStreamForRange(start: number, end: number): Readable {
    return Readable.from([this.#bytes.subarray(start, end)]);
  }
}

/** Members up to this size are inflated at once on the calling thread; larger ones go through zlib's thread pool. */
const INFLATE_AT_ONCE_BYTES = 1024 * 1024;

/**
 * The member's bytes, taken straight from the zip in memory and inflated at
 * once, or null when it is anything but a plain stored or deflated member
 * that inflates to its stated size: then yauzl's streams read it (and report
 * what is wrong with it). Inflating through a zlib stream waits for the
 * thread pool, which on a busy origin is full of file flushes.
 */
async function extractInMemory(zip: ZipFile, entry: Entry, bytes: Buffer): Promise<Buffer | null> {
  const method = entry.compressionMethod;
  if (entry.isEncrypted() || (method !== 0 && method !== 8) || entry.uncompressedSize > INFLATE_AT_ONCE_BYTES) return null;
  try {
    const { fileDataStart } = await zip.readLocalFileHeaderPromise(entry, { minimal: true });
    const end = fileDataStart + entry.compressedSize;
    if (end > bytes.length) return null;
    const data = bytes.subarray(fileDataStart, end);
    const out = method === 0 ? Buffer.from(data) : inflateRawSync(data, { maxOutputLength: entry.uncompressedSize + 1 });
    return out.length === entry.uncompressedSize ? out : null;
  } catch {
    return null;
  }
}

/** PEP 427: the one `.dist-info` folder must be `{name}-{version}.dist-info`. */
function wheelMetadataIn(entries: readonly Entry[], parsed: ParsedFilename): Entry {
  const dirs = new Set<string>();
  const metadata = new Map<string, Entry>();
  for (const entry of entries) {
    const slash = entry.fileName.indexOf('/');
    const top = entry.fileName.slice(0, slash);
    if (slash <= 0 || !top.endsWith('.dist-info')) continue;
    dirs.add(top);
    if (entry.fileName === `${top}/METADATA`) metadata.set(top, entry);
  }
  // pip refuses to install a wheel with several .dist-info folders; refuse it here first.
  if (dirs.size > 1) {
    throw new PyedgeError(
      'PYEDGE_INVALID_DISTRIBUTION',
      `Wheel '${parsed.filename}' contains several .dist-info directories (${[...dirs].sort().join(', ')}); a wheel must have exactly one.`,
      { filename: parsed.filename, directories: [...dirs] },
    );
  }
  for (const [dir, entry] of metadata) {
    if (folderMatches(dir.slice(0, -'.dist-info'.length), parsed)) return entry;
  }
  const expected = `${parsed.name}-${parsed.version}.dist-info/METADATA`;
  throw new PyedgeError(
    'PYEDGE_INVALID_DISTRIBUTION',
    `Wheel '${parsed.filename}' does not contain the required METADATA file: ${expected}`,
    { filename: parsed.filename, expected, found: [...dirs] },
  );
}

function pkgInfoIn(entries: readonly Entry[], parsed: ParsedFilename): Entry {
  const byTop = new Map<string, Entry>();
  for (const entry of entries) {
    const top = pkgInfoTop(entry.fileName);
    if (top !== null) byTop.set(top, entry);
  }
  return choosePkgInfo(byTop, parsed);
}

/** `{top}` when `path` is `{top}/PKG-INFO` (one folder deep, as sdists lay it out); otherwise null. */
function pkgInfoTop(path: string): string | null {
  const parts = path.replace(/^(\.\/)+/, '').split('/');
  if (parts.length !== 2 || parts[1] !== 'PKG-INFO') return null;
  const top = parts[0]!;
  return top === '' || top === '.' || top === '..' ? null : top;
}

/** The single top-level PKG-INFO; among several, the one in `{name}-{version}/` (PEP 625). */
function choosePkgInfo<T>(byTop: ReadonlyMap<string, T>, parsed: ParsedFilename): T {
  const tops = [...byTop.keys()];
  if (tops.length === 1) return byTop.get(tops[0]!)!;
  if (tops.length === 0) {
    throw new PyedgeError(
      'PYEDGE_INVALID_DISTRIBUTION',
      `Invalid distribution file: '${parsed.filename}' does not contain a PKG-INFO file at ${parsed.name}-${parsed.version}/PKG-INFO. Build the sdist with a current build backend (python -m build --sdist).`,
      { filename: parsed.filename },
    );
  }
  const matching = tops.filter((top) => folderMatches(top, parsed));
  if (matching.length === 1) return byTop.get(matching[0]!)!;
  throw new PyedgeError(
    'PYEDGE_INVALID_DISTRIBUTION',
    `Invalid distribution file: '${parsed.filename}' contains several top-level PKG-INFO files (${tops.sort().join(', ')}); an sdist must have one top-level folder.`,
    { filename: parsed.filename, folders: tops },
  );
}

/** True when a folder named `{name}-{version}` denotes the file's project and version. */
function folderMatches(stem: string, parsed: ParsedFilename): boolean {
  const dash = stem.lastIndexOf('-');
  if (dash <= 0) return false;
  const name = stem.slice(0, dash);
  const version = stem.slice(dash + 1);
  return normalizeName(name) === normalizeName(parsed.name) && (version === parsed.version || sameVersion(version, parsed.version));
}

async function readFromTarGz(from: string | Buffer, parsed: ParsedFilename, limits: DistMetadataLimits): Promise<[Buffer, string]> {
  const source: Readable = typeof from === 'string' ? createReadStream(from) : Readable.from([from]);
  const gunzip = createGunzip();
  const extract = tar.extract();
  // pipe() does not forward errors: hand them to the stream the loop below reads.
  source.on('error', (err: Error) => extract.destroy(err));
  gunzip.on('error', (err) => extract.destroy(err));
  source.pipe(gunzip).pipe(extract);
  const byTop = new Map<string, [Buffer, string]>();
  try {
    for await (const entry of extract) {
      const { name, type, size } = entry.header;
      const top = pkgInfoTop(name);
      if (top === null || (type !== 'file' && type !== 'contiguous-file')) {
        entry.resume();
        continue;
      }
      if (size > limits.maxMetadataBytes) throw tooLarge(parsed.filename, name, limits.maxMetadataBytes);
      const body = await readBounded(entry, limits.maxMetadataBytes, () => tooLarge(parsed.filename, name, limits.maxMetadataBytes));
      byTop.set(top, [body, name]);
    }
  } catch (err) {
    throw asInvalid(err, parsed.filename, 'gzip-compressed tar archive');
  } finally {
    source.destroy();
    gunzip.destroy();
    extract.destroy();
  }
  return choosePkgInfo(byTop, parsed);
}

/** Collect a stream's bytes, counting them as they come: archive headers may lie about sizes. */
async function readBounded(stream: AsyncIterable<unknown>, limit: number, onTooLarge: () => Error): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    // tar-stream's entries are typed as yielding unknown; both libraries yield Buffers.
    if (!(chunk instanceof Uint8Array)) throw new TypeError('archive stream yielded a non-binary chunk');
    size += chunk.length;
    // Leaving the loop destroys the stream, which stops the inflating.
    if (size > limit) throw onTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function tooLarge(filename: string, member: string, limit: number): PyedgeError {
  return new PyedgeError(
    'PYEDGE_INVALID_DISTRIBUTION',
    `Invalid distribution file: ${member} in '${filename}' is larger than ${limit} bytes.`,
    { filename, member, limit },
  );
}

function tooManyEntries(filename: string, limit: number): PyedgeError {
  return new PyedgeError(
    'PYEDGE_INVALID_DISTRIBUTION',
    `Invalid distribution file: '${filename}' has more than ${limit} entries.`,
    { filename, limit },
  );
}

/**
 * A failure while decoding the archive is the file's fault (400); a failure
 * reading our own disk (an error with a syscall) is not, so it passes through.
 */
function asInvalid(err: unknown, filename: string, what: string): Error {
  if (err instanceof PyedgeError) return err;
  if (err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string') return err;
  const detail = (err instanceof Error ? err.message : String(err)).replace(/\.+$/, '');
  return new PyedgeError(
    'PYEDGE_INVALID_DISTRIBUTION',
    `Invalid distribution file: '${filename}' is not a valid ${what} (${detail}).`,
    { filename, detail },
    { cause: err },
  );
}
