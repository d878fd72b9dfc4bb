/**
 * What the publisher (src/sync/origin-source.ts) reads in bulk, so that neither
 * a full build nor a single change costs in proportion to the index:
 *
 * `GET /_sync/listing?since=S`: the root index's entries that changed after
 * serial S — `{"serial":N,"time":"…","complete":true,"projects":[{"name":…,
 * "normalized":…,"last_serial":…,"listed":true|false}]}` — so that a publisher
 * that holds the listing at S need not fetch (and the origin need not render)
 * a root of tens of MB after every upload. `listed` is false for a project the
 * root no longer lists (removed, no releases left, quarantined). When more
 * changed than one answer holds, `complete` is false: fetch the whole root.
 *
 * `POST /_sync/projects`: the static parts of many projects in one answer. A
 * full build of PyPI's size would otherwise take millions of requests (Simple
 * HTML, PEP 691 JSON, JSON API, each release page, each file), and a single
 * change three or more that can land at different serials.
 *
 * Request: JSON `{"names": [normalized names], "fileBytes": N}`. For each name,
 * in order, the answer holds one header line and then the bytes it announces:
 *
 *   {"name":"demo","serial":42,"parts":[["html",512],["json",430],["api",2100],
 *     ["release",1800,"1.0"],["file",60,"packages/…/demo-1.0.tar.gz"],["metadata",700,"packages/…"]]}\n
 *   <512 bytes><430 bytes>…
 *
 * or `{"name":"gone","missing":true}\n`, and last `{"end":true,"count":N}\n`
 * (an answer cut short has no end line). Every part of a project is rendered
 * from one read of it, so all are at its serial, by the same functions as the
 * page routes: the same bytes. `file` and `metadata` parts carry the project's
 * distribution files of at most `fileBytes` bytes each (0: none) and their PEP
 * 658 metadata, up to a budget per answer; the client GETs the others.
 */
import type { FastifyPluginAsync } from 'fastify';
import { Readable } from 'node:stream';
import type { OriginContext } from '../app.js';
import type { BlobStore } from '../../blobstore/blob-store.js';
import type { ProjectStateWithMetadata } from '../../db/database.js';
import { PyedgeError } from '../../core/errors.js';
import { normalizeName } from '../../core/names.js';
import type { ProjectState } from '../../core/model.js';
import { renderJsonApiPages, renderProjectHtml, renderProjectJson } from '../../render/index.js';

export const SYNC_BUNDLE_TYPE = 'application/vnd.pyedge.sync-bundle';
/** Most projects in one request. */
export const MAX_BUNDLE_NAMES = 2000;
/** Largest file a bundle carries. */
const MAX_FILE_BYTES = 1024 * 1024;
/** Most file and metadata bytes in one answer. */
const MAX_INLINE_BYTES = 64 * 1024 * 1024;
/** Most changes one listing answer covers; past it, the client reads the whole root. */
const MAX_LISTING_CHANGES = 5000;
/** Projects of a bundle read and rendered together: one batch of file reads, one write to the socket. */
const SLICE_NAMES = 50;
/** Times the listing is read again when the projects moved on while it was read. */
const LISTING_ATTEMPTS = 5;

type Part = [kind: string, size: number, key?: string];

