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
import { SyncEngine } from './engine.js';
import { FakeIndex } from './fake-index.js';
import { BatchProgress, ProgressReporter, formatBytes, formatElapsed } from './progress.js';
import { RecordingStore } from './recording-store.js';
import { StaticTree } from './static-tree.js';
import { projectKeys } from './tree-layout.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** A stream that keeps what is written, shaped like a terminal or not. */
function sink(tty: boolean, columns = 80): { writes: string[]; isTTY: boolean; columns: number; write(s: string): boolean } {
  const writes: string[] = [];
  return { writes, isTTY: tty, columns, write: (s: string) => writes.push(s) > 0 };
}

describe('ProgressReporter', () => {
  it('without a terminal prints one line per interval, and nothing for a short batch', () => {
    const out = sink(false);
    let batch: BatchProgress | null = new BatchProgress(5);
    const base = batch.started;
    let t = base;
    const reporter = new ProgressReporter(() => batch, { stream: out, lineEveryMs: 10_000, now: () => t });
    for (t = base; t <= base + 25_000; t += 250) {
      batch!.projectsTotal = 100;
      batch!.projectsFetched = Math.floor((t - base) / 1000);
      reporter.tick();
    }
    assert.equal(out.writes.length, 2, out.writes.join(''));
    assert.match(out.writes[0]!, /^progress: starting: projects 10\/100 fetched, 0 written; files 0\/0 \(0 bytes copied\); 0:10\n$/);
    assert.match(out.writes[1]!, /projects 20\/100 fetched.*0:20\n$/);

    out.writes.length = 0;
    batch = new BatchProgress(6);
    const short = batch.started;
    for (t = short; t <= short + 3000; t += 100) reporter.tick();
    batch = null;
    reporter.tick();
    assert.deepEqual(out.writes, [], 'a batch of 3 s prints no progress line');
  });

  it('on a terminal redraws one line at most every 100 ms, never backwards, and clears it at the end', () => {
    const out = sink(true, 70);
    let batch: BatchProgress | null = new BatchProgress(5);
    const base = batch.started;
    let t = base;
    const reporter = new ProgressReporter(() => batch, { stream: out, now: () => t });
    batch.projectsTotal = 10;
    for (t = base; t <= base + 3000; t += 10) {
      batch.projectsFetched = Math.min(10, Math.floor((t - base) / 200));
      // The batch learns of more work half way: the fraction drops, the bar must not.
      if (t - base === 1500) batch.projectsTotal = 40;
      reporter.tick();
    }
    // Shown from 500 ms, then every 100 ms: 26 draws over 2.5 s.
    assert.ok(out.writes.length >= 20 && out.writes.length <= 26, `${out.writes.length} draws`);
    const percents = out.writes.map((w) => {
      assert.ok(w.startsWith('\r') && w.endsWith('\x1b[K'), JSON.stringify(w));
      assert.ok(w.length - '\r\x1b[K'.length < 70, `fits the terminal: ${JSON.stringify(w)}`);
      return Number(/\] +(\d+)%/.exec(w)![1]);
    });
    for (let i = 1; i < percents.length; i++) assert.ok(percents[i]! >= percents[i - 1]!, `percent went back: ${percents.join(',')}`);
    assert.equal(percents.at(-1), 35, `7 of 10 fetched before the total grew: ${percents.join(',')}`);
    batch = null;
    reporter.tick();
    assert.equal(out.writes.at(-1), '\r\x1b[K');
    reporter.tick();
    assert.equal(out.writes.at(-1), '\r\x1b[K', 'cleared once');
    assert.equal(out.writes.filter((w) => w === '\r\x1b[K').length, 1);
  });

  it('counts a plan announced up front once, however it is then fetched', () => {
    const p = new BatchProgress(-1);
    p.expect(5000);
    for (const chunk of [2000, 2000, 1000]) {
      p.expect(chunk);
      p.projectsFetched += chunk;
    }
    assert.equal(p.projectsTotal, 5000);
    p.expect(3);
    assert.equal(p.projectsTotal, 5003, 'fetched again: more work');
    p.projectsFetched += 3;
    p.projectsWritten = 5003;
    assert.equal(p.fraction, 1);
  });

  it('formats sizes and times', () => {
    assert.equal(formatBytes(512), '512 bytes');
    assert.equal(formatBytes(1536), '1.5 KB');
    assert.equal(formatBytes(3 * 1024 ** 3), '3.0 GB');
    assert.equal(formatElapsed(83_000), '1:23');
    assert.equal(formatElapsed(3_723_000), '1:02:03');
  });
});

/** Notes the engine's progress each time a project's first page goes up. */
class ProgressSpy extends RecordingStore {
  readonly seen: { key: string; fetched: number; written: number; total: number; files: number; filesTotal: number; bytes: number }[] = [];
  engine: SyncEngine | null = null;

  override async put(key: string, body: Uint8Array | Readable, options?: PutOptions): Promise<void> {
    const p = this.engine?.progress;
    if (p && key.endsWith('/index.html') && key !== 'simple/index.html') {
      this.seen.push({ key, fetched: p.projectsFetched, written: p.projectsWritten, total: p.projectsTotal, files: p.filesDone, filesTotal: p.filesTotal, bytes: p.bytesCopied });
    }
    return super.put(key, body, options);
  }
}

describe('SyncEngine progress', () => {
  it('counts projects fetched and written, and files and bytes copied, while a batch runs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pyedge-progress-'));
    dirs.push(dir);
    const store = new ProgressSpy(new FolderBlobStore(join(dir, 'tree')));
    const index = new FakeIndex();
    const names = ['a1', 'a2', 'a3', 'a4'];
    for (const n of names) index.upload(n, '1.0', `${n}-1.0.tar.gz`, `${n} bytes`);
    const engine = new SyncEngine({ source: index, tree: new StaticTree(store), key: await loadServerKey(join(dir, 'k.pem'), { create: true }), logger: pino({ level: 'silent' }), concurrency: 1 });
    store.engine = engine;
    await engine.open();
    assert.equal(engine.progress, null, 'no batch, no progress');
    const result = await engine.runBatch();
    assert.equal(result.ok, true);
    assert.equal(engine.progress, null, 'cleared after the batch');
    assert.deepEqual(store.seen.map((s) => s.key), names.map((n) => projectKeys(n).html));
    // New projects are all fetched and their files copied before the first page goes up; then written one by one.
    const bytes = names.reduce((n, x) => n + Buffer.byteLength(`${x} bytes`), 0);
    store.seen.forEach((s, i) => {
      assert.equal(s.total, 4);
      assert.equal(s.fetched, 4);
      assert.equal(s.written, i, 'projects written before this one');
      assert.equal(s.filesTotal, 4);
      assert.equal(s.files, 4);
      assert.equal(s.bytes, bytes);
    });
  });
});
