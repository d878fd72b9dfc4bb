/**
 * Simple API project pages as the proxy sees them: parsed from an upstream's
 * PEP 691 JSON or PEP 503 HTML, and rendered again in the format the client
 * negotiated with each file link pointing at the proxy's `/_files/` route.
 * What the proxy does not understand is carried over untouched (unknown JSON
 * keys; every attribute of an HTML anchor but `href`).
 */
import { escapeHtml } from '../render/escape-html.js';
import { contentTypeOf, type SimpleFormat } from '../render/negotiate.js';
import { UpstreamFailure } from './upstream-client.js';

/** Hash names pip accepts (hashlib's guaranteed set), strongest first. */
export const HASH_NAMES = ['sha512', 'sha384', 'sha256', 'sha224', 'sha1', 'md5'] as const;
export type HashName = (typeof HASH_NAMES)[number];

/** The hash a file is addressed and checked by: sha256 when the page has it. */
export interface FileHash {
  readonly name: HashName;
  readonly hex: string;
}

export interface PageFile {
  readonly filename: string;
  /** Absolute URL on the upstream the page came from. */
  readonly url: string;
  readonly hashes: Readonly<Record<string, string>>;
  readonly requiresPython: string | null;
  readonly yanked: boolean | string;
  /** PEP 658/714: false, true (served, hash unknown) or its hashes. */
  readonly coreMetadata: false | true | Readonly<Record<string, string>>;
  /** The file's JSON object as the upstream sent it (JSON pages). */
  readonly json: Readonly<Record<string, unknown>> | null;
  /** The anchor's attributes as the upstream sent them (HTML pages), decoded. */
  readonly attributes: readonly (readonly [string, string])[] | null;
}

export interface ProjectPage {
  readonly name: string;
  /** The project's serial (`_last-serial`, the HTML `<!--SERIAL n-->` trailer or `X-PyPI-Last-Serial`), or null. */
  readonly serial: number | null;
  readonly source: 'json' | 'html';
  readonly apiVersion: string;
  /** The JSON page's top-level keys other than `files` and `meta`, or the HTML page's pypi meta tags. */
  readonly json: Readonly<Record<string, unknown>> | null;
  readonly meta: readonly (readonly [string, string])[];
  readonly files: readonly PageFile[];
}

/** The hash the proxy keys a file by, or null when the page gives none it knows. */
export function fileHash(file: Pick<PageFile, 'hashes'>): FileHash | null {
  const sha256 = file.hashes.sha256;
  if (typeof sha256 === 'string' && /^[0-9a-f]{64}$/i.test(sha256)) return { name: 'sha256', hex: sha256.toLowerCase() };
  for (const name of HASH_NAMES) {
    const hex = file.hashes[name];
    if (typeof hex === 'string' && /^[0-9a-f]+$/i.test(hex)) return { name, hex: hex.toLowerCase() };
  }
  return null;
}

/** The metadata file's hash (PEP 658), or null when unknown. */
export function metadataHash(file: Pick<PageFile, 'coreMetadata'>): FileHash | null {
  return typeof file.coreMetadata === 'object' ? fileHash({ hashes: file.coreMetadata }) : null;
}

/** `sha256` hashes are written bare; others as `<name>-<hex>`. */
export function hashSegment(hash: FileHash): string {
  return hash.name === 'sha256' ? hash.hex : `${hash.name}-${hash.hex}`;
}

export function parseHashSegment(segment: string): FileHash | null {
  const m = /^(?:(sha512|sha384|sha224|sha1|md5)-)?([0-9a-f]{32,128})$/.exec(segment);
  if (!m) return null;
  const name = (m[1] ?? 'sha256') as HashName;
  if (name === 'sha256' && m[2]!.length !== 64) return null;
  return { name, hex: m[2]! };
}

/** The proxy's URL of a file: independent of the upstream, resolved by hash. */
export function proxyFileUrl(project: string, hash: FileHash, filename: string): string {
  return `/_files/${encodeURIComponent(project)}/${hashSegment(hash)}/${encodeURIComponent(filename)}`;
}

// ---------------------------------------------------------------- parsing

const ENTITY = /&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeEntities(text: string): string {
  return text.replace(ENTITY, (_m, e: string) => {
    const lower = e.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    return NAMED[lower] ?? `&${e};`;
  });
}

function attributesOf(tag: string): [string, string][] {
  const out: [string, string][] = [];
  const re = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(tag)) !== null) out.push([m[1]!.toLowerCase(), decodeEntities(m[2] ?? m[3] ?? m[4] ?? '')]);
  return out;
}

function invalid(message: string): UpstreamFailure {
  return new UpstreamFailure('invalid', message);
}

