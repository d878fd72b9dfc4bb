/**
 * What a change to one key of the static tree means for the caches in front of
 * it: the URLs that serve the key, the surrogate keys its responses carry, and
 * the caching headers a store that serves its objects itself (S3 behind a CDN)
 * keeps with it. The shipped nginx and Varnish configs (deploy/) derive the
 * same keys and headers from the URL; keep them in step.
 *
 *   simple/index.*                 /simple/, /simple/index.*        all-projects
 *   simple/<name>/index.*          /simple/<name>/, …/index.*       project/<name>
 *   simple/<name>/serversig        …/serversig, /serversig/<name>   project/<name>
 *   pypi/<name>/json, …/<v>/json   the same path                    project/<name>
 *   last-modified, serverkey,      the same path                    all-projects
 *     pyedge-state.json
 *   packages/…                     the same path                    (none: immutable)
 */
import type { CacheHeaders } from '../blobstore/blob-store.js';
import { ALL_PROJECTS_KEY, projectKey } from '../core/surrogate-keys.js';
import { LAST_MODIFIED_KEY, ROOT_KEYS, SERVER_KEY_KEY, STATE_KEY, projectKeys } from './tree-layout.js';

/** How long clients and CDNs may keep the tree's pages; seconds. */
export const TREE_CACHE_SECONDS = Object.freeze({
  /** Cache-Control max-age of pages: clients revalidate soon (pip does at every run anyway). */
  pageMaxAge: 60,
  /** Surrogate-Control max-age of pages: a CDN without purges is at most this far behind. */
  surrogateMaxAge: 600,
  staleWhileRevalidate: 60,
  /** A cache may serve a page this long past its age while everything behind it fails. */
  staleIfError: 86_400,
});

const PAGE_CACHE_CONTROL = `max-age=${TREE_CACHE_SECONDS.pageMaxAge}, public, stale-while-revalidate=${TREE_CACHE_SECONDS.staleWhileRevalidate}, stale-if-error=${TREE_CACHE_SECONDS.staleIfError}`;
const PAGE_SURROGATE_CONTROL = `max-age=${TREE_CACHE_SECONDS.surrogateMaxAge}, stale-while-revalidate=${TREE_CACHE_SECONDS.staleWhileRevalidate}, stale-if-error=${TREE_CACHE_SECONDS.staleIfError}`;
/** Files are content-addressed: a path never changes its bytes. */
export const FILE_CACHE_CONTROL = 'max-age=31536000, public, immutable';

const TREE_WIDE = new Set([LAST_MODIFIED_KEY, SERVER_KEY_KEY, STATE_KEY]);
const ROOT = new Set<string>(Object.values(ROOT_KEYS));
const INDEX_FILES = new Set(['index.html', 'index.v1_html', 'index.v1_json']);

/** True for distribution files and their metadata: immutable, never tagged. */
export function isFileKey(key: string): boolean {
  return key.startsWith('packages/');
}

/** The project a `simple/<name>/…` or `pypi/<name>/…` key belongs to, or null. */
function projectOf(key: string): string | null {
  const m = /^(?:simple|pypi)\/([^/]+)\//.exec(key);
  return m ? m[1]! : null;
}

/** The surrogate keys of the responses that serve `key` (none for files and keys outside the layout). */
export function surrogateKeysOf(key: string): string[] {
  if (ROOT.has(key) || TREE_WIDE.has(key)) return [ALL_PROJECTS_KEY];
  const name = projectOf(key);
  return name === null ? [] : [projectKey(name)];
}

/** The caching headers to keep with `key` in a store that serves it (S3). */
export function cacheHeadersOf(key: string): CacheHeaders {
  if (isFileKey(key)) return { cacheControl: FILE_CACHE_CONTROL };
  const keys = surrogateKeysOf(key);
  return {
    cacheControl: PAGE_CACHE_CONTROL,
    surrogateControl: PAGE_SURROGATE_CONTROL,
    ...(keys.length > 0 ? { surrogateKey: keys.join(' ') } : {}),
  };
}

/** A key's path segments as a URL path: RFC 3986 pchars (`+`, `!`, …) stay as clients write them. */
function pathOf(key: string): string {
  return '/' + key.split('/').map((s) => encodeURIComponent(s).replace(/%(2B|24|26|2C|3B|3D|3A|40)/g, (m) => decodeURIComponent(m))).join('/');
}

/** Every URL path that serves `key`: a folder's index pages are also served at the folder's URL. */
export function urlsOf(key: string): string[] {
  const path = pathOf(key);
  const slash = key.lastIndexOf('/');
  const base = key.slice(slash + 1);
  if (key.startsWith('simple/') && INDEX_FILES.has(base)) return [path.slice(0, path.length - base.length), path];
  if (key.startsWith('simple/') && base === 'serversig' && slash > 'simple/'.length) {
    return [path, pathOf(`serversig/${key.slice('simple/'.length, slash)}`)];
  }
  return [path];
}

/** The tree keys a batch wrote or deleted when the engine did not list them: each project's pages, and the root. */
export function impliedKeys(projects: Iterable<string>, rootWritten: boolean): string[] {
  const keys: string[] = [];
  for (const name of projects) {
    const k = projectKeys(name);
    keys.push(k.html, k.v1Html, k.v1Json, k.serverSig, k.jsonApi);
  }
  if (rootWritten) keys.push(...ROOT, LAST_MODIFIED_KEY, STATE_KEY);
  return keys;
}
