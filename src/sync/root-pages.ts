/**
 * The root index rendered from a source listing with the origin's own pieces
 * (render/root-parts.ts), as a stream of chunks: at PyPI's size it is tens of
 * MB, never built as one string.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ProjectListing } from '../core/model.js';
import { rootHtml, rootJson } from '../render/root-parts.js';

const CHUNK_CHARS = 64 * 1024;

function* chunked(head: string, entries: Iterable<string>, tail: string): Generator<Buffer> {
  let buf = head;
  for (const e of entries) {
    buf += e;
    if (buf.length >= CHUNK_CHARS) {
      yield Buffer.from(buf);
      buf = '';
    }
  }
  yield Buffer.from(buf + tail);
}

/** `/simple/` as HTML, in the listing's order. */
export function rootHtmlChunks(projects: readonly ProjectListing[]): Generator<Buffer> {
  return chunked(rootHtml.head(), (function* () {
    for (const p of projects) yield rootHtml.entry(p);
  })(), rootHtml.tail());
}

/** `/simple/` as PEP 691 JSON at `serial`, in the listing's order. */
export function rootJsonChunks(projects: readonly ProjectListing[], serial: number): Generator<Buffer> {
  return chunked(rootJson.head(serial), (function* () {
    let first = true;
    for (const p of projects) {
      yield rootJson.entry(p, first);
      first = false;
    }
  })(), rootJson.tail());
}

/** HTML root digests by listing: computing one renders tens of MB at PyPI's size. */
const htmlDigests = new WeakMap<readonly ProjectListing[], string>();

/**
 * SHA-256 (hex) of the HTML root of `projects`, remembered per list: a source
 * that hands out the same list again, or says which list a new one has the
 * same names as (sameRootHtml), costs nothing here.
 */
export function rootHtmlDigest(projects: readonly ProjectListing[]): string {
  let digest = htmlDigests.get(projects);
  if (digest === undefined) htmlDigests.set(projects, (digest = digestChunks(rootHtmlChunks(projects))));
  return digest;
}

/** `next` lists the same projects with the same names, in the same order, as `previous` (only serials moved). */
export function sameRootHtml(next: readonly ProjectListing[], previous: readonly ProjectListing[]): void {
  const digest = htmlDigests.get(previous);
  if (digest !== undefined) htmlDigests.set(next, digest);
}

/** SHA-256 (hex) of chunks, e.g. to tell whether the HTML root changed. */
export function digestChunks(chunks: Iterable<Uint8Array>): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

/** A readable stream over chunks, for a blob store put. */
export function streamOf(chunks: Iterable<Buffer>): Readable {
  return Readable.from(chunks, { objectMode: false });
}
