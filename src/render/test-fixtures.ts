/** A small, fixed project state shared by the renderer tests. */
import { EMPTY_RELEASE_METADATA, type Project, type ProjectFile, type ProjectState, type Release, type ReleaseMetadata } from '../core/model.js';
import { packagePath } from '../core/hashes.js';

const METADATA: ReleaseMetadata = EMPTY_RELEASE_METADATA;

export function makeProject(overrides: Partial<Project> = {}): Project {
  return {
    id: 1,
    name: 'Frob_Nicate',
    normalizedName: 'frob-nicate',
    status: 'active',
    statusReason: null,
    createdAt: '2024-01-01T00:00:00.000Z',
    lastSerial: 42,
    ...overrides,
  };
}

export function makeRelease(id: number, version: string, overrides: Partial<Release> = {}): Release {
  return {
    id,
    projectId: 1,
    version,
    canonicalVersion: version,
    yanked: false,
    yankedReason: null,
    createdAt: '2024-01-01T00:00:00.000Z',
    metadata: METADATA,
    ...overrides,
  };
}

/** A 64-hex digest made of one repeated character, easy to spot in goldens. */
export function hex(ch: string): string {
  return ch.repeat(64);
}

export function makeFile(
  id: number,
  version: string,
  filename: string,
  digit: string,
  overrides: Partial<ProjectFile> = {},
): ProjectFile {
  const b2 = `${digit}${'0'.repeat(63)}`;
  return {
    id,
    releaseId: id,
    filename,
    packagetype: filename.endsWith('.whl') ? 'bdist_wheel' : 'sdist',
    pythonVersion: filename.endsWith('.whl') ? 'py3' : 'source',
    requiresPython: null,
    size: 1000 + id,
    md5: digit.repeat(32),
    sha256: hex(digit),
    blake2b256: b2,
    path: packagePath(b2, filename),
    metadataSha256: null,
    uploadTime: `2024-02-0${id}T10:00:00.123456Z`,
    uploadedBy: 'alice',
    version,
    yanked: false,
    yankedReason: null,
    ...overrides,
  };
}

/**
 * Four releases given out of order (1.10 before 1.9, rc after final): 1.0rc1
 * yanked without a reason, 1.0 yanked with one, 1.9 an sdist with
 * requires-python, 1.10 a wheel with core metadata, and 2.0 without files.
 */
export function sampleState(project: Partial<Project> = {}): ProjectState {
  const yankReason = 'Use "1.9" instead';
  return {
    project: makeProject({ status: 'archived', statusReason: 'moved to "frob2" & friends', ...project }),
    releases: [
      makeRelease(4, '1.10'),
      makeRelease(3, '1.9'),
      makeRelease(2, '1.0', { yanked: true, yankedReason: yankReason }),
      makeRelease(1, '1.0rc1', { yanked: true }),
      makeRelease(5, '2.0'),
    ],
    files: [
      makeFile(2, '1.0', 'frob_nicate-1.0.tar.gz', '2', { yanked: true, yankedReason: yankReason }),
      makeFile(1, '1.0rc1', 'frob_nicate-1.0rc1.tar.gz', '1', { yanked: true }),
      makeFile(4, '1.10', 'frob_nicate-1.10-py3-none-any.whl', '4', { metadataSha256: hex('d') }),
      makeFile(3, '1.9', 'frob_nicate-1.9.tar.gz', '3', { requiresPython: '>=3.8,<4' }),
    ],
  };
}