function metadataValue(value: string): false | true | Record<string, string> {
  if (value === 'true' || value === '') return true;
  const eq = value.indexOf('=');
  return eq > 0 ? { [value.slice(0, eq).toLowerCase()]: value.slice(eq + 1) } : true;
}

/** A PEP 503 page: anchors with their attributes, the pypi meta tags and the serial trailer. */
export function parseHtmlPage(name: string, html: string, url: string, headerSerial: number | null): ProjectPage {
  if (!/<html|<!doctype html|<a\s/i.test(html) || html.includes('\u0000')) throw invalid('not an HTML page');
  const meta: [string, string][] = [];
  for (const m of html.matchAll(/<meta\s([^>]*)>/gi)) {
    const attrs = new Map(attributesOf(m[1]!));
    const key = attrs.get('name');
    if (key?.startsWith('pypi:')) meta.push([key, attrs.get('content') ?? '']);
  }
  const files: PageFile[] = [];
  for (const m of html.matchAll(/<a\s([^>]*)>([\s\S]*?)<\/a\s*>/gi)) {
    const attributes = attributesOf(m[1]!);
    const attrs = new Map(attributes);
    const href = attrs.get('href');
    if (href === undefined) continue;
    const absolute = new URL(href, url);
    const hashes: Record<string, string> = {};
    const fragment = /^#([a-z0-9]+)=([0-9a-f]+)$/i.exec(absolute.hash);
    if (fragment) hashes[fragment[1]!.toLowerCase()] = fragment[2]!.toLowerCase();
    absolute.hash = '';
    const text = decodeEntities(m[2]!.replace(/<[^>]*>/g, '')).trim();
    const filename = text !== '' ? text : decodeURIComponent(absolute.pathname.split('/').pop() ?? '');
    const core = attrs.get('data-core-metadata') ?? attrs.get('data-dist-info-metadata');
    const yanked = attrs.get('data-yanked');
    files.push({
      filename,
      url: absolute.toString(),
      hashes,
      requiresPython: attrs.get('data-requires-python') ?? null,
      yanked: yanked === undefined ? false : yanked === '' ? true : yanked,
      coreMetadata: core === undefined ? false : metadataValue(core),
      json: null,
      attributes,
    });
  }
  const trailer = /<!--\s*SERIAL\s+(\d+)\s*-->/.exec(html);
  const serial = trailer ? Number(trailer[1]) : headerSerial;
  const version = meta.find(([k]) => k === 'pypi:repository-version')?.[1] ?? '1.0';
  return { name, serial, source: 'html', apiVersion: version, json: null, meta, files };
}

function stringRecord(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k.toLowerCase()] = v.toLowerCase();
  }
  return out;
}

/** A PEP 691 page. */
export function parseJsonPage(name: string, body: string, url: string, headerSerial: number | null): ProjectPage {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw invalid('not a JSON page');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw invalid('not a PEP 691 page');
  const { meta, files, ...rest } = doc as Record<string, unknown>;
  if (!meta || typeof meta !== 'object' || !Array.isArray(files)) throw invalid('not a PEP 691 page (no meta or files)');
  const m = meta as Record<string, unknown>;
  const apiVersion = typeof m['api-version'] === 'string' ? m['api-version'] : '1.0';
  const serial = typeof m['_last-serial'] === 'number' ? m['_last-serial'] : headerSerial;
  const parsed: PageFile[] = files.map((f: unknown) => {
    if (!f || typeof f !== 'object') throw invalid('a file entry is not an object');
    const o = f as Record<string, unknown>;
    if (typeof o.filename !== 'string' || typeof o.url !== 'string') throw invalid('a file entry lacks filename or url');
    const core = o['core-metadata'] ?? o['data-dist-info-metadata'] ?? o['dist-info-metadata'] ?? false;
    const yanked = o.yanked;
    return {
      filename: o.filename,
      url: new URL(o.url, url).toString(),
      hashes: stringRecord(o.hashes),
      requiresPython: typeof o['requires-python'] === 'string' ? o['requires-python'] : null,
      yanked: typeof yanked === 'string' ? (yanked === '' ? true : yanked) : yanked === true,
      coreMetadata: core === true ? true : core && typeof core === 'object' ? stringRecord(core) : false,
      json: o,
      attributes: null,
    };
  });
  return { name, serial, source: 'json', apiVersion, json: { ...rest, meta: m }, meta: [], files: parsed };
}

/** Parse by the answer's content type (JSON types, else HTML). */
export function parsePage(name: string, contentType: string, body: Buffer, url: string, headerSerial: number | null): ProjectPage {
  const text = body.toString('utf8');
  return /json/i.test(contentType) ? parseJsonPage(name, text, url, headerSerial) : parseHtmlPage(name, text, url, headerSerial);
}

