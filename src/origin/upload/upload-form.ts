/**
 * Reads a twine upload (multipart/form-data) from the request stream: form
 * fields into memory, the file part to a spool file while it is hashed and
 * counted. A small file is also kept in memory, so that the checks after need
 * not read it back; a large one is streamed and never held whole.
 */
import type { IncomingMessage } from 'node:http';
import { open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { finished, type Readable, type Writable } from 'node:stream';
import { Busboy, type BusboyInstance } from '@fastify/busboy';
import { PyedgeError } from '../../core/errors.js';
import { MultiHasher, type FileDigests } from '../../core/hashes.js';

/** The file part of an upload, spooled to disk. */
export interface SpooledFile {
  readonly fieldname: string;
  /** The filename the client gave, unvalidated. */
  readonly filename: string;
  /** Where the bytes are; the caller owns (and must remove or hand on) it. */
  readonly path: string;
  readonly size: number;
  readonly digests: FileDigests;
  /**
   * The whole file, kept as well when it is small (see ReadUploadFormOptions
   * `keepInMemory`), so that checks need not read the spool file back.
   */
  readonly bytes?: Buffer;
}

export interface UploadForm {
  readonly fields: ReadonlyMap<string, readonly string[]>;
  readonly file: SpooledFile | null;
}

export interface ReadUploadFormOptions {
  readonly spoolDir: string;
  readonly maxFileSize: number;
  /** Limit on one text field (descriptions can be long). */
  readonly maxFieldSize?: number;
  /** Files up to this size are also kept in memory as `bytes` (default 256 KiB; 0: never). */
  readonly keepInMemory?: number;
}

/** Most wheels of pure-Python projects are smaller; with many uploads at once the memory stays small. */
const DEFAULT_KEEP_IN_MEMORY = 256 * 1024;

/** A field's single value, or undefined (the first when repeated). */
export function field(form: UploadForm, name: string): string | undefined {
  return form.fields.get(name)?.[0];
}

/** A file part as spooled: its size and digests, and its bytes when it was small enough to keep. */
interface Spooled {
  readonly size: number;
  readonly digests: FileDigests;
  readonly bytes?: Buffer;
}

/**
 * Hashes and counts the file part while writing it to `path`. A file of at
 * most `keepUpTo` bytes is gathered in memory and written in one go; a larger
 * one is streamed, waiting for each write (so the parser, and the client, wait
 * for the disk).
 */
async function spool(stream: Readable, path: string, keepUpTo: number): Promise<Spooled> {
  const hasher = new MultiHasher();
  let kept: Buffer[] | null = keepUpTo > 0 ? [] : null;
  let fh: FileHandle | null = kept === null ? await open(path, 'wx') : null;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hasher.update(chunk);
      if (kept !== null) {
        if (hasher.size <= keepUpTo) {
          kept.push(chunk);
          continue;
        }
        fh = await open(path, 'wx');
        for (const k of kept) await writeAll(fh, k);
        kept = null;
      }
      await writeAll(fh!, chunk);
    }
    if (kept !== null) {
      const bytes = Buffer.concat(kept, hasher.size);
      await writeFile(path, bytes, { flag: 'wx' });
      return { size: hasher.size, digests: hasher.digest(), bytes };
    }
    return { size: hasher.size, digests: hasher.digest() };
  } finally {
    await fh?.close();
  }
}

async function writeAll(fh: FileHandle, bytes: Buffer): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await fh.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/**
 * Pipes the request into the multipart parser; resolves once the parser has
 * read it all. On an error both are destroyed, as pipeline() does; pipeline()
 * itself is not used because it makes an AbortError (with its stack trace) on
 * every call, a cost every upload would pay.
 */
function parse(req: Readable, bb: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err?: Error | null): void => {
      if (settled) return;
      settled = true;
      if (!err) {
        stopReq();
        stopParser();
        return resolve();
      }
      // The listeners stay: they take the errors the streams may emit again while being destroyed.
      req.unpipe(bb);
      req.destroy(err);
      bb.destroy(err);
      reject(err);
    };
    const stopReq = finished(req, { writable: false }, (err) => {
      if (err) done(err);
    });
    const stopParser = finished(bb, { readable: false }, (err) => done(err));
    req.pipe(bb);
  });
}

/** Reads the rest of a request and throws its bytes away, so the client sees our answer. */
export function drainRequest(req: IncomingMessage, maxBytes: number): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded) return resolve();
    let seen = 0;
    const done = (): void => {
      req.off('data', onData);
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > maxBytes) {
        // Too much to swallow: stop reading; the connection will be closed.
        req.pause();
        done();
      }
    };
    req.on('data', onData);
    req.once('end', done);
    req.once('close', done);
    req.once('error', done);
    req.resume();
  });
}

