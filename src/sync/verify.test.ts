import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { FolderBlobStore } from '../blobstore/folder/folder-blob-store.js';
import { loadServerKey } from '../signing/key-file.js';
import { SyncEngine } from './engine.js';
import { FakeIndex } from './fake-index.js';
import { RecordingStore } from './recording-store.js';
import { repairTree } from './repair.js';
import { StaticTree } from './static-tree.js';
import { ROOT_KEYS, STATE_KEY, projectKeys } from './tree-layout.js';
import { verifyTree, type VerifyReport } from './verify.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function synced(): Promise<{ tree: StaticTree; index: FakeIndex; engine: () => Promise<SyncEngine> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-verify-'));
  dirs.push(dir);
  const tree = new StaticTree(new FolderBlobStore(join(dir, 'tree')));
  const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
  const index = new FakeIndex();
  index.upload('alpha', '1.0', 'alpha-1.0.tar.gz', 'alpha one', { metadata: 'Name: alpha\n' });
  index.upload('beta', '2.0', 'beta-2.0.tar.gz', 'beta two');
  const engine = async (): Promise<SyncEngine> => {
    const e = new SyncEngine({ source: index, tree, key, logger: pino({ level: 'silent' }), settleMs: 300 });
    await e.open();
    return e;
  };
  assert.equal((await (await engine()).runBatch()).ok, true);
  return { tree, index, engine };
}

function messages(report: VerifyReport): string[] {
  return report.problems.map((p) => `${p.key}: ${p.message}`);
}

async function repaired(tree: StaticTree, engine: SyncEngine, report: VerifyReport): Promise<VerifyReport> {
  const r = await repairTree(engine, tree, report, { orphanMinAgeMs: 0 });
  assert.equal(r.batch.ok, true, JSON.stringify(r.batch.failures));
  return r.report;
}

