/** PostgreSQL through a pg Pool and kysely: the engine for scale (replicas, managed services). */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { KyselyDatabase } from '../kysely-database.js';
import type { Schema } from '../schema.js';

/** SQLSTATEs after which running the whole transaction again can succeed. */
const RETRYABLE = new Set([
  '23505', // unique_violation: a concurrent upload created the same project, release or file first
  '23503', // foreign_key_violation: a concurrent removal deleted the project or release an upload was adding to
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

export interface PostgresOptions {
  /** Most connections the pool opens (default 10). */
  readonly maxConnections?: number;
}

export class PostgresDatabase extends KyselyDatabase {
  readonly dialect = 'postgres' as const;

  /** Connects lazily to `url` (`postgres://user@host:port/db`). */
  constructor(url: string, options: PostgresOptions = {}) {
    const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 10 });
    // An idle client whose server connection drops emits 'error' on the pool;
    // unhandled, that would kill the process. The next query gets a fresh client
    // and reports the problem to its caller.
    pool.on('error', () => {});
    super(new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) }));
  }

  protected isConflict(err: unknown): boolean {
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' && RETRYABLE.has(code);
  }

  protected snapshot<T>(fn: (db: Kysely<Schema>) => Promise<T>): Promise<T> {
    return this.db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(fn);
  }
}
