/** One upload applied inside a transaction: the checks, then the writes and their serials. */
import type { Insertable, Transaction } from 'kysely';
import { PyedgeError } from '../core/errors.js';
import type { Project, Role } from '../core/model.js';
import { normalizeName } from '../core/names.js';
import type { AddFileInput, AddFileResult } from './database.js';
import { toProject } from './rows.js';
import type { ProjectRow } from './rows.js';
import type { ChangelogTable, Schema } from './schema.js';

/**
 * Check and record one upload. Runs inside the caller's transaction; throws a
 * PyedgeError (and writes nothing) when the upload is not allowed. The counter
 * row is locked only after every check, so concurrent uploads wait on each
 * other for the writes alone.
 */
export async function applyUpload(trx: Transaction<Schema>, input: AddFileInput, now: string): Promise<AddFileResult> {
  const normalizedName = normalizeName(input.projectName);
  const { userId, username } = input.uploader;
  const { file } = input;

  const existing = await trx
    .selectFrom('projects as p')
    .leftJoin('roles as r', (join) => join.onRef('r.project_id', '=', 'p.id').on('r.user_id', '=', userId))
    .selectAll('p')
    .select('r.role')
    .where('p.normalized_name', '=', normalizedName)
    .executeTakeFirst();
  if (existing) {
    assertMayUpload(existing, existing.role, username, input.tokenScope);
  } else if (input.tokenScope !== null && input.tokenScope !== normalizedName) {
    throw new PyedgeError(
      'PYEDGE_FORBIDDEN',
      `This token is scoped to project '${input.tokenScope}' and cannot create project '${input.projectName}'.`,
      { project: normalizedName, scope: input.tokenScope },
    );
  }

  const used = await trx
    .selectFrom('file_registry as fr')
    .leftJoin('files as f', 'f.filename', 'fr.filename')
    .select('f.id')
    .where('fr.filename', '=', file.filename)
    .executeTakeFirst();
  if (used) {
    if (used.id !== null) {
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

  const release = existing
    ? await trx
        .selectFrom('releases as r')
        .leftJoin('files as f', (join) => join.onRef('f.release_id', '=', 'r.id').on('f.packagetype', '=', 'sdist'))
        .select(['r.id', 'f.id as sdist_id'])
        .where('r.project_id', '=', existing.id)
        .where('r.canonical_version', '=', input.canonicalVersion)
        .executeTakeFirst()
    : undefined;
  if (release && release.sdist_id !== null && file.packagetype === 'sdist') {
    throw new PyedgeError('PYEDGE_SDIST_EXISTS', 'Only one sdist may be uploaded per release.', {
      project: normalizedName,
      version: input.version,
    });
  }

  // Checks done: take all the serials this upload needs in one statement (this locks the counter row).
  const count = 1 + (existing ? 0 : 1) + (release ? 0 : 1);
  const { last_serial: lastSerial } = await trx
    .updateTable('counter')
    .set((eb) => ({ last_serial: eb('last_serial', '+', count) }))
    .where('id', '=', 1)
    .returning('last_serial')
    .executeTakeFirstOrThrow();
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
    await trx.updateTable('projects').set({ last_serial: lastSerial }).where('id', '=', existing.id).execute();
    project = { ...toProject(existing), lastSerial };
  } else {
    const row = await trx
      .insertInto('projects')
      .values({ name: input.projectName, normalized_name: normalizedName, created_at: now, last_serial: lastSerial })
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx.insertInto('roles').values({ user_id: userId, project_id: row.id, role: 'Owner' }).execute();
    project = toProject(row);
    change({ action: 'create', version: null, filename: null, detail: null });
  }

  let releaseId: number;
  if (release) {
    releaseId = release.id;
  } else {
    const row = await trx
      .insertInto('releases')
      .values({
        project_id: project.id,
        version: input.version,
        canonical_version: input.canonicalVersion,
        created_at: now,
        metadata: JSON.stringify(input.metadata),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    releaseId = row.id;
    change({ action: 'new release', version: input.version, filename: null, detail: null });
  }

  await trx.insertInto('file_registry').values({ filename: file.filename }).execute();
  await trx
    .insertInto('files')
    .values({
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
    })
    .execute();
  if (input.coreMetadata !== null) {
    await trx.insertInto('core_metadata').values({ path: file.path, content: input.coreMetadata }).execute();
  }
  // PyPI's journal wording, which XML-RPC `changelog` clients expect as the action text.
  change({ action: 'add file', version: input.version, filename: file.filename, detail: `add ${file.pythonVersion} file ${file.filename}` });
  await trx.insertInto('changelog').values(changes).execute();

  return { serial: lastSerial, project, createdProject: !existing, createdRelease: !release };
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
