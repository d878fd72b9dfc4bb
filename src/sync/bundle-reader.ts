/**
 * Reads the answer of an origin's `POST /_sync/projects` (the format is
 * described in src/origin/routes/sync.ts): per project, its pages at
 * one serial, and the bytes of some of its files.
 */
import { PyedgeError } from '../core/errors.js';
import { metadataKey } from './tree-layout.js';

/** One project of a bundle. */
export interface BundleProject {
  readonly name: string;
  readonly serial: number;
  readonly html: Buffer;
  readonly json: Buffer;
  /** `/pypi/<name>/json`, or null when the origin shows none. */
  readonly api: Buffer | null;
  /** `/pypi/<name>/<version>/json` by stored version. */
  readonly releases: ReadonlyMap<string, Buffer>;
  /** Distribution files (`packages/…`) and `.metadata` files carried inline, by key. */
  readonly files: ReadonlyMap<string, Buffer>;
}

function bad(why: string): PyedgeError {
  return new PyedgeError('PYEDGE_BAD_REQUEST', `The source sent a sync bundle that cannot be read: ${why}.`);
}

/** Every project of a whole answer by name (null: the origin has no such project). */
export function readBundle(body: Buffer): Map<string, BundleProject | null> {
  const out = new Map<string, BundleProject | null>();
  let at = 0;
  for (;;) {
    const eol = body.indexOf(10, at);
    if (eol < 0) throw bad('it ends before its last line');
    let head: { name?: unknown; serial?: unknown; missing?: unknown; parts?: unknown; end?: unknown; count?: unknown };
    try {
      head = JSON.parse(body.toString('utf8', at, eol)) as typeof head;
    } catch {
      throw bad('a header line is not JSON');
    }
    at = eol + 1;
    if (head.end === true) {
      if (head.count !== out.size || at !== body.length) throw bad(`it names ${String(head.count)} projects but holds ${out.size}`);
      return out;
    }
    if (typeof head.name !== 'string') throw bad('a project has no name');
    if (head.missing === true) {
      out.set(head.name, null);
      continue;
    }
    if (typeof head.serial !== 'number' || !Array.isArray(head.parts)) throw bad(`project ${head.name} has no serial or parts`);
    let html: Buffer | null = null;
    let json: Buffer | null = null;
    let api: Buffer | null = null;
    const releases = new Map<string, Buffer>();
    const files = new Map<string, Buffer>();
    for (const part of head.parts as unknown[]) {
      const [kind, size, key] = part as [unknown, unknown, unknown];
      if (typeof size !== 'number' || size < 0 || at + size > body.length) throw bad(`a part of ${head.name} runs past the end`);
      const bytes = body.subarray(at, at + size);
      at += size;
      if (kind === 'html') html = bytes;
      else if (kind === 'json') json = bytes;
      else if (kind === 'api') api = bytes;
      else if (kind === 'release' && typeof key === 'string') releases.set(key, bytes);
      else if (kind === 'file' && typeof key === 'string') files.set(key, bytes);
      else if (kind === 'metadata' && typeof key === 'string') files.set(metadataKey(key), bytes);
    }
    if (html === null || json === null) throw bad(`project ${head.name} lacks its Simple pages`);
    out.set(head.name, { name: head.name, serial: head.serial, html, json, api, releases, files });
  }
}
