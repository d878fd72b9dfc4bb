/**
 * Validation shared by every blob store back-end, so that the same key is
 * accepted or refused everywhere and a key can never name a path outside a
 * folder store's root.
 */
import { PyedgeError } from '../core/errors.js';
import type { ByteRange } from './blob-store.js';

/** S3's limit; also keeps folder paths well under PATH_MAX. */
const MAX_KEY_BYTES = 1024;

// Control characters (C0 and DEL) and the backslash, which Windows tools and
// some proxies treat as a path separator.
const FORBIDDEN_CHAR = /[\u0000-\u001f\u007f\\]/;

function badKey(what: string, key: string, why: string): PyedgeError {
  return new PyedgeError('PYEDGE_BAD_REQUEST', `invalid blob ${what} ${JSON.stringify(key)}: ${why}`, { key });
}

function checkSegments(what: string, key: string, segments: readonly string[]): void {
  for (const segment of segments) {
    if (segment === '') throw badKey(what, key, 'it has an empty path segment (leading, trailing or double "/")');
    if (segment === '.' || segment === '..') throw badKey(what, key, 'it has a "." or ".." path segment');
  }
}

function checkChars(what: string, key: string): void {
  if (FORBIDDEN_CHAR.test(key)) throw badKey(what, key, 'it contains a backslash or a control character');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw badKey(what, key, `it is longer than ${MAX_KEY_BYTES} bytes`);
}

/**
 * Throws PYEDGE_BAD_REQUEST unless `key` is a relative, `/`-separated key
 * with no empty, `.` or `..` segments, no backslash and no control character.
 */
export function assertValidKey(key: string): void {
  if (typeof key !== 'string' || key === '') throw badKey('key', String(key), 'it is empty');
  checkChars('key', key);
  checkSegments('key', key, key.split('/'));
}

/**
 * A list prefix: empty, or a key, or a key followed by `/`, or a key plus a
 * partial last segment. Every complete segment must be a valid key segment.
 */
export function assertValidPrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw badKey('prefix', String(prefix), 'it is not a string');
  if (prefix === '') return;
  checkChars('prefix', prefix);
  const segments = prefix.split('/');
  // The last piece is a partial name matched by string prefix, never resolved as a path.
  checkSegments('prefix', prefix, segments.slice(0, -1));
}

/**
 * Checks an inclusive byte range for sanity before a back-end sees it.
 * Whether it fits the blob is the back-end's business (it knows the size).
 */
export function assertValidRange(range: ByteRange, key: string): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new PyedgeError(
      'PYEDGE_RANGE_NOT_SATISFIABLE',
      `invalid byte range ${start}-${end} for blob ${key}: need 0 <= start <= end`,
      { key, start, end },
    );
  }
}

/** The error for a range that starts at or past the end of the blob. */
export function rangeNotSatisfiable(range: ByteRange, key: string, size: number, cause?: unknown): PyedgeError {
  return new PyedgeError(
    'PYEDGE_RANGE_NOT_SATISFIABLE',
    `byte range ${range.start}-${range.end} is outside blob ${key} (${size < 0 ? 'unknown' : size} bytes)`,
    { key, start: range.start, end: range.end, size },
    { cause },
  );
}
