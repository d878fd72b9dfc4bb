/**
 * A first build into a folder store: pages and small files are written in
 * place on the store's write threads, not through temp files. The tree must be
 * the same as one built with atomic puts, and a build cut short must converge.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { FolderBlobStore } from '../blobstore/folder/folder-blob-store.js';
import { loadServerKey, type ServerKey } from '../signing/key-file.js';
import { SyncEngine } from './engine.js';
import { FakeIndex, treeContents } from './fake-index.js';
import { RecordingStore } from './recording-store.js';
import type { ProjectSnapshot } from './source.js';
import { StaticTree } from './static-tree.js';
import { LAST_MODIFIED_KEY, ROOT_KEYS, STATE_KEY, projectKeys } from './tree-layout.js';
import { verifyTree } from './verify.js';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-bulk-'));
  dirs.push(dir);
  return dir;
}

/** Forty projects, some with several releases and PEP 658 metadata. */
function index(): FakeIndex {
  const ix = new FakeIndex();
  for (let i = 0; i < 40; i++) {
    ix.upload(`Project-${i}`, '1.0', `project_${i}-1.0.tar.gz`, `project ${i} one`, i % 3 === 0 ? { metadata: `Name: project-${i}\n` } : {});
    if (i % 4 === 0) ix.upload(`Project-${i}`, '2.0', `project_${i}-2.0.tar.gz`, `project ${i} two`);
  }
  return ix;
}

/** More projects than a first build takes in one chunk, one release and file each. */
function bigIndex<T extends FakeIndex>(projects: number, ix: T): T {
  for (let i = 0; i < projects; i++) ix.upload(`big-${String(i).padStart(5, '0')}`, '1.0', `big_${i}-1.0.tar.gz`, `big ${i}`);
  return ix;
}

/** A source that records what the engine announces (prefetch) before it fetches it. */
class AnnouncedIndex extends FakeIndex {
  readonly announced = new Set<string>();
  /** Projects fetched that were not announced first. */
  readonly unannounced: string[] = [];

  prefetch(names: readonly string[]): void {
    for (const n of names) this.announced.add(n);
  }

  override async project(name: string): Promise<ProjectSnapshot | null> {
    if (!this.announced.has(name)) this.unannounced.push(name);
    return super.project(name);
  }
}

async function engineOn(tree: StaticTree, source: FakeIndex, key: ServerKey): Promise<SyncEngine> {
  const engine = new SyncEngine({ source, tree, key, logger: silent, settleMs: 300 });
  await engine.open();
  return engine;
}

/** The tree a build with atomic puts only makes (the recording wrapper offers no in-place writes). */
async function reference(key: ServerKey): Promise<Map<string, string>> {
  const tree = new StaticTree(new RecordingStore(new FolderBlobStore(join(await tempDir(), 'tree'))));
  assert.equal((await (await engineOn(tree, index(), key)).runBatch()).ok, true);
  assert.equal(tree.batchesWrites, false);
  return treeContents(tree);
}

