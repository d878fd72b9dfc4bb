/**
 * A pyedge origin as a sync source, over HTTP: `/changes` (long-poll) for the
 * push, the PEP 691 JSON root for the per-project serials, and each project's
 * Simple and JSON API pages, taken at one serial. The pages are the origin's
 * bytes, except that JSON API file URLs move to the tree's public URL.
 *
 * A project's pages come in one request (`POST /_sync/projects`, rendered from
 * one read of the project); projects announced with prefetch() come hundreds
 * per request, with their small files, a few requests ahead of the engine. An
 * index without that route gets a GET per page instead, all of which must
 * carry the same `X-PyPI-Last-Serial` (else they are fetched again).
 */
import type { Readable } from 'node:stream';
import { PyedgeError, isPyedgeError } from '../core/errors.js';
import { normalizeName } from '../core/names.js';
import type { ProjectListing } from '../core/model.js';
import { readBundle, type BundleProject } from './bundle-reader.js';
import { BufferBody } from './file-copier.js';
import { OriginHttp, type HttpAnswer, type OriginHttpOptions } from './origin-http.js';
import { jsonApiLinks } from './page-links.js';
import { Limiter, mapLimit } from './pool.js';
import { sameRootHtml } from './root-pages.js';
import { sleep } from './retry.js';
import type { ChangePage, ProjectSnapshot, SourceChange, SourceListing, SyncSource } from './source.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';
/** Most seconds one long-poll waits (the origin's own limit is 60). */
const MAX_WAIT_SECONDS = 50;
/** How often a project's pages are fetched again when an upload lands between them. */
const SNAPSHOT_ATTEMPTS = 20;
/** Projects per prefetch request. */
const BUNDLE_NAMES = 250;
/**
 * Prefetch requests started ahead of the project the engine reads: enough to cover a first
 * build's next chunk while the current one is written, so origin and publisher work side by side.
 */
const BUNDLE_AHEAD = 8;
/** Prefetch requests under way at once (the origin renders one at a time; the next waits ready). */
const BUNDLE_REQUESTS = 2;
/** Files a prefetch carries inline: at most this big each. */
const BUNDLE_FILE_BYTES = 64 * 1024;
/** Bytes of inline files kept until the engine copies them (past it, the oldest go; a miss costs a GET). */
const MAX_HELD_FILE_BYTES = 64 * 1024 * 1024;
/** The whole root is read again at least this often, whatever the listings of changes say. */
const FULL_LISTING_EVERY_MS = 10 * 60_000;
/** A prefetched project older than this is fetched again rather than used. */
const PREFETCH_MAX_AGE_MS = 60_000;

/** Projects announced by one prefetch(), fetched a group at a time as the engine reads them. */
interface PrefetchGroup {
  readonly names: readonly string[];
  answer: Promise<Map<string, BundleProject | null> | null> | null;
  fetchedAt: number;
}

export interface OriginSourceOptions {
  /**
   * The tree's public base URL (no trailing slash): JSON API file URLs are
   * rewritten from the origin's base to it, so downloads found through the
   * tree's JSON API do not go back to the origin. Null keeps the origin's URLs.
   */
  readonly publicUrl?: string | null;
  /** Release JSON pages fetched at once. */
  readonly concurrency?: number;
  readonly http?: Partial<OriginHttpOptions>;
}

function serialOf(answer: HttpAnswer, what: string): number {
  const value = answer.headers.get('x-pypi-last-serial');
  if (value === null || !/^\d+$/.test(value)) {
    throw new PyedgeError('PYEDGE_BAD_REQUEST', `The source sent ${what} without an X-PyPI-Last-Serial header; is it a pyedge origin?`, { what });
  }
  return Number(value);
}

function parseJson(body: Buffer, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Reported below.
  }
  throw new PyedgeError('PYEDGE_BAD_REQUEST', `The source sent ${what} that is not a JSON object.`, { what });
}

