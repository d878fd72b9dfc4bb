/**
 * The checker behind `pyedge verify`: a tree is consistent (DESIGN.md §4) when
 * every link resolves, every hash matches, every project in the root has a
 * page and every page is listed, every page's signature verifies against the
 * tree's `serverkey`, and the recorded serial is not ahead of the pages.
 *
 * A batch under way, or cut short by a crash, writes pages past the recorded
 * serial one key at a time: until the next run finishes it, a project's
 * newer pages may disagree with its older ones (HTML and JSON at different
 * serials, pages not signed yet, release pages the JSON API does not list
 * yet or any more), and a root written past the recorded one may list
 * projects its HTML does not yet, or not any more. Those are `ahead`, not
 * problems — every link they make must still resolve. What no batch writes
 * (a page older than its signature or than the root, bytes that do not match
 * their signature at the same serial) stays a problem.
 *
 * The root's per-project serials may lag behind the pages (the publisher
 * refreshes them every `--root-interval`); the state object names the
 * projects whose pages are newer, and each page carries its own serial, so a
 * page older than either record is still caught.
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
  /**
   * Keys a batch under way or cut short wrote past the recorded serial, where the tree may
   * disagree with itself until the next run finishes the batch: not a problem.
   */
  readonly ahead: readonly string[];
}

export interface VerifyOptions {
  /** Read every file to check its SHA-256 (default true); false checks presence and size only. */
  readonly checkHashes?: boolean;
  /** Projects checked at once. Default 8. */
  readonly concurrency?: number;
}

interface RootEntry {
  readonly name: string;
  /** The serial its pages must have at least: the root's entry, or the state's when newer. */
  readonly serial: number;
  /** Where `serial` comes from, for the message. */
  readonly from: 'root' | 'state';
}

class Checker {
  readonly problems: TreeProblem[] = [];
  readonly repair = new Set<string>();
  readonly corrupt = new Set<string>();
  readonly linked = new Set<string>();
  readonly #hashed = new Map<string, Promise<string | null>>();
  /** `pypi/<name>/<version>/json` keys by project. */
  readonly releaseKeys = new Map<string, string[]>();
  /** The newest serial a listed project's Simple page shows. */
  newestPage = -1;
  /** See VerifyReport.ahead. */
  readonly ahead = new Set<string>();

