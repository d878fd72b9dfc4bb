/**
 * The static tree's keys: bandersnatch's layout (so existing nginx configs keep
 * working) plus our signatures and state object.
 *
 *   simple/index.html, index.v1_html, index.v1_json     root index
 *   simple/<name>/index.html, index.v1_html, index.v1_json, serversig
 *   pypi/<name>/json, pypi/<name>/<version>/json        JSON API
 *   packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<file>[.metadata]
 *   serverkey, last-modified, pyedge-state.json
 */

export const ROOT_KEYS = Object.freeze({
  html: 'simple/index.html',
  v1Html: 'simple/index.v1_html',
  v1Json: 'simple/index.v1_json',
});

export const SERVER_KEY_KEY = 'serverkey';
export const LAST_MODIFIED_KEY = 'last-modified';
export const STATE_KEY = 'pyedge-state.json';

/** The keys of one project's pages. */
export interface ProjectKeys {
  readonly html: string;
  readonly v1Html: string;
  readonly v1Json: string;
  readonly serverSig: string;
  readonly jsonApi: string;
  /** Everything under `simple/<name>/`. */
  readonly simplePrefix: string;
  /** Everything under `pypi/<name>/`. */
  readonly pypiPrefix: string;
}

export function projectKeys(name: string): ProjectKeys {
  const simple = `simple/${name}/`;
  const pypi = `pypi/${name}/`;
  return {
    html: `${simple}index.html`,
    v1Html: `${simple}index.v1_html`,
    v1Json: `${simple}index.v1_json`,
    serverSig: `${simple}serversig`,
    jsonApi: `${pypi}json`,
    simplePrefix: simple,
    pypiPrefix: pypi,
  };
}

export function releaseKey(name: string, version: string): string {
  return `pypi/${name}/${version}/json`;
}

/** The version a `pypi/<name>/<version>/json` key names, or null for other keys. */
export function versionOfKey(name: string, key: string): string | null {
  const prefix = `pypi/${name}/`;
  if (!key.startsWith(prefix) || !key.endsWith('/json')) return null;
  const version = key.slice(prefix.length, -'/json'.length);
  return version === '' || version.includes('/') ? null : version;
}

/** The metadata file PEP 658 puts beside a distribution. */
export function metadataKey(path: string): string {
  return `${path}.metadata`;
}

/** Content types for stores that keep one (S3): what a bucket-backed CDN should send. */
export const CONTENT_TYPES = Object.freeze({
  html: 'text/html; charset=utf-8',
  v1Html: 'application/vnd.pypi.simple.v1+html',
  v1Json: 'application/vnd.pypi.simple.v1+json',
  json: 'application/json',
  text: 'text/plain; charset=utf-8',
  file: 'application/octet-stream',
});
