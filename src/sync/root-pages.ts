/**
 * The root index rendered from a source listing with the origin's own pieces
 * (render/root-parts.ts), as a stream of chunks: at PyPI's size it is tens of
 * MB, never built as one string, and mostly the same from one root to the next.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ProjectListing } from '../core/model.js';
import { rootHtml, rootJson } from '../render/root-parts.js';

/**
 * The root is rendered in blocks: runs of entries whose normalized names share
 * their first BLOCK_PREFIX characters, so that a project added or removed
 * changes one block and leaves the others where they are. A block's bytes are
 * kept from one rendering to the next while it holds the very same entries
 * (a source that keeps the entries that did not change, as OriginSource does):
 * a root of 100k projects with one new entry renders one block, not 100k
 * entries, and the publisher's event loop is not held for tens of ms.
 */
const BLOCK_PREFIX = 3;

interface Block {
  readonly entries: readonly ProjectListing[];
  /** Whether it is the listing's first block (the JSON's first entry has no comma). */
  readonly first: boolean;
  json: Buffer | null;
  html: Buffer | null;
}

/** The blocks of the last rendering, by the normalized name of their first entry. */
let blocks = new Map<string, Block>();

/** Whether two names belong to one block. */
function sameBlock(a: string, b: string): boolean {
  for (let k = 0; k < BLOCK_PREFIX; k++) {
    const ca = a.charCodeAt(k);
    if (ca !== b.charCodeAt(k)) return false;
    if (Number.isNaN(ca)) return true;
  }
  return true;
}

/**
 * The listing's blocks' bytes of one kind, in order: kept ones as they were, others rendered.
 * Once the whole listing has been walked, the blocks kept are the ones it is made of.
 */
function* blockChunks(projects: readonly ProjectListing[], kind: 'json' | 'html'): Generator<Buffer> {
  const next = new Map<string, Block>();
  let start = 0;
  for (let end = 1; end <= projects.length; end++) {
    if (end < projects.length && sameBlock(projects[end - 1]!.normalizedName, projects[end]!.normalizedName)) continue;
    const key = projects[start]!.normalizedName;
    let block = blocks.get(key);
    if (block === undefined || block.first !== (start === 0) || block.entries.length !== end - start || !block.entries.every((p, k) => p === projects[start + k])) {
      block = { entries: projects.slice(start, end), first: start === 0, json: null, html: null };
    }
    let bytes = block[kind];
    if (bytes === null) {
      let text = '';
      if (kind === 'json') for (let k = start; k < end; k++) text += rootJson.entry(projects[k]!, k === 0);
      else for (let k = start; k < end; k++) text += rootHtml.entry(projects[k]!);
      bytes = block[kind] = Buffer.from(text);
    }
    next.set(key, block);
    yield bytes;
    start = end;
  }
  blocks = next;
}

/** `/simple/` as HTML, in the listing's order. */
export function* rootHtmlChunks(projects: readonly ProjectListing[]): Generator<Buffer> {
  yield Buffer.from(rootHtml.head());
  yield* blockChunks(projects, 'html');
  yield Buffer.from(rootHtml.tail());
}

/** `/simple/` as PEP 691 JSON at `serial`, in the listing's order. */
export function* rootJsonChunks(projects: readonly ProjectListing[], serial: number): Generator<Buffer> {
  yield Buffer.from(rootJson.head(serial));
  yield* blockChunks(projects, 'json');
  yield Buffer.from(rootJson.tail());
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
