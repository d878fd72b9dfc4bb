/** Row → domain record conversions, shared by both engines. */
import type { Selectable } from 'kysely';
import type { ApiToken, Change, DistFile, Project, ProjectFile, ProjectState, Release, ReleaseMetadata } from '../core/model.js';
import { compareVersions } from '../core/versions.js';
import type { ChangelogTable, FilesTable, ProjectsTable, ReleasesTable } from './schema.js';

export type ProjectRow = Selectable<ProjectsTable>;
export type ReleaseRow = Selectable<ReleasesTable>;
export type FileRow = Selectable<FilesTable>;
export type ProjectFileRow = FileRow & { version: string; yanked: number | boolean; yanked_reason: string | null };

/** A token joined with its user's name. */
export interface TokenRow {
  readonly id: string;
  readonly user_id: number;
  readonly username: string;
  readonly project_scope: string | null;
  readonly secret_hash: string;
  readonly created_at: string;
}

export function toApiToken(r: TokenRow): ApiToken {
  return {
    id: r.id,
    userId: r.user_id,
    username: r.username,
    projectScope: r.project_scope,
    secretHash: r.secret_hash,
    createdAt: r.created_at,
  };
}

export function toProject(r: ProjectRow): Project {
  return {
    id: r.id,
    name: r.name,
    normalizedName: r.normalized_name,
    status: r.status,
    statusReason: r.status_reason,
    createdAt: r.created_at,
    lastSerial: r.last_serial,
  };
}

export function toRelease(r: ReleaseRow): Release {
  return {
    id: r.id,
    projectId: r.project_id,
    version: r.version,
    canonicalVersion: r.canonical_version,
    yanked: Boolean(r.yanked),
    yankedReason: r.yanked_reason,
    createdAt: r.created_at,
    metadata: parseMetadata(r.metadata),
  };
}

export function toDistFile(r: FileRow): DistFile {
  return {
    id: r.id,
    releaseId: r.release_id,
    filename: r.filename,
    packagetype: r.packagetype,
    pythonVersion: r.python_version,
    requiresPython: r.requires_python,
    size: Number(r.size),
    md5: r.md5,
    sha256: r.sha256,
    blake2b256: r.blake2b_256,
    path: r.path,
    metadataSha256: r.metadata_sha256,
    uploadTime: r.upload_time,
    uploadedBy: r.uploaded_by,
  };
}

export function toProjectFile(r: ProjectFileRow): ProjectFile {
  return { ...toDistFile(r), version: r.version, yanked: Boolean(r.yanked), yankedReason: r.yanked_reason };
}

/** A project's rows as its state: releases in PEP 440 order, files as the rows come (ordered by filename). */
export function toProjectState(project: ProjectRow, releases: readonly ReleaseRow[], files: readonly ProjectFileRow[]): ProjectState {
  return {
    project: toProject(project),
    releases: releases.map(toRelease).sort((a, b) => compareVersions(a.canonicalVersion, b.canonicalVersion)),
    files: files.map(toProjectFile),
  };
}

export function toChange(r: Selectable<ChangelogTable>): Change {
  return {
    serial: r.serial,
    name: r.name,
    normalizedName: r.normalized_name,
    version: r.version,
    filename: r.filename,
    action: r.action,
    detail: r.detail,
    submittedAt: r.submitted_at,
    submittedBy: r.submitted_by,
  };
}

function parseMetadata(text: string): ReleaseMetadata {
  const parsed: ReleaseMetadata = JSON.parse(text);
  return parsed;
}
