/** Picks the database engine from a URL. */
import { PyedgeError } from '../core/errors.js';
import type { Database } from './database.js';
import { PostgresDatabase } from './postgres/postgres-database.js';
import { SqliteDatabase } from './sqlite/sqlite-database.js';

const ACCEPTED = "'sqlite:PATH', a bare file path, or 'postgres://USER@HOST:PORT/DB' ('postgresql://' also works)";

/**
 * `sqlite:PATH` (also `sqlite://PATH`) or a bare path → SQLite;
 * `postgres://…` or `postgresql://…` → PostgreSQL. Anything else throws PYEDGE_CONFIG.
 */
export function createDatabase(url: string): Database {
  const value = url.trim();
  if (/^postgres(ql)?:\/\//i.test(value)) return new PostgresDatabase(value);
  if (/^sqlite:/i.test(value)) {
    const path = value.slice('sqlite:'.length).replace(/^\/\//, '');
    if (path === '') throw new PyedgeError('PYEDGE_CONFIG', `The database URL '${url}' names no file. Use ${ACCEPTED}.`, { url });
    return new SqliteDatabase(path);
  }
  // Any other scheme (mysql:, http:, postgres: without //) is a mistake, not a file name;
  // one letter before the colon is a Windows drive.
  if (value === '' || /^[a-z][a-z0-9+.-]+:/i.test(value)) {
    throw new PyedgeError('PYEDGE_CONFIG', `Unsupported database URL '${url}'. Use ${ACCEPTED}.`, { url });
  }
  return new SqliteDatabase(value);
}