describe('first build into a folder store', () => {
  it('writes in place, then atomically once the root is up; the tree is the same as with atomic puts', async () => {
    const dir = await tempDir();
    const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
    const expected = await reference(key);
    const tree = new StaticTree(new FolderBlobStore(join(dir, 'tree')));
    const source = index();
    const engine = await engineOn(tree, source, key);
    assert.equal(tree.batchesWrites, true, 'a tree without root or state batches its writes');
    const result = await engine.runBatch();
    assert.equal(result.ok, true, JSON.stringify(result.failures));
    assert.equal(tree.batchesWrites, false, 'a tree with a root writes atomically');
    assert.deepEqual(await treeContents(tree), expected);
    assert.deepEqual((await verifyTree(tree)).problems, []);
    assert.deepEqual(await readdir(join(dir, 'tree', '.tmp')), []);
    // The two HTML pages of a project are one file under two names.
    const keys = projectKeys('project-1');
    const [html, v1Html] = await Promise.all([stat(join(dir, 'tree', keys.html)), stat(join(dir, 'tree', keys.v1Html))]);
    assert.equal(html.ino, v1Html.ino);
    // A later change goes through atomic puts, each name renamed over on its own.
    source.upload('Project-1', '3.0', 'project_1-3.0.tar.gz', 'project 1 three');
    assert.equal((await engine.runBatch()).ok, true);
    assert.deepEqual((await verifyTree(tree)).problems, []);
    for (const key of [keys.html, keys.v1Html]) assert.equal((await tree.read(key))!.toString().includes('project_1-3.0.tar.gz'), true, key);
    assert.equal((await stat(join(dir, 'tree', keys.html))).nlink, 1);
    assert.deepEqual(await readdir(join(dir, 'tree', '.tmp')), []);
    await tree.close();
  });

  it('a write that fails leaves neither root nor state; the same engine converges once it can write', async () => {
    const dir = await tempDir();
    const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
    const expected = await reference(key);
    const root = join(dir, 'tree');
    const tree = new StaticTree(new FolderBlobStore(root));
    const engine = await engineOn(tree, index(), key);
    // A file where a project's JSON API folder must go.
    await writeFile(join(root, 'pypi'), 'in the way');
    const failed = await engine.runBatch();
    assert.equal(failed.ok, false);
    assert.equal(await tree.read(ROOT_KEYS.v1Json), null);
    assert.equal(await tree.read(STATE_KEY), null);
    await rm(join(root, 'pypi'));
    const retried = await engine.runBatch();
    assert.equal(retried.ok, true, JSON.stringify(retried.failures));
    assert.deepEqual((await verifyTree(tree)).problems, []);
    assert.deepEqual(await treeContents(tree), expected);
    await tree.close();
  });

  it('a build of several chunks announces every project before reading it and writes every page', async () => {
    const dir = await tempDir();
    const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
    const source = bigIndex(2500, new AnnouncedIndex());
    const tree = new StaticTree(new FolderBlobStore(join(dir, 'tree')));
    const result = await (await engineOn(tree, source, key)).runBatch();
    assert.equal(result.ok, true, JSON.stringify(result.failures));
    assert.equal(result.projectsWritten.length, 2500);
    assert.deepEqual(source.unannounced, [], 'every project is announced before it is fetched');
    assert.equal(new Set(source.fetched).size, 2500);
    assert.deepEqual((await verifyTree(tree, { checkHashes: false })).problems, []);
    for (const name of ['big-00000', 'big-01000', 'big-01999', 'big-02499']) {
      const snapshot = (await source.project(name))!;
      assert.deepEqual(await tree.read(projectKeys(name).html), snapshot.html, name);
      assert.deepEqual(await tree.read(projectKeys(name).jsonApi), snapshot.jsonApi, name);
    }
    await tree.close();
  });

  it('a build of several chunks whose last chunk fails to write leaves neither root nor state, and converges', async () => {
    const dir = await tempDir();
    const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
    const root = join(dir, 'tree');
    const tree = new StaticTree(new FolderBlobStore(root));
    const engine = await engineOn(tree, bigIndex(2300, new FakeIndex()), key);
    // A file where a project of the last chunk needs its folder.
    await mkdir(join(root, 'simple'), { recursive: true });
    await writeFile(join(root, 'simple', 'big-02200'), 'in the way');
    const failed = await engine.runBatch();
    assert.equal(failed.ok, false);
    assert.ok(failed.failures.some((f) => f.project === 'big-02200'), JSON.stringify(failed.failures.slice(0, 3)));
    assert.equal(await tree.read(ROOT_KEYS.v1Json), null);
    assert.equal(await tree.read(STATE_KEY), null);
    await rm(join(root, 'simple', 'big-02200'));
    const retried = await engine.runBatch();
    assert.equal(retried.ok, true, JSON.stringify(retried.failures.slice(0, 3)));
    assert.deepEqual((await verifyTree(tree, { checkHashes: false })).problems, []);
    assert.equal((await tree.readRoot())!.projects.size, 2300);
    await tree.close();
  });

  it('a build cut short before its root, with pages and files left short, is written whole by the next run', async () => {
    const dir = await tempDir();
    const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
    const expected = await reference(key);
    const root = join(dir, 'tree');
    const first = new StaticTree(new FolderBlobStore(root));
    assert.equal((await (await engineOn(first, index(), key)).runBatch()).ok, true);
    await first.close();
    // What a crash before the root leaves: no root, no state, some writes cut short.
    for (const k of [...Object.values(ROOT_KEYS), STATE_KEY, LAST_MODIFIED_KEY]) await rm(join(root, k));
    const source = index();
    const files = (await source.project('project-4'))!;
    await truncate(join(root, projectKeys('project-4').v1Json), 10);
    await truncate(join(root, projectKeys('project-8').html), 0);
    await truncate(join(root, projectKeys('project-12').jsonApi), 3);
    const link = /href="\.\.\/\.\.\/(packages\/[^"#]+)/.exec(files.html.toString())![1]!;
    await truncate(join(root, link), 2);
    const tree = new StaticTree(new FolderBlobStore(root));
    const result = await (await engineOn(tree, source, key)).runBatch();
    assert.equal(result.ok, true, JSON.stringify(result.failures));
    assert.deepEqual((await verifyTree(tree)).problems, []);
    assert.deepEqual(await treeContents(tree), expected);
    await tree.close();
  });
});
