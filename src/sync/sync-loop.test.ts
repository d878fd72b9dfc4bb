import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { FolderBlobStore } from '../blobstore/folder/folder-blob-store.js';
import { loadServerKey } from '../signing/key-file.js';
import type { BatchResult } from './batch-result.js';
import { SyncEngine } from './engine.js';
import { FakeIndex } from './fake-index.js';
import { StaticTree } from './static-tree.js';
import { syncOnce, watch } from './sync-loop.js';
import { ForwardingStore } from './recording-store.js';
import { projectKeys } from './tree-layout.js';
import type { BlobEntry, OpOptions } from '../blobstore/blob-store.js';
import { verifyTree } from './verify.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const fast = { initialMs: 5, maxMs: 20, factor: 2, jitter: 0 };

async function setup(): Promise<{ tree: StaticTree; index: FakeIndex; engine: SyncEngine }> {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-loop-'));
  dirs.push(dir);
  const tree = new StaticTree(new FolderBlobStore(join(dir, 'tree')));
  const index = new FakeIndex();
  index.upload('first', '1.0', 'first-1.0.tar.gz', 'first');
  const engine = new SyncEngine({ source: index, tree, key: await loadServerKey(join(dir, 'key.pem'), { create: true }), logger: pino({ level: 'silent' }), settleMs: 200 });
  await engine.open();
  return { tree, index, engine };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('syncOnce', () => {
  it('retries a failed batch and reports the last result', async () => {
    const { index, engine } = await setup();
    index.down = true;
    const results: BatchResult[] = [];
    const failed = await syncOnce(engine, { attempts: 3, backoff: fast, onBatch: (r) => results.push(r) });
    assert.equal(failed.ok, false);
    assert.equal(results.length, 3);
    index.down = false;
    const ok = await syncOnce(engine, { backoff: fast });
    assert.equal(ok.ok, true);
    assert.equal(ok.serial, index.serial);
  });
});

describe('watch', () => {
  /** `watch` with an hour-long reconcile interval (so only the feed drives it), collecting every result. */
  function watching(engine: SyncEngine, index: FakeIndex): { stop: AbortController; results: BatchResult[]; running: Promise<void> } {
    const stop = new AbortController();
    const results: BatchResult[] = [];
    const running = watch(engine, index, { intervalMs: 60_000, signal: stop.signal, logger: pino({ level: 'silent' }), backoff: fast, onBatch: (r) => results.push(r) });
    return { stop, results, running };
  }

  it('applies a change as soon as the feed shows it, rides out a source outage, and stops on abort', async () => {
    const { tree, index, engine } = await setup();
    const { stop, results, running } = watching(engine, index);
    try {
      await until('the first sync', async () => (await tree.readState())?.serial === index.serial);

      const started = Date.now();
      index.upload('second', '1.0', 'second-1.0.tar.gz', 'second');
      await until('the upload in the tree', async () => (await tree.read(projectKeys('second').html)) !== null);
      assert.ok(Date.now() - started < 1000, 'no waiting for an interval');
      await until('the batch to finish', async () => (await tree.readState())?.serial === index.serial);

      const before = await tree.readState();
      index.down = true;
      await new Promise((r) => setTimeout(r, 100));
      index.upload('third', '1.0', 'third-1.0.tar.gz', 'third');
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(await tree.readState(), before, 'nothing recorded while the source is down');
      assert.equal((await verifyTree(tree)).ok, true);
      index.down = false;
      await until('the catch-up', async () => (await tree.readState())?.serial === index.serial);
      assert.notEqual(await tree.read(projectKeys('third').html), null);
    } finally {
      stop.abort();
      await running;
    }
    assert.equal(results.at(-1)!.ok, true);
  });

  it('writes the root in the background and reports it as a result of its own; stopping waits for it', async () => {
    const { tree, index, engine } = await setup();
    const { stop, results, running } = watching(engine, index);
    try {
      await until('the first sync', async () => (await tree.readState())?.serial === index.serial);
      // Its root's result comes just after the state that root let through.
      await until("the first sync's root reported", () => Promise.resolve(results.some((r) => r.rootWritten)));
      results.length = 0;
      index.upload('second', '1.0', 'second-1.0.tar.gz', 'second');
      await until('the root listing the new project', async () => (await tree.readRoot())?.projects.has('second') === true);
      await until('its result', () => Promise.resolve(results.some((r) => r.rootWritten)));
      const batch = results.find((r) => r.projectsWritten.includes('second'))!;
      assert.equal(batch.rootWritten, false, 'the batch that wrote the page left the root to the background');
      const root = results.find((r) => r.rootWritten)!;
      assert.deepEqual([root.ok, root.projectsWritten, root.serial], [true, [], index.serial]);
      index.upload('third', '1.0', 'third-1.0.tar.gz', 'third');
      await until('the page of the last upload', async () => (await tree.read(projectKeys('third').html)) !== null);
    } finally {
      stop.abort();
      await running;
    }
    // Stopping waited for the root being written and the state after it.
    assert.equal((await tree.readState())?.serial, index.serial);
    assert.ok((await tree.readRoot())?.projects.has('third'));
    assert.deepEqual((await verifyTree(tree)).problems, []);
  });

  it('catches up without a new change when the source root index lagged behind the pages of a batch', async () => {
    const { tree, index, engine } = await setup();
    const { stop, running } = watching(engine, index);
    try {
      await until('the first sync', async () => (await tree.readState())?.serial === index.serial);
      index.heldListing = await index.listing();
      index.upload('first', '1.1', 'first-1.1.tar.gz', 'first');
      await until('the upload in the tree', async () => (await tree.read(projectKeys('first').html))?.toString().includes('first-1.1.tar.gz') === true);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok((await tree.readState())!.serial < index.serial, 'the state waits for a root index that lists the upload');
      index.heldListing = null;
      // No change follows: the loop asks the source's root again by itself, long before the reconcile.
      await until('the state to catch up', async () => {
        const state = await tree.readState();
        return state?.serial === index.serial && state.rootSerial === index.serial;
      });
    } finally {
      stop.abort();
      await running;
    }
    assert.deepEqual((await verifyTree(tree)).problems, []);
  });

  it("applies changes while a reconcile's scan of the tree runs, and reconciles once it ends", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pyedge-loop-'));
    dirs.push(dir);
    /** A store whose listings wait while `held` is set: a scan of a tree of PyPI's size. */
    class SlowListing extends ForwardingStore {
      held: Promise<void> | null = null;
      listings = 0;
      override async *list(prefix: string, options?: OpOptions): AsyncIterable<BlobEntry> {
        this.listings++;
        if (this.held) await this.held;
        yield* this.inner.list(prefix, options);
      }
    }
    const store = new SlowListing(new FolderBlobStore(join(dir, 'tree')));
    const tree = new StaticTree(store);
    const index = new FakeIndex();
    index.upload('first', '1.0', 'first-1.0.tar.gz', 'first');
    const engine = new SyncEngine({ source: index, tree, key: await loadServerKey(join(dir, 'key.pem'), { create: true }), logger: pino({ level: 'silent' }), settleMs: 200 });
    await engine.open();
    let release = (): void => undefined;
    store.held = new Promise<void>((resolve) => (release = resolve));
    const stop = new AbortController();
    const running = watch(engine, index, { intervalMs: 300, signal: stop.signal, logger: pino({ level: 'silent' }), backoff: fast });
    try {
      await until('the first sync', async () => (await tree.readState())?.serial === index.serial);
      const before = store.listings;
      await until('a reconcile to start its scan', () => Promise.resolve(store.listings > before));
      // The scan waits; an upload goes up all the same.
      index.upload('second', '1.0', 'second-1.0.tar.gz', 'second');
      await until('the upload in the tree during the scan', async () => (await tree.readState())?.serial === index.serial, 2000);
      for (const key of await new StaticTree(store.inner).keys('simple/first/')) await store.inner.delete(key);
      store.held = null;
      release();
      await until('the reconcile after the scan', async () => (await tree.read(projectKeys('first').serverSig)) !== null, 4000);
    } finally {
      release();
      stop.abort();
      await running;
    }
    assert.deepEqual((await verifyTree(tree)).problems, []);
  });

  it('reconciles every interval: a page deleted behind its back comes back', async () => {
    const { tree, engine, index } = await setup();
    const stop = new AbortController();
    const running = watch(engine, index, { intervalMs: 1000, signal: stop.signal, logger: pino({ level: 'silent' }), backoff: fast });
    try {
      await until('the first sync', async () => (await tree.readState())?.serial === index.serial);
      for (const key of await tree.keys('simple/first/')) await tree.delete(key);
      // The signature is the last of the Simple pages a batch writes: once it is back, so are they.
      await until('the reconcile', async () => (await tree.read(projectKeys('first').serverSig)) !== null, 4000);
      const report = await verifyTree(tree);
      assert.equal(report.ok, true, JSON.stringify(report));
    } finally {
      stop.abort();
      await running;
    }
  });
});
