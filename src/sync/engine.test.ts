import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { FolderBlobStore } from '../blobstore/folder/folder-blob-store.js';
import { loadServerKey, type ServerKey } from '../signing/key-file.js';
import { SyncEngine } from './engine.js';
import { FakeIndex, treeContents } from './fake-index.js';
import { RecordingStore, type RecordedOp } from './recording-store.js';
import { StaticTree } from './static-tree.js';
import { LAST_MODIFIED_KEY, ROOT_KEYS, STATE_KEY, projectKeys } from './tree-layout.js';
import { verifyTree } from './verify.js';

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

interface Subject {
  readonly store: RecordingStore;
  readonly tree: StaticTree;
  readonly key: ServerKey;
  engine(index: FakeIndex, key?: ServerKey): Promise<SyncEngine>;
}

async function subject(): Promise<Subject> {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-engine-'));
  dirs.push(dir);
  const store = new RecordingStore(new FolderBlobStore(join(dir, 'tree')));
  const tree = new StaticTree(store);
  const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
  return {
    store,
    tree,
    key,
    async engine(index, k = key) {
      const e = new SyncEngine({ source: index, tree, key: k, logger: silent, settleMs: 300 });
      await e.open();
      return e;
    },
  };
}

function at(ops: readonly RecordedOp[], op: 'put' | 'delete', key: string): number {
  const i = ops.findIndex((o) => o.op === op && o.key === key);
  assert.ok(i >= 0, `expected ${op} ${key} in ${ops.map((o) => `${o.op} ${o.key}`).join(', ')}`);
  return i;
}

/** Two projects, one with PEP 658 metadata, one with two releases. */
function baseIndex(): FakeIndex {
  const index = new FakeIndex();
  index.upload('Alpha', '1.0', 'alpha-1.0.tar.gz', 'alpha one', { metadata: 'Metadata-Version: 2.1\nName: Alpha\n' });
  index.upload('beta', '0.1', 'beta-0.1.tar.gz', 'beta zero one');
  index.upload('beta', '0.2', 'beta-0.2.tar.gz', 'beta zero two');
  return index;
}

/** Removals, an upload and a new project on top of baseIndex. */
function mutate(index: FakeIndex): void {
  index.removeFile('Alpha', 'alpha-1.0.tar.gz');
  index.upload('Alpha', '1.1', 'alpha-1.1.tar.gz', 'alpha one one');
  index.removeRelease('beta', '0.1');
  index.upload('gamma', '2.0', 'gamma-2.0.tar.gz', 'gamma two', { metadata: 'Name: gamma\n' });
  index.upload('delta', '1.0', 'delta-1.0.tar.gz', 'delta');
  index.removeProject('delta');
}

