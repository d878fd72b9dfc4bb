/**
 * The sync engine's target: a blob store (folder or bucket) holding the tree
 * in bandersnatch's layout (tree-layout.ts). Each put is atomic (the folder
 * store writes a temp file, fsyncs and renames; S3 makes each PUT whole); the
 * order between puts is the engine's business (DESIGN.md §4).
 */
import { Readable } from 'node:stream';
import type { BlobStore, PutOptions } from '../blobstore/blob-store.js';
import { BlobNotFoundError, isPyedgeError } from '../core/errors.js';
import type { ProjectListing } from '../core/model.js';
import { normalizeName } from '../core/names.js';
import type { ServerSig } from '../core/signing.js';
import { projectLinks, type ProjectLinks } from './page-links.js';
import { cacheHeadersOf } from './purge-targets.js';
import { mapLimit } from './pool.js';
import { rootHtmlChunks, rootJsonChunks } from './root-pages.js';
import type { ProjectSnapshot } from './source.js';
import {
  CONTENT_TYPES,
  LAST_MODIFIED_KEY,
  ROOT_KEYS,
  SERVER_KEY_KEY,
  STATE_KEY,
  projectKeys,
  releaseKey,
} from './tree-layout.js';
import { parseTreeState, serializeTreeState, type TreeState } from './tree-state.js';

/** Release pages of one project put at once. */
const RELEASE_PUTS = 8;
/** Roots up to this size are put as one buffer (a plain PUT on S3); bigger ones are streamed. */
const BUFFER_ROOT_BYTES = 8 * 1024 * 1024;

/** A store that can write a blob straight into place, unflushed and not atomically (the folder store). */
interface InPlaceStore {
  /** `sameAt`: other keys with the same bytes (the folder store makes them hard links). */
  putInPlace(key: string, bytes: Uint8Array, sameAt?: readonly string[]): Promise<void>;
}

function inPlaceOf(store: BlobStore): InPlaceStore | null {
  const s = store as BlobStore & Partial<InPlaceStore>;
  return typeof s.putInPlace === 'function' ? (s as InPlaceStore) : null;
}

/** What the tree's root index says: its serial and each project's. */
export interface TreeRoot {
  readonly serial: number;
  readonly projects: ReadonlyMap<string, number>;
}

/** Reads a whole readable into one buffer. */
async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}

/** A buffer when the chunks are small, else a stream that replays what was read and goes on. */
function bodyOf(chunks: Iterator<Buffer>): Buffer | Readable {
  const head: Buffer[] = [];
  let size = 0;
  for (let next = chunks.next(); !next.done; next = chunks.next()) {
    head.push(next.value);
    size += next.value.length;
    if (size > BUFFER_ROOT_BYTES) {
      return Readable.from(
        (function* () {
          yield* head;
          for (let n = chunks.next(); !n.done; n = chunks.next()) yield n.value;
        })(),
      );
    }
  }
  return Buffer.concat(head);
}

/** The projects a tree has keys for (`all`), and those with all their Simple pages and signature (`complete`). */
export interface TreeProjects {
  readonly all: Set<string>;
  readonly complete: Set<string>;
}

/** The files of a project's Simple folder: all four are there once its pages are. */
const SIMPLE_PAGE_FILES = new Set(['index.html', 'index.v1_html', 'index.v1_json', 'serversig']);
/** Folder reads under way at once while listing projects (the thread pool takes 4 at a time). */
const FOLDER_READS = 16;

export class StaticTree {
  /** Keys of pages put and of blobs deleted since the last takeChanges(), once recordChanges() was called. */
  #changed: Set<string> | null = null;
  /** What readState() and readRoot() last found: no state object, no root (null: not read yet). */
  #noState: boolean | null = null;
  #noRoot: boolean | null = null;
  /**
   * A first build into a tree that projectNames() found without any page: the projects this run
   * wrote pages for, the only ones that have any (null otherwise). Also whether it had no files.
   */
  #bulkWritten: Set<string> | null = null;
  #noFiles = false;
  readonly #inPlace: InPlaceStore | null;

  constructor(readonly store: BlobStore) {
    this.#inPlace = inPlaceOf(store);
  }

