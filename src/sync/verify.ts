/**
 * The checker behind `pyedge verify`: a tree is consistent (DESIGN.md §4) when
 * every link resolves, every hash matches, every project in the root has a
 * page and every page is listed, every page's signature verifies against the
 * tree's `serverkey`, and the recorded serial is not ahead of the pages.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { BlobNotFoundError } from '../core/errors.js';
import { normalizeName } from '../core/names.js';
import { verifyPage, type ServerSig } from '../core/signing.js';
import { htmlLinks, jsonApiLinks, pathOfRelativeLink, simpleJsonLinks, type FileLink } from './page-links.js';
import { settleLimit } from './pool.js';
import type { StaticTree } from './static-tree.js';
import { ROOT_KEYS, SERVER_KEY_KEY, STATE_KEY, metadataKey, projectKeys, versionOfKey } from './tree-layout.js';
import { parseTreeState, type TreeState } from './tree-state.js';

export interface TreeProblem {
  /** The key the problem is about. */
  readonly key: string;
  /** The project it concerns, or null for the tree as a whole. */
  readonly project: string | null;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** The serial the state object records, or null when there is none. */
  readonly serial: number | null;
  /** Projects the root lists. */
  readonly projects: number;
  /** Distinct files (and metadata files) the pages link. */
  readonly files: number;
  readonly problems: readonly TreeProblem[];
  /** Projects to fetch again to repair the tree (with a problem, or with pages the root does not list). */
  readonly projectsToRepair: readonly string[];
  /** Files whose bytes are wrong: delete them so a repair copies them again. */
  readonly corruptKeys: readonly string[];
  /** Files no page links: not a problem (a crash between a page write and a delete leaves them). */
  readonly orphans: readonly string[];
}

export interface VerifyOptions {
  /** Read every file to check its SHA-256 (default true); false checks presence and size only. */
  readonly checkHashes?: boolean;
  /** Projects checked at once. Default 8. */
  readonly concurrency?: number;
}

interface RootEntry {
  readonly name: string;
  readonly serial: number;
}

class Checker {
  readonly problems: TreeProblem[] = [];
  readonly repair = new Set<string>();
  readonly corrupt = new Set<string>();
  readonly linked = new Set<string>();
  readonly #hashed = new Map<string, Promise<string | null>>();
  /** `pypi/<name>/<version>/json` keys by project. */
  readonly releaseKeys = new Map<string, string[]>();

  constructor(
    readonly tree: StaticTree,
    readonly sizes: ReadonlyMap<string, number>,
    readonly checkHashes: boolean,
  ) {
    for (const key of sizes.keys()) {
      const m = /^pypi\/([^/]+)\/[^/]+\/json$/.exec(key);
      if (m) this.releaseKeys.set(m[1]!, [...(this.releaseKeys.get(m[1]!) ?? []), key]);
    }
  }

  add(key: string, project: string | null, message: string): void {
    this.problems.push({ key, project, message });
    if (project !== null) this.repair.add(project);
  }

  /** SHA-256 of a blob, each blob read once however many pages link it. */
  sha256(key: string): Promise<string | null> {
    let h = this.#hashed.get(key);
    if (h === undefined) {
      h = (async () => {
        try {
          const hash = createHash('sha256');
          for await (const chunk of (await this.tree.store.get(key)).body) hash.update(chunk as Buffer);
          return hash.digest('hex');
        } catch (err) {
          if (err instanceof BlobNotFoundError) return null;
          throw err;
        }
      })();
      this.#hashed.set(key, h);
    }
    return h;
  }

  async checkBlob(key: string, project: string, sha256: string, size: number | null): Promise<void> {
    this.linked.add(key);
    const have = this.sizes.get(key);
    if (have === undefined) return this.add(key, project, 'linked file is missing');
    if (size !== null && have !== size) {
      this.corrupt.add(key);
      return this.add(key, project, `file has ${have} bytes, the page says ${size}`);
    }
    if (this.checkHashes && (await this.sha256(key)) !== sha256) {
      this.corrupt.add(key);
      this.add(key, project, `file's sha256 does not match the page's ${sha256}`);
    }
  }
}

function parseObject(bytes: Buffer): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

