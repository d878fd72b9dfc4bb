/**
 * The engine writing the root in the background (`rootInBackground`, as
 * `pyedge publish --watch` does): the next batch's pages do not wait for the
 * root, and the state object records only what the root in the tree agrees with.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { PutOptions } from '../blobstore/blob-store.js';
import { FolderBlobStore } from '../blobstore/folder/folder-blob-store.js';
import { loadServerKey } from '../signing/key-file.js';
import type { BatchResult } from './batch-result.js';
import { SyncEngine } from './engine.js';
import { FakeIndex } from './fake-index.js';
import { ForwardingStore, RecordingStore } from './recording-store.js';
import type { SourceListing } from './source.js';
import { StaticTree } from './static-tree.js';
import { ROOT_KEYS, STATE_KEY, projectKeys } from './tree-layout.js';
import { verifyTree } from './verify.js';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const ROOT_PUTS = new Set<string>(Object.values(ROOT_KEYS));

/** Holds puts of the root's keys until allowed, one put per allowance. */
class RootGate extends ForwardingStore {
  #allowed = Infinity;
  readonly #waiting: (() => void)[] = [];
  /** Root puts that reached the store, held or not. */
  arrived = 0;

  /** Hold every root put from now on. */
  hold(): void {
    this.#allowed = 0;
  }

  /** Let `n` more root puts through (Infinity: all). */
  allow(n: number): void {
    this.#allowed += n;
    while (this.#allowed > 0 && this.#waiting.length > 0) {
      this.#allowed--;
      this.#waiting.shift()!();
    }
  }

  /** Root puts waiting for an allowance. */
  get held(): number {
    return this.#waiting.length;
  }

