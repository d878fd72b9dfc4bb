/**
 * Project management applied inside a transaction: each write takes exactly one
 * serial and writes one changelog entry, or throws and writes nothing.
 */
import type { Kysely, Transaction } from 'kysely';
import { PyedgeError } from '../core/errors.js';
import type { ChangeAction, ProjectStatus, Role } from '../core/model.js';
import { canonicalVersion } from '../core/versions.js';
import type { Actor, RemovalResult } from './database.js';
import type { ProjectRow, ReleaseRow } from './rows.js';
import type { Schema } from './schema.js';

type Trx = Transaction<Schema>;

const STATUSES: readonly ProjectStatus[] = ['active', 'archived', 'quarantined', 'deprecated'];

/** What one management write records in the changelog. */
interface ChangeFacts {
  readonly action: ChangeAction;
  readonly version?: string | null;
  readonly filename?: string | null;
  readonly detail?: string | null;
}

/**
 * Take the next serial. Called first: locking the counter row before the checks
 * makes concurrent writers queue here, so each check sees every write committed
 * before it (PostgreSQL reads committed rows per statement; SQLite's BEGIN
 * IMMEDIATE already serializes writers). A failed check rolls the serial back.
 */
async function takeSerial(trx: Trx): Promise<number> {
  const row = await trx
    .updateTable('counter')
    .set((eb) => ({ last_serial: eb('last_serial', '+', 1) }))
    .where('id', '=', 1)
    .returning('last_serial')
    .executeTakeFirstOrThrow();
  return row.last_serial;
}

async function findProject(trx: Kysely<Schema>, normalizedName: string): Promise<ProjectRow> {
  const row = await trx.selectFrom('projects').selectAll().where('normalized_name', '=', normalizedName).executeTakeFirst();
  if (!row) throw new PyedgeError('PYEDGE_NOT_FOUND', `No project named '${normalizedName}'.`, { project: normalizedName });
  return row;
}

async function findRelease(trx: Trx, project: ProjectRow, version: string): Promise<ReleaseRow> {
  const canonical = canonicalVersion(version);
  const row =
    canonical === null
      ? undefined
      : await trx
          .selectFrom('releases')
          .selectAll()
          .where('project_id', '=', project.id)
          .where('canonical_version', '=', canonical)
          .executeTakeFirst();
  if (!row) {
    throw new PyedgeError('PYEDGE_NOT_FOUND', `No release '${version}' of project '${project.name}'.`, {
      project: project.normalized_name,
      version,
    });
  }
  return row;
}

async function findUser(trx: Trx, username: string): Promise<{ id: number; username: string }> {
  const row = await trx.selectFrom('users').select(['id', 'username']).where('username', '=', username).executeTakeFirst();
  if (!row) {
    throw new PyedgeError('PYEDGE_NOT_FOUND', `No user named '${username}'. Users are created by 'pyedge token create --user ${username}'.`, {
      user: username,
    });
  }
  return row;
}

