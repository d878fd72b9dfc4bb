/**
 * An index in memory for the engine's tests: projects, releases, files and a
 * changelog, served as a SyncSource with pages drawn by the real renderers.
 * It can be taken down, and can serve a file with the wrong bytes.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { PyedgeError } from '../core/errors.js';
import { blake2b256Hex, packagePath, sha256Hex } from '../core/hashes.js';
import { EMPTY_RELEASE_METADATA, type ProjectFile, type ProjectListing, type ProjectState, type ProjectStatus, type Release } from '../core/model.js';
import { normalizeName } from '../core/names.js';
import { renderProjectHtml, renderProjectJson, renderProjectJsonApi, renderReleaseJsonApi } from '../render/index.js';
import type { ChangePage, ProjectSnapshot, SourceChange, SourceListing, SyncSource } from './source.js';
import type { BatchResult } from './batch-result.js';
import type { StaticTree } from './static-tree.js';
import { STATE_KEY } from './tree-layout.js';

/** Where the fake index says its files are (JSON API URLs). */
export const FAKE_BASE_URL = 'https://fake.example';

interface MutableProject {
  name: string;
  status: ProjectStatus;
  lastSerial: number;
  releases: Release[];
  files: ProjectFile[];
}

export class FakeIndex implements SyncSource {
  readonly description = FAKE_BASE_URL;
  rendering = 'fake';
  serial = 0;
  /** Throw PYEDGE_UNAVAILABLE from every call while set. */
  down = false;
  /** Names of projects fetched, in order. */
  readonly fetched: string[] = [];
  /** Files served with other bytes than their pages say. */
  readonly corrupt = new Set<string>();
  /** While set, listing() answers with it: an origin whose root index lags behind its pages. */
  heldListing: SourceListing | null = null;
  /** Called after each project snapshot is taken (e.g. to change the project before its release pages are read). */
  afterSnapshot: ((name: string) => void) | null = null;
  readonly #projects = new Map<string, MutableProject>();
  readonly #blobs = new Map<string, Buffer>();
  readonly #changes: (SourceChange & { name: string })[] = [];
  #ids = 0;
  readonly #waiters: (() => void)[] = [];

  #touch(name: string, action: string): void {
    const p = this.#projects.get(normalizeName(name));
    this.serial++;
    for (const wake of this.#waiters.splice(0)) wake();
    if (p) p.lastSerial = this.serial;
    this.#changes.push({ serial: this.serial, project: normalizeName(name), name, action, time: new Date(Date.UTC(2026, 0, 1, 0, 0, this.serial)).toISOString() });
  }

