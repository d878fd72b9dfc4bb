import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isPyedgeError } from '../core/errors.js';
import { createDatabase } from './create-database.js';
import { PostgresDatabase } from './postgres/postgres-database.js';
import { SqliteDatabase } from './sqlite/sqlite-database.js';

test('sqlite: URLs and bare paths open SQLite files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-create-db-'));
  try {
    for (const [url, file] of [
      [`sqlite:${join(dir, 'a', 'index.db')}`, join(dir, 'a', 'index.db')],
      [`sqlite://${join(dir, 'b', 'index.db')}`, join(dir, 'b', 'index.db')],
      [join(dir, 'c', 'index.db'), join(dir, 'c', 'index.db')],
    ] as const) {
      const db = createDatabase(url);
      assert.ok(db instanceof SqliteDatabase, url);
      assert.equal(db.dialect, 'sqlite');
      await db.migrate();
      await db.close();
      assert.ok(existsSync(file), `${url} should create ${file}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('postgres:// and postgresql:// URLs pick PostgreSQL without connecting yet', async () => {
  for (const url of ['postgres://postgres@127.0.0.1:1/none', 'postgresql://postgres@127.0.0.1:1/none']) {
    const db = createDatabase(url);
    assert.ok(db instanceof PostgresDatabase, url);
    assert.equal(db.dialect, 'postgres');
    await db.close();
  }
});

test('other URLs throw PYEDGE_CONFIG naming the accepted forms', () => {
  for (const url of ['mysql://root@localhost/db', 'postgres:/missing-slashes', 'http://example.org/db', '', 'sqlite:']) {
    assert.throws(
      () => createDatabase(url),
      (err: unknown) => isPyedgeError(err) && err.code === 'PYEDGE_CONFIG' && /sqlite:PATH/.test(err.message) && /postgres:\/\//.test(err.message),
      url,
    );
  }
});
