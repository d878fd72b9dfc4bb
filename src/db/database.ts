/** The database interface: speaks the domain, not SQL. Implemented for SQLite and PostgreSQL. */
import type {
  ApiToken,
  Change,
  DistFile,
  Project,
  ProjectListing,
  ProjectState,
  ProjectStatus,
  ReleaseMetadata,
  Role,
  User,
} from '../core/model.js';

import type { ImportRecord, ImportResult } from './bulk-import.js';

/** The facts of an uploaded file that the database records. */
export type NewFile = Omit<DistFile, 'id' | 'releaseId' | 'uploadTime' | 'uploadedBy'>;

/** One upload, as the database applies it in a single transaction. */
export interface AddFileInput {
  /** Project name as the metadata spells it (becomes the display name of a new project). */
  readonly projectName: string;
  /** Version as the metadata spells it. */
  readonly version: string;
  /** PEP 440 canonical version: the key of the release. */
  readonly canonicalVersion: string;
  /** Kept with the release when this upload creates it. */
  readonly metadata: ReleaseMetadata;
  readonly file: NewFile;
  /** The file's core metadata, served as `<file>.metadata` (PEP 658), or null. Its sha256 is `file.metadataSha256`. */
  readonly coreMetadata: string | null;
  readonly uploader: { readonly userId: number; readonly username: string };
  /** The token's project scope (normalized), or null for an unscoped token. */
  readonly tokenScope: string | null;
}

export interface AddFileResult {
  /** Serial of the `add file` change (the last serial this upload took). */
  readonly serial: number;
  readonly project: Project;
  readonly createdProject: boolean;
  readonly createdRelease: boolean;
}

/** Who made a change, for the changelog's `submitted_by` (null: an administrator at the command line). */
export type Actor = string | null;

/** A write that removed files: their blob keys, so the caller can delete the blobs after the commit. */
export interface RemovalResult {
  readonly serial: number;
  /** Blob keys of removed files (their `.metadata` siblings are implied). */
  readonly paths: readonly string[];
}

/** Downloads of one file by one kind of client on one day (PEP 381 local stats). */
export interface DownloadCount {
  /** `YYYY-MM-DD`, UTC. */
  readonly day: string;
  readonly project: string;
  readonly filename: string;
  /** The client's product token, e.g. `pip/24.0`. */
  readonly userAgent: string;
  readonly count: number;
}

/** Row counts, for tests and status pages. */
export interface DatabaseStats {
  readonly projects: number;
  readonly releases: number;
  readonly files: number;
  readonly changes: number;
  readonly users: number;
  readonly tokens: number;
  readonly lastSerial: number;
}

/**
 * The index's database. Every change writes changelog entries with the next
 * serials (strictly increasing, no gaps) in the same transaction as the change.
 */
/** A project's state with the PEP 658 metadata of its files that have some, by the file's blob key. */
export interface ProjectStateWithMetadata {
  readonly state: ProjectState;
  readonly coreMetadata: ReadonlyMap<string, string>;
}

export interface Database {
  /** Which engine this is. */
  readonly dialect: 'sqlite' | 'postgres';

  /** Create or upgrade the schema. Idempotent. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // Users and tokens
  /** The user with this name, created when new. */
  ensureUser(username: string): Promise<User>;
  getUser(username: string): Promise<User | undefined>;
  createToken(token: { id: string; userId: number; projectScope: string | null; secretHash: string }): Promise<void>;
  getToken(id: string): Promise<ApiToken | undefined>;
  /** The user's role on a project (by normalized name), or null. */
  getRole(userId: number, normalizedName: string): Promise<Role | null>;

