/**
 * The edge's request handler (plain node:http, no framework on the hot path):
 * the origin's URLs answered from a static tree, with PEP 691 negotiation,
 * strong ETags and 304, ranges on files, HEAD, the tree's caching headers and
 * `X-PyPI-Last-Serial`; in redirect mode, the chosen paths answered with 302
 * to a CDN base instead.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { fileEtag, ifNoneMatchHits } from '../core/etags.js';
import { remembered } from '../core/memo.js';
import { JSON_API_CORS_HEADERS, SIMPLE_NOT_ACCEPTABLE } from '../core/http-headers.js';
import { isPyedgeError } from '../core/errors.js';
import { parseRange } from '../core/http-range.js';
import { canonicalVersion } from '../core/versions.js';
import { contentTypeOf, negotiateSimpleFormat } from '../render/negotiate.js';
import { cacheHeadersOf, FILE_CACHE_CONTROL } from '../sync/purge-targets.js';
import { projectKeys, releaseKey, SERVER_KEY_KEY } from '../sync/tree-layout.js';
import { CONTENT_TYPES, MAX_TARGET_LENGTH, routeOf, type EdgeRoute, type SerialSource, type SimplePage } from './edge-routes.js';
import { keptFields, redirectFields, sendError, sendRedirect, sendStatusJson, sendStream, type EdgeReply, type EdgeRequest } from './edge-responses.js';
import type { PageMeta } from './page-meta.js';
import { readAll, type TreePage, type TreeSource } from './tree-source.js';
import { TreeStatus, type TreeSnapshot } from './tree-status.js';

/** Where file downloads (or other paths) go in redirect mode. */
export interface RedirectRule {
  /** The CDN's base URL, without a trailing slash; the request's path and query are appended. */
  readonly base: string;
  /** Path prefixes (without the leading `/`) that redirect; `''` redirects every path. */
  readonly prefixes: readonly string[];
}

export interface EdgeHandlerOptions {
  /** The tree; null for a pure redirector (every prefix must then cover what it serves). */
  readonly source: TreeSource | null;
  readonly redirect: RedirectRule | null;
  readonly logger: Logger;
  /** How stale the tree's state may be when read for a request, in ms. */
  readonly statusMaxAgeMs?: number;
}

const REDIRECT_CACHE_CONTROL = 'max-age=60, public';
const MOVED_CACHE_CONTROL = 'max-age=3600, public';
const HOME = Buffer.from(`<!DOCTYPE html>
<html>
  <head><title>pyedge</title></head>
  <body>
    <h1>pyedge package index (edge)</h1>
    <p><a href="/simple/">Simple index</a> (pip: <code>--index-url &lt;this URL&gt;/simple/</code>)</p>
  </body>
</html>
`);

/** The `?format=` of a query string (with its `?`), if any. */
function formatParam(query: string): string | undefined {
  if (!query.includes('format=')) return undefined;
  return new URLSearchParams(query.slice(1)).get('format') ?? undefined;
}

/** The stored spelling a requested version denotes among `versions` (as the origin's findRelease picks it), or null. */
export function resolveVersion(versions: readonly string[], version: string): string | null {
  const canonical = canonicalVersion(version);
  if (canonical !== null) {
    const same = versions.filter((v) => canonicalVersion(v) === canonical);
    if (same.length === 1) return same[0]!;
    if (same.length > 1) return same.includes(version) ? version : null;
  }
  return versions.includes(version) ? version : null;
}

/** How a page is answered: its key in the tree and the headers that depend on the route. */
interface PageAnswer {
  readonly key: string;
  readonly contentType: string;
  readonly serialFrom: SerialSource;
  readonly extra: Readonly<Record<string, string>> | null;
  /** Chosen by Accept: the answer varies by it. */
  readonly negotiated: boolean;
}

/** The fields of a page's 200 answer, kept with the page's meta while answers to it repeat. */
interface PageFields {
  readonly answer: PageAnswer;
  readonly serial: number | null;
  /** Frozen (keptFields): a reply may keep what it makes of them. */
  readonly fields: string[];
}