/** JSON-escapes a URL the way the JSON API writes strings (ASCII only). */
function jsonText(s: string): string {
  return JSON.stringify(s)
    .slice(1, -1)
    .replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/**
 * Replaces the base of every `"url":"<base>/packages/…"` with `publicUrl`. The
 * base is read from the document itself: it is whatever URL the origin uses.
 */
export function rewriteFileUrls(doc: Buffer, publicUrl: string): Buffer {
  const text = doc.toString('utf8');
  const m = /"url":"([^"]*?)\/packages\//.exec(text);
  if (!m) return doc;
  const from = `"url":"${m[1]}/packages/`;
  const to = `"url":"${jsonText(publicUrl)}/packages/`;
  return from === to ? doc : Buffer.from(text.split(from).join(to), 'utf8');
}

function pagePath(name: string): string {
  return `/simple/${encodeURIComponent(name)}/`;
}

export class OriginSource implements SyncSource {
  readonly description: string;
  readonly rendering: string;
  readonly #http: OriginHttp;
  readonly #publicUrl: string | null;
  readonly #concurrency: number;
  /** Whether the origin has `POST /_sync/projects` (null: not asked yet). */
  #bundles: boolean | null = null;
  /** Whether it has `GET /_sync/listing`, and the last listing read (null: read the whole root next time). */
  #deltas: boolean | null = null;
  #lastListing: SourceListing | null = null;
  #fullListingAt = 0;
  readonly #prefetchLimit = new Limiter(BUNDLE_REQUESTS);
  /** Downloads under way at once, from request to the body's end (the engine may ask for many more). */
  readonly #downloads: Limiter;
  /** Projects announced by the last prefetch(): their group and its place in the list. */
  #prefetched = new Map<string, { groups: PrefetchGroup[]; index: number }>();
  /** Inline file bytes by key, oldest first. */
  readonly #held = new Map<string, Buffer>();
  #heldBytes = 0;

  constructor(url: string, options: OriginSourceOptions = {}) {
    this.#http = new OriginHttp(url, options.http);
    this.description = this.#http.base;
    this.#publicUrl = options.publicUrl ? options.publicUrl.replace(/\/+$/, '') : null;
    this.rendering = `json-api-file-urls=${this.#publicUrl ?? 'origin'}`;
    this.#concurrency = options.concurrency ?? 8;
    this.#downloads = new Limiter(this.#concurrency);
  }

  async changesSince(since: number, waitMs: number, signal?: AbortSignal): Promise<ChangePage> {
    const wait = Math.min(MAX_WAIT_SECONDS, Math.ceil(Math.max(0, waitMs) / 1000));
    // One attempt: the caller's loop owns the waiting out of an origin that is down.
    const answer = await this.#http.get(`/changes?since=${since}&wait=${wait}`, { signal, timeoutMs: (wait + 15) * 1000, attempts: 1 });
    if (answer.status !== 200) throw new PyedgeError('PYEDGE_BAD_REQUEST', `The source has no change feed (/changes answered ${answer.status}); is it a pyedge origin?`);
    const doc = parseJson(answer.body, 'a change feed page');
    const changes: SourceChange[] = [];
    for (const c of Array.isArray(doc.changes) ? (doc.changes as unknown[]) : []) {
      const r = c as Record<string, unknown>;
      if (typeof r.serial !== 'number' || typeof r.project !== 'string') continue;
      changes.push({ serial: r.serial, project: r.project, action: String(r.action), time: String(r.time) });
    }
    const next = typeof doc.next === 'number' ? doc.next : since;
    return { changes, next, lastSerial: typeof doc.last_serial === 'number' ? doc.last_serial : next };
  }

