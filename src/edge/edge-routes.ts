/**
 * What an edge request asks for, worked out from its request target alone (no
 * I/O): the tree key(s) behind the origin's URLs, a normalizing redirect, or a
 * refusal. Every key built here comes from fixed names, PEP 503 normalized
 * project names, checked version strings or the package path pattern, so no
 * request can name anything outside the tree's layout (its temp folder, the
 * publisher's status file, a path outside the root).
 */
import { isValidName, normalizeName } from '../core/names.js';
import { LAST_MODIFIED_KEY, ROOT_KEYS, SERVER_KEY_KEY, STATE_KEY, projectKeys } from '../sync/tree-layout.js';
import { PACKAGE_PATH } from '../core/hashes.js';

/** Where an answer's `X-PyPI-Last-Serial` comes from. */
export type SerialSource =
  /** The page's own bytes (HTML trailer, JSON `meta._last-serial`, JSON API `last_serial`, signature `serial`). */
  | 'body'
  /** The tree's state object (the root index, `last-modified`, the state itself). */
  | 'state'
  /** None: the answer carries no serial. */
  | 'none';

/** A page stored under one key, served as it is. */
export interface FixedPage {
  readonly kind: 'page';
  readonly key: string;
  readonly contentType: string;
  readonly serial: SerialSource;
  /** The JSON API's CORS headers. */
  readonly cors: boolean;
}

/** The three PEP 691 serializations of a Simple page, chosen by `Accept`. */
export interface SimplePage {
  readonly kind: 'simple';
  /** Keys of the `text/html`, v1 HTML and v1 JSON forms. */
  readonly keys: { readonly html: string; readonly v1Html: string; readonly v1Json: string };
  readonly serial: SerialSource;
}

export type EdgeRoute =
  | { readonly kind: 'health' }
  | { readonly kind: 'ready' }
  | { readonly kind: 'home' }
  | { readonly kind: 'moved'; readonly location: string }
  | SimplePage
  | FixedPage
  /** `/pypi/<name>/<version>/json`: the version may need resolving to its stored spelling. */
  | { readonly kind: 'release'; readonly name: string; readonly version: string; readonly nameMoved: boolean; readonly slash: boolean; readonly query: string }
  | { readonly kind: 'file'; readonly key: string; readonly metadata: boolean }
  | { readonly kind: 'not-found'; readonly message: string }
  | { readonly kind: 'bad-request'; readonly message: string };

/** Longest request target served; longer ones get 414. PyPI's longest filenames are far shorter. */
export const MAX_TARGET_LENGTH = 4096;

export const CONTENT_TYPES = Object.freeze({
  json: 'application/json',
  /** What the origin sends with a signature (a JSON text). */
  jsonText: 'application/json; charset=utf-8',
  text: 'text/plain; charset=utf-8',
  html: 'text/html; charset=utf-8',
  file: 'application/octet-stream',
});

/** The versions a tree holds release pages for: PEP 440 and the legacy spellings uploads accept, never `.` or `..`. */
const VERSION = /^[A-Za-z0-9][A-Za-z0-9.+!_-]{0,127}$/;
const INDEX_FILES: Readonly<Record<string, string>> = {
  'index.html': CONTENT_TYPES.html,
  'index.v1_html': 'application/vnd.pypi.simple.v1+html',
  'index.v1_json': 'application/vnd.pypi.simple.v1+json',
};
// C0 controls, DEL, and the separators that must never reach a key once decoded.
const FORBIDDEN_DECODED = /[\u0000-\u001f\u007f/\\]/;
// Backslashes raw or encoded, and encoded slashes: some servers and tools take them for separators.
const FORBIDDEN_RAW = /\\|%5c|%2f/i;

const bad = (message: string): EdgeRoute => ({ kind: 'bad-request', message });
const notFound = (message: string): EdgeRoute => ({ kind: 'not-found', message });
const NO_SUCH_PAGE = 'Not Found: there is no such page on this index.';
const noProject = (name: string): EdgeRoute => notFound(`Not Found: there is no project named '${name}' on this index.`);

function page(key: string, contentType: string, serial: SerialSource, cors = false): FixedPage {
  return { kind: 'page', key, contentType, serial, cors };
}

/**
 * The path segments of a request target, decoded, or a refusal: absolute-form
 * targets, backslashes, encoded slashes, bad escapes, control characters and
 * `.`/`..` segments (raw or encoded) are bad requests.
 */
export function pathSegments(path: string): string[] | { readonly error: string } {
  if (!path.startsWith('/')) return { error: 'Bad Request: the request target must be a path starting with /.' };
  if (FORBIDDEN_RAW.test(path)) return { error: 'Bad Request: backslashes and encoded slashes are not allowed in paths.' };
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const raw = segments[i]!;
    let s = raw;
    if (raw.includes('%')) {
      try {
        s = decodeURIComponent(raw);
      } catch {
        return { error: 'Bad Request: the path has an invalid percent-encoding.' };
      }
      segments[i] = s;
    }
    if (s === '.' || s === '..') return { error: 'Bad Request: "." and ".." path segments are not allowed.' };
    if (FORBIDDEN_DECODED.test(s)) return { error: 'Bad Request: control characters are not allowed in paths.' };
  }
  return segments;
}