describe('SyncEngine', () => {
  it('writes files before the pages that link them, project pages before the root, last-modified and state last', async () => {
    const s = await subject();
    const index = baseIndex();
    const result = await (await s.engine(index)).runBatch();
    assert.equal(result.ok, true, JSON.stringify(result.failures));
    assert.equal(result.serial, index.serial);
    const ops = s.store.ops;
    for (const name of ['alpha', 'beta']) {
      const keys = projectKeys(name);
      const page = at(ops, 'put', keys.html);
      for (const f of index.state(name)!.files) {
        assert.ok(at(ops, 'put', f.path) < page, `${f.path} before ${keys.html}`);
        if (f.metadataSha256) assert.ok(at(ops, 'put', `${f.path}.metadata`) < page);
      }
      assert.ok(at(ops, 'put', keys.v1Json) < at(ops, 'put', keys.serverSig), 'signature after the page it signs');
      assert.ok(at(ops, 'put', `pypi/${name}/${index.state(name)!.releases[0]!.version}/json`) < at(ops, 'put', keys.jsonApi));
      for (const root of Object.values(ROOT_KEYS)) assert.ok(at(ops, 'put', root) > at(ops, 'put', keys.jsonApi), `${root} after ${name}'s pages`);
    }
    assert.deepEqual(ops.slice(-2), [
      { op: 'put', key: LAST_MODIFIED_KEY },
      { op: 'put', key: STATE_KEY },
    ]);
    // The tree serves the source's bytes.
    for (const name of ['alpha', 'beta']) {
      const snap = (await index.project(name))!;
      assert.deepEqual(await s.tree.read(projectKeys(name).html), snap.html);
      assert.deepEqual(await s.tree.read(projectKeys(name).v1Html), snap.html);
      assert.deepEqual(await s.tree.read(projectKeys(name).v1Json), snap.json);
      assert.deepEqual(await s.tree.read(projectKeys(name).jsonApi), snap.jsonApi);
    }
    // The time of the change at the recorded serial (8), in PEP 381's format.
    assert.equal((await s.tree.read(LAST_MODIFIED_KEY))!.toString(), '20260101T00:00:08\n');
    assert.equal((await verifyTree(s.tree)).ok, true);
  });

  it('takes links out of pages and the root before it deletes files and pages', async () => {
    const s = await subject();
    const index = baseIndex();
    const engine = await s.engine(index);
    assert.equal((await engine.runBatch()).ok, true);
    const alphaOld = index.state('alpha')!.files[0]!.path;
    const betaOld = index.state('beta')!.files.find((f) => f.version === '0.1')!.path;
    mutate(index);
    s.store.reset();
    const result = await engine.runBatch();
    assert.equal(result.ok, true, JSON.stringify(result.failures));
    const ops = s.store.ops;
    const alphaPage = at(ops, 'put', projectKeys('alpha').v1Json);
    assert.ok(alphaPage < at(ops, 'delete', alphaOld));
    assert.ok(alphaPage < at(ops, 'delete', `${alphaOld}.metadata`));
    assert.ok(at(ops, 'put', projectKeys('beta').jsonApi) < at(ops, 'delete', 'pypi/beta/0.1/json'));
    assert.ok(at(ops, 'put', projectKeys('beta').v1Json) < at(ops, 'delete', betaOld));
    assert.ok(at(ops, 'put', ROOT_KEYS.v1Json) < at(ops, 'delete', alphaOld), 'deletes come after the root');
    assert.ok(at(ops, 'put', projectKeys('gamma').serverSig) < at(ops, 'put', ROOT_KEYS.html), 'new project page before the root lists it');
    assert.equal(ops.at(-1)!.key, STATE_KEY);
    assert.deepEqual(result.projectsRemoved, [], 'a project created and removed between two batches never reaches the tree');
    assert.equal(await s.tree.has(alphaOld, null), false);
    assert.deepEqual(await s.tree.keys('simple/delta/'), []);
    const report = await verifyTree(s.tree);
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.orphans, [], 'the removed project left no files behind');
  });

  it('removes a project: root first, then its pages, then its files', async () => {
    const s = await subject();
    const index = baseIndex();
    const engine = await s.engine(index);
    await engine.runBatch();
    const files = index.state('beta')!.files.map((f) => f.path);
    index.removeProject('beta');
    s.store.reset();
    assert.equal((await engine.runBatch()).ok, true);
    const ops = s.store.ops;
    const root = at(ops, 'put', ROOT_KEYS.v1Json);
    const page = at(ops, 'delete', projectKeys('beta').html);
    assert.ok(root < page);
    for (const f of files) assert.ok(page < at(ops, 'delete', f));
    assert.ok(at(ops, 'delete', projectKeys('beta').v1Json) > at(ops, 'delete', projectKeys('beta').serverSig), 'the JSON page goes last');
    assert.deepEqual(await s.tree.keys('pypi/beta/'), []);
    assert.equal((await verifyTree(s.tree)).ok, true);
  });

  it('replays idempotently: a second engine on a synced tree writes nothing', async () => {
    const s = await subject();
    const index = baseIndex();
    await (await s.engine(index)).runBatch();
    const before = await treeContents(s.tree);
    s.store.reset();
    const again = await (await s.engine(index)).runBatch({ changes: (await index.changesSince(0)).changes });
    assert.equal(again.ok, true);
    assert.deepEqual(s.store.ops, []);
    assert.deepEqual(await treeContents(s.tree), before);
  });

  it('converges after a crash at any write, and every link resolves at the crash', async () => {
    // The tree a batch without a crash leaves.
    const clean = await subject();
    const ref = baseIndex();
    await (await clean.engine(ref)).runBatch();
    mutate(ref);
    clean.store.reset();
    assert.equal((await (await clean.engine(ref)).runBatch()).ok, true);
    const writes = clean.store.ops.length;
    const expected = await treeContents(clean.tree);
    assert.ok(writes > 15, `the batch writes enough to be interesting (${writes})`);

    for (let crashAt = 1; crashAt <= writes; crashAt++) {
      const s = await subject();
      const index = baseIndex();
      await (await s.engine(index, clean.key)).runBatch();
      mutate(index);
      s.store.reset();
      s.store.crashAt = crashAt;
      const crashed = await (await s.engine(index, clean.key)).runBatch();
      assert.equal(crashed.ok, false, `crash at write ${crashAt}`);
      s.store.crashAt = null;
      const mid = await verifyTree(s.tree);
      const broken = mid.problems.filter(
        (p) => /linked file is missing|older than the root|root index is missing/.test(p.message) || (p.message === 'page is missing' && !p.key.endsWith('serversig')),
      );
      assert.deepEqual(broken, [], `after a crash at write ${crashAt}`);
      const recovered = await (await s.engine(index, clean.key)).runBatch();
      assert.equal(recovered.ok, true, JSON.stringify(recovered.failures));
      const report = await verifyTree(s.tree);
      assert.deepEqual(report.problems, [], `recovered from a crash at write ${crashAt}`);
      const got = await treeContents(s.tree);
      for (const orphan of report.orphans) got.delete(orphan);
      assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort(), `same keys after a crash at write ${crashAt}`);
      for (const [key, bytes] of expected) if (key !== 'serverkey') assert.equal(got.get(key), bytes, `${key} after a crash at write ${crashAt}`);
    }
  });

  it('coalesces a burst: one fetch per project per batch', async () => {
    const s = await subject();
    const index = new FakeIndex();
    for (let i = 0; i < 5; i++) index.upload('busy', `1.${i}`, `busy-1.${i}.tar.gz`, `busy ${i}`);
    index.upload('quiet', '1.0', 'quiet-1.0.tar.gz', 'quiet');
    const { changes } = await index.changesSince(0);
    assert.ok(changes.length >= 12);
    const result = await (await s.engine(index)).runBatch({ changes });
    assert.equal(result.ok, true);
    assert.deepEqual([...index.fetched].sort(), ['busy', 'quiet']);
    assert.equal(result.filesCopied, 6);
    assert.equal(s.store.ops.filter((o) => o.key === projectKeys('busy').html).length, 1);
  });

  it('carries yanks and status changes through; a quarantine unlinks files and an unquarantine brings them back', async () => {
    const s = await subject();
    const index = baseIndex();
    const engine = await s.engine(index);
    await engine.runBatch();
    index.yank('beta', '0.2', 'broken');
    assert.equal((await engine.runBatch()).ok, true);
    assert.match((await s.tree.read(projectKeys('beta').html))!.toString(), /data-yanked="broken"/);
    const files = index.state('alpha')!.files.map((f) => f.path);
    index.setStatus('alpha', 'quarantined');
    assert.equal((await engine.runBatch()).ok, true);
    assert.equal(await s.tree.read(projectKeys('alpha').jsonApi), null, 'a quarantined project has no JSON API');
    assert.deepEqual(await s.tree.keys('pypi/alpha/'), []);
    for (const f of files) assert.equal(await s.tree.has(f, null), false);
    assert.match((await s.tree.read(projectKeys('alpha').html))!.toString(), /pypi:project-status" content="quarantined"/);
    assert.equal((await verifyTree(s.tree)).ok, true);
    index.setStatus('alpha', 'active');
    assert.equal((await engine.runBatch()).ok, true);
    for (const f of files) assert.equal(await s.tree.has(f, null), true);
    assert.equal((await verifyTree(s.tree)).ok, true);
  });

  it('writes nothing while the source is down, and catches up when it is back', async () => {
    const s = await subject();
    const index = baseIndex();
    const engine = await s.engine(index);
    await engine.runBatch();
    const before = await treeContents(s.tree);
    index.upload('gamma', '1.0', 'gamma-1.0.tar.gz', 'gamma');
    const { changes } = await index.changesSince(0);
    index.down = true;
    s.store.reset();
    const failed = await engine.runBatch({ changes });
    assert.equal(failed.ok, false);
    assert.equal(failed.failures[0]!.code, 'PYEDGE_UNAVAILABLE');
    assert.deepEqual(s.store.ops, []);
    assert.deepEqual(await treeContents(s.tree), before);
    index.down = false;
    const back = await engine.runBatch();
    assert.equal(back.ok, true);
    assert.deepEqual(back.projectsWritten, ['gamma']);
    assert.equal(back.serial, index.serial);
  });

  it('refuses a file whose bytes do not match its page: the project keeps its old pages', async () => {
    const s = await subject();
    const index = baseIndex();
    const engine = await s.engine(index);
    await engine.runBatch();
    const bad = index.upload('beta', '0.3', 'beta-0.3.tar.gz', 'beta zero three');
    index.corrupt.add(bad);
    const oldPage = await s.tree.read(projectKeys('beta').html);
    const result = await engine.runBatch();
    assert.equal(result.ok, false);
    assert.equal(result.failures[0]!.code, 'PYEDGE_DIGEST_MISMATCH');
    assert.equal(await s.tree.has(bad, null), false);
    assert.deepEqual(await s.tree.read(projectKeys('beta').html), oldPage);
    assert.equal((await verifyTree(s.tree)).ok, true);
    index.corrupt.clear();
    assert.equal((await engine.runBatch()).ok, true);
    assert.equal(await s.tree.has(bad, null), true);
  });

  it('puts no new project page up while the root cannot list it: a failed copy holds back every new page', async () => {
    const s = await subject();
    const index = baseIndex();
    const engine = await s.engine(index);
    await engine.runBatch();
    index.upload('newcomer', '1.0', 'newcomer-1.0.tar.gz', 'fine');
    index.corrupt.add(index.upload('broken', '1.0', 'broken-1.0.tar.gz', 'bad'));
    const { changes } = await index.changesSince(0);
    s.store.reset();
    const result = await engine.runBatch({ changes });
    assert.equal(result.ok, false);
    assert.deepEqual(s.store.ops.filter((o) => o.key.startsWith('simple/')), [], 'no page was written');
    assert.deepEqual((await verifyTree(s.tree)).problems, [], 'the tree still verifies (no unlisted page)');
    index.corrupt.clear();
    assert.deepEqual([...(await engine.runBatch()).projectsWritten].sort(), ['broken', 'newcomer']);
  });

  it('fetches a project again when it moves on while its release pages are read', async () => {
    const s = await subject();
    const index = baseIndex();
    const engine = await s.engine(index);
    await engine.runBatch();
    index.upload('beta', '0.3', 'beta-0.3.tar.gz', 'beta zero three');
    const { changes } = await index.changesSince(0);
    index.afterSnapshot = () => {
      index.afterSnapshot = null;
      index.upload('beta', '0.4', 'beta-0.4.tar.gz', 'beta zero four');
    };
    s.store.reset();
    const result = await engine.runBatch({ changes });
    assert.equal(result.ok, true, JSON.stringify(result.failures));
    assert.deepEqual(index.fetched.slice(-2), ['beta', 'beta'], 'fetched twice');
    assert.equal(s.store.ops.filter((o) => o.key === projectKeys('beta').html).length, 2, 'the Simple pages went up at once, then again');
    assert.equal(s.store.ops.filter((o) => o.key === projectKeys('beta').jsonApi).length, 1, 'the JSON API only at the newer serial');
    const snap = (await index.project('beta'))!;
    assert.deepEqual(await s.tree.read(projectKeys('beta').jsonApi), snap.jsonApi);
    assert.deepEqual(await s.tree.read('pypi/beta/0.4/json'), (await snap.releases())!.get('0.4'));
    assert.deepEqual((await verifyTree(s.tree)).problems, []);
  });

  it('signs every page again when the key changes', async () => {
    const s = await subject();
    const index = baseIndex();
    await (await s.engine(index)).runBatch();
    const dir = await mkdtemp(join(tmpdir(), 'pyedge-key-'));
    dirs.push(dir);
    const other = await loadServerKey(join(dir, 'k.pem'), { create: true });
    s.store.reset();
    const result = await (await s.engine(index, other)).runBatch();
    assert.equal(result.ok, true);
    assert.deepEqual([...result.projectsWritten].sort(), ['alpha', 'beta']);
    assert.equal((await s.tree.readServerKey())!, other.publicPem);
    assert.equal((await s.tree.readState())!.key, other.id);
    assert.equal((await verifyTree(s.tree)).ok, true);
  });
});

