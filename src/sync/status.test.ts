import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { FolderBlobStore } from '../blobstore/folder/folder-blob-store.js';
import { PyedgeError } from '../core/errors.js';
import { loadServerKey } from '../signing/key-file.js';
import { SyncEngine } from './engine.js';
import { FakeIndex, batchResult } from './fake-index.js';
import { RecordingStore } from './recording-store.js';
import { StaticTree } from './static-tree.js';
import { STATUS_KEY, StatusRecorder, parsePublisherStatus } from './status.js';
import { formatStatusReport, readStatusReport } from './status-report.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempTree(): Promise<{ store: RecordingStore; tree: StaticTree; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-status-'));
  dirs.push(dir);
  const store = new RecordingStore(new FolderBlobStore(join(dir, 'tree')));
  return { store, tree: new StaticTree(store), dir };
}

const failed = batchResult({
  ok: false,
  serial: 4,
  previousSerial: 4,
  failures: [{ project: 'beta', code: 'PYEDGE_DIGEST_MISMATCH', message: 'bad bytes' }],
  ms: 12,
});

/** A stand-in for an origin's change feed: `/changes?since=N&limit=1`. */
async function feed(lastSerial: number, times: Record<number, string>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const since = Number(new URL(req.url!, 'http://x').searchParams.get('since'));
    const changes = since < lastSerial ? [{ serial: since + 1, project: 'x', action: 'add file', time: times[since + 1] }] : [];
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ changes, next: since + changes.length, last_serial: lastSerial }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('StatusRecorder', () => {
  it('records the last error and the source serial, writing at most once per interval', async () => {
    const { store, tree } = await tempTree();
    const view = { appliedSerial: 4, rootSerial: 3 };
    const rec = new StatusRecorder(tree, { source: 'http://origin', watching: true, tree: view, logger: pino({ level: 'silent' }), minIntervalMs: 300 });
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      rec.sourceSerial(5 + i);
      await new Promise((r) => setTimeout(r, 20));
    }
    rec.batch(failed);
    rec.sourceError(new PyedgeError('PYEDGE_UNAVAILABLE', 'The source http://origin is unreachable.'));
    await rec.close();
    const elapsed = Date.now() - started;
    const writes = store.ops.filter((o) => o.key === STATUS_KEY).length;
    assert.ok(writes >= 1 && writes <= Math.ceil(elapsed / 300) + 1, `${writes} writes in ${elapsed} ms`);
    const status = parsePublisherStatus((await tree.read(STATUS_KEY))!)!;
    assert.equal(status.sourceSerial, 24);
    assert.equal(status.appliedSerial, 4);
    assert.equal(status.rootSerial, 3);
    assert.equal(status.watching, true);
    assert.deepEqual({ ...status.lastError, time: '' }, { time: '', code: 'PYEDGE_UNAVAILABLE', message: 'The source http://origin is unreachable.' });
    assert.equal(status.failuresInARow, 2);
    assert.equal(status.lastBatch?.ok, false);
    assert.equal(status.lastSuccess, null);
  });
});

describe('readStatusReport', () => {
  it("shows the applied serial, the lag behind the source in serials and seconds, and the publisher's last error", async () => {
    const { tree, dir } = await tempTree();
    const index = new FakeIndex();
    index.upload('alpha', '1.0', 'alpha-1.0.tar.gz', 'alpha');
    const engine = new SyncEngine({ source: index, tree, key: await loadServerKey(join(dir, 'k.pem'), { create: true }), logger: pino({ level: 'silent' }) });
    await engine.open();
    assert.equal((await engine.runBatch()).ok, true);
    const applied = index.serial;
    const rec = new StatusRecorder(tree, { source: 'ignored', watching: true, tree: engine, logger: pino({ level: 'silent' }) });
    rec.batch(failed);
    await rec.close();

    const now = Date.parse('2026-02-01T00:01:00Z');
    const origin = await feed(applied + 3, { [applied + 1]: '2026-02-01T00:00:30Z' });
    try {
      const behind = await readStatusReport(tree, { source: origin.url, now: () => now });
      assert.equal(behind.state?.serial, applied);
      assert.equal(behind.sourceSerial, applied + 3);
      assert.equal(behind.lagSerials, 3);
      assert.equal(behind.lagSeconds, 30, 'since the first change the tree lacks');
      const text = formatStatusReport(behind, now);
      assert.match(text, new RegExp(`^applied serial: +${applied} \\(recorded `, 'm'));
      assert.match(text, new RegExp(`^source serial: +${applied + 3}$`, 'm'));
      assert.match(text, /^lag: +3 serials, 30\.0 s$/m);
      assert.match(text, /^last error: +.*PYEDGE_DIGEST_MISMATCH: beta: bad bytes \(1 failure\(s\) in a row\)$/m);
    } finally {
      origin.server.close();
    }
    const caughtUp = await feed(applied, {});
    try {
      const r = await readStatusReport(tree, { source: caughtUp.url });
      assert.equal(r.lagSerials, 0);
      assert.equal(r.lagSeconds, 0);
    } finally {
      caughtUp.server.close();
    }
    const down = await readStatusReport(tree, { source: 'http://127.0.0.1:9', timeoutMs: 2000 });
    assert.equal(down.sourceSerial, null);
    assert.match(down.sourceError!, /unreachable/);
    assert.match(formatStatusReport(down), /^source serial: +unreachable \(/m);
  });

  it('says when a tree has no state yet', async () => {
    const { tree } = await tempTree();
    const r = await readStatusReport(tree, {});
    assert.equal(r.state, null);
    assert.equal(r.source, null);
    assert.match(formatStatusReport(r), /^applied serial: +none: nothing was published to this tree yet$/m);
  });
});
