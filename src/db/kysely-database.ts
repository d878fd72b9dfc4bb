/** The Database interface in kysely, shared by both engines; each engine supplies its dialect's few differences. */
import type { Kysely, Transaction } from 'kysely';
import { PyedgeError } from '../core/errors.js';
import type { ApiToken, Change, Project, ProjectListing, ProjectState, ProjectStatus, Role, User } from '../core/model.js';
import { applyUpload, kyselyUploadWriter, shouldRetryUpload } from './add-file.js';
import { importBatch, type ImportRecord, type ImportResult } from './bulk-import.js';
import type { Actor, AddFileInput, AddFileResult, Database, DatabaseStats, DownloadCount, ProjectStateWithMetadata, RemovalResult } from './database.js';
import * as manage from './manage-project.js';
import { migrateToLatest } from './migrations/migrations.js';
import { toApiToken, toChange, toProject, toProjectState } from './rows.js';
import type { Schema } from './schema.js';

/** One project's state, read inside a snapshot. */
async function readProjectState(db: Kysely<Schema>, normalizedName: string): Promise<ProjectState | undefined> {
  const row = await db.selectFrom('projects').selectAll().where('normalized_name', '=', normalizedName).executeTakeFirst();
  if (!row) return undefined;
  const releases = await db.selectFrom('releases').selectAll().where('project_id', '=', row.id).execute();
  const files = await db
    .selectFrom('files as f')
    .innerJoin('releases as r', 'r.id', 'f.release_id')
    .selectAll('f')
    .select(['r.version', 'r.yanked', 'r.yanked_reason'])
    .where('r.project_id', '=', row.id)
    .orderBy('f.filename')
    .execute();
  return toProjectState(row, releases, files);
}

export abstract class KyselyDatabase implements Database {
  abstract readonly dialect: 'sqlite' | 'postgres';
  protected readonly db: Kysely<Schema>;
  #closed = false;

  protected constructor(db: Kysely<Schema>) {
    this.db = db;
  }

  /** True when `err` is the engine's unique-constraint violation (or another error a rerun would fix). */
  protected abstract isConflict(err: unknown): boolean;

  /** Run several reads against one consistent state of the database. */
  protected abstract snapshot<T>(fn: (db: Kysely<Schema>) => Promise<T>): Promise<T>;

  async migrate(): Promise<void> {
    await migrateToLatest(this.db as unknown as Kysely<unknown>, this.dialect);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.db.destroy();
  }

