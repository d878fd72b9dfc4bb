/** Shared fixtures of the Database contract suites: sample metadata, uploads and error assertions. */
import assert from 'node:assert/strict';
import { isPyedgeError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import { blake2b256Hex, packagePath, sha256Hex } from '../core/hashes.js';
import type { ReleaseMetadata, User } from '../core/model.js';
import { canonicalVersion } from '../core/versions.js';
import type { AddFileInput, Database } from './database.js';

export type MakeDatabase = () => Promise<{ db: Database; cleanup: () => Promise<void> }>;

export const METADATA: ReleaseMetadata = {
  metadataVersion: '2.4',
  summary: 'A sample project',
  description: '# Sample\n\nUnicode: żółw 🐢',
  descriptionContentType: 'text/markdown',
  requiresPython: '>=3.9',
  requiresDist: ['requests>=2', 'rich; extra == "cli"'],
  providesExtra: ['cli'],
  license: null,
  licenseExpression: 'MIT',
  licenseFiles: ['LICENSE'],
  classifiers: ['Programming Language :: Python :: 3'],
  keywords: 'sample,test',
  author: 'A. Author',
  authorEmail: 'author@example.org',
  maintainer: null,
  maintainerEmail: null,
  homePage: null,
  projectUrls: ['Source, https://example.org/src'],
  dynamic: [],
};

/** An upload of `filename` (a wheel or an sdist, from its extension) by `user`. */
export function upload(user: User, projectName: string, version: string, filename: string, tokenScope: string | null = null): AddFileInput {
  const wheel = filename.endsWith('.whl');
  const blake = blake2b256Hex(new TextEncoder().encode(filename));
  const canonical = canonicalVersion(version);
  assert.ok(canonical, `test uses an invalid version ${version}`);
  return {
    projectName,
    version,
    canonicalVersion: canonical,
    metadata: { ...METADATA, summary: `${projectName} ${version}` },
    file: {
      filename,
      packagetype: wheel ? 'bdist_wheel' : 'sdist',
      pythonVersion: wheel ? 'py3' : 'source',
      requiresPython: '>=3.9',
      size: 3_000_000_000 + filename.length, // past 2^31: the size column must hold it
      md5: sha256Hex(`md5:${filename}`).slice(0, 32),
      sha256: sha256Hex(filename),
      blake2b256: blake,
      path: packagePath(blake, filename),
      metadataSha256: wheel ? sha256Hex(`metadata:${filename}`) : null,
    },
    coreMetadata: wheel ? `metadata:${filename}` : null,
    uploader: { userId: user.id, username: user.username },
    tokenScope,
  };
}

export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isPyedgeError(err), `expected a PyedgeError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** Runs `fn` on a fresh, migrated database from `make` and always cleans up. */
export async function withDatabase(make: MakeDatabase, fn: (db: Database) => Promise<void>): Promise<void> {
  const { db, cleanup } = await make();
  try {
    await db.migrate();
    await fn(db);
  } finally {
    await db.close();
    await cleanup();
  }
}
