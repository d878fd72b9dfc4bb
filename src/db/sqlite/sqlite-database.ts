/**
 * The embedded default: one SQLite file in WAL mode, through better-sqlite3 and
 * kysely. Uploads, the one write that comes in bursts, skip kysely: their
 * statements are prepared once, uploads that arrive together are committed
 * together (group commit: one WAL flush for the group), and the commits run
 * on a thread of their own (UploadThread), so that waiting for the disk does
 * not hold up the main thread.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import type { ApiToken, Project, Role } from '../../core/model.js';
import type { AddFileInput, AddFileResult, ProjectStateWithMetadata } from '../database.js';
import { KyselyDatabase } from '../kysely-database.js';
import { toApiToken, toProject, toProjectState, type ProjectFileRow, type ProjectRow, type ReleaseRow, type TokenRow } from '../rows.js';
import type { Schema } from '../schema.js';
import { GroupCommit, type Settled } from './group-commit.js';
import { ImmediateSqliteDialect } from './immediate-sqlite-dialect.js';
import { isInMemory, isSqliteConflict, openSqlite } from './open-sqlite.js';
import { withStatementCache } from './statement-cache.js';
import { UploadGroup } from './upload-group.js';
import { UploadThread } from './upload-thread.js';

/** The reads every upload makes before its transaction. */
interface ReadStatements {
  readonly getToken: BetterSqlite3.Statement;
  readonly getProject: BetterSqlite3.Statement;
  readonly getRole: BetterSqlite3.Statement;
  readonly isFilenameUsed: BetterSqlite3.Statement;
}

/** Bulk reads of whole projects (the sync routes), in one read transaction of this connection. */
type StatesRead = (names: readonly string[], coreMetadata: boolean) => (ProjectStateWithMetadata | undefined)[];

/** The statements of a bulk read, prepared once: the same queries as getProjectState's, without kysely's cost per query. */
function prepareStatesRead(raw: BetterSqlite3.Database): StatesRead {
  const project = raw.prepare('select * from projects where normalized_name = ?');
  const releases = raw.prepare('select * from releases where project_id = ?');
  const files = raw.prepare(
    'select f.*, r.version, r.yanked, r.yanked_reason from files as f inner join releases as r on r.id = f.release_id where r.project_id = ? order by f.filename',
  );
  const metadata = raw.prepare('select content from core_metadata where path = ?').pluck();
  // BEGIN … COMMIT around synchronous reads: one state of the database for all of them, and no
  // other query of this connection can run in between.
  return raw.transaction((names: readonly string[], coreMetadata: boolean) =>
    names.map((name): ProjectStateWithMetadata | undefined => {
      const row = project.get(name) as ProjectRow | undefined;
      if (row === undefined) return undefined;
      const state = toProjectState(row, releases.all(row.id) as ReleaseRow[], files.all(row.id) as ProjectFileRow[]);
      const meta = new Map<string, string>();
      for (const f of coreMetadata ? state.files : []) {
        if (f.metadataSha256 === null) continue;
        const content = metadata.get(f.path) as string | undefined;
        if (content !== undefined) meta.set(f.path, content);
      }
      return { state, coreMetadata: meta };
    }),
  );
}

export class SqliteDatabase extends KyselyDatabase {
  readonly dialect = 'sqlite' as const;
  /** The database file (`:memory:` for a throwaway one). */
  readonly path: string;

  readonly #raw: BetterSqlite3.Database;
  readonly #uploads = new GroupCommit<AddFileInput, AddFileResult>((inputs) => this.#commitUploads(inputs));
  /** Where groups of uploads are committed: their own thread (null for an in-memory database: this connection). */
  readonly #uploadThread: UploadThread | null;
  readonly #commitUploads: (inputs: readonly AddFileInput[]) => Promise<readonly Settled<AddFileResult>[]>;
  #readStatements: ReadStatements | null = null;
  /** The bulk read, once its statements could be prepared. */
  #statesRead: StatesRead | null = null;

