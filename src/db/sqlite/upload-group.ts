/**
 * One SQLite transaction for a group of uploads, on one better-sqlite3
 * connection. Each upload runs inside its own savepoint: a refused one is
 * rolled back to it and leaves nothing, the others stay. Serials come from the
 * counter row inside the savepoints, so a refused upload takes none and they
 * stay gapless. The caller makes sure nothing else uses the connection
 * meanwhile.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { applyUpload, shouldRetryUpload } from '../add-file.js';
import type { AddFileInput, AddFileResult } from '../database.js';
import type { Settled } from './group-commit.js';
import { isSqliteConflict } from './open-sqlite.js';
import { SqliteUploadWriter } from './sqlite-upload-writer.js';

interface Statements {
  readonly writer: SqliteUploadWriter;
  readonly begin: BetterSqlite3.Statement;
  readonly commit: BetterSqlite3.Statement;
  readonly rollback: BetterSqlite3.Statement;
  readonly savepoint: BetterSqlite3.Statement;
  readonly release: BetterSqlite3.Statement;
  readonly rollbackToSavepoint: BetterSqlite3.Statement;
}

export class UploadGroup {
  readonly #raw: BetterSqlite3.Database;
  #statements: Statements | null = null;

  constructor(raw: BetterSqlite3.Database) {
    this.#raw = raw;
  }

  /** Apply `inputs` in order and commit them together. Throws (having rolled back) only when the group as a whole failed. */
  async run(inputs: readonly AddFileInput[]): Promise<Settled<AddFileResult>[]> {
    const s = this.#prepared();
    s.begin.run();
    const results: Settled<AddFileResult>[] = [];
    try {
      for (const input of inputs) results.push(await this.#applyOne(s, input));
      s.commit.run();
    } catch (err) {
      if (this.#raw.inTransaction) s.rollback.run();
      throw err;
    }
    return results;
  }

  async #applyOne(s: Statements, input: AddFileInput): Promise<Settled<AddFileResult>> {
    for (let attempt = 1; ; attempt++) {
      s.savepoint.run();
      try {
        const value = await applyUpload(s.writer, input, new Date().toISOString());
        s.release.run();
        return { ok: true, value };
      } catch (err) {
        // Some errors (a full disk, I/O) make SQLite roll the whole transaction back: the group fails.
        if (!this.#raw.inTransaction) throw err;
        s.rollbackToSavepoint.run();
        s.release.run();
        try {
          if (shouldRetryUpload(err, input, attempt, isSqliteConflict)) continue;
        } catch (gaveUp) {
          return { ok: false, error: gaveUp };
        }
        return { ok: false, error: err };
      }
    }
  }

  /** Prepared on first use: the schema must exist by then. */
  #prepared(): Statements {
    if (this.#statements) return this.#statements;
    const raw = this.#raw;
    this.#statements = {
      writer: new SqliteUploadWriter(raw),
      begin: raw.prepare('begin immediate'),
      commit: raw.prepare('commit'),
      rollback: raw.prepare('rollback'),
      savepoint: raw.prepare('savepoint upload'),
      release: raw.prepare('release upload'),
      rollbackToSavepoint: raw.prepare('rollback to upload'),
    };
    return this.#statements;
  }
}