/** A project name segment: its normalized form, or null when no project can have it. */
function projectName(segment: string): string | null {
  return isValidName(segment) ? normalizeName(segment) : null;
}

function simpleRoute(segments: readonly string[], query: string): EdgeRoute {
  if (segments.length === 1) return { kind: 'moved', location: `/simple/${query}` };
  const [, second = '', third, ...rest] = segments;
  if (second === '' && segments.length === 2) {
    return { kind: 'simple', keys: ROOT_KEYS, serial: 'state' };
  }
  if (segments.length === 2 && INDEX_FILES[second] !== undefined) {
    return page(`simple/${second}`, INDEX_FILES[second]!, 'state');
  }
  const name = projectName(second);
  if (name === null) return noProject(second);
  // `/simple/<name>` and non-normalized names: the normalized URL, query kept (as the origin does).
  if (segments.length === 2 || (third === '' && rest.length === 0 && name !== second)) {
    return { kind: 'moved', location: `/simple/${name}/${query}` };
  }
  if (third === '' && rest.length === 0) {
    const keys = projectKeys(name);
    return { kind: 'simple', keys: { html: keys.html, v1Html: keys.v1Html, v1Json: keys.v1Json }, serial: 'body' };
  }
  // The tree's own paths, as a static mirror (nginx) serves them.
  if (rest.length === 0 && third !== undefined && name === second) {
    if (INDEX_FILES[third] !== undefined) return page(`simple/${name}/${third}`, INDEX_FILES[third]!, 'body');
    if (third === 'serversig') return page(projectKeys(name).serverSig, CONTENT_TYPES.jsonText, 'body');
  }
  return notFound(NO_SUCH_PAGE);
}

function pypiRoute(segments: readonly string[], query: string): EdgeRoute {
  // /pypi/<name>/json[/] and /pypi/<name>/<version>/json[/]
  const slash = segments[segments.length - 1] === '';
  const parts = slash ? segments.slice(1, -1) : segments.slice(1);
  if (parts.length < 2 || parts.length > 3 || parts[parts.length - 1] !== 'json') return notFound(NO_SUCH_PAGE);
  const given = parts[0]!;
  const name = projectName(given);
  if (name === null) return noProject(given);
  if (parts.length === 2) {
    if (name !== given) return { kind: 'moved', location: `/pypi/${name}/json${slash ? '/' : ''}${query}` };
    return page(projectKeys(name).jsonApi, CONTENT_TYPES.json, 'body', true);
  }
  const version = parts[1]!;
  if (!VERSION.test(version)) return notFound(`Not Found: project '${name}' has no release '${version}'.`);
  return { kind: 'release', name, version, nameMoved: name !== given, slash, query };
}

/**
 * The route for a request target (`path?query` as the request line gives it).
 * `MAX_TARGET_LENGTH` is the caller's to check (it answers 414).
 */
export function routeOf(target: string): EdgeRoute {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  const segments = pathSegments(path);
  if (!Array.isArray(segments)) return bad(segments.error);
  const [first = ''] = segments;
  switch (first) {
    case '':
      return segments.length === 1 ? { kind: 'home' } : notFound(NO_SUCH_PAGE);
    case '_health':
      return segments.length === 1 ? { kind: 'health' } : notFound(NO_SUCH_PAGE);
    case '_ready':
      return segments.length === 1 ? { kind: 'ready' } : notFound(NO_SUCH_PAGE);
    case 'simple':
      return simpleRoute(segments, query);
    case 'pypi':
      return pypiRoute(segments, query);
    case 'packages': {
      const key = segments.join('/');
      if (!PACKAGE_PATH.test(key)) return notFound('Not Found: no such file on this index.');
      return { kind: 'file', key, metadata: key.endsWith('.metadata') };
    }
    case 'serversig': {
      if (segments.length !== 2) return notFound(NO_SUCH_PAGE);
      const given = segments[1]!;
      const name = projectName(given);
      if (name === null) return noProject(given);
      if (name !== given) return { kind: 'moved', location: `/serversig/${name}` };
      return page(projectKeys(name).serverSig, CONTENT_TYPES.jsonText, 'body');
    }
    case SERVER_KEY_KEY:
      return segments.length === 1 ? page(SERVER_KEY_KEY, CONTENT_TYPES.text, 'none') : notFound(NO_SUCH_PAGE);
    case LAST_MODIFIED_KEY:
      return segments.length === 1 ? page(LAST_MODIFIED_KEY, CONTENT_TYPES.text, 'state') : notFound(NO_SUCH_PAGE);
    case STATE_KEY:
      return segments.length === 1 ? page(STATE_KEY, CONTENT_TYPES.json, 'state') : notFound(NO_SUCH_PAGE);
    default:
      return notFound(NO_SUCH_PAGE);
  }
}