async function checkProject(c: Checker, entry: RootEntry, publicKey: KeyObject | null): Promise<void> {
  const { name } = entry;
  const keys = projectKeys(name);
  for (const k of [keys.html, keys.v1Html, keys.v1Json, keys.serverSig]) if (!c.sizes.has(k)) c.add(k, name, 'page is missing');
  const [html, v1Html, json, sigBytes] = await Promise.all([keys.html, keys.v1Html, keys.v1Json, keys.serverSig].map((k) => c.tree.read(k)));
  if (json === null || json === undefined || html === null || html === undefined) return;

  let page: ReturnType<typeof simpleJsonLinks>;
  try {
    page = simpleJsonLinks(json, keys.v1Json);
  } catch (err) {
    return c.add(keys.v1Json, name, (err as Error).message);
  }
  if (page.name !== name) c.add(keys.v1Json, name, `page is for project '${page.name}'`);
  if (page.serial < entry.serial) c.add(keys.v1Json, name, `page is at serial ${page.serial}, older than the root's ${entry.serial} (replayed?)`);
  if (v1Html !== null && v1Html !== undefined && !html.equals(v1Html)) c.add(keys.v1Html, name, 'differs from index.html');
  const h = htmlLinks(html);
  if (h.serial !== page.serial) c.add(keys.html, name, `HTML page is at serial ${h.serial}, the JSON page at ${page.serial}`);
  const htmlSet = new Set(h.hrefs.map((href) => `${pathOfRelativeLink(href)}#${/#sha256=([0-9a-f]+)/.exec(href)?.[1]}`));
  const jsonSet = new Set(page.files.map((f) => `${f.path}#${f.sha256}`));
  if (htmlSet.size !== jsonSet.size || [...jsonSet].some((x) => !htmlSet.has(x))) c.add(keys.html, name, 'HTML and JSON pages link different files');

  if (sigBytes !== null && sigBytes !== undefined && publicKey !== null) {
    const sig = parseObject(sigBytes) as ServerSig | null;
    if (sig === null || typeof sig.serial !== 'number' || !sig.html || !sig.json) {
      c.add(keys.serverSig, name, 'signature document is unreadable');
    } else {
      if (sig.serial !== page.serial) c.add(keys.serverSig, name, `signature is for serial ${sig.serial}, the page is at ${page.serial}`);
      const expected = { name, minSerial: entry.serial };
      const bad = verifyPage(publicKey, sig, expected, 'html', html) ?? verifyPage(publicKey, sig, expected, 'json', json);
      if (bad !== null) c.add(keys.serverSig, name, bad);
    }
  }

  const files = new Map<string, FileLink>();
  const apiVersions = new Set<string>();
  if (c.sizes.has(keys.jsonApi)) {
    const api = await c.tree.read(keys.jsonApi);
    try {
      const links = jsonApiLinks(api ?? Buffer.alloc(0), keys.jsonApi);
      if (links.serial !== page.serial) c.add(keys.jsonApi, name, `JSON API is at serial ${links.serial}, the Simple page at ${page.serial}`);
      for (const f of links.files) files.set(f.path, f);
      for (const v of links.versions) apiVersions.add(v);
    } catch (err) {
      c.add(keys.jsonApi, name, (err as Error).message);
    }
  }
  for (const key of c.releaseKeys.get(name) ?? []) if (!apiVersions.has(versionOfKey(name, key)!)) c.add(key, name, 'release page no JSON API page lists');
  for (const version of apiVersions) {
    const key = `${keys.pypiPrefix}${version}/json`;
    const doc = await c.tree.read(key);
    if (doc === null) {
      c.add(key, name, 'release page is missing');
      continue;
    }
    try {
      const links = jsonApiLinks(doc, key);
      if (links.serial !== page.serial) c.add(key, name, `release page is at serial ${links.serial}, the Simple page at ${page.serial}`);
    } catch (err) {
      c.add(key, name, (err as Error).message);
    }
  }
  for (const f of page.files) files.set(f.path, f);
  for (const f of files.values()) {
    await c.checkBlob(f.path, name, f.sha256, f.size);
    if (f.metadataSha256 !== null) await c.checkBlob(metadataKey(f.path), name, f.metadataSha256, null);
  }
}

