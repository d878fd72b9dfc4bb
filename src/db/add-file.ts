/**
 * One upload applied inside a transaction: the checks, then the writes and
 * their serials. The rules live here once; each engine supplies the few
 * statements they need as an UploadWriter (kysely for PostgreSQL, prepared
 * statements for SQLite, whose uploads are committed in groups).
 */
import type { Insertable, Transaction } from 'kysely';
import { PyedgeError } from '../core/errors.js';
import type { Project, Role } from '../core/model.js';
import { normalizeName } from '../core/names.js';
import type { AddFileInput, AddFileResult } from './database.js';
import { toProject } from './rows.js';
import type { ProjectRow } from './rows.js';
import type { ChangelogTable, FilesTable, ReleasesTable, Schema } from './schema.js';

/**
 * How often an upload runs again after a concurrent transaction won a race on
 * a unique key. Each retry sees the winner's rows, so it either succeeds or
 * fails with a clean domain error; a few levels of races (project, release,
 * file) are possible, hence more than two.
 */
const MAX_UPLOAD_ATTEMPTS = 5;

/**
 * After attempt number `attempt` of `input` failed with `err`: true when a
 * rerun can succeed (`isConflict` says which engine errors are races); throws
 * PYEDGE_UPLOAD_IN_PROGRESS once reruns are used up.
 */
export function shouldRetryUpload(err: unknown, input: AddFileInput, attempt: number, isConflict: (err: unknown) => boolean): boolean {
  if (err instanceof PyedgeError || !isConflict(err)) return false;
  if (attempt >= MAX_UPLOAD_ATTEMPTS) {
    throw new PyedgeError(
      'PYEDGE_UPLOAD_IN_PROGRESS',
      `Other uploads to project '${input.projectName}' kept changing it at the same time; try again.`,
      { project: input.projectName, filename: input.file.filename, attempts: attempt },
      { cause: err },
    );
  }
  return true;
}

/** The project an upload goes to, with the uploader's role on it. */
export type ProjectWithRole = ProjectRow & { role: Role | null };

/**
 * The statements an upload runs, all inside the caller's transaction. Rows go
 * in as the tables name their columns.
 */
export interface UploadWriter {
  /** The project of this normalized name, with `userId`'s role on it (null: none). */
  findProject(normalizedName: string, userId: number): Promise<ProjectWithRole | undefined>;
  /** Whether the filename was ever used; `fileId` null when its file was removed since. */
  findFilename(filename: string): Promise<{ fileId: number | null } | undefined>;
  /** The release of this canonical version, with the id of its sdist (null: none yet). */
  findRelease(projectId: number, canonicalVersion: string): Promise<{ id: number; sdistId: number | null } | undefined>;
  /** Add `count` to the serial counter (locking it) and return the new last serial. */
  takeSerials(count: number): Promise<number>;
  setProjectSerial(projectId: number, lastSerial: number): Promise<void>;
  /** Insert a project and give `userId` the Owner role on it. */
  insertProject(row: Pick<ProjectRow, 'name' | 'normalized_name' | 'created_at' | 'last_serial'>, ownerId: number): Promise<ProjectRow>;
  /** Insert a release and return its id. */
  insertRelease(row: Insertable<ReleasesTable>): Promise<number>;
  /** Register the filename forever, insert the file and its core metadata (when not null). */
  insertFile(row: Insertable<FilesTable>, coreMetadata: string | null): Promise<void>;
  insertChanges(rows: readonly Insertable<ChangelogTable>[]): Promise<void>;
}

/**
 * Check and record one upload. Runs inside the caller's transaction; throws a
 * PyedgeError (and writes nothing) when the upload is not allowed. The counter
 * row is locked only after every check, so concurrent uploads wait on each
 * other for the writes alone.
 */