/**
 * Parse the multipart body. The file part named `content` is spooled; other file
 * parts (old clients' `gpg_signature`) are read and dropped. Throws PYEDGE_TOO_LARGE
 * when the file passes `maxFileSize` (after reading the rest of the body, so the
 * client sees the answer), PYEDGE_BAD_REQUEST for a malformed body.
 */
export async function readUploadForm(req: IncomingMessage, options: ReadUploadFormOptions): Promise<UploadForm> {
  const contentType = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data/i.test(contentType)) {
    throw new PyedgeError('PYEDGE_BAD_REQUEST', 'Invalid request: the upload must be sent as multipart/form-data.');
  }
  let bb: BusboyInstance;
  try {
    bb = new Busboy({
      headers: { ...req.headers, 'content-type': contentType },
      // Keep the filename as sent, so one with a path in it is refused rather than silently trimmed.
      preservePath: true,
      limits: {
        fileSize: options.maxFileSize,
        fieldSize: options.maxFieldSize ?? 8 * 1024 * 1024,
        fields: 1000,
        files: 4,
        parts: 1100,
      },
    });
  } catch (err) {
    throw new PyedgeError('PYEDGE_BAD_REQUEST', 'Invalid request: malformed multipart/form-data (no boundary).', {}, { cause: err });
  }

  const fields = new Map<string, string[]>();
  const writes: Promise<void>[] = [];
  const spooled: SpooledFile[] = [];
  const spoolPaths: string[] = [];
  const fileStreams: Readable[] = [];
  let failure: PyedgeError | null = null;
  const fail = (err: PyedgeError): void => {
    failure ??= err;
  };

  bb.on('field', (name, value, _nameTruncated, valueTruncated) => {
    if (valueTruncated) {
      fail(new PyedgeError('PYEDGE_TOO_LARGE', `The form field '${name}' is too large.`, { field: name }));
      return;
    }
    const list = fields.get(name);
    if (list) list.push(value);
    else fields.set(name, [value]);
  });

  bb.on('file', (fieldname, stream, filename) => {
    if (fieldname !== 'content' || failure) {
      stream.resume();
      return;
    }
    if (spooled.length > 0 || spoolPaths.length > 0) {
      fail(new PyedgeError('PYEDGE_BAD_REQUEST', 'Invalid request: send exactly one file per upload.'));
      stream.resume();
      return;
    }
    fileStreams.push(stream);
    const path = join(options.spoolDir, `upload-${randomBytes(12).toString('hex')}.part`);
    spoolPaths.push(path);
    stream.on('limit', () => {
      fail(
        new PyedgeError(
          'PYEDGE_TOO_LARGE',
          `File too large. Limit for uploads is ${formatBytes(options.maxFileSize)}.`,
          { limit: options.maxFileSize },
        ),
      );
    });
    writes.push(
      spool(stream, path, options.keepInMemory ?? DEFAULT_KEEP_IN_MEMORY).then((file) => {
        spooled.push({ fieldname, filename: filename ?? '', path, ...file });
      }),
    );
  });

  bb.on('partsLimit', () => fail(new PyedgeError('PYEDGE_BAD_REQUEST', 'Invalid request: too many form parts.')));
  bb.on('fieldsLimit', () => fail(new PyedgeError('PYEDGE_BAD_REQUEST', 'Invalid request: too many form fields.')));
  bb.on('filesLimit', () => fail(new PyedgeError('PYEDGE_BAD_REQUEST', 'Invalid request: too many files.')));

  try {
    await parse(req, bb);
    await Promise.all(writes);
  } catch (err) {
    // A client that went away leaves busboy's file stream open: end it so the spool write settles.
    for (const f of fileStreams) f.destroy(new Error('upload interrupted'));
    await Promise.allSettled(writes);
    await Promise.all(spoolPaths.map((p) => rm(p, { force: true })));
    if (err instanceof PyedgeError) throw err;
    throw new PyedgeError(
      'PYEDGE_BAD_REQUEST',
      `Invalid request: the multipart body could not be read (${err instanceof Error ? err.message : String(err)}).`,
      {},
      { cause: err },
    );
  }
  if (failure) {
    await Promise.all(spoolPaths.map((p) => rm(p, { force: true })));
    throw failure;
  }
  return { fields, file: spooled[0] ?? null };
}

function formatBytes(n: number): string {
  if (n >= 1024 ** 3 && n % 1024 ** 3 === 0) return `${n / 1024 ** 3} GB`;
  if (n >= 1024 ** 2 && n % 1024 ** 2 === 0) return `${n / 1024 ** 2} MB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KB`;
  return `${n} bytes`;
}