/** Reads the root: its serial and entries, with problems for what does not agree. */
async function checkRoot(c: Checker, state: TreeState | null): Promise<RootEntry[]> {
  const [json, html, v1Html] = await Promise.all([c.tree.read(ROOT_KEYS.v1Json), c.tree.read(ROOT_KEYS.html), c.tree.read(ROOT_KEYS.v1Html)]);
  const doc = json === null ? null : parseObject(json);
  const meta = doc?.meta as Record<string, unknown> | undefined;
  if (doc === null || typeof meta?.['_last-serial'] !== 'number' || !Array.isArray(doc.projects)) {
    c.add(ROOT_KEYS.v1Json, null, json === null ? 'root index is missing' : 'root index is unreadable');
    return [];
  }
  const rootSerial = meta['_last-serial'];
  if (state !== null && state.serial > rootSerial) c.add(STATE_KEY, null, `state records serial ${state.serial}, ahead of the root index at ${rootSerial}`);
  const entries: RootEntry[] = [];
  for (const p of doc.projects as Record<string, unknown>[]) {
    if (typeof p.name === 'string' && typeof p['_last-serial'] === 'number') entries.push({ name: normalizeName(p.name), serial: p['_last-serial'] });
    else c.add(ROOT_KEYS.v1Json, null, 'root index has an entry without name or _last-serial');
  }
  if (html === null) c.add(ROOT_KEYS.html, null, 'root index HTML is missing');
  else {
    if (v1Html === null || !html.equals(v1Html)) c.add(ROOT_KEYS.v1Html, null, 'differs from index.html');
    const hrefs = new Set(htmlLinks(html).hrefs.map((href) => decodeURIComponent(href.replace(/\/$/, ''))));
    const names = new Set(entries.map((e) => e.name));
    if (hrefs.size !== names.size || [...names].some((n) => !hrefs.has(n))) c.add(ROOT_KEYS.html, null, 'HTML and JSON root indexes list different projects');
  }
  return entries;
}

/** Checks the whole tree. Reads every page, and every file unless `checkHashes` is false. */
export async function verifyTree(tree: StaticTree, options: VerifyOptions = {}): Promise<VerifyReport> {
  const sizes = new Map<string, number>();
  for await (const e of tree.store.list('')) sizes.set(e.key, e.size);
  const c = new Checker(tree, sizes, options.checkHashes ?? true);

  let state: TreeState | null = null;
  const stateBytes = await tree.read(STATE_KEY);
  if (stateBytes === null) c.add(STATE_KEY, null, 'state object is missing');
  else {
    try {
      state = parseTreeState(stateBytes);
    } catch (err) {
      c.add(STATE_KEY, null, (err as Error).message);
    }
  }
  let publicKey: KeyObject | null = null;
  const pem = await tree.read(SERVER_KEY_KEY);
  try {
    if (pem === null) throw new Error('missing');
    publicKey = createPublicKey(pem);
  } catch {
    c.add(SERVER_KEY_KEY, null, pem === null ? 'serverkey is missing' : 'serverkey is not a PEM public key');
  }

  const entries = await checkRoot(c, state);
  const listed = new Set(entries.map((e) => e.name));
  const settled = await settleLimit(entries, options.concurrency ?? 8, (e) => checkProject(c, e, publicKey));
  settled.forEach((s, i) => {
    if (s.status === 'rejected') c.add(`simple/${entries[i]!.name}/`, entries[i]!.name, `could not be read: ${(s.reason as Error).message}`);
  });
  const unlisted = new Map<string, string>();
  for (const key of sizes.keys()) {
    const m = /^(simple|pypi)\/([^/]+)\//.exec(key);
    if (m && !listed.has(m[2]!) && !unlisted.has(m[2]!)) unlisted.set(m[2]!, key);
  }
  for (const [name, key] of unlisted) c.add(key, name, 'pages of a project the root index does not list');
  const orphans = [...sizes.keys()].filter((k) => k.startsWith('packages/') && !c.linked.has(k));
  return {
    ok: c.problems.length === 0,
    serial: state?.serial ?? null,
    projects: entries.length,
    files: c.linked.size,
    problems: c.problems,
    projectsToRepair: [...c.repair],
    corruptKeys: [...c.corrupt],
    orphans,
  };
}
