/** Opening a SQLite file the way pyedge uses it, for every connection to it (the main one and the upload thread's). */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { PyedgeError } from '../../core/errors.js';

/** How long a writer waits for another connection's write lock before giving up. */
const BUSY_TIMEOUT_MS = 10_000;

/** Opens (creating it and its folder when missing) the SQLite file at `path`, in WAL mode with durable commits. */
export function openSqlite(path: string): BetterSqlite3.Database {
  try {
    if (!isInMemory(path)) mkdirSync(dirname(path), { recursive: true });
    const db = new BetterSqlite3(path);
    // First, so that the pragmas below also wait for another connection's lock.
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('journal_mode = WAL');
    // Every commit reaches the disk before the upload is acknowledged.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    return db;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PyedgeError('PYEDGE_CONFIG', `Cannot open the SQLite database '${path}': ${reason}`, { path }, { cause: err });
  }
}

/** A database that lives only in its one connection: no second connection can open it. */
export function isInMemory(path: string): boolean {
  return path === ':memory:' || path === '';
}

/** True when `err` is SQLite's unique-constraint violation (a rerun would see the winner's row). */
export function isSqliteConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