describe('SyncEngine root interval', () => {
  const INTERVAL = 30_000;

  async function timed(s: Subject, index: FakeIndex, clock: { t: number }): Promise<SyncEngine> {
    const e = new SyncEngine({ source: index, tree: s.tree, key: s.key, logger: silent, settleMs: 300, rootIntervalMs: INTERVAL, now: () => clock.t });
    await e.open();
    return e;
  }

  /** A tree published once, then given an upload to an existing project a second later: its root lags. */
  async function laggingRoot(): Promise<{ s: Subject; index: FakeIndex; clock: { t: number }; engine: SyncEngine }> {
    const s = await subject();
    const index = baseIndex();
    const clock = { t: 1_000_000 };
    const engine = await timed(s, index, clock);
    await engine.runBatch();
    clock.t += 1000;
    index.upload('beta', '0.3', 'beta-0.3.tar.gz', 'beta zero three');
    await engine.runBatch();
    return { s, index, clock, engine };
  }

  const rootMeta = async (tree: StaticTree): Promise<number> => (await tree.readRoot())!.serial;
  const rootPuts = (store: RecordingStore): string[] => store.ops.filter((o) => o.op === 'put' && o.key.startsWith('simple/index.')).map((o) => o.key);

  it('writes the root at most once per interval during a burst of uploads to existing projects', async () => {
    const s = await subject();
    const index = baseIndex();
    const clock = { t: 1_000_000 };
    const engine = await timed(s, index, clock);
    assert.equal((await engine.runBatch()).ok, true);
    s.store.reset();
    const N = 75;
    const writesAt: number[] = [];
    for (let i = 0; i < N; i++) {
      clock.t += 1000;
      index.upload(i % 2 === 0 ? 'beta' : 'Alpha', `9.${i}`, `${i % 2 === 0 ? 'beta' : 'alpha'}-9.${i}.tar.gz`, `burst ${i}`);
      const before = s.store.ops.length;
      const r = await engine.runBatch({ changes: (await index.changesSince(index.serial - 3)).changes });
      assert.equal(r.ok, true, JSON.stringify(r.failures));
      assert.equal(r.serial, index.serial, 'every batch records the new serial at once');
      if (s.store.ops.slice(before).some((o) => o.key === ROOT_KEYS.v1Json)) writesAt.push(clock.t);
      if (i % 25 === 0) assert.deepEqual((await verifyTree(s.tree)).problems, [], `the tree verifies with a lagging root (upload ${i})`);
    }
    // 75 s of uploads with a 30 s interval: the root goes up at 30 s and 60 s, never in between.
    assert.equal(writesAt.length, 2, `root writes at ${writesAt.map((t) => t - 1_000_000).join(', ')}`);
    assert.ok(writesAt[1]! - writesAt[0]! >= INTERVAL);
    assert.deepEqual(rootPuts(s.store).filter((k) => k !== ROOT_KEYS.v1Json), [], 'the HTML root stays: the project list did not change');
    const state = (await s.tree.readState())!;
    assert.equal(state.serial, index.serial);
    assert.ok(state.rootSerial < state.serial, 'the root lags');
    assert.equal(state.rootSerial, await rootMeta(s.tree));
    assert.deepEqual(Object.keys(state.newer).sort(), ['alpha', 'beta'], 'the state names the projects newer than the root');
    assert.equal(state.newer.beta, index.state('beta')!.project.lastSerial);
  });

  it('writes the root at once for a new or a removed project, before the new page is linked and before the old one goes', async () => {
    const { s, index, clock, engine } = await laggingRoot();
    assert.ok((await s.tree.readState())!.rootSerial < index.serial, 'the root lags after an upload to an existing project');

    clock.t += 1000;
    index.upload('gamma', '1.0', 'gamma-1.0.tar.gz', 'gamma');
    s.store.reset();
    const added = await engine.runBatch({ changes: (await index.changesSince(0)).changes });
    assert.equal(added.rootWritten, true);
    assert.deepEqual(rootPuts(s.store).sort(), [ROOT_KEYS.html, ROOT_KEYS.v1Html, ROOT_KEYS.v1Json].sort());
    assert.ok(at(s.store.ops, 'put', projectKeys('gamma').serverSig) < at(s.store.ops, 'put', ROOT_KEYS.html));
    assert.equal(await rootMeta(s.tree), index.serial, 'the root is current again, serials included');
    assert.deepEqual((await s.tree.readState())!.newer, {});

    clock.t += 1000;
    index.removeProject('gamma');
    s.store.reset();
    const removed = await engine.runBatch();
    assert.equal(removed.rootWritten, true);
    assert.ok(at(s.store.ops, 'put', ROOT_KEYS.v1Json) < at(s.store.ops, 'delete', projectKeys('gamma').html));
    assert.deepEqual((await verifyTree(s.tree)).problems, []);
  });

  it('with a lagging root, verify still catches a replayed page, and a restart refetches nothing', async () => {
    const s = await subject();
    const index = baseIndex();
    const clock = { t: 1_000_000 };
    const first = await timed(s, index, clock);
    await first.runBatch();
    const keys = projectKeys('beta');
    const pageKeys = [keys.html, keys.v1Html, keys.v1Json, keys.serverSig];
    const old = await Promise.all(pageKeys.map((k) => s.tree.read(k)));
    clock.t += 1000;
    index.upload('beta', '0.3', 'beta-0.3.tar.gz', 'beta zero three');
    await first.runBatch();
    const state = (await s.tree.readState())!;
    assert.ok(state.rootSerial < state.serial && state.newer.beta === state.serial, JSON.stringify(state));
    assert.deepEqual((await verifyTree(s.tree)).problems, []);

    // The old pages are as new as the root's entry: only the state's record shows they are stale.
    const current = await Promise.all(pageKeys.map((k) => s.tree.read(k)));
    await Promise.all(pageKeys.map((k, i) => s.tree.store.put(k, old[i]!)));
    const report = await verifyTree(s.tree);
    const problems = report.problems.map((p) => `${p.key}: ${p.message}`);
    assert.ok(problems.includes(`${keys.v1Json}: page is at serial ${state.rootSerial}, older than the state's ${state.serial} (replayed?)`), problems.join('\n'));
    assert.ok(problems.some((m) => /serversig: signature is for serial \d+, older than/.test(m)), problems.join('\n'));
    assert.deepEqual(report.projectsToRepair, ['beta']);
    await Promise.all(pageKeys.map((k, i) => s.tree.store.put(k, current[i]!)));

    index.fetched.length = 0;
    s.store.reset();
    const again = await (await timed(s, index, clock)).runBatch({ changes: (await index.changesSince(0)).changes });
    assert.equal(again.ok, true);
    assert.deepEqual(index.fetched, [], 'the pages newer than the root are known from the state');
    assert.equal(again.rootWritten, true, 'a new engine refreshes a lagging root in its first batch');
    assert.deepEqual((await verifyTree(s.tree)).problems, []);
  });

  it('a one-shot refresh brings the root up to date whatever the interval; a state ahead of every page fails verify', async () => {
    const { s, index, clock, engine } = await laggingRoot();
    assert.notEqual(engine.rootRefreshDue, null);
    assert.equal(engine.rootRefreshDue, 1_000_000 + INTERVAL, 'due one interval after the last root write');
    const r = await engine.runBatch({ refreshRoot: true });
    assert.equal(r.rootWritten, true);
    assert.equal(engine.rootRefreshDue, null);
    const listing = await index.listing();
    const expected = (await import('./root-pages.js')).rootJsonChunks(listing.projects, listing.serial);
    assert.deepEqual(await s.tree.read(ROOT_KEYS.v1Json), Buffer.concat([...expected]), "the root is the source's again");

    clock.t += 1000;
    index.upload('beta', '0.4', 'beta-0.4.tar.gz', 'beta zero four');
    await engine.runBatch();
    const state = JSON.parse((await s.tree.read(STATE_KEY))!.toString()) as { serial: number };
    await s.tree.store.put(STATE_KEY, Buffer.from(JSON.stringify({ ...state, serial: state.serial + 5 })));
    const report = await verifyTree(s.tree);
    assert.ok(report.problems.some((p) => /state records serial \d+, ahead of the root index at \d+ and of every page/.test(p.message)), JSON.stringify(report.problems));
  });

  it('drops a project whose releases were all removed (the source lists it no more, but serves its page)', async () => {
    const s = await subject();
    const index = baseIndex();
    const engine = await s.engine(index);
    assert.equal((await engine.runBatch()).ok, true);
    const fileOfBeta = index.state('beta')!.files[0]!.path;
    index.removeRelease('beta', '0.1');
    index.removeRelease('beta', '0.2');
    assert.notEqual(await index.project('beta'), null, 'the page stays at the source');
    const r = await engine.runBatch({ changes: (await index.changesSince(0)).changes });
    assert.equal(r.ok, true, JSON.stringify(r.failures));
    assert.deepEqual(r.projectsRemoved, ['beta']);
    assert.deepEqual(await s.tree.keys('simple/beta/'), []);
    assert.deepEqual(await s.tree.keys('pypi/beta/'), []);
    assert.equal(await s.tree.has(fileOfBeta, null), false);
    assert.deepEqual((await verifyTree(s.tree)).problems, []);
  });
});