  async ensureUser(username: string): Promise<User> {
    const found = await this.getUser(username);
    if (found) return found;
    // Another caller may create the same user at once; the loser reads the winner's row.
    await this.db
      .insertInto('users')
      .values({ username, created_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('username').doNothing())
      .execute();
    const user = await this.getUser(username);
    if (!user) throw new PyedgeError('PYEDGE_UNAVAILABLE', `User '${username}' could not be created.`, { username });
    return user;
  }

  async getUser(username: string): Promise<User | undefined> {
    const row = await this.db
      .selectFrom('users')
      .select(['id', 'username', 'created_at'])
      .where('username', '=', username)
      .executeTakeFirst();
    return row && { id: row.id, username: row.username, createdAt: row.created_at };
  }

  async createToken(token: { id: string; userId: number; projectScope: string | null; secretHash: string }): Promise<void> {
    await this.db
      .insertInto('tokens')
      .values({
        id: token.id,
        user_id: token.userId,
        project_scope: token.projectScope,
        secret_hash: token.secretHash,
        created_at: new Date().toISOString(),
      })
      .execute();
  }

  async getToken(id: string): Promise<ApiToken | undefined> {
    const row = await this.db
      .selectFrom('tokens as t')
      .innerJoin('users as u', 'u.id', 't.user_id')
      .select(['t.id', 't.user_id', 'u.username', 't.project_scope', 't.secret_hash', 't.created_at'])
      .where('t.id', '=', id)
      .executeTakeFirst();
    return row && toApiToken(row);
  }

  async getRole(userId: number, normalizedName: string): Promise<Role | null> {
    const row = await this.db
      .selectFrom('roles as r')
      .innerJoin('projects as p', 'p.id', 'r.project_id')
      .select('r.role')
      .where('r.user_id', '=', userId)
      .where('p.normalized_name', '=', normalizedName)
      .executeTakeFirst();
    return row?.role ?? null;
  }

  async getProject(normalizedName: string): Promise<Project | undefined> {
    const row = await this.db.selectFrom('projects').selectAll().where('normalized_name', '=', normalizedName).executeTakeFirst();
    return row && toProject(row);
  }

  async getProjectState(normalizedName: string): Promise<ProjectState | undefined> {
    return this.snapshot((db) => readProjectState(db, normalizedName));
  }

  async getProjectStates(normalizedNames: readonly string[], options: { coreMetadata?: boolean } = {}): Promise<(ProjectStateWithMetadata | undefined)[]> {
    return this.snapshot(async (db) => {
      const out: (ProjectStateWithMetadata | undefined)[] = [];
      for (const name of normalizedNames) {
        const state = await readProjectState(db, name);
        if (state === undefined) {
          out.push(undefined);
          continue;
        }
        const coreMetadata = new Map<string, string>();
        for (const f of options.coreMetadata === true ? state.files : []) {
          if (f.metadataSha256 === null) continue;
          const row = await db.selectFrom('core_metadata').select('content').where('path', '=', f.path).executeTakeFirst();
          if (row !== undefined) coreMetadata.set(f.path, row.content);
        }
        out.push({ state, coreMetadata });
      }
      return out;
    });
  }

  async listProjects(): Promise<ProjectListing[]> {
    return this.listProjectsAfter('', Number.MAX_SAFE_INTEGER);
  }

  async listProjectsAfter(after: string, limit: number): Promise<ProjectListing[]> {
    const rows = await this.db
      .selectFrom('projects as p')
      .select(['p.name', 'p.normalized_name', 'p.last_serial'])
      .where('p.normalized_name', '>', after)
      .where(({ exists, selectFrom }) => exists(selectFrom('releases as r').select('r.id').whereRef('r.project_id', '=', 'p.id')))
      // Warehouse hides quarantined projects from the index; their pages still answer.
      .where('p.status', '!=', 'quarantined')
      .orderBy('p.normalized_name')
      .limit(Math.max(0, Math.floor(Math.min(limit, Number.MAX_SAFE_INTEGER))))
      .execute();
    return rows.map((r) => ({ name: r.name, normalizedName: r.normalized_name, lastSerial: r.last_serial }));
  }

  async isFilenameUsed(filename: string): Promise<boolean> {
    const row = await this.db.selectFrom('file_registry').select('filename').where('filename', '=', filename).executeTakeFirst();
    return row !== undefined;
  }

  async isPathReferenced(path: string): Promise<boolean> {
    const row = await this.db.selectFrom('files').select('id').where('path', '=', path).executeTakeFirst();
    return row !== undefined;
  }

  async getCoreMetadata(path: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('core_metadata').select('content').where('path', '=', path).executeTakeFirst();
    return row?.content;
  }

  async lastSerial(): Promise<number> {
    const row = await this.db.selectFrom('counter').select('last_serial').where('id', '=', 1).executeTakeFirstOrThrow();
    return row.last_serial;
  }

  async changesSince(since: number, limit: number): Promise<Change[]> {
    const rows = await this.db
      .selectFrom('changelog')
      .selectAll()
      .where('serial', '>', since)
      .orderBy('serial')
      .limit(Math.max(0, Math.floor(limit)))
      .execute();
    return rows.map(toChange);
  }

  async changesSinceTime(sinceIso: string, limit: number): Promise<Change[]> {
    const rows = await this.db
      .selectFrom('changelog')
      .selectAll()
      .where('submitted_at', '>=', sinceIso)
      .orderBy('serial')
      .limit(Math.max(0, Math.floor(limit)))
      .execute();
    return rows.map(toChange);
  }

  async addDownloads(counts: readonly DownloadCount[]): Promise<void> {
    if (counts.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < counts.length; i += 500) {
        await trx
          .insertInto('download_counts')
          .values(
            counts.slice(i, i + 500).map((c) => ({ day: c.day, project: c.project, filename: c.filename, user_agent: c.userAgent, count: c.count })),
          )
          .onConflict((oc) =>
            oc.columns(['day', 'filename', 'user_agent']).doUpdateSet((eb) => ({ count: eb('download_counts.count', '+', eb.ref('excluded.count')) })),
          )
          .execute();
      }
    });
  }

  async downloadDays(): Promise<{ readonly day: string; readonly total: number }[]> {
    const rows = await this.db
      .selectFrom('download_counts')
      .select((eb) => ['day', eb.fn.sum<number | string>('count').as('total')])
      .groupBy('day')
      .orderBy('day')
      .execute();
    return rows.map((r) => ({ day: r.day, total: Number(r.total) }));
  }

  async downloadsOn(day: string): Promise<DownloadCount[]> {
    const rows = await this.db
      .selectFrom('download_counts')
      .selectAll()
      .where('day', '=', day)
      .orderBy('project')
      .orderBy('filename')
      .orderBy('user_agent')
      .execute();
    return rows.map((r) => ({ day: r.day, project: r.project, filename: r.filename, userAgent: r.user_agent, count: Number(r.count) }));
  }

  async stats(): Promise<DatabaseStats> {
    const row = await this.db
      .selectNoFrom((eb) => [
        eb.selectFrom('projects').select(eb.fn.countAll().as('n')).as('projects'),
        eb.selectFrom('releases').select(eb.fn.countAll().as('n')).as('releases'),
        eb.selectFrom('files').select(eb.fn.countAll().as('n')).as('files'),
        eb.selectFrom('changelog').select(eb.fn.countAll().as('n')).as('changes'),
        eb.selectFrom('users').select(eb.fn.countAll().as('n')).as('users'),
        eb.selectFrom('tokens').select(eb.fn.countAll().as('n')).as('tokens'),
        eb.selectFrom('counter').select('last_serial').where('id', '=', 1).as('lastSerial'),
      ])
      .executeTakeFirstOrThrow();
    return {
      projects: Number(row.projects),
      releases: Number(row.releases),
      files: Number(row.files),
      changes: Number(row.changes),
      users: Number(row.users),
      tokens: Number(row.tokens),
      lastSerial: Number(row.lastSerial),
    };
  }

  async addFile(input: AddFileInput): Promise<AddFileResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute((trx) => applyUpload(kyselyUploadWriter(trx), input, new Date().toISOString()));
      } catch (err) {
        if (!shouldRetryUpload(err, input, attempt, (e) => this.isConflict(e))) throw err;
      }
    }
  }

  importProjects(records: readonly ImportRecord[], owner: { readonly userId: number; readonly username: string }): Promise<ImportResult> {
    return this.db.transaction().execute((trx) => importBatch(trx, records, owner, new Date().toISOString()));
  }

  yankRelease(normalizedName: string, version: string, reason: string | null, actor: Actor): Promise<number> {
    return this.manage((trx, now) => manage.yankRelease(trx, normalizedName, version, reason, actor, now));
  }

  unyankRelease(normalizedName: string, version: string, actor: Actor): Promise<number> {
    return this.manage((trx, now) => manage.unyankRelease(trx, normalizedName, version, actor, now));
  }

  removeFile(normalizedName: string, filename: string, actor: Actor): Promise<RemovalResult> {
    return this.manage((trx, now) => manage.removeFile(trx, normalizedName, filename, actor, now));
  }

  removeRelease(normalizedName: string, version: string, actor: Actor): Promise<RemovalResult> {
    return this.manage((trx, now) => manage.removeRelease(trx, normalizedName, version, actor, now));
  }

  removeProject(normalizedName: string, actor: Actor): Promise<RemovalResult> {
    return this.manage((trx, now) => manage.removeProject(trx, normalizedName, actor, now));
  }

  setRole(normalizedName: string, username: string, role: Role, actor: Actor): Promise<number> {
    return this.manage((trx, now) => manage.setRole(trx, normalizedName, username, role, actor, now));
  }

  removeRole(normalizedName: string, username: string, actor: Actor): Promise<number> {
    return this.manage((trx, now) => manage.removeRole(trx, normalizedName, username, actor, now));
  }

  listRoles(normalizedName: string): Promise<{ readonly username: string; readonly role: Role }[]> {
    return this.snapshot((db) => manage.listRoles(db, normalizedName));
  }

  setProjectStatus(normalizedName: string, status: ProjectStatus, reason: string | null, actor: Actor): Promise<number> {
    return this.manage((trx, now) => manage.setProjectStatus(trx, normalizedName, status, reason, actor, now));
  }

  recordDocsUpload(normalizedName: string, actor: Actor): Promise<number> {
    return this.manage((trx, now) => manage.recordDocsUpload(trx, normalizedName, actor, now));
  }

  /** One management write in its own transaction: it commits whole or not at all. */
  private manage<T>(fn: (trx: Transaction<Schema>, now: string) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((trx) => fn(trx, new Date().toISOString()));
  }
}
