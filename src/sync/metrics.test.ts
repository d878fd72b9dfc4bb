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
import { PublisherMetrics } from './metrics.js';
import { serveMetrics } from './metrics-server.js';
import { StaticTree } from './static-tree.js';
import { batchResult as batch } from './fake-index.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** The value of one sample in Prometheus text (`name` with its labels, as written). */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `no sample ${name} in:\n${text}`);
  return Number(line.slice(name.length + 1));
}


describe('PublisherMetrics', () => {
  it('counts what batches did, and keeps a registry of its own', async () => {
    const tree = { appliedSerial: 10, rootSerial: 8 };
    let t = 1_700_000_000_000;
    const m = new PublisherMetrics({ tree, now: () => t });
    const other = new PublisherMetrics({ tree });
    m.observeBatch(batch({ projectsWritten: ['a', 'b'], filesCopied: 3, bytesCopied: 3000, rootWritten: true, ms: 250 }));
    t += 5000;
    m.observeBatch(batch({ ok: false, projectsWritten: ['c'], projectsRemoved: ['d'], keysDeleted: 4, failures: [{ project: null, code: 'PYEDGE_UNAVAILABLE', message: 'down' }], ms: 40 }));
    const text = await m.text();
    assert.equal(sample(text, 'pyedge_publish_batches_total{result="ok"}'), 1);
    assert.equal(sample(text, 'pyedge_publish_batches_total{result="failed"}'), 1);
    assert.equal(sample(text, 'pyedge_publish_projects_written_total'), 3);
    assert.equal(sample(text, 'pyedge_publish_projects_removed_total'), 1);
    assert.equal(sample(text, 'pyedge_publish_files_copied_total'), 3);
    assert.equal(sample(text, 'pyedge_publish_bytes_copied_total'), 3000);
    assert.equal(sample(text, 'pyedge_publish_keys_deleted_total'), 4);
    assert.equal(sample(text, 'pyedge_publish_root_writes_total'), 1);
    assert.equal(sample(text, 'pyedge_publish_applied_serial'), 10);
    assert.equal(sample(text, 'pyedge_publish_root_serial'), 8);
    assert.equal(sample(text, 'pyedge_publish_last_batch_duration_seconds'), 0.04);
    assert.equal(sample(text, 'pyedge_publish_last_batch_timestamp_seconds'), t / 1000);
    assert.equal(sample(text, 'pyedge_publish_last_success_timestamp_seconds'), (t - 5000) / 1000, 'the failed batch is not a success');
    assert.equal(sample(text, 'pyedge_publish_batch_duration_seconds_count'), 2);
    assert.equal(sample(text, 'pyedge_publish_batch_duration_seconds_bucket{le="0.05"}'), 1);
    assert.equal(sample(text, 'pyedge_publish_batch_duration_seconds_bucket{le="0.25"}'), 2);
    assert.equal(sample(await other.text(), 'pyedge_publish_batches_total{result="ok"}'), 0, 'the other registry saw nothing');
    assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
  });

  it("shows the lag in serials and in seconds since the publisher first saw a serial it lacks", async () => {
    const tree = { appliedSerial: 10, rootSerial: 10 };
    let t = 1_700_000_000_000;
    const m = new PublisherMetrics({ tree, now: () => t });
    assert.equal(sample(await m.text(), 'pyedge_publish_source_serial'), -1, 'not known yet');
    assert.equal(sample(await m.text(), 'pyedge_publish_lag_serials'), 0);
    m.sourceSerial(15);
    t += 3000;
    let text = await m.text();
    assert.equal(sample(text, 'pyedge_publish_source_serial'), 15);
    assert.equal(sample(text, 'pyedge_publish_lag_serials'), 5);
    assert.equal(sample(text, 'pyedge_publish_lag_seconds'), 3);
    m.sourceSerial(17);
    t += 1000;
    assert.equal(sample(await m.text(), 'pyedge_publish_lag_seconds'), 4, 'counted from the first serial missed');
    tree.appliedSerial = 17;
    m.observeBatch(batch({ serial: 17 }));
    text = await m.text();
    assert.equal(sample(text, 'pyedge_publish_lag_serials'), 0);
    assert.equal(sample(text, 'pyedge_publish_lag_seconds'), 0);
    m.sourceError();
    m.sourceError();
    assert.equal(sample(await m.text(), 'pyedge_publish_source_errors_total'), 2);
  });

  it("copies the purger's counts at each scrape", async () => {
    const purger = { sent: 3, failed: 1, dropped: 0, pending: 7 };
    const m = new PublisherMetrics({ tree: { appliedSerial: 1, rootSerial: 1 } });
    m.watchPurger(purger);
    let text = await m.text();
    assert.equal(sample(text, 'pyedge_publish_purge_requests_sent_total'), 3);
    assert.equal(sample(text, 'pyedge_publish_purge_pending'), 7);
    Object.assign(purger, { sent: 10, dropped: 2, pending: 0 });
    text = await m.text();
    assert.equal(sample(text, 'pyedge_publish_purge_requests_sent_total'), 10);
    assert.equal(sample(text, 'pyedge_publish_purge_requests_failed_total'), 1);
    assert.equal(sample(text, 'pyedge_publish_purge_dropped_total'), 2);
    assert.equal(sample(text, 'pyedge_publish_purge_pending'), 0);
  });

  it("reads an engine's serials, and serves them on loopback at /metrics", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pyedge-metrics-'));
    dirs.push(dir);
    const index = new FakeIndex();
    index.upload('one', '1.0', 'one-1.0.tar.gz', 'one');
    const engine = new SyncEngine({ source: index, tree: new StaticTree(new FolderBlobStore(join(dir, 'tree'))), key: await loadServerKey(join(dir, 'k.pem'), { create: true }), logger: pino({ level: 'silent' }) });
    await engine.open();
    const m = new PublisherMetrics({ tree: engine });
    m.observeBatch(await engine.runBatch());
    const server = await serveMetrics(m, '127.0.0.1', 0);
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(server.url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      assert.equal(sample(text, 'pyedge_publish_applied_serial'), index.serial);
      assert.equal(sample(text, 'pyedge_publish_root_serial'), index.serial);
      assert.equal(sample(text, 'pyedge_publish_files_copied_total'), 1);
      assert.equal((await fetch(server.url.replace('/metrics', '/'))).status, 404);
      assert.equal((await fetch(server.url, { method: 'POST' })).status, 405);
    } finally {
      await server.close();
    }
  });
});
