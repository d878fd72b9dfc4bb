import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runDatabaseContract } from '../database.contract.js';
import { SqliteDatabase } from './sqlite-database.js';

runDatabaseContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-sqlite-'));
  return {
    db: new SqliteDatabase(join(dir, 'data', 'index.db')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

test('SqliteDatabase creates its folder and opens the file in WAL mode with durable commits', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-sqlite-'));
  try {
    const path = join(dir, 'nested', 'folder', 'index.db');
    const db = new SqliteDatabase(path);
    await db.migrate();
    assert.ok(existsSync(path));
    const alice = await db.ensureUser('alice');
    await db.close();
    await db.close(); // closing twice is harmless

    // The data survives a reopen, and the pragmas hold on the new connection.
    const again = new SqliteDatabase(path);
    await again.migrate();
    assert.deepEqual(await again.getUser('alice'), alice);
    await again.close();
    const Better = (await import('better-sqlite3')).default;
    const raw = new Better(path, { readonly: true });
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    raw.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