/** A store that reads many small blobs in one go (the folder store). */
interface SmallBlobReads {
  getSmall(keys: readonly string[], maxBytes: number): Promise<(Buffer | null)[]>;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function parseRequest(body: unknown): { names: string[]; fileBytes: number } {
  const b = body as { names?: unknown; fileBytes?: unknown } | null;
  const names = b?.names;
  if (!Array.isArray(names) || names.length > MAX_BUNDLE_NAMES || !names.every((n) => typeof n === 'string' && n !== '' && normalizeName(n) === n)) {
    throw new PyedgeError('PYEDGE_BAD_REQUEST', `Send {"names": [...]}: at most ${MAX_BUNDLE_NAMES} normalized project names.`);
  }
  const fileBytes = b?.fileBytes === undefined ? 0 : Number(b.fileBytes);
  if (!Number.isInteger(fileBytes) || fileBytes < 0) throw new PyedgeError('PYEDGE_BAD_REQUEST', 'fileBytes must be a whole number of bytes.');
  return { names: names as string[], fileBytes: Math.min(fileBytes, MAX_FILE_BYTES) };
}

/** One root index entry as the listing delta gives it. */
interface ListingEntry {
  readonly name: string;
  readonly normalized: string;
  readonly last_serial: number;
  readonly listed: boolean;
}

function parseSince(value: unknown): number {
  const s = String(value ?? '');
  if (!/^\d{1,15}$/.test(s)) throw new PyedgeError('PYEDGE_BAD_REQUEST', 'Give since=SERIAL, a whole number ≥ 0.');
  return Number(s);
}

export const syncRoutes: FastifyPluginAsync<{ context: OriginContext }> = async (app, { context }) => {
  const { db, blobs } = context;

  /** The root entries of `names` as the database has them now; with the newest serial among them. */
  const entriesOf = async (names: Iterable<string>): Promise<{ entries: ListingEntry[]; newest: number }> => {
    const entries: ListingEntry[] = [];
    let newest = -1;
    for (const name of names) {
      const state = await db.getProjectState(name);
      if (state === undefined) {
        entries.push({ name, normalized: name, last_serial: -1, listed: false });
        continue;
      }
      const p = state.project;
      newest = Math.max(newest, p.lastSerial);
      // The root's own rule (db listProjectsAfter): releases, and not quarantined.
      entries.push({ name: p.name, normalized: p.normalizedName, last_serial: p.lastSerial, listed: state.releases.length > 0 && p.status !== 'quarantined' });
    }
    return { entries, newest };
  };

  app.get('/_sync/listing', async (request, reply) => {
    void reply.header('cache-control', 'no-store');
    const since = parseSince((request.query as Record<string, unknown> | undefined)?.since);
    const names = new Set<string>();
    let serial = since;
    let time: string | null = null;
    for (let attempt = 1; attempt <= LISTING_ATTEMPTS; attempt++) {
      const changes = await db.changesSince(serial, MAX_LISTING_CHANGES + 1 - names.size);
      if (names.size + changes.length > MAX_LISTING_CHANGES) return { complete: false };
      for (const c of changes) names.add(c.normalizedName);
      if (changes.length > 0) {
        serial = changes[changes.length - 1]!.serial;
        time = changes[changes.length - 1]!.submittedAt;
      }
      const { entries, newest } = await entriesOf(names);
      // Every entry must be at or before the answer's serial: one moved on meanwhile, so read the changes after it too.
      if (newest <= serial) return { complete: true, serial, time, projects: entries };
    }
    return { complete: false };
  });

  /**
   * The small files of `states` a bundle carries, by path, within the budget: read in one batch
   * where the store can (the folder store, on a thread of its own), else one by one.
   */
  const inlineFiles = async (states: readonly (ProjectState | undefined)[], fileBytes: number, budget: { left: number }): Promise<Map<string, Buffer>> => {
    const wanted: { path: string; size: number }[] = [];
    for (const state of states) {
      for (const f of state?.files ?? []) {
        if (f.size > fileBytes || f.size > budget.left) continue;
        budget.left -= f.size;
        wanted.push({ path: f.path, size: f.size });
      }
    }
    const out = new Map<string, Buffer>();
    if (wanted.length === 0) return out;
    const batched = blobs as BlobStore & Partial<SmallBlobReads>;
    let found: (Buffer | null)[];
    if (typeof batched.getSmall === 'function') {
      found = await batched.getSmall(
        wanted.map((w) => w.path),
        fileBytes,
      );
    } else {
      found = [];
      for (const w of wanted) found.push(await blobs.get(w.path).then((b) => readAll(b.body), () => null));
    }
    wanted.forEach((w, i) => {
      const bytes = found[i] ?? null;
      // A blob of another size than the database says is left to the client's own GET (and its hash check).
      if (bytes !== null && bytes.length === w.size) out.set(w.path, bytes);
      else budget.left += w.size;
    });
    return out;
  };

  /** One project's header line and bytes, each part a piece of `out`. */
  const entry = (name: string, read: ProjectStateWithMetadata | undefined, fileBytes: number, budget: { left: number }, files: ReadonlyMap<string, Buffer>, out: Buffer[]): void => {
    if (read === undefined) {
      out.push(Buffer.from(`${JSON.stringify({ name, missing: true })}\n`));
      return;
    }
    const { state, coreMetadata } = read;
    const parts: Part[] = [];
    const bodies: Buffer[] = [];
    const add = (kind: string, body: Buffer, key?: string): void => {
      parts.push(key === undefined ? [kind, body.length] : [kind, body.length, key]);
      bodies.push(body);
    };
    add('html', Buffer.from(renderProjectHtml(state)));
    add('json', Buffer.from(renderProjectJson(state)));
    // The project page and each release's, as the JSON API routes render them one by one.
    const api = renderJsonApiPages(state, context.baseUrl());
    if (api.project !== null) {
      add('api', Buffer.from(api.project));
      for (const [version, doc] of api.releases) add('release', Buffer.from(doc), version);
    }
    for (const f of fileBytes > 0 ? state.files : []) {
      const bytes = files.get(f.path);
      if (bytes !== undefined) add('file', bytes, f.path);
      if (f.metadataSha256 !== null) {
        const text = coreMetadata.get(f.path);
        const meta = text === undefined ? null : Buffer.from(text, 'utf8');
        if (meta !== null && meta.length <= fileBytes && meta.length <= budget.left) {
          budget.left -= meta.length;
          add('metadata', meta, f.path);
        }
      }
    }
    out.push(Buffer.from(`${JSON.stringify({ name, serial: state.project.lastSerial, parts })}\n`), ...bodies);
  };

  app.post('/_sync/projects', async (request, reply) => {
    const { names, fileBytes } = parseRequest(request.body);
    const budget = { left: MAX_INLINE_BYTES };
    async function* answer(): AsyncGenerator<Buffer> {
      // A slice of projects at a time: read together (one state of the database), their files in
      // one read, their bytes in one write to the socket.
      for (let i = 0; i < names.length; i += SLICE_NAMES) {
        const slice = names.slice(i, i + SLICE_NAMES);
        const read = await db.getProjectStates(slice, { coreMetadata: fileBytes > 0 });
        const files = fileBytes > 0 ? await inlineFiles(read.map((r) => r?.state), fileBytes, budget) : new Map<string, Buffer>();
        const out: Buffer[] = [];
        for (let k = 0; k < slice.length; k++) entry(slice[k]!, read[k], fileBytes, budget, files, out);
        yield Buffer.concat(out);
      }
      yield Buffer.from(`${JSON.stringify({ end: true, count: names.length })}\n`);
    }
    void reply.header('content-type', SYNC_BUNDLE_TYPE).header('cache-control', 'no-store');
    return reply.send(Readable.from(answer(), { objectMode: false }));
  });
};
