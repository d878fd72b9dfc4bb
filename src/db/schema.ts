/**
 * The tables as kysely sees them. Both engines share these names and shapes;
 * where an engine returns another JS type (PostgreSQL `bigint` and `count(*)`
 * come back as strings, SQLite booleans as 0/1) the read type says so and the
 * row mappers convert.
 */
import type { ColumnType, Generated } from 'kysely';
import type { ChangeAction, PackageType, ProjectStatus, Role } from '../core/model.js';

export interface UsersTable {
  id: Generated<number>;
  username: string;
  created_at: string;
}

export interface TokensTable {
  id: string;
  user_id: number;
  project_scope: string | null;
  secret_hash: string;
  created_at: string;
}

export interface ProjectsTable {
  id: Generated<number>;
  name: string;
  normalized_name: string;
  status: ColumnType<ProjectStatus, ProjectStatus | undefined, ProjectStatus>;
  status_reason: string | null;
  created_at: string;
  last_serial: number;
}

export interface RolesTable {
  user_id: number;
  project_id: number;
  role: Role;
}

export interface ReleasesTable {
  id: Generated<number>;
  project_id: number;
  version: string;
  canonical_version: string;
  /**
   * SQLite integer 0/1, PostgreSQL boolean; left to its default on insert. Updates
   * write 1/0: better-sqlite3 cannot bind a boolean, and PostgreSQL reads '1'/'0' as one.
   */
  yanked: ColumnType<number | boolean, never, 0 | 1>;
  yanked_reason: string | null;
  created_at: string;
  /** ReleaseMetadata as JSON text. */
  metadata: string;
}

export interface FilesTable {
  id: Generated<number>;
  release_id: number;
  filename: string;
  packagetype: PackageType;
  python_version: string;
  requires_python: string | null;
  /** PostgreSQL `bigint` reads back as a string. */
  size: ColumnType<number | string, number, number>;
  md5: string;
  sha256: string;
  blake2b_256: string;
  path: string;
  metadata_sha256: string | null;
  upload_time: string;
  uploaded_by: string | null;
}

export interface FileRegistryTable {
  filename: string;
}

export interface ChangelogTable {
  serial: number;
  name: string;
  normalized_name: string;
  version: string | null;
  filename: string | null;
  action: ChangeAction;
  detail: string | null;
  submitted_at: string;
  submitted_by: string | null;
}

/** The one-row table that hands out serials. */
export interface CounterTable {
  id: number;
  last_serial: number;
}

export interface DownloadCountsTable {
  /** `YYYY-MM-DD`, UTC. */
  day: string;
  project: string;
  filename: string;
  user_agent: string;
  /** PostgreSQL `bigint` reads back as a string. */
  count: ColumnType<number | string, number, number>;
}

/** PEP 658 metadata by the blob key of its file. */
export interface CoreMetadataTable {
  path: string;
  content: string;
}

/** Every table, keyed by name: the type parameter of `Kysely<Schema>`. */
export interface Schema {
  users: UsersTable;
  tokens: TokensTable;
  projects: ProjectsTable;
  roles: RolesTable;
  releases: ReleasesTable;
  files: FilesTable;
  file_registry: FileRegistryTable;
  download_counts: DownloadCountsTable;
  core_metadata: CoreMetadataTable;
  changelog: ChangelogTable;
  counter: CounterTable;
}
