import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { upload } from '../contract-fixtures.js';
import { runDatabaseContract } from '../database.contract.js';
import { SqliteDatabase } from './sqlite-database.js';

runDatabaseContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-sqlite-'));
  return {
    db: new SqliteDatabase(join(dir, 'data', 'index.db')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

// An in-memory database commits uploads on its one connection instead of on the upload thread.
runDatabaseContract('sqlite in memory', async () => ({ db: new SqliteDatabase(':memory:'), cleanup: async () => {} }));

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

test('uploads committed in one group: a refused one leaves nothing, the others land with gapless serials', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-sqlite-'));
  const db = new SqliteDatabase(join(dir, 'index.db'));
  try {
    await db.migrate();
    const alice = await db.ensureUser('alice');
    const bob = await db.ensureUser('bob');
    await db.addFile(upload(alice, 'Owned', '1.0', 'owned-1.0-py3-none-any.whl'));
    const before = await db.stats();
    const groupsBefore = db.uploadGroups;

    const outcomes = await Promise.allSettled([
      db.addFile(upload(alice, 'First', '1.0', 'first-1.0-py3-none-any.whl')),
      // bob has no role on alice's project: refused after the upload before it was applied.
      db.addFile(upload(bob, 'Owned', '2.0', 'owned-2.0-py3-none-any.whl')),
      // The same filename twice in one group: the second is refused.
      db.addFile(upload(alice, 'Owned', '1.1', 'owned-1.1-py3-none-any.whl')),
      db.addFile(upload(alice, 'Owned', '1.1', 'owned-1.1-py3-none-any.whl')),
      db.addFile(upload(alice, 'First', '1.0', 'first-1.0.tar.gz')),
    ]);
    assert.equal(db.uploadGroups, groupsBefore + 1, 'all five went into one transaction');
    assert.deepEqual(
      outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : (o.reason as { code?: string }).code)),
      ['ok', 'PYEDGE_FORBIDDEN', 'ok', 'PYEDGE_FILE_EXISTS', 'ok'],
    );

    // The refused ones wrote nothing: no release 2.0, no extra file, no serial taken.
    const owned = await db.getProjectState('owned');
    assert.deepEqual(owned?.releases.map((r) => r.version), ['1.0', '1.1']);
    assert.deepEqual(owned?.files.map((f) => f.filename), ['owned-1.0-py3-none-any.whl', 'owned-1.1-py3-none-any.whl']);
    assert.equal(await db.isFilenameUsed('owned-2.0-py3-none-any.whl'), false);
    const after = await db.stats();
    assert.equal(after.files, before.files + 3);
    // first: create + new release + add file; owned 1.1: new release + add file; first sdist: add file.
    assert.equal(after.lastSerial, before.lastSerial + 6);
    const serials = (await db.changesSince(0, 1000)).map((c) => c.serial);
    assert.deepEqual(serials, Array.from({ length: after.lastSerial }, (_, i) => i + 1));
    const serialsOf = outcomes.map((o) => (o.status === 'fulfilled' ? o.value.serial : null));
    assert.deepEqual(serialsOf, [before.lastSerial + 3, null, before.lastSerial + 5, null, before.lastSerial + 6]);

    // All of it is committed: a second connection sees it.
    const Better = (await import('better-sqlite3')).default;
    const other = new Better(join(dir, 'index.db'), { readonly: true });
    assert.equal((other.prepare('select count(*) as n from files').get() as { n: number }).n, after.files);
    other.close();
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/** Exposes kysely's transaction, to hold one open across turns of the event loop. */
class ProbedSqliteDatabase extends SqliteDatabase {
  inKyselyTransaction<T>(fn: (insertProject: (name: string) => Promise<void>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) =>
      fn(async (name) => {
        await trx.insertInto('projects').values({ name, normalized_name: name, created_at: 'now', last_serial: 0 }).execute();
      }),
    );
  }

  /** Runs `fn` with a function that counts files as the snapshot sees them. */
  inSnapshot<T>(fn: (countFiles: () => Promise<number>) => Promise<T>): Promise<T> {
    return this.snapshot((db) =>
      fn(async () => Number((await db.selectFrom('files').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)),
    );
  }
}

const tick = (ms: number): Promise<'pending'> => new Promise((resolve) => setTimeout(() => resolve('pending'), ms));

test('uploads and direct reads wait for a kysely transaction in progress instead of joining it or reading its rows', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-sqlite-'));
  const db = new ProbedSqliteDatabase(join(dir, 'index.db'));
  try {
    await db.migrate();
    const alice = await db.ensureUser('alice');
    let added: Promise<unknown> | undefined;
    let read: Promise<unknown> | undefined;
    await assert.rejects(
      db.inKyselyTransaction(async (insertProject) => {
        await insertProject('uncommitted');
        added = db.addFile(upload(alice, 'Proj', '1.0', 'proj-1.0-py3-none-any.whl'));
        read = db.getProject('uncommitted');
        // Several turns of the event loop with the transaction open: neither may finish meanwhile.
        assert.equal(await Promise.race([added, read, tick(30)]), 'pending');
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.equal(((await added) as { serial: number }).serial, 3);
    assert.equal(await read, undefined, 'the read saw none of the rolled-back rows');
    assert.equal(await db.getProject('uncommitted'), undefined);
    assert.equal((await db.getProject('proj'))?.lastSerial, 3);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a snapshot keeps seeing one state while the upload thread commits', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-sqlite-'));
  const db = new ProbedSqliteDatabase(join(dir, 'index.db'));
  try {
    await db.migrate();
    const alice = await db.ensureUser('alice');
    await db.addFile(upload(alice, 'Proj', '1.0', 'proj-1.0-py3-none-any.whl'));
    const seen = await db.inSnapshot(async (countFiles) => {
      const before = await countFiles();
      // Committed by the other connection while the snapshot is open.
      await db.addFile(upload(alice, 'Proj', '2.0', 'proj-2.0-py3-none-any.whl'));
      return [before, await countFiles()];
    });
    assert.deepEqual(seen, [1, 1]);
    assert.equal((await db.stats()).files, 2);
    assert.equal((await db.getProjectState('proj'))?.files.length, 2);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});
