/** Reuses prepared statements across kysely queries on one better-sqlite3 connection. */
import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase as KyselySqliteDatabase, SqliteStatement } from 'kysely';

/** Enough for every distinct query pyedge runs; a bound keeps ad hoc SQL from growing it forever. */
const MAX_STATEMENTS = 200;

/**
 * kysely's SQLite driver prepares every query anew, which costs more than
 * running a small one. The hot queries repeat the same SQL text, so their
 * statements are kept. Safe because kysely runs one query at a time on the
 * connection.
 */
export function withStatementCache(db: BetterSqlite3.Database): KyselySqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => {
      cache.clear();
      db.close();
    },
    prepare: (sql: string): SqliteStatement => {
      const cached = cache.get(sql);
      if (cached) return cached;
      const stmt = db.prepare(sql);
      if (cache.size >= MAX_STATEMENTS) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      cache.set(sql, stmt);
      return stmt;
    },
  };
}
