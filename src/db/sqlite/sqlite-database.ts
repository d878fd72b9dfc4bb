/** The embedded default: one SQLite file in WAL mode, through better-sqlite3 and kysely. */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely } from 'kysely';
import { PyedgeError } from '../../core/errors.js';
import { KyselyDatabase } from '../kysely-database.js';
import type { Schema } from '../schema.js';
import { ImmediateSqliteDialect } from './immediate-sqlite-dialect.js';
import { withStatementCache } from './statement-cache.js';

/** How long a writer waits for another process's write lock before giving up. */
const BUSY_TIMEOUT_MS = 10_000;

export class SqliteDatabase extends KyselyDatabase {
  readonly dialect = 'sqlite' as const;
  /** The database file (`:memory:` for a throwaway one). */
  readonly path: string;

  readonly #raw: BetterSqlite3.Database;

  /** Opens (creating it and its folder when missing) the SQLite file at `path`. */
  constructor(path: string) {
    const raw = openSqlite(path);
    super(new Kysely<Schema>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(raw) }) }));
    this.path = path;
    this.#raw = raw;
  }

  override async close(): Promise<void> {
    await super.close();
    // kysely closes the file only if it ever ran a query.
    if (this.#raw.open) this.#raw.close();
  }

  protected isConflict(err: unknown): boolean {
    const code = (err as { code?: unknown } | null)?.code;
    return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
  }

  protected snapshot<T>(fn: (db: Kysely<Schema>) => Promise<T>): Promise<T> {
    // kysely gives SQLite one connection behind a mutex: holding it keeps this
    // process's writers out, and no other process writes projects.
    return this.db.connection().execute(fn);
  }
}

function openSqlite(path: string): BetterSqlite3.Database {
  try {
    if (path !== ':memory:' && path !== '') mkdirSync(dirname(path), { recursive: true });
    const db = new BetterSqlite3(path);
    // First, so that the pragmas below also wait for another process's lock.
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