  async listing(signal?: AbortSignal): Promise<SourceListing> {
    const last = this.#lastListing;
    if (last !== null && Date.now() - this.#fullListingAt < FULL_LISTING_EVERY_MS) {
      const moved = await this.#listingSince(last, signal);
      if (moved !== null) return (this.#lastListing = moved);
    }
    const listing = await this.#fullListing(signal);
    // Entries that changed are merged in by name, so the root must be in the order this code sorts in.
    const sorted = listing.projects.every((p, i, all) => i === 0 || all[i - 1]!.normalizedName < p.normalizedName);
    this.#lastListing = this.#deltas !== false && sorted ? listing : null;
    this.#fullListingAt = Date.now();
    return listing;
  }

  /**
   * `last` brought up to date with the entries that changed since (`GET /_sync/listing`), or null
   * when the origin cannot tell (no such route, or too much changed): then read the whole root.
   */
  async #listingSince(last: SourceListing, signal: AbortSignal | undefined): Promise<SourceListing | null> {
    if (this.#deltas === false) return null;
    const answer = await this.#http.get(`/_sync/listing?since=${last.serial}`, { signal });
    if (answer.status === 404) {
      this.#deltas = false;
      return null;
    }
    this.#deltas = true;
    const doc = parseJson(answer.body, 'a listing of changes');
    if (doc.complete !== true || typeof doc.serial !== 'number' || doc.serial < last.serial || !Array.isArray(doc.projects)) return null;
    const changed = new Map<string, ProjectListing | null>();
    for (const e of doc.projects as Record<string, unknown>[]) {
      if (typeof e.normalized !== 'string' || typeof e.name !== 'string' || typeof e.last_serial !== 'number') return null;
      changed.set(e.normalized, e.listed === true ? { name: e.name, normalizedName: e.normalized, lastSerial: e.last_serial } : null);
    }
    const time = typeof doc.time === 'string' ? doc.time : last.time;
    if (changed.size === 0) return { serial: doc.serial, projects: last.projects, time };
    // One merge of two name-ordered lists: the listing keeps the root's order.
    const updates = [...changed].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const projects: ProjectListing[] = [];
    let sameNames = true;
    let u = 0;
    for (const p of last.projects) {
      while (u < updates.length && updates[u]![0] < p.normalizedName) {
        const add = updates[u++]![1];
        if (add !== null) projects.push(add);
        sameNames &&= add === null;
      }
      if (u < updates.length && updates[u]![0] === p.normalizedName) {
        const now = updates[u++]![1];
        if (now !== null) projects.push(now);
        sameNames &&= now !== null && now.name === p.name;
      } else {
        projects.push(p);
      }
    }
    for (; u < updates.length; u++) {
      const add = updates[u]![1];
      if (add !== null) projects.push(add);
      sameNames &&= add === null;
    }
    if (sameNames) sameRootHtml(projects, last.projects);
    return { serial: doc.serial, projects, time };
  }

  async #fullListing(signal: AbortSignal | undefined): Promise<SourceListing> {
    const answer = await this.#http.get('/simple/', { accept: SIMPLE_JSON, signal });
    if (answer.status !== 200) throw new PyedgeError('PYEDGE_UNAVAILABLE', `The source's root index answered ${answer.status}.`);
    const doc = parseJson(answer.body, 'the root index');
    const meta = doc.meta as Record<string, unknown> | undefined;
    const serial = typeof meta?.['_last-serial'] === 'number' ? meta['_last-serial'] : serialOf(answer, 'the root index');
    const projects: ProjectListing[] = [];
    for (const p of Array.isArray(doc.projects) ? (doc.projects as unknown[]) : []) {
      const r = p as Record<string, unknown>;
      if (typeof r.name !== 'string' || typeof r['_last-serial'] !== 'number') {
        throw new PyedgeError('PYEDGE_BAD_REQUEST', 'The source\'s root index lists a project without name or _last-serial.');
      }
      projects.push({ name: r.name, normalizedName: normalizeName(r.name), lastSerial: r['_last-serial'] });
    }
    return { serial, projects, time: await this.#timeOf(serial, signal) };
  }

  /** When the change at `serial` was made, for `last-modified`. */
  async #timeOf(serial: number, signal: AbortSignal | undefined): Promise<string | null> {
    if (serial < 1) return null;
    const answer = await this.#http.get(`/changes?since=${serial - 1}&limit=1`, { signal });
    const changes = answer.status === 200 ? parseJson(answer.body, 'a change feed page').changes : null;
    const change = Array.isArray(changes) ? (changes[0] as Record<string, unknown> | undefined) : undefined;
    return change?.serial === serial && typeof change.time === 'string' ? change.time : null;
  }