  // Reads
  getProject(normalizedName: string): Promise<Project | undefined>;
  getProjectState(normalizedName: string): Promise<ProjectState | undefined>;
  /**
   * Several projects (undefined for a name without one), all read at one state of the database;
   * with `coreMetadata`, the PEP 658 metadata of their files too. What the sync routes read in bulk.
   */
  getProjectStates(normalizedNames: readonly string[], options?: { coreMetadata?: boolean }): Promise<(ProjectStateWithMetadata | undefined)[]>;
  /** Every project with files or releases, ordered by normalized name. */
  listProjects(): Promise<ProjectListing[]>;
  /** One page of listProjects: names after `after` (exclusive; '' for the start), at most `limit`. */
  listProjectsAfter(after: string, limit: number): Promise<ProjectListing[]>;
  /** True when a file of this name exists or ever existed (PyPI never reuses filenames). */
  isFilenameUsed(filename: string): Promise<boolean>;
  /** True when some file row references this blob key. */
  isPathReferenced(path: string): Promise<boolean>;
  /** The PEP 658 metadata of the file stored under `path`, or undefined. */
  getCoreMetadata(path: string): Promise<string | undefined>;
  lastSerial(): Promise<number>;
  /** Changes with serial > `since`, in serial order, at most `limit`. */
  changesSince(since: number, limit: number): Promise<Change[]>;
  /** Changes submitted at or after an ISO 8601 time, in serial order, at most `limit` (XML-RPC `changelog`). */
  changesSinceTime(sinceIso: string, limit: number): Promise<Change[]>;
  stats(): Promise<DatabaseStats>;

  // Download statistics (PEP 381 /local-stats/days/)
  /** Add counts (upserting by day, filename and user agent). */
  addDownloads(counts: readonly DownloadCount[]): Promise<void>;
  /** Days with downloads, oldest first, with their totals. */
  downloadDays(): Promise<{ readonly day: string; readonly total: number }[]>;
  /** Every count of one day, ordered by project, filename, user agent. */
  downloadsOn(day: string): Promise<DownloadCount[]>;

  // Writes
  /**
   * Record an upload atomically: creates the project (owned by the uploader) and the
   * release when new, and the file; writes their changelog entries. Throws
   * PYEDGE_FORBIDDEN (not an owner/maintainer, token out of scope),
   * PYEDGE_FILE_EXISTS / PYEDGE_FILENAME_REUSED, PYEDGE_SDIST_EXISTS; on any
   * error nothing is written.
   */
  addFile(input: AddFileInput): Promise<AddFileResult>;
  /**
   * Load many projects at once (each with one release and one file, owned by
   * `owner`), with the changelog entries an upload would write. Projects that
   * exist are skipped, so a repeated import is harmless.
   */
  importProjects(records: readonly ImportRecord[], owner: { readonly userId: number; readonly username: string }): Promise<ImportResult>;

  // Project management. Each write takes the next serial and writes one changelog
  // entry in the same transaction; each throws PYEDGE_NOT_FOUND (naming what) when
  // the project, release, file or user does not exist. Permission checks are the
  // caller's (the database does not know who may do what).
  /** PEP 592: mark a release yanked with an optional reason ('yank release'). */
  yankRelease(normalizedName: string, version: string, reason: string | null, actor: Actor): Promise<number>;
  /** Undo a yank ('unyank release'). */
  unyankRelease(normalizedName: string, version: string, actor: Actor): Promise<number>;
  /** Remove one file ('remove file'); its filename stays used forever. */
  removeFile(normalizedName: string, filename: string, actor: Actor): Promise<RemovalResult>;
  /** Remove a release and its files ('remove release'). */
  removeRelease(normalizedName: string, version: string, actor: Actor): Promise<RemovalResult>;
  /** Remove a project with its releases, files and roles ('remove project'). */
  removeProject(normalizedName: string, actor: Actor): Promise<RemovalResult>;
  /** Give a user a role on a project, replacing any other role ('add owner' with detail `Owner`/`Maintainer`). */
  setRole(normalizedName: string, username: string, role: Role, actor: Actor): Promise<number>;
  /** Take a user's role away ('remove owner'). Refuses (PYEDGE_FORBIDDEN) to remove the last Owner. */
  removeRole(normalizedName: string, username: string, actor: Actor): Promise<number>;
  listRoles(normalizedName: string): Promise<{ readonly username: string; readonly role: Role }[]>;
  /** PEP 792 project status ('set status', detail = status). */
  setProjectStatus(normalizedName: string, status: ProjectStatus, reason: string | null, actor: Actor): Promise<number>;
  /** Record that new documentation was published ('docs upload'). */
  recordDocsUpload(normalizedName: string, actor: Actor): Promise<number>;
}