async function ownerCount(trx: Trx, projectId: number): Promise<number> {
  const row = await trx
    .selectFrom('roles')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('project_id', '=', projectId)
    .where('role', '=', 'Owner')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Write the changelog entry and, unless the project is gone, move its last serial. */
async function record(trx: Trx, project: ProjectRow, serial: number, facts: ChangeFacts, actor: Actor, now: string, projectRemains = true): Promise<void> {
  await trx
    .insertInto('changelog')
    .values({
      serial,
      name: project.name,
      normalized_name: project.normalized_name,
      version: facts.version ?? null,
      filename: facts.filename ?? null,
      action: facts.action,
      detail: facts.detail ?? null,
      submitted_at: now,
      submitted_by: actor,
    })
    .execute();
  if (projectRemains) await trx.updateTable('projects').set({ last_serial: serial }).where('id', '=', project.id).execute();
}

export async function yankRelease(trx: Trx, name: string, version: string, reason: string | null, actor: Actor, now: string): Promise<number> {
  const serial = await takeSerial(trx);
  const project = await findProject(trx, name);
  const release = await findRelease(trx, project, version);
  await trx.updateTable('releases').set({ yanked: 1, yanked_reason: reason }).where('id', '=', release.id).execute();
  await record(trx, project, serial, { action: 'yank release', version: release.version, detail: reason }, actor, now);
  return serial;
}

export async function unyankRelease(trx: Trx, name: string, version: string, actor: Actor, now: string): Promise<number> {
  const serial = await takeSerial(trx);
  const project = await findProject(trx, name);
  const release = await findRelease(trx, project, version);
  if (!release.yanked) {
    throw new PyedgeError('PYEDGE_BAD_REQUEST', `Release '${release.version}' of project '${project.name}' is not yanked.`, {
      project: project.normalized_name,
      version: release.version,
    });
  }
  await trx.updateTable('releases').set({ yanked: 0, yanked_reason: null }).where('id', '=', release.id).execute();
  await record(trx, project, serial, { action: 'unyank release', version: release.version }, actor, now);
  return serial;
}

/** The filename stays in file_registry, so it can never be uploaded again. */
export async function removeFile(trx: Trx, name: string, filename: string, actor: Actor, now: string): Promise<RemovalResult> {
  const serial = await takeSerial(trx);
  const project = await findProject(trx, name);
  const file = await trx
    .selectFrom('files as f')
    .innerJoin('releases as r', 'r.id', 'f.release_id')
    .select(['f.id', 'f.path', 'r.version'])
    .where('r.project_id', '=', project.id)
    .where('f.filename', '=', filename)
    .executeTakeFirst();
  if (!file) {
    throw new PyedgeError('PYEDGE_NOT_FOUND', `No file '${filename}' in project '${project.name}'.`, {
      project: project.normalized_name,
      filename,
    });
  }
  await trx.deleteFrom('files').where('id', '=', file.id).execute();
  await trx.deleteFrom('core_metadata').where('path', '=', file.path).execute();
  await record(trx, project, serial, { action: 'remove file', version: file.version, filename }, actor, now);
  return { serial, paths: [file.path] };
}

async function deleteCoreMetadata(trx: Trx, paths: readonly string[]): Promise<void> {
  for (let i = 0; i < paths.length; i += 500) {
    await trx.deleteFrom('core_metadata').where('path', 'in', paths.slice(i, i + 500)).execute();
  }
}

export async function removeRelease(trx: Trx, name: string, version: string, actor: Actor, now: string): Promise<RemovalResult> {
  const serial = await takeSerial(trx);
  const project = await findProject(trx, name);
  const release = await findRelease(trx, project, version);
  const files = await trx.selectFrom('files').select('path').where('release_id', '=', release.id).orderBy('path').execute();
  // Explicit deletes rather than ON DELETE CASCADE, which SQLite applies only with its foreign_keys pragma on.
  await trx.deleteFrom('files').where('release_id', '=', release.id).execute();
  await deleteCoreMetadata(trx, files.map((f) => f.path));
  await trx.deleteFrom('releases').where('id', '=', release.id).execute();
  await record(trx, project, serial, { action: 'remove release', version: release.version }, actor, now);
  return { serial, paths: files.map((f) => f.path) };
}

export async function removeProject(trx: Trx, name: string, actor: Actor, now: string): Promise<RemovalResult> {
  const serial = await takeSerial(trx);
  const project = await findProject(trx, name);
  const files = await trx
    .selectFrom('files as f')
    .innerJoin('releases as r', 'r.id', 'f.release_id')
    .select('f.path')
    .where('r.project_id', '=', project.id)
    .orderBy('f.path')
    .execute();
  const releaseIds = trx.selectFrom('releases').select('id').where('project_id', '=', project.id);
  await trx.deleteFrom('files').where('release_id', 'in', releaseIds).execute();
  await deleteCoreMetadata(trx, files.map((f) => f.path));
  await trx.deleteFrom('releases').where('project_id', '=', project.id).execute();
  await trx.deleteFrom('roles').where('project_id', '=', project.id).execute();
  await trx.deleteFrom('projects').where('id', '=', project.id).execute();
  await record(trx, project, serial, { action: 'remove project' }, actor, now, false);
  return { serial, paths: files.map((f) => f.path) };
}

async function findRole(trx: Trx, projectId: number, userId: number): Promise<{ role: Role } | undefined> {
  return trx.selectFrom('roles').select('role').where('project_id', '=', projectId).where('user_id', '=', userId).executeTakeFirst();
}

export async function setRole(trx: Trx, name: string, username: string, role: Role, actor: Actor, now: string): Promise<number> {
  if (role !== 'Owner' && role !== 'Maintainer') {
    throw new PyedgeError('PYEDGE_BAD_REQUEST', `Invalid role '${String(role)}': expected Owner or Maintainer.`, { role });
  }
  const serial = await takeSerial(trx);
  const project = await findProject(trx, name);
  const user = await findUser(trx, username);
  const current = await findRole(trx, project.id, user.id);
  const context = { project: project.normalized_name, user: username, role };
  if (current?.role === role) {
    throw new PyedgeError('PYEDGE_BAD_REQUEST', `User '${username}' is already ${article(role)} of project '${project.name}'.`, context);
  }
  if (current?.role === 'Owner' && (await ownerCount(trx, project.id)) <= 1) {
    throw new PyedgeError(
      'PYEDGE_FORBIDDEN',
      `User '${username}' is the last Owner of project '${project.name}': add another Owner before making them a ${role}.`,
      context,
    );
  }
  if (current) {
    await trx.updateTable('roles').set({ role }).where('project_id', '=', project.id).where('user_id', '=', user.id).execute();
  } else {
    await trx.insertInto('roles').values({ project_id: project.id, user_id: user.id, role }).execute();
  }
  await record(trx, project, serial, { action: 'add owner', detail: role }, actor, now);
  return serial;
}

export async function removeRole(trx: Trx, name: string, username: string, actor: Actor, now: string): Promise<number> {
  const serial = await takeSerial(trx);
  const project = await findProject(trx, name);
  const user = await findUser(trx, username);
  const current = await findRole(trx, project.id, user.id);
  const context = { project: project.normalized_name, user: username };
  if (!current) {
    throw new PyedgeError('PYEDGE_NOT_FOUND', `User '${username}' has no role on project '${project.name}'.`, context);
  }
  if (current.role === 'Owner' && (await ownerCount(trx, project.id)) <= 1) {
    throw new PyedgeError(
      'PYEDGE_FORBIDDEN',
      `Cannot remove '${username}', the last Owner of project '${project.name}': add another Owner first, or remove the project.`,
      context,
    );
  }
  await trx.deleteFrom('roles').where('project_id', '=', project.id).where('user_id', '=', user.id).execute();
  await record(trx, project, serial, { action: 'remove owner', detail: current.role }, actor, now);
  return serial;
}

export async function listRoles(trx: Kysely<Schema>, name: string): Promise<{ username: string; role: Role }[]> {
  const project = await findProject(trx, name);
  const rows = await trx
    .selectFrom('roles as r')
    .innerJoin('users as u', 'u.id', 'r.user_id')
    .select(['u.username', 'r.role'])
    .where('r.project_id', '=', project.id)
    .execute();
  // Owners first, then by name; sorted here so that both engines agree regardless of collation.
  return rows
    .map((r) => ({ username: r.username, role: r.role }))
    .sort((a, b) => (a.role === b.role ? (a.username < b.username ? -1 : a.username > b.username ? 1 : 0) : a.role === 'Owner' ? -1 : 1));
}

export async function setProjectStatus(
  trx: Trx,
  name: string,
  status: ProjectStatus,
  reason: string | null,
  actor: Actor,
  now: string,
): Promise<number> {
  if (!STATUSES.includes(status)) {
    throw new PyedgeError('PYEDGE_BAD_REQUEST', `Invalid project status '${String(status)}': expected ${STATUSES.join(', ')}.`, { status });
  }
  const serial = await takeSerial(trx);
  const project = await findProject(trx, name);
  // An active project has nothing to explain; a stale reason would resurface on the next status change.
  const statusReason = status === 'active' ? null : reason;
  await trx.updateTable('projects').set({ status, status_reason: statusReason }).where('id', '=', project.id).execute();
  await record(trx, project, serial, { action: 'set status', detail: status }, actor, now);
  return serial;
}

export async function recordDocsUpload(trx: Trx, name: string, actor: Actor, now: string): Promise<number> {
  const serial = await takeSerial(trx);
  const project = await findProject(trx, name);
  await record(trx, project, serial, { action: 'docs upload' }, actor, now);
  return serial;
}

function article(role: Role): string {
  return role === 'Owner' ? 'an Owner' : 'a Maintainer';
}