  constructor(
    readonly tree: StaticTree,
    readonly sizes: ReadonlyMap<string, number>,
    readonly checkHashes: boolean,
    /** The serial the state object records (-1: none). */
    readonly recorded: number,
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

  /** Whether a page at `serial` was written past the recorded serial (by a batch not finished). */
  isAhead(serial: number | null | undefined): boolean {
    return typeof serial === 'number' && serial > this.recorded;
  }

  /**
   * Two pages of one project that should agree: at the same serial `same()` checks them, else the
   * newer one must be ahead of the recorded serial (noted under `key`), or it is a problem.
   */
  agree(key: string, project: string, a: number | null, b: number | null, message: string, same?: () => void): void {
    if (a === b) same?.();
    else if (this.isAhead(Math.max(a ?? -1, b ?? -1))) this.ahead.add(key);
    else this.add(key, project, message);
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

/** A file link of an HTML page, when it names a file of the tree and its sha256. */
function htmlFileLinks(bytes: Buffer): FileLink[] {
  const out: FileLink[] = [];
  for (const href of htmlLinks(bytes).hrefs) {
    const path = pathOfRelativeLink(href);
    const sha256 = /#sha256=([0-9a-f]{64})/.exec(href)?.[1];
    if (path !== null && sha256 !== undefined) out.push({ path, sha256, size: null, metadataSha256: null });
  }
  return out;
}

/**
 * Checks one project's pages, and every file any of them links. `entry` is its root entry (null
 * when the root's JSON does not list it); with `listed`, every Simple page must be there.
 * Resolves to the serials its pages show.
 */
async function checkProject(c: Checker, name: string, entry: RootEntry | null, listed: boolean, publicKey: KeyObject | null): Promise<number[]> {
  const keys = projectKeys(name);
  const serials: number[] = [];
  const problem = (key: string, message: string): void => c.add(key, name, message);
  if (listed) for (const k of [keys.html, keys.v1Html, keys.v1Json, keys.serverSig]) if (!c.sizes.has(k)) problem(k, 'page is missing');
  const [html, v1Html, json, sigBytes] = await Promise.all([keys.html, keys.v1Html, keys.v1Json, keys.serverSig].map((k) => c.tree.read(k)));
  const files = new Map<string, FileLink>();

  let page: ReturnType<typeof simpleJsonLinks> | null = null;
  if (json) {
    try {
      page = simpleJsonLinks(json, keys.v1Json);
      serials.push(page.serial);
      if (page.name !== name) problem(keys.v1Json, `page is for project '${page.name}'`);
      else if (listed) c.newestPage = Math.max(c.newestPage, page.serial);
    } catch (err) {
      problem(keys.v1Json, (err as Error).message);
    }
  }
  const h = html ? htmlLinks(html) : null;
  // index.v1_html has index.html's bytes, unless a batch was cut short between the two.
  const v1Differs = html && v1Html && !html.equals(v1Html) ? v1Html : null;
  const vh = v1Differs ? htmlLinks(v1Differs) : null;
  for (const p of [h, vh]) if (p?.serial !== null && p?.serial !== undefined) serials.push(p.serial);
  for (const bytes of [html, v1Differs]) for (const f of bytes ? htmlFileLinks(bytes) : []) files.set(f.path, f);

  if (entry !== null) {
    for (const [key, serial] of [[keys.v1Json, page?.serial], [keys.html, h?.serial], [keys.v1Html, vh?.serial]] as const) {
      if (typeof serial === 'number' && serial < entry.serial) problem(key, `page is at serial ${serial}, older than the ${entry.from}'s ${entry.serial} (replayed?)`);
    }
  }
  if (v1Differs && h && vh) c.agree(keys.v1Html, name, h.serial, vh.serial, 'differs from index.html', () => problem(keys.v1Html, 'differs from index.html'));
  if (h && page) {
    const p = page;
    c.agree(keys.html, name, h.serial, p.serial, `HTML page is at serial ${h.serial}, the JSON page at ${p.serial}`, () => {
      const htmlSet = new Set(h.hrefs.map((href) => `${pathOfRelativeLink(href)}#${/#sha256=([0-9a-f]+)/.exec(href)?.[1]}`));
      const jsonSet = new Set(p.files.map((f) => `${f.path}#${f.sha256}`));
      if (htmlSet.size !== jsonSet.size || [...jsonSet].some((x) => !htmlSet.has(x))) problem(keys.html, 'HTML and JSON pages link different files');
    });
  }

  if (sigBytes && publicKey !== null) {
    const sig = parseObject(sigBytes) as ServerSig | null;
    if (sig === null || typeof sig.serial !== 'number' || !sig.html || !sig.json) {
      problem(keys.serverSig, 'signature document is unreadable');
    } else {
      serials.push(sig.serial);
      const expected = entry !== null ? { name, minSerial: entry.serial } : { name };
      const bad = new Set<string>();
      const signed = [['json', json, page?.serial, keys.v1Json], ['html', html, h?.serial, keys.html], ['html', v1Differs, vh?.serial, keys.v1Html]] as const;
      for (const [format, bytes, serial, key] of signed) {
        if (!bytes) continue;
        if (serial === sig.serial) {
          const why = verifyPage(publicKey, sig, expected, format, bytes);
          if (why !== null) bad.add(why);
        } else if (typeof serial === 'number' && serial > sig.serial && c.isAhead(serial)) {
          // Written, and its signature not yet: the signature goes up right after the Simple pages.
          c.ahead.add(key);
        } else {
          bad.add(`signature is for serial ${sig.serial}, the page is at ${serial ?? 'no serial'}`);
        }
      }
      for (const why of bad) problem(keys.serverSig, why);
    }
  }

  const apiVersions = new Set<string>();
  let apiSerial: number | null = null;
  if (c.sizes.has(keys.jsonApi)) {
    const api = await c.tree.read(keys.jsonApi);
    try {
      const links = jsonApiLinks(api ?? Buffer.alloc(0), keys.jsonApi);
      apiSerial = links.serial;
      serials.push(links.serial);
      if (page) c.agree(keys.jsonApi, name, links.serial, page.serial, `JSON API is at serial ${links.serial}, the Simple page at ${page.serial}`);
      for (const f of links.files) files.set(f.path, f);
      for (const v of links.versions) apiVersions.add(v);
    } catch (err) {
      problem(keys.jsonApi, (err as Error).message);
    }
  }
  const releaseKeys = new Set(c.releaseKeys.get(name) ?? []);
  for (const version of apiVersions) {
    const key = `${keys.pypiPrefix}${version}/json`;
    if (!releaseKeys.has(key)) problem(key, 'release page is missing');
  }
  for (const key of releaseKeys) {
    const doc = await c.tree.read(key);
    if (doc === null) continue;
    try {
      const links = jsonApiLinks(doc, key);
      serials.push(links.serial);
      for (const f of links.files) if (!files.has(f.path)) files.set(f.path, f);
      if (!apiVersions.has(versionOfKey(name, key)!)) {
        // A new release's page goes up before the JSON API that lists it; a removed one's goes
        // after. A removed project's go after its JSON API page: an unlisted project's pages are
        // judged as a whole.
        if (c.isAhead(links.serial) || c.isAhead(apiSerial)) c.ahead.add(key);
        else if (listed) problem(key, 'release page no JSON API page lists');
      } else if (page) {
        c.agree(key, name, links.serial, page.serial, `release page is at serial ${links.serial}, the Simple page at ${page.serial}`);
      }
    } catch (err) {
      problem(key, (err as Error).message);
    }
  }
  for (const f of page?.files ?? []) files.set(f.path, f);
  for (const f of files.values()) {
    await c.checkBlob(f.path, name, f.sha256, f.size);
    if (f.metadataSha256 !== null) await c.checkBlob(metadataKey(f.path), name, f.metadataSha256, null);
  }
  return serials;
}

/**
 * Reads the root: its serial and entries (raised to the state's newer serials), with problems for
 * what does not agree. `htmlOnly`: projects its HTML lists and its JSON does not (a root written
 * past the recorded one may still list in HTML what its JSON no longer does, and their pages stay).
 */
async function checkRoot(c: Checker, state: TreeState | null): Promise<{ serial: number; entries: RootEntry[]; htmlOnly: string[]; ahead: boolean }> {
  const [json, html, v1Html] = await Promise.all([c.tree.read(ROOT_KEYS.v1Json), c.tree.read(ROOT_KEYS.html), c.tree.read(ROOT_KEYS.v1Html)]);
  const doc = json === null ? null : parseObject(json);
  const meta = doc?.meta as Record<string, unknown> | undefined;
  if (doc === null || typeof meta?.['_last-serial'] !== 'number' || !Array.isArray(doc.projects)) {
    c.add(ROOT_KEYS.v1Json, null, json === null ? 'root index is missing' : 'root index is unreadable');
    return { serial: -1, entries: [], htmlOnly: [], ahead: false };
  }
  const rootSerial = meta['_last-serial'];
  if (state !== null && state.rootSerial > rootSerial) {
    const what = state.rootSerial === state.serial ? `serial ${state.serial}` : `the root index at serial ${state.rootSerial}`;
    c.add(STATE_KEY, null, `state records ${what}, ahead of the root index at ${rootSerial}${state.rootSerial === state.serial ? '' : ' (replayed?)'}`);
  }
  if (state !== null && state.rootSerial > state.serial) c.add(STATE_KEY, null, `state records the root index at serial ${state.rootSerial}, ahead of its own serial ${state.serial}`);
  const entries: RootEntry[] = [];
  for (const p of doc.projects as Record<string, unknown>[]) {
    if (typeof p.name === 'string' && typeof p['_last-serial'] === 'number') {
      const name = normalizeName(p.name);
      const newer = state?.newer[name];
      entries.push(newer !== undefined && newer > p['_last-serial'] ? { name, serial: newer, from: 'state' } : { name, serial: p['_last-serial'], from: 'root' });
    } else c.add(ROOT_KEYS.v1Json, null, 'root index has an entry without name or _last-serial');
  }
  // The JSON root goes up first: past the recorded root, the HTML may still be the previous one.
  const ahead = rootSerial > (state?.rootSerial ?? -1);
  if (ahead) c.ahead.add(ROOT_KEYS.v1Json);
  const names = new Set(entries.map((e) => e.name));
  const htmlOnly = new Set<string>();
  const differs = (key: string, message: string): void => (ahead ? void c.ahead.add(key) : c.add(key, null, message));
  if (html === null) c.add(ROOT_KEYS.html, null, 'root index HTML is missing');
  else {
    if (v1Html === null) c.add(ROOT_KEYS.v1Html, null, 'differs from index.html');
    else if (!html.equals(v1Html)) differs(ROOT_KEYS.v1Html, 'differs from index.html');
    let listsOthers = false;
    for (const bytes of v1Html === null || html.equals(v1Html) ? [html] : [html, v1Html]) {
      const hrefs = new Set(htmlLinks(bytes).hrefs.map((href) => decodeURIComponent(href.replace(/\/$/, ''))));
      if (hrefs.size !== names.size || [...names].some((n) => !hrefs.has(n))) listsOthers = true;
      if (ahead) for (const n of hrefs) if (!names.has(normalizeName(n))) htmlOnly.add(normalizeName(n));
    }
    if (listsOthers) differs(ROOT_KEYS.html, 'HTML and JSON root indexes list different projects');
  }
  return { serial: rootSerial, entries, htmlOnly: [...htmlOnly], ahead };
}

/** Checks the whole tree. Reads every page, and every file unless `checkHashes` is false. */
export async function verifyTree(tree: StaticTree, options: VerifyOptions = {}): Promise<VerifyReport> {
  const sizes = new Map<string, number>();
  for await (const e of tree.store.list('')) sizes.set(e.key, e.size);
  let state: TreeState | null = null;
  let stateProblem: string | null = null;
  const stateBytes = await tree.read(STATE_KEY);
  if (stateBytes === null) stateProblem = 'state object is missing';
  else {
    try {
      state = parseTreeState(stateBytes);
    } catch (err) {
      stateProblem = (err as Error).message;
    }
  }
  const c = new Checker(tree, sizes, options.checkHashes ?? true, state?.serial ?? -1);
  if (stateProblem !== null) c.add(STATE_KEY, null, stateProblem);
  let publicKey: KeyObject | null = null;
  const pem = await tree.read(SERVER_KEY_KEY);
  try {
    if (pem === null) throw new Error('missing');
    publicKey = createPublicKey(pem);
  } catch {
    c.add(SERVER_KEY_KEY, null, pem === null ? 'serverkey is missing' : 'serverkey is not a PEM public key');
  }

  const root = await checkRoot(c, state);
  const { entries } = root;
  const listed = new Set([...entries.map((e) => e.name), ...root.htmlOnly]);
  const checks = [...entries.map((e) => ({ name: e.name, entry: e })), ...root.htmlOnly.map((name) => ({ name, entry: null }))];
  const settled = await settleLimit(checks, options.concurrency ?? 8, (e) => checkProject(c, e.name, e.entry, true, publicKey));
  settled.forEach((s, i) => {
    if (s.status === 'rejected') c.add(`simple/${checks[i]!.name}/`, checks[i]!.name, `could not be read: ${(s.reason as Error).message}`);
  });
  // The change at the recorded serial shows in the root or in a page (the publisher writes the root when it would not).
  if (state !== null && root.serial >= state.rootSerial && state.serial > Math.max(root.serial, c.newestPage)) {
    c.add(STATE_KEY, null, `state records serial ${state.serial}, ahead of the root index at ${root.serial} and of every page (the newest is at ${c.newestPage})`);
  }
  const unlisted = new Map<string, string>();
  for (const key of sizes.keys()) {
    const m = /^(simple|pypi)\/([^/]+)\//.exec(key);
    if (m && !listed.has(m[2]!) && !unlisted.has(m[2]!)) unlisted.set(m[2]!, key);
  }
  for (const [name, key] of unlisted) {
    // A new project's pages go up before the root that lists it; a removed one's go after the root that drops it.
    const serials = await checkProject(c, name, null, false, publicKey);
    if (root.ahead || (serials.length > 0 && serials.every((s) => c.isAhead(s)))) c.ahead.add(key);
    else c.add(key, name, 'pages of a project the root index does not list');
  }
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
    ahead: [...c.ahead].sort(),
  };
}