export async function applyUpload(writer: UploadWriter, input: AddFileInput, now: string): Promise<AddFileResult> {
  const normalizedName = normalizeName(input.projectName);
  const { userId, username } = input.uploader;
  const { file } = input;

  const existing = await writer.findProject(normalizedName, userId);
  if (existing) {
    assertMayUpload(existing, existing.role, username, input.tokenScope);
  } else if (input.tokenScope !== null && input.tokenScope !== normalizedName) {
    throw new PyedgeError(
      'PYEDGE_FORBIDDEN',
      `This token is scoped to project '${input.tokenScope}' and cannot create project '${input.projectName}'.`,
      { project: normalizedName, scope: input.tokenScope },
    );
  }

  const used = await writer.findFilename(file.filename);
  if (used) {
    if (used.fileId !== null) {
      throw new PyedgeError(
        'PYEDGE_FILE_EXISTS',
        `File already exists ('${file.filename}'). Use a new version or a new build tag.`,
        { filename: file.filename },
      );
    }
    throw new PyedgeError('PYEDGE_FILENAME_REUSED', 'This filename has already been used, use a different version.', {
      filename: file.filename,
    });
  }

  const release = existing ? await writer.findRelease(existing.id, input.canonicalVersion) : undefined;
  if (release && release.sdistId !== null && file.packagetype === 'sdist') {
    throw new PyedgeError('PYEDGE_SDIST_EXISTS', 'Only one sdist may be uploaded per release.', {
      project: normalizedName,
      version: input.version,
    });
  }

  // Checks done: take all the serials this upload needs in one statement (this locks the counter row).
  const count = 1 + (existing ? 0 : 1) + (release ? 0 : 1);
  const lastSerial = await writer.takeSerials(count);
  let serial = lastSerial - count + 1;

  let project: Project;
  const changes: Insertable<ChangelogTable>[] = [];
  const change = (c: Pick<ChangelogTable, 'action' | 'version' | 'filename' | 'detail'>): void => {
    changes.push({
      serial: serial++,
      name: project.name,
      normalized_name: normalizedName,
      submitted_at: now,
      submitted_by: username,
      ...c,
    });
  };

  if (existing) {
    await writer.setProjectSerial(existing.id, lastSerial);
    project = { ...toProject(existing), lastSerial };
  } else {
    const row = await writer.insertProject(
      { name: input.projectName, normalized_name: normalizedName, created_at: now, last_serial: lastSerial },
      userId,
    );
    project = toProject(row);
    change({ action: 'create', version: null, filename: null, detail: null });
  }

  let releaseId: number;
  if (release) {
    releaseId = release.id;
  } else {
    releaseId = await writer.insertRelease({
      project_id: project.id,
      version: input.version,
      canonical_version: input.canonicalVersion,
      created_at: now,
      metadata: JSON.stringify(input.metadata),
    });
    change({ action: 'new release', version: input.version, filename: null, detail: null });
  }

  await writer.insertFile(
    {
      release_id: releaseId,
      filename: file.filename,
      packagetype: file.packagetype,
      python_version: file.pythonVersion,
      requires_python: file.requiresPython,
      size: file.size,
      md5: file.md5,
      sha256: file.sha256,
      blake2b_256: file.blake2b256,
      path: file.path,
      metadata_sha256: file.metadataSha256,
      upload_time: now,
      uploaded_by: username,
    },
    input.coreMetadata,
  );
  // PyPI's journal wording, which XML-RPC `changelog` clients expect as the action text.
  change({ action: 'add file', version: input.version, filename: file.filename, detail: `add ${file.pythonVersion} file ${file.filename}` });
  await writer.insertChanges(changes);

  return { serial: lastSerial, project, createdProject: !existing, createdRelease: !release };
}

/** The upload statements as kysely queries on an open transaction (any engine). */
export function kyselyUploadWriter(trx: Transaction<Schema>): UploadWriter {
  return {
    findProject: (normalizedName, userId) =>
      trx
        .selectFrom('projects as p')
        .leftJoin('roles as r', (join) => join.onRef('r.project_id', '=', 'p.id').on('r.user_id', '=', userId))
        .selectAll('p')
        .select('r.role')
        .where('p.normalized_name', '=', normalizedName)
        .executeTakeFirst(),
    async findFilename(filename) {
      const row = await trx
        .selectFrom('file_registry as fr')
        .leftJoin('files as f', 'f.filename', 'fr.filename')
        .select('f.id')
        .where('fr.filename', '=', filename)
        .executeTakeFirst();
      return row && { fileId: row.id };
    },
    async findRelease(projectId, canonicalVersion) {
      const row = await trx
        .selectFrom('releases as r')
        .leftJoin('files as f', (join) => join.onRef('f.release_id', '=', 'r.id').on('f.packagetype', '=', 'sdist'))
        .select(['r.id', 'f.id as sdist_id'])
        .where('r.project_id', '=', projectId)
        .where('r.canonical_version', '=', canonicalVersion)
        .executeTakeFirst();
      return row && { id: row.id, sdistId: row.sdist_id };
    },
    async takeSerials(count) {
      const row = await trx
        .updateTable('counter')
        .set((eb) => ({ last_serial: eb('last_serial', '+', count) }))
        .where('id', '=', 1)
        .returning('last_serial')
        .executeTakeFirstOrThrow();
      return row.last_serial;
    },
    async setProjectSerial(projectId, lastSerial) {
      await trx.updateTable('projects').set({ last_serial: lastSerial }).where('id', '=', projectId).execute();
    },
    async insertProject(values, ownerId) {
      const row = await trx.insertInto('projects').values(values).returningAll().executeTakeFirstOrThrow();
      await trx.insertInto('roles').values({ user_id: ownerId, project_id: row.id, role: 'Owner' }).execute();
      return row;
    },
    async insertRelease(values) {
      const row = await trx.insertInto('releases').values(values).returning('id').executeTakeFirstOrThrow();
      return row.id;
    },
    async insertFile(values, coreMetadata) {
      await trx.insertInto('file_registry').values({ filename: values.filename }).execute();
      await trx.insertInto('files').values(values).execute();
      if (coreMetadata !== null) {
        await trx.insertInto('core_metadata').values({ path: values.path, content: coreMetadata }).execute();
      }
    },
    async insertChanges(rows) {
      await trx.insertInto('changelog').values([...rows]).execute();
    },
  };
}

function assertMayUpload(project: ProjectRow, role: Role | null, username: string, tokenScope: string | null): void {
  const context = { project: project.normalized_name, user: username };
  if (role === null) {
    throw new PyedgeError('PYEDGE_FORBIDDEN', `The user '${username}' isn't allowed to upload to project '${project.name}'.`, context);
  }
  if (tokenScope !== null && tokenScope !== project.normalized_name) {
    throw new PyedgeError(
      'PYEDGE_FORBIDDEN',
      `This token is scoped to project '${tokenScope}' and cannot upload to '${project.name}'.`,
      { ...context, scope: tokenScope },
    );
  }
  if (project.status === 'archived' || project.status === 'quarantined') {
    const why = project.status_reason ? ` (${project.status_reason})` : '';
    throw new PyedgeError(
      'PYEDGE_FORBIDDEN',
      `Project '${project.name}' is ${project.status}${why}: uploads are not allowed while it is ${project.status}.`,
      { ...context, status: project.status },
    );
  }
}