// ---------------------------------------------------------------- rendering

/** Where a page's file link points through the proxy (unchanged when the page gives no usable hash). */
function linkOf(page: ProjectPage, file: PageFile): string {
  const hash = fileHash(file);
  return hash === null ? file.url : proxyFileUrl(page.name, hash, file.filename);
}

function metadataAttr(core: PageFile['coreMetadata']): string | null {
  if (core === false) return null;
  if (core === true) return 'true';
  const h = fileHash({ hashes: core });
  return h === null ? 'true' : `${h.name}=${h.hex}`;
}

function anchor(page: ProjectPage, file: PageFile): string {
  const hash = fileHash(file);
  const href = linkOf(page, file) + (hash === null ? '' : `#${hash.name}=${hash.hex}`);
  let attrs = ` href="${escapeHtml(href)}"`;
  if (file.attributes !== null) {
    for (const [k, v] of file.attributes) if (k !== 'href') attrs += ` ${k}="${escapeHtml(v)}"`;
  } else {
    if (file.requiresPython !== null) attrs += ` data-requires-python="${escapeHtml(file.requiresPython)}"`;
    if (file.yanked !== false) attrs += ` data-yanked="${file.yanked === true ? '' : escapeHtml(file.yanked)}"`;
    const core = metadataAttr(file.coreMetadata);
    if (core !== null) attrs += ` data-dist-info-metadata="${escapeHtml(core)}" data-core-metadata="${escapeHtml(core)}"`;
  }
  return `    <a${attrs}>${escapeHtml(file.filename)}</a><br />\n`;
}

export function renderHtml(page: ProjectPage): string {
  const meta = page.meta.length > 0 ? page.meta : [['pypi:repository-version', page.apiVersion.startsWith('1.') ? page.apiVersion : '1.0'] as const];
  const status = page.json?.['project-status'];
  const extra: (readonly [string, string])[] = [];
  if (page.source === 'json' && status && typeof status === 'object') {
    const s = status as Record<string, unknown>;
    if (typeof s.status === 'string') extra.push(['pypi:project-status', s.status]);
    if (typeof s.reason === 'string') extra.push(['pypi:project-status-reason', s.reason]);
  }
  const head = [...meta, ...extra].map(([k, v]) => `    <meta name="${escapeHtml(k)}" content="${escapeHtml(v)}">\n`).join('');
  const name = escapeHtml(page.name);
  return (
    '<!DOCTYPE html>\n<html lang="en">\n  <head>\n' +
    head +
    `    <title>Links for ${name}</title>\n  </head>\n  <body>\n    <h1>Links for ${name}</h1>\n` +
    page.files.map((f) => anchor(page, f)).join('') +
    '  </body>\n</html>\n' +
    (page.serial === null ? '' : `<!--SERIAL ${page.serial}-->\n`)
  );
}

function fileJson(page: ProjectPage, file: PageFile): Record<string, unknown> {
  if (file.json !== null) return { ...file.json, url: linkOf(page, file) };
  const out: Record<string, unknown> = { filename: file.filename, url: linkOf(page, file), hashes: file.hashes };
  if (file.requiresPython !== null) out['requires-python'] = file.requiresPython;
  const core = file.coreMetadata === false ? false : file.coreMetadata === true ? true : file.coreMetadata;
  out['core-metadata'] = core;
  out['data-dist-info-metadata'] = core;
  out.yanked = file.yanked;
  return out;
}

export function renderJson(page: ProjectPage): string {
  const meta: Record<string, unknown> = { ...((page.json?.meta as Record<string, unknown> | undefined) ?? {}) };
  if (meta['api-version'] === undefined) meta['api-version'] = '1.0';
  if (page.serial !== null) meta['_last-serial'] = page.serial;
  const top: Record<string, unknown> = { meta, name: page.name };
  if (page.json !== null) {
    for (const [k, v] of Object.entries(page.json)) if (k !== 'meta' && k !== 'name') top[k] = v;
  } else {
    const status = page.meta.find(([k]) => k === 'pypi:project-status')?.[1];
    if (status !== undefined) {
      const reason = page.meta.find(([k]) => k === 'pypi:project-status-reason')?.[1];
      top['project-status'] = reason === undefined ? { status } : { status, reason };
    }
  }
  top.files = page.files.map((f) => fileJson(page, f));
  return JSON.stringify(top);
}

/** The page in the client's format, with its content type. */
export function renderPage(page: ProjectPage, format: SimpleFormat): { body: string; contentType: string } {
  if (format === 'json') return { body: renderJson(page), contentType: contentTypeOf('json') };
  return { body: renderHtml(page), contentType: `${contentTypeOf(format)}; charset=utf-8` };
}
