/**
 * What a project's pages link to, read back from their bytes: the engine needs
 * it to know which files to copy before a page goes up and which to delete
 * after a page stops linking them; `pyedge verify` checks every one.
 */
import { PyedgeError } from '../core/errors.js';
import { PACKAGE_PATH } from '../core/hashes.js';

/** A distribution file (or its PEP 658 metadata) a page links to. */
export interface FileLink {
  /** Tree key: `packages/<b2[0:2]>/<b2[2:4]>/<b2[4:]>/<filename>`. */
  readonly path: string;
  readonly sha256: string;
  /** Null when the page does not say. */
  readonly size: number | null;
  /** sha256 of `<path>.metadata` when the page offers it (PEP 658), else null. */
  readonly metadataSha256: string | null;
}

/** The facts of a project's pages the engine and the checker use. */
export interface ProjectLinks {
  /** Normalized name, from the Simple JSON page. */
  readonly name: string;
  /** `meta._last-serial` of the Simple JSON page. */
  readonly serial: number;
  /** Every linked file by path (Simple page and JSON API together). */
  readonly files: ReadonlyMap<string, FileLink>;
  /** The releases the JSON API lists (its `releases` keys); empty without a JSON API page. */
  readonly versions: readonly string[];
  /** `last_serial` of the JSON API page, or null when there is none. */
  readonly jsonApiSerial: number | null;
}

/** The same path at the end of an absolute URL (JSON API `url`s). */
const PACKAGE_URL_TAIL = /\/(packages\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{60}\/[^/?#]+)$/;

function malformed(what: string, why: string): PyedgeError {
  return new PyedgeError('PYEDGE_STORAGE', `${what} is not a page this tree can read: ${why}.`, { what });
}

function decodePath(path: string): string | null {
  try {
    const decoded = path.split('/').map(decodeURIComponent).join('/');
    return PACKAGE_PATH.test(decoded) ? decoded : null;
  } catch {
    return null;
  }
}

/** The tree key a project page's relative link (`../../packages/…`) points to, or null when it leaves the tree. */
export function pathOfRelativeLink(href: string): string | null {
  const bare = href.replace(/#.*$/, '');
  return bare.startsWith('../../') ? decodePath(bare.slice('../../'.length)) : null;
}

/** The tree key of a JSON API file URL (absolute, ending in `/packages/…`), or null. */
export function pathOfFileUrl(url: string): string | null {
  const m = PACKAGE_URL_TAIL.exec(url.replace(/[?#].*$/, ''));
  return m ? decodePath(m[1]!) : null;
}

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

function parse(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw malformed(what, (err as Error).message);
  }
  const obj = record(value);
  if (obj === null) throw malformed(what, 'not a JSON object');
  return obj;
}

/** Name, serial and linked files of a PEP 691 JSON project page. */
export function simpleJsonLinks(bytes: Uint8Array, what = 'Simple JSON page'): { name: string; serial: number; files: FileLink[] } {
  const page = parse(bytes, what);
  const serial = record(page.meta)?.['_last-serial'];
  if (typeof page.name !== 'string' || typeof serial !== 'number') throw malformed(what, 'no name or meta._last-serial');
  if (!Array.isArray(page.files)) throw malformed(what, 'no files list');
  const files: FileLink[] = [];
  for (const entry of page.files) {
    const f = record(entry);
    const sha256 = record(f?.hashes)?.sha256;
    if (!f || typeof f.url !== 'string' || typeof sha256 !== 'string') throw malformed(what, 'a file without url or sha256');
    const path = pathOfRelativeLink(f.url);
    if (path === null) throw malformed(what, `a link outside packages/: ${f.url}`);
    const meta = record(f['core-metadata']);
    files.push({
      path,
      sha256,
      size: typeof f.size === 'number' ? f.size : null,
      metadataSha256: typeof meta?.sha256 === 'string' ? meta.sha256 : null,
    });
  }
  return { name: page.name, serial, files };
}

/** Serial, releases and linked files of a JSON API page (`/pypi/<name>/json` or a release's). */
export function jsonApiLinks(bytes: Uint8Array, what = 'JSON API page'): { serial: number; versions: string[]; files: FileLink[] } {
  const doc = parse(bytes, what);
  if (typeof doc.last_serial !== 'number') throw malformed(what, 'no last_serial');
  const files: FileLink[] = [];
  const add = (entry: unknown): void => {
    const f = record(entry);
    const sha256 = record(f?.digests)?.sha256;
    if (!f || typeof f.url !== 'string' || typeof sha256 !== 'string') throw malformed(what, 'a file without url or digests');
    const path = pathOfFileUrl(f.url);
    // A link to elsewhere (an origin the tree does not mirror) is not the tree's to copy.
    if (path !== null) files.push({ path, sha256, size: typeof f.size === 'number' ? f.size : null, metadataSha256: null });
  };
  if (Array.isArray(doc.urls)) doc.urls.forEach(add);
  const releases = record(doc.releases);
  const versions = releases ? Object.keys(releases) : [];
  for (const v of versions) {
    const list = releases![v];
    if (Array.isArray(list)) list.forEach(add);
  }
  return { serial: doc.last_serial, versions, files };
}

/** Reads a project's links from its Simple JSON page and (when there is one) its JSON API page. */
export function projectLinks(json: Uint8Array, jsonApi: Uint8Array | null): ProjectLinks {
  const simple = simpleJsonLinks(json);
  const files = new Map<string, FileLink>();
  let versions: string[] = [];
  let jsonApiSerial: number | null = null;
  if (jsonApi !== null) {
    const api = jsonApiLinks(jsonApi);
    versions = api.versions;
    jsonApiSerial = api.serial;
    for (const f of api.files) files.set(f.path, f);
  }
  // The Simple page's entry wins: only it says whether metadata is served.
  for (const f of simple.files) files.set(f.path, f);
  return { name: simple.name, serial: simple.serial, files, versions, jsonApiSerial };
}

const HREF = /<a\s[^>]*?href="([^"]*)"/g;
const SERIAL_COMMENT = /<!--SERIAL (\d+)-->\s*$/;

function unescapeHtml(s: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"' };
  return s.replace(/&(amp|lt|gt|quot|#\d+|#x[0-9a-f]+);/gi, (whole, e: string) => {
    if (e.startsWith('#')) return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return named[e.toLowerCase()] ?? whole;
  });
}

/** The `href`s of an HTML page's anchors (entities decoded) and its `<!--SERIAL n-->` trailer. */
export function htmlLinks(bytes: Uint8Array): { hrefs: string[]; serial: number | null } {
  const text = Buffer.from(bytes).toString('utf8');
  const hrefs = [...text.matchAll(HREF)].map((m) => unescapeHtml(m[1]!));
  const serial = SERIAL_COMMENT.exec(text);
  return { hrefs, serial: serial ? Number(serial[1]) : null };
}