  override async put(key: string, body: Uint8Array | Readable, options?: PutOptions): Promise<void> {
    if (ROOT_PUTS.has(key)) {
      this.arrived++;
      if (this.#allowed > 0) this.#allowed--;
      else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    await this.inner.put(key, body, options);
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-engine-bg-'));
  dirs.push(dir);
  return dir;
}

function baseIndex(): FakeIndex {
  const index = new FakeIndex();
  index.upload('Alpha', '1.0', 'alpha-1.0.tar.gz', 'alpha one', { metadata: 'Metadata-Version: 2.1\nName: Alpha\n' });
  index.upload('beta', '0.1', 'beta-0.1.tar.gz', 'beta zero one');
  return index;
}

interface Gated {
  readonly gate: RootGate;
  readonly tree: StaticTree;
  readonly index: FakeIndex;
  readonly engine: SyncEngine;
  /** Results of roots written in the background. */
  readonly roots: BatchResult[];
  /** A batch of the index's changes so far, with the root in the background. */
  batch(): Promise<BatchResult>;
}

async function gated(): Promise<Gated> {
  const dir = await tempDir();
  const gate = new RootGate(new FolderBlobStore(join(dir, 'tree')));
  const tree = new StaticTree(gate);
  const index = baseIndex();
  const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
  const engine = new SyncEngine({ source: index, tree, key, logger: silent, settleMs: 300, backgroundRootGapMs: 0 });
  await engine.open();
  assert.equal((await engine.runBatch()).ok, true);
  gate.arrived = 0;
  const roots: BatchResult[] = [];
  return {
    gate,
    tree,
    index,
    engine,
    roots,
    async batch() {
      return engine.runBatch({ changes: (await index.changesSince(0)).changes, rootInBackground: (r) => roots.push(r) });
    },
  };
}

async function assertVerifies(tree: StaticTree, when: string): Promise<void> {
  const report = await verifyTree(tree);
  assert.deepEqual(report.problems, [], when);
}

describe('SyncEngine with the root in the background', () => {
  it("does not hold the next batch for a new project's root; the state waits for that root", async () => {
    const g = await gated();
    const recorded = (await g.tree.readState())!.serial;
    g.gate.hold();

    g.index.upload('gamma', '1.0', 'gamma-1.0.tar.gz', 'gamma');
    const added = await g.batch();
    assert.equal(added.ok, true, JSON.stringify(added.failures));
    assert.deepEqual(added.projectsWritten, ['gamma']);
    assert.equal(added.rootWritten, false, 'the root is still being written');
    assert.equal(added.serial, recorded);
    assert.notEqual(await g.tree.read(projectKeys('gamma').html), null, "the new project's page is up");
    await until('the root write to start', () => g.gate.held > 0);

    g.index.upload('beta', '0.2', 'beta-0.2.tar.gz', 'beta zero two');
    const next = await g.batch();
    assert.equal(next.ok, true, JSON.stringify(next.failures));
    assert.deepEqual(next.projectsWritten, ['beta'], 'the next upload went up while the root was held');
    assert.match((await g.tree.read(projectKeys('beta').html))!.toString(), /beta-0\.2\.tar\.gz/);
    assert.equal((await g.tree.readState())!.serial, recorded, 'nothing recorded past an unlisted project');
    await assertVerifies(g.tree, 'while the root is held');

    g.gate.allow(Infinity);
    await g.engine.idle();
    assert.ok(g.roots.length >= 1 && g.roots.every((r) => r.ok && r.rootWritten), JSON.stringify(g.roots));
    assert.equal(g.roots.at(-1)!.serial, g.index.serial);
    const state = (await g.tree.readState())!;
    assert.equal(state.serial, g.index.serial);
    assert.ok((await g.tree.readRoot())!.projects.has('gamma'));
    assert.equal(g.engine.appliedSerial, g.index.serial);
    await assertVerifies(g.tree, 'once the root is up');
  });

  it('writes the newest root asked for, not every one: three new projects while one root is held make two roots', async () => {
    const g = await gated();
    g.gate.hold();
    g.index.upload('p1', '1.0', 'p1-1.0.tar.gz', 'p1');
    assert.equal((await g.batch()).ok, true);
    await until('the first root write to start', () => g.gate.held > 0);
    for (const name of ['p2', 'p3']) {
      g.index.upload(name, '1.0', `${name}-1.0.tar.gz`, name);
      assert.equal((await g.batch()).ok, true);
    }
    const arrived = g.gate.arrived;
    g.gate.allow(Infinity);
    await g.engine.idle();
    // One JSON root and two HTML keys per root: the first, then one for p2 and p3 together.
    assert.equal(g.gate.arrived - arrived + 1, 6);
    assert.deepEqual([...(await g.tree.readRoot())!.projects.keys()].sort(), ['alpha', 'beta', 'p1', 'p2', 'p3']);
    assert.equal((await g.tree.readState())!.serial, g.index.serial);
    await assertVerifies(g.tree, 'after the burst');
  });

  it('spaces the roots it writes: those asked for within the gap after the last make one write; a batch not in the background does not wait', async () => {
    const dir = await tempDir();
    const store = new RecordingStore(new FolderBlobStore(join(dir, 'tree')));
    const tree = new StaticTree(store);
    const index = baseIndex();
    const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
    const GAP = 400;
    const engine = new SyncEngine({ source: index, tree, key, logger: silent, settleMs: 300, backgroundRootGapMs: GAP });
    await engine.open();
    await engine.runBatch();
    store.reset();
    const roots: BatchResult[] = [];
    const batch = async (): Promise<BatchResult> => engine.runBatch({ changes: (await index.changesSince(0)).changes, rootInBackground: (r) => roots.push(r) });
    const started = Date.now();
    for (const name of ['p1', 'p2', 'p3']) {
      index.upload(name, '1.0', `${name}-1.0.tar.gz`, name);
      assert.equal((await batch()).ok, true);
    }
    await engine.idle();
    const jsonRoots = store.ops.filter((o) => o.key === ROOT_KEYS.v1Json).length;
    assert.ok(jsonRoots <= 2, `${jsonRoots} roots for three new projects`);
    assert.ok(Date.now() - started >= GAP, 'the last root waited for the gap');
    assert.deepEqual([...(await tree.readRoot())!.projects.keys()].sort(), ['alpha', 'beta', 'p1', 'p2', 'p3']);
    assert.equal((await tree.readState())!.serial, index.serial);

    // A root right after the last one, asked for by a batch that waits for it (a one-shot run).
    index.upload('p4', '1.0', 'p4-1.0.tar.gz', 'p4');
    assert.equal((await batch()).ok, true);
    index.upload('p5', '1.0', 'p5-1.0.tar.gz', 'p5');
    const t0 = Date.now();
    const inline = await engine.runBatch({ refreshRoot: true });
    assert.equal(inline.ok, true);
    assert.ok(Date.now() - t0 < GAP, `the batch not in the background did not wait for the gap (${Date.now() - t0} ms)`);
    assert.equal((await tree.readState())!.serial, index.serial);
    await assertVerifies(tree, 'after the roots');
  });

  it('keeps the pages of a removed project while a root being written still lists it', async () => {
    const g = await gated();
    // A root without delta is held; delta is created (its root waits behind), then removed.
    g.gate.hold();
    g.index.upload('eps', '1.0', 'eps-1.0.tar.gz', 'eps');
    assert.equal((await g.batch()).ok, true);
    await until('the root listing eps to start', () => g.gate.held > 0);
    g.index.upload('delta', '1.0', 'delta-1.0.tar.gz', 'delta');
    assert.equal((await g.batch()).ok, true);

    // The removal's batch waits in the source's listing while the held root (without delta) goes
    // up: the deletions after that root then run after the removal, with a root listing delta
    // being written.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const listing = g.index.listing.bind(g.index);
    let holdNext = true;
    g.index.listing = async (): Promise<SourceListing> => {
      if (holdNext) {
        holdNext = false;
        await held;
      }
      return listing();
    };
    g.index.removeProject('delta');
    const removal = g.batch();
    await until('the removal to read the listing', () => !holdNext);
    g.gate.allow(3);
    await until('the root listing delta to start', () => g.gate.held > 0 && g.gate.arrived === 4, 10_000);
    release();
    assert.equal((await removal).ok, true);
    // Let the deletions after the first root run.
    await until('the first root reported', () => g.roots.length >= 1);
    assert.notEqual(await g.tree.read(projectKeys('delta').v1Json), null, "delta's pages stay while a root being written lists it");

    g.gate.allow(3);
    await until('the root listing delta to go up', () => g.roots.length >= 2);
    assert.ok((await g.tree.readRoot())!.projects.has('delta'));
    await assertVerifies(g.tree, 'with the root listing the removed project');

    g.gate.allow(Infinity);
    await g.engine.idle();
    assert.equal(await g.tree.read(projectKeys('delta').v1Json), null, "delta's pages go after the root that drops it");
    assert.equal((await g.tree.readState())!.serial, g.index.serial);
    await assertVerifies(g.tree, 'at the end');
  });

  it('deletes the release pages a project stopped listing although it is removed before its root goes up', async () => {
    const g = await gated();
    g.index.upload('beta', '0.2', 'beta-0.2.tar.gz', 'beta zero two');
    assert.equal((await g.batch()).ok, true);
    await g.engine.idle();
    assert.notEqual(await g.tree.read('pypi/beta/0.2/json'), null);
    // beta's pages go up without 0.2 while the root of that batch is held; then beta is removed.
    g.gate.arrived = 0;
    g.gate.hold();
    g.index.removeRelease('beta', '0.2');
    assert.equal((await g.batch()).ok, true);
    await until('the root of the release removal to start', () => g.gate.held > 0);
    g.index.removeProject('beta');
    assert.equal((await g.batch()).ok, true);
    // The held root lists beta: its pages stay, but not the release page they no longer list.
    const reported = g.roots.length;
    // Only serials moved: a JSON root, one put.
    g.gate.allow(1);
    await until('the held root reported', () => g.roots.length > reported);
    assert.ok((await g.tree.readRoot())!.projects.has('beta'));
    assert.notEqual(await g.tree.read(projectKeys('beta').v1Json), null);
    assert.equal(await g.tree.read('pypi/beta/0.2/json'), null, 'the release page its JSON API no longer lists is deleted');
    await assertVerifies(g.tree, 'with the root listing the removed project');

    g.gate.allow(Infinity);
    await g.engine.idle();
    assert.deepEqual(await g.tree.keys('pypi/beta/'), []);
    await assertVerifies(g.tree, 'at the end');
  });

  it('after a failed root write, writes the root whole again before the state moves on', async () => {
    const dir = await tempDir();
    const store = new RecordingStore(new FolderBlobStore(join(dir, 'tree')));
    const tree = new StaticTree(store);
    const index = baseIndex();
    const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
    const engine = new SyncEngine({ source: index, tree, key, logger: silent, settleMs: 300, backgroundRootGapMs: 0 });
    await engine.open();
    await engine.runBatch();
    const roots: BatchResult[] = [];
    const batch = async (): Promise<BatchResult> => engine.runBatch({ changes: (await index.changesSince(0)).changes, rootInBackground: (r) => roots.push(r) });

    index.upload('gamma', '1.0', 'gamma-1.0.tar.gz', 'gamma');
    store.reset();
    // Fail the HTML root's puts: the JSON root goes up, the HTML does not.
    const put = store.put.bind(store);
    let failing = true;
    store.put = async (k, body, options) => {
      if (failing && (k === ROOT_KEYS.html || k === ROOT_KEYS.v1Html)) throw new Error('disk full');
      return put(k, body, options);
    };
    assert.equal((await batch()).ok, true);
    await engine.idle();
    assert.equal(roots.length, 1);
    assert.equal(roots[0]!.ok, false);
    assert.notEqual(engine.rootRefreshDue, null, 'a batch is due to write the root again');
    const before = (await tree.readState())!.serial;
    assert.ok(before < index.serial, 'the state did not move');

    failing = false;
    index.upload('beta', '0.2', 'beta-0.2.tar.gz', 'beta zero two');
    assert.equal((await batch()).ok, true);
    await engine.idle();
    assert.equal(roots.at(-1)!.ok, true);
    assert.ok(store.ops.some((o) => o.key === ROOT_KEYS.html), 'the HTML root was written again');
    assert.equal((await tree.readState())!.serial, index.serial);
    await assertVerifies(tree, 'after the retry');
  });

  it('converges after a crash at any write during overlapping batches, and the tree verifies at the crash', async () => {
    const steps: ((index: FakeIndex) => void)[] = [
      (i) => i.upload('gamma', '1.0', 'gamma-1.0.tar.gz', 'gamma', { metadata: 'Name: gamma\n' }),
      (i) => i.upload('Alpha', '1.1', 'alpha-1.1.tar.gz', 'alpha one one'),
      (i) => i.upload('delta', '1.0', 'delta-1.0.tar.gz', 'delta'),
      (i) => i.removeFile('Alpha', 'alpha-1.0.tar.gz'),
      (i) => i.removeProject('delta'),
      (i) => i.upload('beta', '0.2', 'beta-0.2.tar.gz', 'beta zero two'),
      (i) => i.removeRelease('beta', '0.1'),
    ];
    const key = await loadServerKey(join(await tempDir(), 'key.pem'), { create: true });
    /** Runs the steps as batches that overlap their roots; returns the store's writes. */
    const run = async (crashAt: number | null): Promise<{ tree: StaticTree; index: FakeIndex; writes: number }> => {
      const store = new RecordingStore(new FolderBlobStore(join(await tempDir(), 'tree')));
      const tree = new StaticTree(store);
      const index = baseIndex();
      const engine = new SyncEngine({ source: index, tree, key, logger: silent, settleMs: 300, backgroundRootGapMs: 0 });
      await engine.open();
      await engine.runBatch();
      store.reset();
      store.crashAt = crashAt;
      for (const step of steps) {
        step(index);
        await engine.runBatch({ changes: (await index.changesSince(0)).changes, rootInBackground: () => undefined });
      }
      await engine.idle();
      const writes = store.ops.length;
      store.crashAt = null;
      return { tree, index, writes };
    };
    const clean = await run(null);
    await assertVerifies(clean.tree, 'without a crash');
    assert.equal((await clean.tree.readState())!.serial, clean.index.serial);
    assert.ok(clean.writes > 30, `enough writes to be interesting (${clean.writes})`);

    for (let crashAt = 1; crashAt <= clean.writes; crashAt += 1) {
      const { tree, index } = await run(crashAt);
      await assertVerifies(tree, `at a crash at write ${crashAt}`);
      const engine = new SyncEngine({ source: index, tree, key, logger: silent, settleMs: 300, backgroundRootGapMs: 0 });
      await engine.open();
      const recovered = await engine.runBatch({ refreshRoot: true });
      assert.equal(recovered.ok, true, JSON.stringify(recovered.failures));
      await assertVerifies(tree, `recovered from a crash at write ${crashAt}`);
      assert.equal((await tree.readState())!.serial, index.serial);
      assert.deepEqual([...(await tree.readRoot())!.projects.keys()].sort(), ['alpha', 'beta', 'gamma']);
      assert.equal(await tree.read(STATE_KEY) !== null, true);
    }
  });
});
