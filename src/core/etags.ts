/**
 * Strong ETags of pages, shared by the origin (rendered pages) and the edge
 * (the same bytes read from a static tree), so that equal bytes carry equal
 * tags wherever they are served, and the check of `If-None-Match`.
 */
import { createHash, type Hash } from 'node:crypto';

/** A fresh hash to feed a page's bytes into, in pieces; finish with {@link etagOfHash}. */
export function etagHash(): Hash {
  return createHash('sha256');
}

/** The strong ETag of the bytes fed into `hash` (from {@link etagHash}). */
export function etagOfHash(hash: Hash): string {
  return `"${hash.digest('base64url').slice(0, 27)}"`;
}

/** The strong ETag of `body`. */
export function strongEtag(body: Uint8Array): string {
  return etagOfHash(etagHash().update(body));
}

/** True when an `If-None-Match` header names `etag` (or `*`): the client's copy is current. */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  for (const tag of header.split(',')) {
    const t = tag.trim();
    // A weak tag of the same bytes matches too (RFC 9110 §13.1.2 uses the weak comparison).
    if (t === etag || t === '*' || (t.startsWith('W/') && t.slice(2) === etag)) return true;
  }
  return false;
}

/**
 * The ETag of a distribution file (`packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<file>`) or of its
 * `.metadata`: the path is content-addressed, so its BLAKE2b-256 names the bytes.
 */
export function fileEtag(key: string): string {
  const b2 = key.split('/', 4).slice(1, 4).join('');
  return key.endsWith('.metadata') ? `"${b2}-metadata"` : `"${b2}"`;
}