  /**
   * Whether puts are written in place and batched (a first build into a folder store): then many
   * can be under way at once, and they cost less the more there are.
   */
  get batchesWrites(): boolean {
    return this.#bulk && this.#inPlace !== null;
  }

  /**
   * Note from now on what caches in front of the tree may hold stale: the keys of pages put and of
   * blobs deleted (files put are new, nothing cached them). Whoever calls this drains takeChanges().
   */
  recordChanges(): void {
    this.#changed ??= new Set();
  }

  /** The keys changed since the last call, sorted (none unless recordChanges() was called). */
  takeChanges(): string[] {
    const keys = [...(this.#changed ?? [])].sort();
    this.#changed?.clear();
    return keys;
  }

  /**
   * A page, with the caching headers a bucket keeps for a CDN. Noted as changed even when the put
   * fails (it may have landed): purging a page that did not change costs a fetch, missing one a stale page.
   */
  async #put(key: string, body: Uint8Array | Readable, contentType: string): Promise<void> {
    try {
      if (this.#inPlace !== null && this.batchesWrites && body instanceof Uint8Array) await this.#inPlace.putInPlace(key, body);
      else await this.store.put(key, body, this.#putOptions(key, contentType));
    } finally {
      this.#changed?.add(key);
    }
  }

  /**
   * A first build: the tree has neither a state object nor a root index, so nothing is published
   * yet and no reader depends on its pages. Puts then skip their per-blob flushes (a folder store's
   * fsyncs, most of a full build's time); writeRoot() flushes them all at once before the root goes
   * up. A crash before that leaves a tree without root or state, which the next run fetches again
   * whole (a file that lost its bytes fails the size check and is copied again). A folder store
   * then writes pages and small files straight into place (no temp file, no rename), batched on
   * threads of its own: a crash can leave one short, but the next run writes every page again.
   */
  get #bulk(): boolean {
    return this.#noState === true && this.#noRoot === true;
  }

  #putOptions(key: string, contentType: string): PutOptions {
    return { contentType, cache: cacheHeadersOf(key), ...(this.#bulk ? { durable: false } : {}) };
  }

  get description(): string {
    return this.store.description;
  }

  /** The bytes at `key`, or null when there is no such blob. */
  async read(key: string): Promise<Buffer | null> {
    try {
      return await readAll((await this.store.get(key)).body);
    } catch (err) {
      if (err instanceof BlobNotFoundError) return null;
      throw err;
    }
  }

  /** The state object, or null when there is none or it cannot be read (the engine rewrites it). */
  async readState(): Promise<TreeState | null> {
    const bytes = await this.read(STATE_KEY);
    let state: TreeState | null = null;
    try {
      state = bytes === null ? null : parseTreeState(bytes);
    } catch {
      state = null;
    }
    this.#noState = state === null;
    return state;
  }

  /** The links of a project's pages now in the tree, or null when it has none (or they are unreadable). */
  async readProjectLinks(name: string): Promise<ProjectLinks | null> {
    // A first build knows which projects have pages without asking the store for each.
    if (this.#bulk && this.#bulkWritten !== null && !this.#bulkWritten.has(name)) return null;
    const keys = projectKeys(name);
    const [json, api] = await Promise.all([this.read(keys.v1Json), this.read(keys.jsonApi)]);
    if (json === null) return null;
    try {
      return projectLinks(json, api);
    } catch (err) {
      if (isPyedgeError(err)) return null;
      throw err;
    }
  }

  /** The serials the tree's root JSON lists, or null when it has none (or it is unreadable). */
  async readRoot(): Promise<TreeRoot | null> {
    const bytes = await this.read(ROOT_KEYS.v1Json);
    this.#noRoot = bytes === null;
    if (bytes === null) return null;
    try {
      const doc = JSON.parse(bytes.toString('utf8')) as { meta?: Record<string, unknown>; projects?: unknown };
      const serial = doc.meta?.['_last-serial'];
      if (typeof serial !== 'number' || !Array.isArray(doc.projects)) return null;
      const projects = new Map<string, number>();
      for (const p of doc.projects as { name?: unknown; '_last-serial'?: unknown }[]) {
        if (typeof p.name === 'string' && typeof p['_last-serial'] === 'number') {
          projects.set(normalizeName(p.name), p['_last-serial']);
        }
      }
      return { serial, projects };
    } catch {
      return null;
    }
  }

  /**
   * Every project with a key under `simple/<name>/` or `pypi/<name>/`, and
   * which of them have all their Simple pages and signature.
   */
  async projectNames(): Promise<TreeProjects> {
    const { all, complete } = this.store.listFolder ? await this.#namesByFolder(this.store.listFolder.bind(this.store)) : await this.#namesByList();
    if (this.#noRoot !== false && all.size === 0) {
      this.#bulkWritten ??= new Set();
      const files = this.store.list('packages/')[Symbol.asyncIterator]();
      this.#noFiles = (await files.next()).done === true;
      await files.return?.();
    }
    return { all, complete };
  }

  /** projectNames from every key under simple/ and pypi/ (a bucket lists a thousand keys per request). */
  async #namesByList(): Promise<TreeProjects> {
    const all = new Set<string>();
    const pages = new Map<string, number>();
    for (const prefix of ['simple/', 'pypi/']) {
      for await (const entry of this.store.list(prefix)) {
        const rest = entry.key.slice(prefix.length);
        const slash = rest.indexOf('/');
        if (slash <= 0) continue;
        const name = rest.slice(0, slash);
        all.add(name);
        if (prefix === 'simple/' && SIMPLE_PAGE_FILES.has(rest.slice(slash + 1))) pages.set(name, (pages.get(name) ?? 0) + 1);
      }
    }
    return { all, complete: new Set([...pages].filter(([, n]) => n === SIMPLE_PAGE_FILES.size).map(([name]) => name)) };
  }

  /**
   * projectNames from the folders of a folder store: one read of each project's Simple folder,
   * several at once, and of the top of pypi/ (the store removes a folder once it is empty), with
   * no sizes. At PyPI's size that is 886k reads instead of 2.7 million and a stat per page.
   */
  async #namesByFolder(listFolder: NonNullable<BlobStore['listFolder']>): Promise<TreeProjects> {
    const all = new Set<string>();
    const complete = new Set<string>();
    const [simple, pypi] = await Promise.all([listFolder('simple/'), listFolder('pypi/')]);
    for (const name of pypi.folders) all.add(name);
    await mapLimit(simple.folders, FOLDER_READS, async (name) => {
      const inside = await listFolder(`simple/${name}/`);
      if (inside.blobs.length + inside.folders.length === 0) return;
      all.add(name);
      if (inside.blobs.filter((b) => SIMPLE_PAGE_FILES.has(b)).length === SIMPLE_PAGE_FILES.size) complete.add(name);
    });
    return { all, complete };
  }

  /** Keys under `prefix`. */
  async keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const entry of this.store.list(prefix)) out.push(entry.key);
    return out;
  }