describe('verifyTree', () => {
  it('passes a synced tree', async () => {
    const { tree } = await synced();
    const report = await verifyTree(tree);
    assert.deepEqual(report.problems, []);
    assert.equal(report.ok, true);
    assert.equal(report.projects, 2);
    assert.equal(report.files, 3, 'two files and one metadata file');
  });

  it('finds a modified page by its signature, and --repair writes it again', async () => {
    const { tree, engine } = await synced();
    const key = projectKeys('alpha').html;
    const page = (await tree.read(key))!.toString();
    const tampered = page.replace('</body>', '<a href="https://evil.example/x.tar.gz#sha256=00">x</a></body>');
    await tree.store.put(key, Buffer.from(tampered));
    await tree.store.put(projectKeys('alpha').v1Html, Buffer.from(tampered));
    const report = await verifyTree(tree);
    assert.equal(report.ok, false);
    assert.ok(messages(report).some((m) => /serversig: page bytes do not match the signed hash/.test(m)), messages(report).join('\n'));
    assert.deepEqual(report.projectsToRepair, ['alpha']);
    const after = await repaired(tree, await engine(), report);
    assert.deepEqual(after.problems, []);
    assert.equal((await tree.read(key))!.toString(), page);
  });

  it('finds a page replayed from an older serial', async () => {
    const { tree, index, engine } = await synced();
    const keys = projectKeys('beta');
    const old = await Promise.all([keys.html, keys.v1Html, keys.v1Json, keys.serverSig].map((k) => tree.read(k)));
    index.upload('beta', '2.1', 'beta-2.1.tar.gz', 'beta two one');
    assert.equal((await (await engine()).runBatch()).ok, true);
    // Put the old, correctly signed pages back, as a stale CDN node or an attacker would.
    await Promise.all([keys.html, keys.v1Html, keys.v1Json, keys.serverSig].map((k, i) => tree.store.put(k, old[i]!)));
    const report = await verifyTree(tree);
    assert.equal(report.ok, false);
    assert.ok(messages(report).some((m) => /older than the root/.test(m)), messages(report).join('\n'));
    assert.ok(messages(report).some((m) => /serversig: signature is for serial \d+, older than/.test(m)));
    const after = await repaired(tree, await engine(), report);
    assert.deepEqual(after.problems, []);
  });

  it('finds a missing file and a file with wrong bytes, and copies them again', async () => {
    const { tree, index, engine } = await synced();
    const alpha = index.state('alpha')!.files[0]!.path;
    const beta = index.state('beta')!.files[0]!.path;
    await tree.delete(alpha);
    const bytes = (await tree.read(beta))!;
    bytes[0] = bytes[0]! ^ 1;
    await tree.store.put(beta, bytes);
    const report = await verifyTree(tree);
    assert.deepEqual(messages(report).sort(), [`${alpha}: linked file is missing`, `${beta}: file's sha256 does not match the page's ${index.state('beta')!.files[0]!.sha256}`].sort());
    assert.equal((await verifyTree(tree, { checkHashes: false })).problems.length, 1, 'without hashes only the missing file shows');
    const after = await repaired(tree, await engine(), report);
    assert.deepEqual(after.problems, []);
  });

  it('finds pages the root does not list, a root page missing, and a state ahead of the root', async () => {
    const { tree, engine } = await synced();
    await tree.store.put('simple/ghost/index.html', Buffer.from('<html></html>'));
    await tree.delete(projectKeys('beta').v1Json);
    const state = JSON.parse((await tree.read(STATE_KEY))!.toString()) as { serial: number };
    await tree.store.put(STATE_KEY, Buffer.from(JSON.stringify({ ...state, serial: state.serial + 5 })));
    const report = await verifyTree(tree);
    const m = messages(report);
    assert.ok(m.includes('simple/ghost/index.html: pages of a project the root index does not list'), m.join('\n'));
    assert.ok(m.includes(`${projectKeys('beta').v1Json}: page is missing`));
    assert.ok(m.some((x) => /state records serial \d+, ahead of the root index/.test(x)));
    const after = await repaired(tree, await engine(), report);
    assert.deepEqual(after.problems, []);
    assert.deepEqual(await tree.keys('simple/ghost/'), []);
  });

  it('finds a root that lists a project differently in HTML and JSON', async () => {
    const { tree, engine } = await synced();
    const html = (await tree.read(ROOT_KEYS.html))!.toString().replace(/ *<a href="beta\/">beta<\/a>\n/, '');
    await tree.store.put(ROOT_KEYS.html, Buffer.from(html));
    const report = await verifyTree(tree);
    assert.ok(messages(report).includes(`${ROOT_KEYS.html}: HTML and JSON root indexes list different projects`), messages(report).join('\n'));
    assert.ok(messages(report).includes(`${ROOT_KEYS.v1Html}: differs from index.html`));
    assert.deepEqual((await repaired(tree, await engine(), report)).problems, []);
  });

  it('passes wherever a crash cuts a batch short, and notes what is ahead of the recorded serial', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pyedge-verify-'));
    dirs.push(dir);
    const key = await loadServerKey(join(dir, 'key.pem'), { create: true });
    const base = (index: FakeIndex): void => {
      index.upload('alpha', '1.0', 'alpha-1.0.tar.gz', 'alpha one', { metadata: 'Name: alpha\n' });
      index.upload('alpha', '1.1', 'alpha-1.1.tar.gz', 'alpha one one');
      index.upload('beta', '2.0', 'beta-2.0.tar.gz', 'beta two');
      index.upload('gone', '0.1', 'gone-0.1.tar.gz', 'gone soon');
    };
    const change = (index: FakeIndex): void => {
      index.upload('alpha', '1.2', 'alpha-1.2.tar.gz', 'alpha one two', { metadata: 'Name: alpha\n' });
      index.removeRelease('alpha', '1.1');
      index.removeFile('alpha', 'alpha-1.0.tar.gz');
      index.yank('beta', '2.0', 'broken');
      index.upload('beta', '2.1', 'beta-2.1.tar.gz', 'beta two one');
      index.upload('new', '1.0', 'new-1.0.tar.gz', 'brand new', { metadata: 'Name: new\n' });
      index.removeProject('gone');
    };
    const run = async (store: RecordingStore, index: FakeIndex): Promise<boolean> => {
      const engine = new SyncEngine({ source: index, tree: new StaticTree(store), key, logger: pino({ level: 'silent' }), settleMs: 300 });
      await engine.open();
      return (await engine.runBatch()).ok;
    };
    let writes = 0;
    let aheadSeen = 0;
    for (let crashAt = 1; crashAt === 1 || crashAt <= writes; crashAt++) {
      const store = new RecordingStore(new FolderBlobStore(join(dir, `tree-${crashAt}`)));
      const tree = new StaticTree(store);
      const index = new FakeIndex();
      base(index);
      assert.equal(await run(store, index), true);
      change(index);
      store.reset();
      if (crashAt === 1) {
        assert.equal(await run(store, index), true);
        writes = store.ops.length;
        assert.ok(writes > 20, `the batch writes ${writes} keys`);
        const clean = await verifyTree(tree);
        assert.deepEqual(clean.problems, []);
        assert.deepEqual(clean.ahead, [], 'a finished batch leaves nothing ahead');
        continue;
      }
      store.crashAt = crashAt;
      assert.equal(await run(store, index), false, `crash at write ${crashAt}`);
      store.crashAt = null;
      const mid = await verifyTree(tree);
      assert.deepEqual(messages(mid), [], `after a crash before write ${crashAt} (${store.ops.map((o) => `${o.op} ${o.key}`).join(', ')})`);
      if (mid.ahead.length > 0) aheadSeen++;
      assert.equal(await run(store, index), true);
      const after = await verifyTree(tree);
      assert.deepEqual(messages(after), [], `after recovering from a crash before write ${crashAt}`);
      assert.deepEqual(after.ahead, []);
    }
    assert.ok(aheadSeen > writes / 2, `most crashes leave something ahead (${aheadSeen} of ${writes})`);
  });

  it('still finds a page newer than its signature, or a stray release page, when no batch is under way', async () => {
    const { tree, index, engine } = await synced();
    const keys = projectKeys('beta');
    const oldSig = (await tree.read(keys.serverSig))!;
    const oldRelease = (await tree.read('pypi/beta/2.0/json'))!;
    index.upload('beta', '2.1', 'beta-2.1.tar.gz', 'beta two one');
    index.removeRelease('beta', '2.0');
    assert.equal((await (await engine()).runBatch()).ok, true);
    await tree.store.put(keys.serverSig, oldSig);
    await tree.store.put('pypi/beta/2.0/json', oldRelease);
    const report = await verifyTree(tree);
    const m = messages(report);
    assert.ok(m.some((x) => /^simple\/beta\/serversig: signature is for serial \d+, the page is at \d+$/.test(x)), m.join('\n'));
    assert.ok(m.includes('pypi/beta/2.0/json: release page no JSON API page lists'), m.join('\n'));
    assert.deepEqual(report.ahead, []);
    assert.deepEqual((await repaired(tree, await engine(), report)).problems, []);
  });

  it('reports unlinked files as orphans, not problems; --repair deletes them', async () => {
    const { tree, engine } = await synced();
    const stray = `packages/aa/bb/${'c'.repeat(60)}/stray-1.0.tar.gz`;
    await tree.store.put(stray, Buffer.from('nobody links me'));
    const report = await verifyTree(tree);
    assert.equal(report.ok, true);
    assert.deepEqual(report.orphans, [stray]);
    const after = await repaired(tree, await engine(), report);
    assert.deepEqual(after.orphans, []);
    assert.equal(await tree.has(stray, null), false);
  });
});
