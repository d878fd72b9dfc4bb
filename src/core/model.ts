/** The index's domain records, shared by the database, the renderers and the sync engine. */

/** PEP 792 project status. */
export type ProjectStatus = 'active' | 'archived' | 'quarantined' | 'deprecated';

export interface Project {
  readonly id: number;
  /** The name as first uploaded (display form). */
  readonly name: string;
  /** PEP 503 normalized name: the key. */
  readonly normalizedName: string;
  readonly status: ProjectStatus;
  readonly statusReason: string | null;
  readonly createdAt: string;
  /** Serial of the last change that touched this project. */
  readonly lastSerial: number;
}

export interface Release {
  readonly id: number;
  readonly projectId: number;
  /** The version as uploaded. */
  readonly version: string;
  /** PEP 440 canonical form: the key within a project. */
  readonly canonicalVersion: string;
  readonly yanked: boolean;
  readonly yankedReason: string | null;
  readonly createdAt: string;
  /** Core metadata of the first file uploaded to this release. */
  readonly metadata: ReleaseMetadata;
}

/** The parts of core metadata the index keeps per release. */
export interface ReleaseMetadata {
  readonly metadataVersion: string;
  readonly summary: string | null;
  readonly description: string | null;
  readonly descriptionContentType: string | null;
  readonly requiresPython: string | null;
  readonly requiresDist: readonly string[];
  readonly providesExtra: readonly string[];
  readonly license: string | null;
  readonly licenseExpression: string | null;
  readonly licenseFiles: readonly string[];
  readonly classifiers: readonly string[];
  readonly keywords: string | null;
  readonly author: string | null;
  readonly authorEmail: string | null;
  readonly maintainer: string | null;
  readonly maintainerEmail: string | null;
  readonly homePage: string | null;
  readonly projectUrls: readonly string[];
  readonly dynamic: readonly string[];
}

/** Metadata with nothing but its version: a base for generated and test releases. */
export const EMPTY_RELEASE_METADATA: ReleaseMetadata = Object.freeze({
  metadataVersion: '2.1',
  summary: null,
  description: null,
  descriptionContentType: null,
  requiresPython: null,
  requiresDist: [],
  providesExtra: [],
  license: null,
  licenseExpression: null,
  licenseFiles: [],
  classifiers: [],
  keywords: null,
  author: null,
  authorEmail: null,
  maintainer: null,
  maintainerEmail: null,
  homePage: null,
  projectUrls: [],
  dynamic: [],
});

export type PackageType = 'bdist_wheel' | 'sdist';

export interface DistFile {
  readonly id: number;
  readonly releaseId: number;
  readonly filename: string;
  readonly packagetype: PackageType;
  readonly pythonVersion: string;
  readonly requiresPython: string | null;
  readonly size: number;
  readonly md5: string;
  readonly sha256: string;
  readonly blake2b256: string;
  /** Blob key (Warehouse path) of the file. */
  readonly path: string;
  /** sha256 of the extracted core metadata, when served (PEP 658); null otherwise. */
  readonly metadataSha256: string | null;
  readonly uploadTime: string;
  readonly uploadedBy: string | null;
}

/** A file joined with the release facts the Simple API needs. */
export interface ProjectFile extends DistFile {
  readonly version: string;
  readonly yanked: boolean;
  readonly yankedReason: string | null;
}

/** Everything the renderers need to draw one project page. */
export interface ProjectState {
  readonly project: Project;
  /** All releases, in PEP 440 order, including those without files. */
  readonly releases: readonly Release[];
  /** All files, ordered by filename. */
  readonly files: readonly ProjectFile[];
}

/** One entry of the root index. */
export interface ProjectListing {
  readonly name: string;
  readonly normalizedName: string;
  readonly lastSerial: number;
}

export type ChangeAction =
  | 'create'
  | 'new release'
  | 'add file'
  | 'yank release'
  | 'unyank release'
  | 'remove file'
  | 'remove release'
  | 'remove project'
  | 'add owner'
  | 'remove owner'
  | 'set status'
  | 'docs upload';

/** One changelog entry. Serials are strictly increasing without gaps. */
export interface Change {
  readonly serial: number;
  /** Display name of the project. */
  readonly name: string;
  readonly normalizedName: string;
  readonly version: string | null;
  readonly filename: string | null;
  readonly action: ChangeAction;
  readonly detail: string | null;
  readonly submittedAt: string;
  readonly submittedBy: string | null;
}

export type Role = 'Owner' | 'Maintainer';

export interface User {
  readonly id: number;
  readonly username: string;
  readonly createdAt: string;
}

export interface ApiToken {
  readonly id: string;
  readonly userId: number;
  readonly username: string;
  /** Normalized project name the token is limited to, or null for all the user's projects. */
  readonly projectScope: string | null;
  /** sha256 of the token secret. */
  readonly secretHash: string;
  readonly createdAt: string;
}