function sameAnswer(a: PageAnswer, b: PageAnswer): boolean {
  return a.key === b.key && a.contentType === b.contentType && a.negotiated === b.negotiated && a.extra === b.extra;
}

function isServerResponse(res: EdgeReply): res is ServerResponse {
  return typeof (res as Partial<ServerResponse>).setHeader === 'function';
}

export class EdgeHandler {
  readonly #source: TreeSource | null;
  readonly #redirect: RedirectRule | null;
  readonly #log: Logger;
  readonly status: TreeStatus | null;
  /** The tree's caching headers of a key (as a bucket keeps them), remembered for the keys served most. */
  readonly #cacheHeaders = remembered(10_000, cacheHeadersOf);
  /** Routes of recent request targets: a route depends on the target alone. */
  readonly #routeOf = remembered(4096, routeOf);
  /** The 200 answer's fields of pages answered lately (by the meta of the version answered). */
  readonly #pageFields = new WeakMap<PageMeta, PageFields>();
  /** In redirect mode, the redirect's header fields of recent request targets, or null for those this edge answers itself. */
  readonly #redirectOf = remembered(4096, (target: string): string[] | null =>
    this.#redirects(this.#routeOf(target), target) ? keptFields(redirectFields(this.#redirect!.base + target, REDIRECT_CACHE_CONTROL)) : null,
  );

  constructor(options: EdgeHandlerOptions) {
    this.#source = options.source;
    this.#redirect = options.redirect;
    this.#log = options.logger;
    this.status = options.source ? new TreeStatus(options.source, options.statusMaxAgeMs) : null;
  }

  /**
   * The node:http request listener. Whatever can be answered at once (redirects, refusals,
   * pages kept in memory) is answered without a promise; the rest goes on asynchronously.
   */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    let pending: Promise<void>;
    try {
      if (this.answerNow(req, res)) return;
      pending = this.#later(req, res, this.#routeOf(req.url ?? '/'));
    } catch (err) {
      this.#fail(req, res, err);
      return;
    }
    pending.catch((err: unknown) => this.#fail(req, res, err));
  };

  #fail(req: EdgeRequest, res: EdgeReply, err: unknown): void {
    if (isPyedgeError(err) && err.status < 500) {
      sendError(req, res, err.status, err.message);
      return;
    }
    this.#log.error({ err, url: req.url?.slice(0, 300) }, 'request failed');
    if (isPyedgeError(err) && err.code === 'PYEDGE_UNAVAILABLE') sendError(req, res, 503, `Service Unavailable: ${err.message}`, { 'retry-after': '1' });
    else sendError(req, res, 500, 'Internal server error. The problem has been logged.');
  }

  /**
   * Answers the request if that needs no I/O (refusals, redirects, health, pages kept in
   * memory) and returns true; returns false, having written nothing, when it needs more
   * (a page or file to read, the tree's state to load): then `handle` must take it.
   */
  answerNow(req: EdgeRequest, res: EdgeReply): boolean {
    try {
      return this.#now(req, res);
    } catch (err) {
      this.#fail(req, res, err);
      return true;
    }
  }

  #now(req: EdgeRequest, res: EdgeReply): boolean {
    const target = req.url ?? '/';
    if (target.length > MAX_TARGET_LENGTH) {
      sendError(req, res, 414, `URI Too Long: request targets are limited to ${MAX_TARGET_LENGTH} characters.`);
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(req, res, 405, 'Method Not Allowed: this index is read-only here; use GET or HEAD.', { allow: 'GET, HEAD' });
      return true;
    }
    const redirect = this.#redirect === null ? null : this.#redirectOf(target);
    if (redirect !== null) {
      res.writeHead(302, redirect);
      res.end();
      return true;
    }
    const route = this.#routeOf(target);
    switch (route.kind) {
      case 'health':
        sendStatusJson(req, res, 200, { status: 'ok' });
        return true;
      case 'ready':
        return false;
      case 'home':
        res.writeHead(200, { 'content-type': CONTENT_TYPES.html, 'cache-control': 'no-store', 'content-length': HOME.length });
        res.end(req.method === 'HEAD' ? undefined : HOME);
        return true;
      case 'moved':
        sendRedirect(res, 301, route.location, MOVED_CACHE_CONTROL);
        return true;
      case 'bad-request':
        sendError(req, res, 400, route.message);
        return true;
      case 'not-found':
        sendError(req, res, 404, route.message);
        return true;
      default:
        break;
    }
    const source = this.#source;
    if (source === null || this.status === null) {
      sendError(req, res, 404, 'Not Found: this edge only redirects, and not this path.');
      return true;
    }
    const snapshot = this.status.current();
    if (snapshot instanceof Promise) return false;
    if (snapshot.state === null) {
      this.#unpublished(req, res);
      return true;
    }
    if (route.kind !== 'simple' && route.kind !== 'page') return false;
    const page = this.#pageOf(req, snapshot, route);
    if (page === null) {
      sendError(req, res, 406, SIMPLE_NOT_ACCEPTABLE, { vary: 'Accept' });
      return true;
    }
    const kept = source.kept?.(page.key);
    if (kept === undefined) return false;
    this.#sendPage(req, res, snapshot, page, kept);
    return true;
  }

  /** What `answerNow` left: the tree's state, pages and files read from the tree. */
  async #later(req: IncomingMessage, res: ServerResponse, route: EdgeRoute): Promise<void> {
    if (route.kind === 'ready') return this.#ready(req, res);
    const source = this.#source!;
    const snapshot = await this.status!.current();
    if (snapshot.state === null) return this.#unpublished(req, res);
    switch (route.kind) {
      case 'simple':
      case 'page': {
        const page = this.#pageOf(req, snapshot, route);
        if (page === null) return sendError(req, res, 406, SIMPLE_NOT_ACCEPTABLE, { vary: 'Accept' });
        return this.#page(req, res, source, snapshot, page);
      }
      case 'release':
        return this.#release(req, res, source, snapshot, route);
      case 'file':
        return this.#file(req, res, source, route.key);
      default:
        return sendError(req, res, 404, 'Not Found: there is no such page on this index.');
    }
  }

  #unpublished(req: EdgeRequest, res: EdgeReply): void {
    sendError(req, res, 503, "Service Unavailable: this edge's tree has not been published yet (it has no pyedge-state.json).", { 'retry-after': '5' });
  }

  /** The tree page a Simple or other page route asks for, with how to answer it; null when no Simple format fits the request's Accept. */
  #pageOf(req: EdgeRequest, snapshot: TreeSnapshot, route: SimplePage | Extract<EdgeRoute, { kind: 'page' }>): PageAnswer | null {
    if (route.kind === 'simple') {
      const target = req.url!;
      const q = target.indexOf('?');
      const format = negotiateSimpleFormat(req.headers.accept, q < 0 ? undefined : formatParam(target.slice(q)));
      if (format === null) return null;
      const key = format === 'json' ? route.keys.v1Json : format === 'html' ? route.keys.v1Html : route.keys.html;
      return { key, contentType: contentTypeOf(format), serialFrom: route.serial, extra: null, negotiated: true };
    }
    // The id of the key that signed the tree's pages, beside that key (as the origin names its own).
    const extra = route.cors ? JSON_API_CORS_HEADERS : route.key === SERVER_KEY_KEY ? { 'x-pyedge-key-id': snapshot.state?.key ?? '' } : null;
    return { key: route.key, contentType: route.contentType, serialFrom: route.serial, extra, negotiated: false };
  }

  /** Whether redirect mode sends this request to the CDN: tree paths under a chosen prefix, once normalized. */
  #redirects(route: EdgeRoute, target: string): boolean {
    if (route.kind !== 'simple' && route.kind !== 'page' && route.kind !== 'release' && route.kind !== 'file') return false;
    const path = target.slice(1);
    return this.#redirect!.prefixes.some((p) => path.startsWith(p));
  }

  async #ready(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.status === null) return sendStatusJson(req, res, 200, { status: 'ready', mode: 'redirect', redirectTo: this.#redirect?.base ?? null });
    const s = await this.status.refresh();
    const state = s.state;
    const reason = s.error !== null ? `the tree cannot be read: ${s.error}` : state === null ? 'the tree has no state object yet' : !s.root ? 'the tree has no root index' : null;
    if (reason !== null || state === null) return sendStatusJson(req, res, 503, { status: 'not ready', reason, tree: this.#source!.description });
    const age = Math.max(0, (Date.now() - Date.parse(state.time)) / 1000);
    return sendStatusJson(req, res, 200, {
      status: 'ready',
      tree: this.#source!.description,
      serial: state.serial,
      rootSerial: state.rootSerial,
      projects: state.projects,
      time: state.time,
      ageSeconds: Number.isFinite(age) ? Math.round(age * 10) / 10 : null,
      ...(this.#redirect ? { redirectTo: this.#redirect.base, redirectPaths: this.#redirect.prefixes } : {}),
    });
  }

  #page(req: IncomingMessage, res: ServerResponse, source: TreeSource, snapshot: TreeSnapshot, answer: PageAnswer): Promise<void> | void {
    const kept = source.kept?.(answer.key);
    if (kept !== undefined) return this.#sendPage(req, res, snapshot, answer, kept);
    return source.page(answer.key).then((page) => this.#sendPage(req, res, snapshot, answer, page));
  }

  /** A page's answer: whole from memory (at once), or streamed (only on node:http). */
  #sendPage(req: EdgeRequest, res: EdgeReply, snapshot: TreeSnapshot, answer: PageAnswer, page: TreePage | null): void {
    const { key, serialFrom } = answer;
    if (page === null) {
      const m = /^(?:simple|pypi)\/([^/]+)\//.exec(key);
      return sendError(req, res, 404, m ? `Not Found: there is no project named '${m[1]}' on this index.` : 'Not Found: there is no such page on this index.');
    }
    const { meta } = page;
    const serial = serialFrom === 'body' ? meta.serial : serialFrom === 'state' ? (snapshot.state?.serial ?? null) : null;
    if (ifNoneMatchHits(req.headers['if-none-match'], meta.etag)) {
      page.release();
      res.writeHead(304, this.#pageHeaders(answer, meta, serial));
      res.end();
      return;
    }
    let kept = this.#pageFields.get(meta);
    if (kept === undefined || !sameAnswer(kept.answer, answer) || kept.serial !== serial) {
      const fields = this.#pageHeaders(answer, meta, serial);
      fields.push('content-length', String(meta.size));
      kept = { answer, serial, fields: keptFields(fields) };
      this.#pageFields.set(meta, kept);
    }
    if (req.method === 'HEAD' || page.body !== null) {
      page.release();
      res.writeHead(200, kept.fields);
      res.end(req.method === 'HEAD' ? undefined : (page.body ?? undefined));
      return;
    }
    if (!isServerResponse(res)) throw new Error('a streamed page needs a node:http response');
    const body = page.stream();
    res.writeHead(200, kept.fields);
    sendStream(res, body, (err) => this.#log.warn({ err, key }, 'page stream failed'));
  }

  /** A page's header fields but its length: type, ETag, caching, surrogate keys, Vary, extras and serial. */
  #pageHeaders(answer: PageAnswer, meta: PageMeta, serial: number | null): string[] {
    const cache = this.#cacheHeaders(answer.key);
    const headers: string[] = ['content-type', answer.contentType, 'etag', meta.etag, 'cache-control', cache.cacheControl ?? ''];
    if (cache.surrogateControl) headers.push('surrogate-control', cache.surrogateControl);
    if (cache.surrogateKey) headers.push('surrogate-key', cache.surrogateKey);
    if (answer.negotiated) headers.push('vary', 'Accept');
    if (answer.extra !== null) for (const name in answer.extra) headers.push(name, answer.extra[name]!);
    if (serial !== null) headers.push('x-pypi-last-serial', String(serial));
    return headers;
  }

  async #release(req: IncomingMessage, res: ServerResponse, source: TreeSource, snapshot: TreeSnapshot, route: Extract<EdgeRoute, { kind: 'release' }>): Promise<void> {
    const { name, version } = route;
    if (!route.nameMoved && (await this.#exists(source, releaseKey(name, version)))) {
      return this.#page(req, res, source, snapshot, { key: releaseKey(name, version), contentType: CONTENT_TYPES.json, serialFrom: 'body', extra: JSON_API_CORS_HEADERS, negotiated: false });
    }
    // `1.0.0` for `1.0`, or a name to normalize: the stored spelling, from the project's JSON API releases.
    const project = await source.page(projectKeys(name).jsonApi);
    if (project === null) return sendError(req, res, 404, `Not Found: there is no project named '${name}' on this index.`, JSON_API_CORS_HEADERS);
    let versions: string[] = [];
    try {
      const body = project.body ?? (await readAll(project.stream()));
      const doc = JSON.parse(body.toString('utf8')) as { releases?: Record<string, unknown> };
      versions = Object.keys(doc.releases ?? {});
    } catch {
      versions = [];
    } finally {
      project.release();
    }
    const stored = resolveVersion(versions, version);
    if (stored === null || (stored === version && !route.nameMoved)) {
      return sendError(req, res, 404, `Not Found: project '${name}' has no release '${version}'.`, JSON_API_CORS_HEADERS);
    }
    const location = `/pypi/${name}/${encodeURIComponent(stored)}/json${route.slash ? '/' : ''}${route.query}`;
    return sendRedirect(res, 301, location, MOVED_CACHE_CONTROL);
  }

  async #exists(source: TreeSource, key: string): Promise<boolean> {
    const f = await source.file(key, 'head');
    f?.release();
    return f !== null;
  }

  async #file(req: IncomingMessage, res: ServerResponse, source: TreeSource, key: string): Promise<void> {
    const etag = fileEtag(key);
    const rangeHeader = req.headers.range;
    const ifRange = req.headers['if-range'];
    const wantsRange = rangeHeader !== undefined && (ifRange === undefined || ifRange === etag);
    const notModified = ifNoneMatchHits(req.headers['if-none-match'], etag);
    const intent = req.method === 'HEAD' || notModified ? 'head' : wantsRange ? 'range' : 'whole';
    const file = await source.file(key, intent);
    if (file === null) return sendError(req, res, 404, 'Not Found: no such file on this index.');
    const headers: OutgoingHttpHeaders = {
      'content-type': CONTENT_TYPES.file,
      etag,
      'cache-control': FILE_CACHE_CONTROL,
      'accept-ranges': 'bytes',
      'last-modified': file.lastModified.toUTCString(),
    };
    if (notModified) {
      file.release();
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const range = wantsRange ? parseRange(rangeHeader, file.size) : null;
    if (range === 'unsatisfiable') {
      file.release();
      return sendError(req, res, 416, `Range Not Satisfiable: the file has ${file.size} bytes.`, { 'content-range': `bytes */${file.size}`, 'accept-ranges': 'bytes' });
    }
    const status = range ? 206 : 200;
    if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${file.size}`;
    headers['content-length'] = range ? range.end - range.start + 1 : file.size;
    if (req.method === 'HEAD') {
      file.release();
      res.writeHead(status, headers);
      res.end();
      return;
    }
    if (file.send) {
      res.writeHead(status, headers);
      await file.send(res, range).catch((err: unknown) => this.#log.warn({ err, key }, 'file send failed'));
      return;
    }
    let body;
    try {
      body = await file.stream(range);
    } catch (err) {
      file.release();
      throw err;
    }
    res.writeHead(status, headers);
    sendStream(res, body, (err) => this.#log.warn({ err, key }, 'file stream failed'));
  }
}