  /** True when `key` holds a blob (of `size` bytes, when given). */
  async has(key: string, size: number | null): Promise<boolean> {
    // A first build into a tree without files: only this run wrote any (and writing one again is harmless).
    if (this.#bulk && this.#noFiles) return false;
    try {
      const info = await this.store.head(key);
      return size === null || info.size === size;
    } catch (err) {
      if (err instanceof BlobNotFoundError) return false;
      throw err;
    }
  }

  async putFile(key: string, body: Readable | Buffer): Promise<void> {
    if (this.#inPlace !== null && this.batchesWrites && body instanceof Uint8Array) {
      await this.#inPlace.putInPlace(key, body);
      return;
    }
    try {
      await this.store.put(key, body, this.#putOptions(key, CONTENT_TYPES.file));
    } catch (err) {
      // A put that gave up on a stream must not leave it (and the download behind it) open.
      if (body instanceof Readable) body.destroy();
      throw err;
    }
  }

  /**
   * A project's Simple pages, each put atomically, then their signature (which
   * covers these pages only), so the window in which a reader can see a page
   * with the previous signature is as short as it can be.
   */
  async writeSimplePages(snapshot: Pick<ProjectSnapshot, 'name' | 'html' | 'json'>, sig: ServerSig): Promise<void> {
    const keys = projectKeys(snapshot.name);
    this.#bulkWritten?.add(snapshot.name);
    const sigBytes = Buffer.from(JSON.stringify(sig));
    if (this.batchesWrites) {
      // Nobody reads the tree before its root: no order to keep among them, so one batch takes all.
      // The two HTML keys hold the same bytes: one file under both names.
      this.#changed?.add(keys.html).add(keys.v1Html);
      await Promise.all([
        this.#inPlace!.putInPlace(keys.html, snapshot.html, [keys.v1Html]),
        this.#put(keys.v1Json, snapshot.json, CONTENT_TYPES.v1Json),
        this.#put(keys.serverSig, sigBytes, CONTENT_TYPES.json),
      ]);
      return;
    }
    await this.#put(keys.html, snapshot.html, CONTENT_TYPES.html);
    await this.#put(keys.v1Html, snapshot.html, CONTENT_TYPES.v1Html);
    await this.#put(keys.v1Json, snapshot.json, CONTENT_TYPES.v1Json);
    await this.#put(keys.serverSig, sigBytes, CONTENT_TYPES.json);
  }

  /** A project's JSON API: the release pages before the project page that lists them (in a first build, all at once). */
  async writeJsonApi(name: string, jsonApi: Buffer | null, releases: ReadonlyMap<string, Buffer>): Promise<void> {
    if (this.batchesWrites) {
      const puts = [...releases].map(([version, doc]) => this.#put(releaseKey(name, version), doc, CONTENT_TYPES.json));
      if (jsonApi !== null) puts.push(this.#put(projectKeys(name).jsonApi, jsonApi, CONTENT_TYPES.json));
      await Promise.all(puts);
      return;
    }
    // A project with many releases has as many pages; their order among themselves does not matter.
    await mapLimit([...releases], RELEASE_PUTS, ([version, doc]) => this.#put(releaseKey(name, version), doc, CONTENT_TYPES.json));
    if (jsonApi !== null) await this.#put(projectKeys(name).jsonApi, jsonApi, CONTENT_TYPES.json);
  }

  /**
   * The root index at `serial`: the JSON always, then the HTML (two keys, same bytes) when `html`
   * is set. The JSON goes first because it carries the serial: a crash between the two leaves a
   * JSON root past the recorded one, which tells `verify` (and the next run) that the HTML is the
   * older of the two. Both list only projects whose pages are up.
   */
  async writeRoot(projects: readonly ProjectListing[], serial: number, html: boolean): Promise<void> {
    // Everything the root will list must be on disk before it: the end of a first build's bulk writes.
    if (this.#bulk) await this.store.sync();
    this.#noRoot = false;
    this.#bulkWritten = null;
    this.#noFiles = false;
    await this.#put(ROOT_KEYS.v1Json, bodyOf(rootJsonChunks(projects, serial)), CONTENT_TYPES.v1Json);
    if (html) {
      // Rendered once; the two keys (same bytes, in no order between them) are written side by side.
      const chunks = [...rootHtmlChunks(projects)];
      await Promise.all([
        this.#put(ROOT_KEYS.html, bodyOf(chunks.values()), CONTENT_TYPES.html),
        this.#put(ROOT_KEYS.v1Html, bodyOf(chunks.values()), CONTENT_TYPES.v1Html),
      ]);
    }
  }

  async readServerKey(): Promise<string | null> {
    return (await this.read(SERVER_KEY_KEY))?.toString('utf8') ?? null;
  }

  async writeServerKey(pem: string): Promise<void> {
    await this.#put(SERVER_KEY_KEY, Buffer.from(pem), CONTENT_TYPES.text);
  }

  /** `last-modified`, then the state object: the last writes of a batch. */
  async writeFinal(lastModified: string, state: TreeState): Promise<void> {
    await this.#put(LAST_MODIFIED_KEY, Buffer.from(lastModified), CONTENT_TYPES.text);
    await this.#put(STATE_KEY, serializeTreeState(state), CONTENT_TYPES.json);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.store.delete(key);
    } finally {
      this.#changed?.add(key);
    }
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
