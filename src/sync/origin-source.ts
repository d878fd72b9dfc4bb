/**
 * A pyedge origin as a sync source, over HTTP: `/changes` (long-poll) for the
 * push, the PEP 691 JSON root for the per-project serials, and each project's
 * Simple and JSON API pages, taken at one serial (all carry the same
 * `X-PyPI-Last-Serial`, or they are fetched again). The pages are the origin's
 * bytes, except that JSON API file URLs move to the tree's public URL.
 */
import type { Readable } from 'node:stream';
import { PyedgeError } from '../core/errors.js';
import { normalizeName } from '../core/names.js';
import type { ProjectListing } from '../core/model.js';
import { OriginHttp, type HttpAnswer, type OriginHttpOptions } from './origin-http.js';
import { jsonApiLinks } from './page-links.js';
import { mapLimit } from './pool.js';
import { sleep } from './retry.js';
import type { ChangePage, ProjectSnapshot, SourceChange, SourceListing, SyncSource } from './source.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';
/** Most seconds one long-poll waits (the origin's own limit is 60). */
const MAX_WAIT_SECONDS = 50;
/** How often a project's pages are fetched again when an upload lands between them. */
const SNAPSHOT_ATTEMPTS = 20;

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

  constructor(url: string, options: OriginSourceOptions = {}) {
    this.#http = new OriginHttp(url, options.http);
    this.description = this.#http.base;
    this.#publicUrl = options.publicUrl ? options.publicUrl.replace(/\/+$/, '') : null;
    this.rendering = `json-api-file-urls=${this.#publicUrl ?? 'origin'}`;
    this.#concurrency = options.concurrency ?? 8;
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

  async project(name: string, signal?: AbortSignal): Promise<ProjectSnapshot | null> {
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
    return this.#http.stream('/' + path.split('/').map(encodeURIComponent).join('/'), signal);
  }

  async close(): Promise<void> {
    // fetch's connection pool is global and closes idle sockets by itself.
  }
}
