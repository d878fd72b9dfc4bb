/**
 * Concurrent uploads through `./bin/pyedge serve`: 16 uploaders of distinct files and
 * 4 racing on one filename. Every distinct file lands, exactly one racer wins, and the
 * changelog's serials run 1..N without gaps or duplicates. On SQLite and PostgreSQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { createTestPostgres } from '../helpers/postgres.js';
import { createDatabase } from '../../src/db/create-database.js';

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`concurrent uploads (${engine})`, () => {
    let work: string;
    let origin: Service;
    let dbUrl: string;
    let dropPg: () => Promise<void> = async () => {};
    const tokens: string[] = [];

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'pyedge-race-'));
      const data = join(work, 'data');
      dbUrl = `sqlite:${join(data, 'index.db')}`;
      if (engine === 'postgres') {
        const pg = await createTestPostgres();
        dbUrl = pg.url;
        dropPg = pg.drop;
      }
      origin = await startPyedge(['serve', '--data', data, '--port', '0', '--db', dbUrl]);
      for (let i = 0; i < 4; i++) {
        const r = await pyedge(['token', 'create', '--data', data, '--db', dbUrl, '--user', `user${i}`]);
        assert.equal(r.code, 0, r.stderr);
        tokens.push(r.stdout.trim());
      }
    });

    after(async () => {
      await origin?.stop();
      await dropPg();
      await rm(work, { recursive: true, force: true });
    });

    test('16 distinct uploads and 4 racers on one filename', async () => {
      const distinct: string[] = [];
      for (let i = 0; i < 16; i++) {
        const dir = join(work, `d${i}`);
        await mkdir(dir);
        // Four projects (one per user), four versions each: new projects, new releases and existing ones all race.
        distinct.push(await buildWheel(dir, { name: `race-${i % 4}`, version: `1.${Math.floor(i / 4)}` }));
      }
      const racers: string[] = [];
      for (let i = 0; i < 4; i++) {
        const dir = join(work, `r${i}`);
        await mkdir(dir);
        // Same filename, different bytes (a different module value), one token: only one may win.
        racers.push(await buildWheel(dir, { name: 'contested', version: '1.0', module: 'contested', value: `racer ${i}` }));
      }
      const jobs = [
        ...distinct.map((f, i) => formUpload(origin.url, f, { token: tokens[i % 4]! }).then((a) => ({ kind: 'distinct', a }))),
        ...racers.map((f) => formUpload(origin.url, f, { token: tokens[0]! }).then((a) => ({ kind: 'racer', a }))),
      ];
      const results = await Promise.all(jobs);
      for (const r of results.filter((x) => x.kind === 'distinct')) assert.equal(r.a.status, 200, r.a.body);
      const racerResults = results.filter((x) => x.kind === 'racer').map((x) => x.a);
      assert.equal(racerResults.filter((a) => a.status === 200).length, 1, JSON.stringify(racerResults));
      for (const a of racerResults.filter((x) => x.status !== 200)) {
        assert.equal(a.status, 400);
        assert.match(a.body, /File already exists/);
      }

      for (let p = 0; p < 4; p++) {
        const page = await fetch(`${origin.url}/simple/race-${p}/`).then((r) => r.text());
        for (let v = 0; v < 4; v++) assert.match(page, new RegExp(`race_${p}-1\\.${v}-py3-none-any\\.whl`));
      }
      const contested = await fetch(`${origin.url}/simple/contested/`).then((r) => r.text());
      assert.equal(contested.match(/contested-1\.0-py3-none-any\.whl<\/a>/g)?.length, 1);

      const db = createDatabase(dbUrl);
      try {
        const changes = await db.changesSince(0, 10_000);
        const serials = changes.map((c) => c.serial);
        assert.deepEqual(serials, serials.map((_, i) => i + 1), 'serials 1..N with no gap or duplicate');
        assert.equal(await db.lastSerial(), serials.length);
        // 5 projects created, 17 releases, 17 files.
        assert.equal(changes.filter((c) => c.action === 'create').length, 5);
        assert.equal(changes.filter((c) => c.action === 'new release').length, 17);
        assert.equal(changes.filter((c) => c.action === 'add file').length, 17);
        const stats = await db.stats();
        assert.equal(stats.files, 17);
      } finally {
        await db.close();
      }
    });
  });
}