  #get(name: string): MutableProject {
    const p = this.#projects.get(normalizeName(name));
    if (!p) throw new Error(`no project ${name}`);
    return p;
  }

  /** Upload `filename` (content `text`) to `name` `version`; with `metadata`, serve PEP 658 metadata too. Returns its path. */
  upload(name: string, version: string, filename: string, text: string, options: { metadata?: string } = {}): string {
    const key = normalizeName(name);
    if (!this.#projects.has(key)) {
      this.#projects.set(key, { name, status: 'active', lastSerial: 0, releases: [], files: [] });
      this.#touch(name, 'create');
    }
    const p = this.#get(name);
    let release = p.releases.find((r) => r.version === version);
    if (!release) {
      release = { id: ++this.#ids, projectId: 1, version, canonicalVersion: version, yanked: false, yankedReason: null, createdAt: '2026-01-01T00:00:00Z', metadata: EMPTY_RELEASE_METADATA };
      p.releases.push(release);
      this.#touch(name, 'new release');
    }
    const bytes = Buffer.from(text);
    const b2 = blake2b256Hex(bytes);
    const path = packagePath(b2, filename);
    this.#blobs.set(path, bytes);
    let metadataSha256: string | null = null;
    if (options.metadata !== undefined) {
      this.#blobs.set(`${path}.metadata`, Buffer.from(options.metadata));
      metadataSha256 = sha256Hex(options.metadata);
    }
    p.files.push({
      id: ++this.#ids,
      releaseId: release.id,
      filename,
      packagetype: filename.endsWith('.whl') ? 'bdist_wheel' : 'sdist',
      pythonVersion: filename.endsWith('.whl') ? 'py3' : 'source',
      requiresPython: null,
      size: bytes.length,
      md5: createHash('md5').update(bytes).digest('hex'),
      sha256: sha256Hex(bytes),
      blake2b256: b2,
      path,
      metadataSha256,
      uploadTime: '2026-01-01T00:00:00Z',
      uploadedBy: 'test',
      version,
      yanked: false,
      yankedReason: null,
    });
    this.#touch(name, 'add file');
    return path;
  }

  yank(name: string, version: string, reason: string | null = null): void {
    const p = this.#get(name);
    p.releases = p.releases.map((r) => (r.version === version ? { ...r, yanked: true, yankedReason: reason } : r));
    p.files = p.files.map((f) => (f.version === version ? { ...f, yanked: true, yankedReason: reason } : f));
    this.#touch(name, 'yank release');
  }

  removeFile(name: string, filename: string): void {
    const p = this.#get(name);
    p.files = p.files.filter((f) => f.filename !== filename);
    this.#touch(name, 'remove file');
  }

  removeRelease(name: string, version: string): void {
    const p = this.#get(name);
    p.files = p.files.filter((f) => f.version !== version);
    p.releases = p.releases.filter((r) => r.version !== version);
    this.#touch(name, 'remove release');
  }

  removeProject(name: string): void {
    this.#touch(name, 'remove project');
    this.#projects.delete(normalizeName(name));
  }

  setStatus(name: string, status: ProjectStatus): void {
    this.#get(name).status = status;
    this.#touch(name, 'set status');
  }

  /** The state the renderers draw, as the origin's database would give it. */
  state(name: string): ProjectState | null {
    const p = this.#projects.get(normalizeName(name));
    if (!p) return null;
    const project = { id: 1, name: p.name, normalizedName: normalizeName(p.name), status: p.status, statusReason: null, createdAt: '2026-01-01T00:00:00Z', lastSerial: p.lastSerial };
    return { project, releases: p.releases, files: [...p.files].sort((a, b) => (a.filename < b.filename ? -1 : 1)) };
  }

  #check(): void {
    if (this.down) throw new PyedgeError('PYEDGE_UNAVAILABLE', 'The fake index is down.');
  }

  async changesSince(since: number, waitMs = 0, signal?: AbortSignal): Promise<ChangePage> {
    this.#check();
    if (this.serial <= since && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(done, waitMs);
        signal?.addEventListener('abort', done, { once: true });
        this.#waiters.push(done);
      });
      this.#check();
    }
    const changes = this.#changes.filter((c) => c.serial > since);
    return { changes, next: changes.at(-1)?.serial ?? since, lastSerial: this.serial };
  }

  async listing(): Promise<SourceListing> {
    this.#check();
    if (this.heldListing !== null) return this.heldListing;
    // As the origin's root does, it leaves out a project without releases (whose page stays).
    const projects: ProjectListing[] = [...this.#projects.values()]
      .filter((p) => p.releases.length > 0)
      .map((p) => ({ name: p.name, normalizedName: normalizeName(p.name), lastSerial: p.lastSerial }))
      .sort((a, b) => (a.normalizedName < b.normalizedName ? -1 : 1));
    return { serial: this.serial, projects, time: this.#changes.at(-1)?.time ?? null };
  }

  async project(name: string): Promise<ProjectSnapshot | null> {
    this.#check();
    this.fetched.push(name);
    const state = this.state(name);
    if (state === null) return null;
    const api = renderProjectJsonApi(state, FAKE_BASE_URL);
    const releases = new Map<string, Buffer>();
    if (api !== null) for (const r of state.releases) releases.set(r.version, Buffer.from(renderReleaseJsonApi(state, r.version, FAKE_BASE_URL)!));
    this.afterSnapshot?.(name);
    return {
      name: state.project.normalizedName,
      serial: state.project.lastSerial,
      html: Buffer.from(renderProjectHtml(state)),
      json: Buffer.from(renderProjectJson(state)),
      jsonApi: api === null ? null : Buffer.from(api),
      // Like an origin: the release pages are read later, and are gone if the project moved on.
      releases: async () => {
        this.#check();
        return this.state(name)?.project.lastSerial === state.project.lastSerial ? releases : null;
      },
    };
  }

  async openFile(path: string): Promise<Readable> {
    this.#check();
    const bytes = this.#blobs.get(path);
    if (bytes === undefined) throw new PyedgeError('PYEDGE_NOT_FOUND', `no ${path}`);
    return Readable.from([this.corrupt.has(path) ? Buffer.concat([bytes, Buffer.from('!')]) : bytes]);
  }

  async close(): Promise<void> {}
}

/** A batch's result with nothing done, at serial 10, changed by `overrides`. */
export function batchResult(overrides: Partial<BatchResult> = {}): BatchResult {
  return {
    ok: true,
    serial: 10,
    previousSerial: 9,
    projectsWritten: [],
    projectsRemoved: [],
    filesCopied: 0,
    bytesCopied: 0,
    keysDeleted: 0,
    rootWritten: false,
    failures: [],
    ms: 100,
    ...overrides,
  };
}

/** Every key of a tree with its bytes, but the state object's time: two trees of the same index compare equal. */
export async function treeContents(tree: StaticTree): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await tree.keys('')) {
    const bytes = (await tree.read(key))!.toString('utf8');
    out.set(key, key === STATE_KEY ? bytes.replace(/"time": "[^"]*"/, '') : bytes);
  }
  return out;
}