  prefetch(names: readonly string[], signal?: AbortSignal): void {
    // Names announced before stay announced (a full build announces its next chunk early); what an
    // earlier prefetch left that is not asked for again is dropped.
    const before = this.#prefetched;
    this.#prefetched = new Map();
    const fresh: string[] = [];
    for (const name of names) {
      const at = before.get(name);
      if (at !== undefined) this.#prefetched.set(name, at);
      else fresh.push(name);
    }
    if (this.#bundles === false || fresh.length < 2) return;
    const groups: PrefetchGroup[] = [];
    for (let i = 0; i < fresh.length; i += BUNDLE_NAMES) groups.push({ names: fresh.slice(i, i + BUNDLE_NAMES), answer: null, fetchedAt: 0 });
    groups.forEach((g, index) => {
      for (const name of g.names) this.#prefetched.set(name, { groups, index });
    });
    this.#startGroups(groups, 0, signal);
  }

  /** Starts the prefetch requests of groups `from` to `from + BUNDLE_AHEAD` that are not under way. */
  #startGroups(groups: PrefetchGroup[], from: number, signal: AbortSignal | undefined): void {
    for (let i = from; i < Math.min(groups.length, from + BUNDLE_AHEAD); i++) {
      const g = groups[i]!;
      if (g.answer !== null) continue;
      g.answer = this.#prefetchLimit.run(async () => {
        const answer = await this.#bundle(g.names, BUNDLE_FILE_BYTES, signal);
        g.fetchedAt = Date.now();
        return answer;
      });
      // A failed prefetch is not an error: project() fetches the project by itself and reports.
      g.answer.catch(() => undefined);
    }
  }

  /** The prefetched project, undefined when it was not prefetched (or that failed). */
  async #takePrefetched(name: string, signal: AbortSignal | undefined): Promise<BundleProject | null | undefined> {
    const at = this.#prefetched.get(name);
    if (at === undefined) return undefined;
    this.#prefetched.delete(name);
    this.#startGroups(at.groups, at.index, signal);
    const answer = await at.groups[at.index]!.answer!.catch(() => null);
    if (answer === null || Date.now() - at.groups[at.index]!.fetchedAt > PREFETCH_MAX_AGE_MS) return undefined;
    // Release the group's memory once every project of it was taken.
    const entry = answer.get(name);
    answer.delete(name);
    return entry;
  }

  /**
   * `POST /_sync/projects`: the projects' pages (and their files of at most `fileBytes`), or null
   * when the origin has no such route (another index, an older pyedge).
   */
  async #bundle(names: readonly string[], fileBytes: number, signal: AbortSignal | undefined): Promise<Map<string, BundleProject | null> | null> {
    if (this.#bundles === false) return null;
    let answer: HttpAnswer;
    try {
      answer = await this.#http.get('/_sync/projects', { signal, body: Buffer.from(JSON.stringify({ names, fileBytes })), contentType: 'application/json' });
    } catch (err) {
      const status = isPyedgeError(err) ? err.context.status : undefined;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        this.#bundles = false;
        return null;
      }
      throw err;
    }
    if (answer.status === 404) {
      this.#bundles = false;
      return null;
    }
    this.#bundles = true;
    const projects = readBundle(answer.body);
    for (const p of projects.values()) for (const [key, bytes] of p?.files ?? []) this.#hold(key, bytes);
    return projects;
  }

  /** Keeps an inline file until openFile() takes it, within MAX_HELD_FILE_BYTES. */
  #hold(key: string, bytes: Buffer): void {
    if (this.#held.has(key) || bytes.length > MAX_HELD_FILE_BYTES) return;
    // A copy: the answer the bytes came in need not stay in memory for them.
    this.#held.set(key, Buffer.from(bytes));
    this.#heldBytes += bytes.length;
    for (const [old, b] of this.#held) {
      if (this.#heldBytes <= MAX_HELD_FILE_BYTES) break;
      this.#held.delete(old);
      this.#heldBytes -= b.length;
    }
  }

  #snapshotOf(p: BundleProject): ProjectSnapshot {
    const releases = new Map<string, Buffer>();
    for (const [version, doc] of p.releases) releases.set(version, this.#rewrite(doc));
    return {
      name: p.name,
      serial: p.serial,
      html: p.html,
      json: p.json,
      jsonApi: p.api === null ? null : this.#rewrite(p.api),
      releases: () => Promise.resolve(releases),
    };
  }

  async project(name: string, signal?: AbortSignal): Promise<ProjectSnapshot | null> {
    const prefetched = await this.#takePrefetched(name, signal);
    if (prefetched !== undefined) return prefetched === null ? null : this.#snapshotOf(prefetched);
    if (this.#bundles !== false) {
      const answer = await this.#bundle([name], 0, signal);
      const entry = answer?.get(name);
      if (answer !== null && entry !== undefined) return entry === null ? null : this.#snapshotOf(entry);
    }
    let why = '';
    for (let attempt = 1; attempt <= SNAPSHOT_ATTEMPTS; attempt++) {
      const taken = await this.#snapshot(name, signal);
      if (taken === null || 'serial' in taken) return taken;
      why = taken.mismatch;
      // An upload landed between two fetches: take them all again.
      await sleep(Math.min(500, 20 * attempt), signal);
      signal?.throwIfAborted();
    }
    throw new PyedgeError('PYEDGE_UNAVAILABLE', `The pages of '${name}' kept changing while they were fetched (${why}); will retry.`, { project: name });
  }

  /** One try at a consistent snapshot: the snapshot, null when gone, or why the pages disagreed. */
  async #snapshot(name: string, signal: AbortSignal | undefined): Promise<ProjectSnapshot | null | { mismatch: string }> {
    const apiPath = `/pypi/${encodeURIComponent(name)}/json`;
    const [html, json, api] = await Promise.all([
      this.#http.get(pagePath(name), { accept: 'text/html', signal }),
      this.#http.get(pagePath(name), { accept: SIMPLE_JSON, signal }),
      this.#http.get(apiPath, { signal }),
    ]);
    if (html.status === 404 && json.status === 404) return null;
    if (html.status !== 200 || json.status !== 200) return { mismatch: 'the project was created or removed' };
    const serial = serialOf(html, pagePath(name));
    if (serialOf(json, pagePath(name)) !== serial) return { mismatch: 'HTML and JSON pages at different serials' };
    if (api.status === 200 && serialOf(api, apiPath) !== serial) return { mismatch: 'JSON API at another serial' };
    const versions = api.status === 200 ? jsonApiLinks(api.body, apiPath).versions : [];
    let releases: Promise<ReadonlyMap<string, Buffer> | null> | null = null;
    return {
      name,
      serial,
      html: html.body,
      json: json.body,
      jsonApi: api.status === 200 ? this.#rewrite(api.body) : null,
      releases: (releaseSignal) => (releases ??= this.#releases(name, serial, versions, releaseSignal ?? signal)),
    };
  }

  /** The release pages at `serial`, or null when one of them is at another serial (the project moved on). */
  async #releases(name: string, serial: number, versions: readonly string[], signal: AbortSignal | undefined): Promise<ReadonlyMap<string, Buffer> | null> {
    const docs = await mapLimit(versions, this.#concurrency, (v) => this.#http.get(`/pypi/${encodeURIComponent(name)}/${encodeURIComponent(v)}/json`, { signal }));
    const releases = new Map<string, Buffer>();
    for (let i = 0; i < versions.length; i++) {
      const doc = docs[i]!;
      if (doc.status !== 200 || serialOf(doc, `release ${versions[i]}`) !== serial) return null;
      releases.set(versions[i]!, this.#rewrite(doc.body));
    }
    return releases;
  }

  #rewrite(doc: Buffer): Buffer {
    return this.#publicUrl === null ? doc : rewriteFileUrls(doc, this.#publicUrl);
  }

  openFile(path: string, signal?: AbortSignal): Promise<Readable> {
    const held = this.#held.get(path);
    if (held !== undefined) {
      this.#held.delete(path);
      this.#heldBytes -= held.length;
      return Promise.resolve(new BufferBody(held));
    }
    const url = '/' + path.split('/').map(encodeURIComponent).join('/');
    // A slot is held until the body closes, however its consumer ends it.
    return new Promise((resolve, reject) => {
      this.#downloads
        .run(
          () =>
            new Promise<void>((release) => {
              this.#http.stream(url, signal).then(
                (body) => {
                  body.once('close', () => release());
                  body.once('end', () => release());
                  body.once('error', () => release());
                  resolve(body);
                },
                (err: unknown) => {
                  release();
                  reject(err);
                },
              );
            }),
        )
        .catch(reject);
    });
  }

  async close(): Promise<void> {
    this.#http.close();
  }
}