  /** Opens (creating it and its folder when missing) the SQLite file at `path`. */
  constructor(path: string) {
    const raw = openSqlite(path);
    super(new Kysely<Schema>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(raw) }) }));
    this.path = path;
    this.#raw = raw;
    if (isInMemory(path)) {
      // No second connection can open it: commit on this one, where kysely's mutex keeps its transactions out of ours.
      const group = new UploadGroup(raw);
      this.#uploadThread = null;
      this.#commitUploads = (inputs) => this.db.connection().execute(() => group.run(inputs));
    } else {
      const thread = new UploadThread(path);
      this.#uploadThread = thread;
      this.#commitUploads = (inputs) => thread.commit(inputs);
    }
  }

  /** How many upload transactions (each holding one or more uploads) were committed or tried. */
  get uploadGroups(): number {
    return this.#uploads.groups;
  }

  override async close(): Promise<void> {
    await this.#uploads.idle();
    await this.#uploadThread?.close();
    await super.close();
    // kysely closes the file only if it ever ran a query.
    if (this.#raw.open) this.#raw.close();
  }

  /** Joins the next group of uploads: committed with the others, answered after the commit. */
  override addFile(input: AddFileInput): Promise<AddFileResult> {
    return this.#uploads.submit(input);
  }

  // The reads every upload makes first. Run at once when no transaction is open
  // on the connection (better-sqlite3 runs them synchronously, so none can start
  // meanwhile); otherwise through kysely, which waits for the transaction's end
  // rather than read its uncommitted rows.

  override async getToken(id: string): Promise<ApiToken | undefined> {
    const p = this.#readable();
    if (!p) return super.getToken(id);
    const row = p.getToken.get(id) as TokenRow | undefined;
    return row && toApiToken(row);
  }

  override async getProject(normalizedName: string): Promise<Project | undefined> {
    const p = this.#readable();
    if (!p) return super.getProject(normalizedName);
    const row = p.getProject.get(normalizedName) as ProjectRow | undefined;
    return row && toProject(row);
  }

  override async getRole(userId: number, normalizedName: string): Promise<Role | null> {
    const p = this.#readable();
    if (!p) return super.getRole(userId, normalizedName);
    const row = p.getRole.get(userId, normalizedName) as { role: Role } | undefined;
    return row?.role ?? null;
  }

  override async isFilenameUsed(filename: string): Promise<boolean> {
    const p = this.#readable();
    if (!p) return super.isFilenameUsed(filename);
    return p.isFilenameUsed.get(filename) !== undefined;
  }

  override async getProjectStates(normalizedNames: readonly string[], options: { coreMetadata?: boolean } = {}): Promise<(ProjectStateWithMetadata | undefined)[]> {
    // As the reads above: at once when no transaction is open on the connection, else through kysely.
    const read = this.#bulkReadable();
    return read === null ? super.getProjectStates(normalizedNames, options) : read(normalizedNames, options.coreMetadata === true);
  }

  protected isConflict(err: unknown): boolean {
    return isSqliteConflict(err);
  }

  protected snapshot<T>(fn: (db: Kysely<Schema>) => Promise<T>): Promise<T> {
    // One read transaction on kysely's one connection (held, so no other query of this
    // connection runs in it): all its reads see one state of the database, although the
    // upload thread may commit meanwhile.
    return this.db.connection().execute(async (conn) => {
      await sql`begin`.execute(conn);
      try {
        return await fn(conn);
      } finally {
        await sql`commit`.execute(conn);
      }
    });
  }

  /** The prepared bulk read when a direct read is safe now, else null (as #readable). */
  #bulkReadable(): StatesRead | null {
    if (!this.#raw.open || this.#raw.inTransaction) return null;
    if (this.#statesRead) return this.#statesRead;
    try {
      this.#statesRead = prepareStatesRead(this.#raw);
    } catch {
      // A schema not yet migrated: kysely runs the read and reports it.
      return null;
    }
    return this.#statesRead;
  }

  /**
   * The prepared reads when a direct read is safe now, else null (then kysely
   * runs the read, and reports any problem such as a schema not yet migrated).
   */
  #readable(): ReadStatements | null {
    if (!this.#raw.open || this.#raw.inTransaction) return null;
    if (this.#readStatements) return this.#readStatements;
    const raw = this.#raw;
    try {
      this.#readStatements = {
        getToken: raw.prepare(
          'select t.id, t.user_id, u.username, t.project_scope, t.secret_hash, t.created_at from tokens as t ' +
            'inner join users as u on u.id = t.user_id where t.id = ?',
        ),
        getProject: raw.prepare('select * from projects where normalized_name = ?'),
        getRole: raw.prepare(
          'select r.role from roles as r inner join projects as p on p.id = r.project_id where r.user_id = ? and p.normalized_name = ?',
        ),
        isFilenameUsed: raw.prepare('select filename from file_registry where filename = ?'),
      };
    } catch {
      return null;
    }
    return this.#readStatements;
  }
}
