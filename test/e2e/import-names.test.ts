/** `pyedge import-names`: bulk loading projects from a name list, as the scale benchmark does. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, startPyedge } from './helpers/processes.js';
import { createDatabase } from '../../src/db/create-database.js';

describe('import-names', () => {
  let work: string;
  let list: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-import-'));
    list = join(work, 'names.tsv.gz');
    const rows = [
      'name\tlatest_version\tlast_release_month\tdownload_rank',
      'Alpha.Pkg\t1.0\t2024-01\t1',
      'beta\t2.0.0rc1\t2023-05\t',
      '-invalid-\t1.0\t2020-01\t',
      'gamma\tnot a version\t2020-01\t',
      'delta_x\t0.1\t2021-02\t9',
    ];
    await writeFile(list, gzipSync(rows.join('\n') + '\n'));
  });

  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  test('loads valid lines, skips invalid ones, and a second run changes nothing', async () => {
    const data = join(work, 'data');
    const first = await pyedge(['import-names', '--data', data, list]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /imported 3 projects \(0 already there, 2 invalid lines\)/);
    const again = await pyedge(['import-names', '--data', data, list]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /imported 0 projects \(3 already there/);

    const db = createDatabase(`sqlite:${join(data, 'index.db')}`);
    try {
      const serials = (await db.changesSince(0, 100)).map((c) => c.serial);
      assert.deepEqual(serials, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.deepEqual(
        (await db.listProjects()).map((p) => [p.normalizedName, p.lastSerial]),
        [
          ['alpha-pkg', 3],
          ['beta', 6],
          ['delta-x', 9],
        ],
      );
    } finally {
      await db.close();
    }

    const origin = await startPyedge(['serve', '--data', data, '--port', '0']);
    try {
      const root = await (await fetch(`${origin.url}/simple/`)).text();
      assert.match(root, /href="alpha-pkg\/">Alpha\.Pkg</);
      const page = (await (await fetch(`${origin.url}/simple/beta/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } })).json()) as {
        versions: string[];
        files: { url: string; hashes: { sha256: string } }[];
      };
      assert.deepEqual(page.versions, ['2.0.0rc1']);
      const file = await fetch(new URL(page.files[0]!.url, `${origin.url}/simple/beta/`));
      assert.equal(file.status, 200, 'the generated file is stored');
      const bytes = Buffer.from(await file.arrayBuffer());
      assert.equal(createHash('sha256').update(bytes).digest('hex'), page.files[0]!.hashes.sha256);
    } finally {
      await origin.stop();
    }
  });

  test('--limit stops early', async () => {
    const r = await pyedge(['import-names', '--data', join(work, 'limited'), '--limit', '2', '--no-files', list]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /imported 2 projects/);
  });
});
