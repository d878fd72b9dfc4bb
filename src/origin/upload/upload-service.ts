/**
 * The upload rules of PyPI's `/legacy/` API, applied to a spooled upload: check the
 * form, the digests, the filename and the metadata inside the file; store the blob
 * (and its PEP 658 metadata); record it in one transaction. An upload either lands
 * whole or leaves nothing a reader can reach.
 */
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { PyedgeError } from '../../core/errors.js';
import { parseFilename, filetypeOf } from '../../core/filenames.js';
import { packagePath, sha256Hex } from '../../core/hashes.js';
import { isValidName, normalizeName } from '../../core/names.js';
import { canonicalVersion, isValidVersion, sameVersion } from '../../core/versions.js';
import { toReleaseMetadata, type CoreMetadata } from '../../core/metadata.js';
import type { ApiToken, PackageType } from '../../core/model.js';
import type { Database, AddFileResult } from '../../db/database.js';
import type { BlobStore } from '../../blobstore/blob-store.js';
import { readDistMetadata } from './dist-metadata.js';
import { field, type UploadForm, type SpooledFile } from './upload-form.js';
import { KeyedMutex } from './keyed-mutex.js';

const DIGEST_FIELDS = [
  ['md5_digest', 'md5'],
  ['sha256_digest', 'sha256'],
  ['blake2_256_digest', 'blake2b_256'],
] as const;

export interface UploadOutcome extends AddFileResult {
  readonly filename: string;
  readonly path: string;
}

function badField(name: string, error: string): PyedgeError {
  return new PyedgeError('PYEDGE_BAD_REQUEST', `Invalid value for ${name}. Error: ${error}`, { field: name });
}

function required(form: UploadForm, name: string): string {
  const v = field(form, name)?.trim();
  if (!v) throw badField(name, 'This field is required.');
  return v;
}

/** Applies uploads; one per process, shared by all requests. */
export class UploadService {
  /** Serializes uploads of one filename, so racers never touch each other's blobs. */
  private readonly filenameLocks = new KeyedMutex();

  constructor(
    private readonly db: Database,
    private readonly blobs: BlobStore,
    private readonly log: Logger,
  ) {}

  /** Validate and store an upload. The spooled file is consumed (moved or removed) either way. */
  async upload(form: UploadForm, token: ApiToken): Promise<UploadOutcome> {
    const file = form.file;
    const spool = { taken: false };
    try {
      const checked = this.checkForm(form, file);
      await this.checkPermission(checked.name, token);
      if (await this.db.isFilenameUsed(checked.parsed.filename)) {
        throw await this.filenameError(checked.parsed.filename);
      }
      const { raw, metadata } = await readDistMetadata(checked.file.bytes ?? checked.file.path, checked.parsed);
      const identity = checkMetadataMatches(metadata, checked.name, checked.version);
      return await this.filenameLocks.run(checked.parsed.filename, () => this.store(checked, identity, metadata, raw, token, spool));
    } finally {
      // The blob store took the spool file when putFile resolved.
      if (file && !spool.taken) await rm(file.path, { force: true });
    }
  }

  private checkForm(form: UploadForm, file: SpooledFile | null) {
    const action = field(form, ':action');
    if (action !== 'file_upload') {
      throw new PyedgeError(
        'PYEDGE_UNSUPPORTED_ACTION',
        action ? `Unsupported action: '${action}'. This endpoint accepts ':action=file_upload' (and 'doc_upload' for documentation).` : "Missing ':action' field: send ':action=file_upload'.",
        { action },
      );
    }
    const protocol = field(form, 'protocol_version') ?? '1';
    if (protocol !== '1') throw badField('protocol_version', `Unknown protocol version '${protocol}': only 1 is supported.`);
    required(form, 'metadata_version');
    const name = required(form, 'name');
    if (!isValidName(name)) {
      throw badField('name', "Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'.");
    }
    const version = required(form, 'version');
    if (!isValidVersion(version)) {
      throw badField('version', `'${version}' is not a valid PEP 440 version. See https://packaging.python.org/specifications/version-specifiers/.`);
    }
    const filetype = required(form, 'filetype');
    if (filetype !== 'bdist_wheel' && filetype !== 'sdist') {
      throw badField('filetype', `Use a known file type ('sdist' or 'bdist_wheel'), not '${filetype}'.`);
    }
    if (!file || !file.filename) {
      throw new PyedgeError('PYEDGE_BAD_REQUEST', 'Upload payload does not have a file: send it as the form part "content", with a filename.');
    }
    const parsed = parseFilename(file.filename);
    if (filetypeOf(parsed.kind) !== filetype) {
      throw badField('filetype', `'${parsed.filename}' is a ${parsed.kind === 'wheel' ? 'wheel (bdist_wheel)' : 'source distribution (sdist)'}, not '${filetype}'.`);
    }
    if (normalizeName(parsed.name) !== normalizeName(name)) {
      throw new PyedgeError('PYEDGE_METADATA_MISMATCH', `Start filename for project '${name}' with '${name.replace(/[-_.]+/g, '_').toLowerCase()}'.`, {
        filename: parsed.filename,
        name,
      });
    }
    if (!isValidVersion(parsed.version) || !sameVersion(parsed.version, version)) {
      throw new PyedgeError('PYEDGE_METADATA_MISMATCH', `Version in filename should be '${version}' not '${parsed.version}'.`, {
        filename: parsed.filename,
        version,
      });
    }
    if (file.size === 0) throw new PyedgeError('PYEDGE_INVALID_DISTRIBUTION', `Invalid distribution file: '${parsed.filename}' is empty.`);
    let anyDigest = false;
    for (const [formName, key] of DIGEST_FIELDS) {
      const given = field(form, formName)?.trim().toLowerCase();
      if (!given) continue;
      anyDigest = true;
      if (given !== file.digests[key]) {
        throw new PyedgeError(
          'PYEDGE_DIGEST_MISMATCH',
          `The digest supplied (${formName}) does not match a digest calculated from the uploaded file. The file may have been corrupted in transit: upload it again.`,
          { field: formName },
        );
      }
    }
    if (!anyDigest) {
      throw new PyedgeError('PYEDGE_BAD_REQUEST', 'Include at least one message digest (sha256_digest, blake2_256_digest or md5_digest).');
    }
    const pyversion = field(form, 'pyversion')?.trim() || (parsed.kind === 'sdist' ? 'source' : parsed.tags?.python ?? 'py3');
    return { name, version, parsed, file, pyversion, packagetype: filetype as PackageType };
  }

  /** Fail early, before any blob is written, when the token cannot upload to this project. */
  private async checkPermission(name: string, token: ApiToken): Promise<void> {
    const normalized = normalizeName(name);
    if (token.projectScope !== null && token.projectScope !== normalized) {
      throw new PyedgeError(
        'PYEDGE_FORBIDDEN',
        `This token is scoped to project '${token.projectScope}' and cannot upload to '${name}'.`,
        { project: normalized },
      );
    }
    const project = await this.db.getProject(normalized);
    if (project && (await this.db.getRole(token.userId, normalized)) === null) {
      throw new PyedgeError(
        'PYEDGE_FORBIDDEN',
        `The user '${token.username}' isn't allowed to upload to project '${project.name}'.`,
        { project: normalized, user: token.username },
      );
    }
  }

  private async filenameError(filename: string): Promise<PyedgeError> {
    // The database knows whether the file still exists or was deleted; ask it through addFile's
    // own error when racing, and give PyPI's wording here.
    const state = await this.db.getProjectState(normalizeName(parseFilename(filename).name));
    const exists = state?.files.some((f) => f.filename === filename) ?? false;
    return exists
      ? new PyedgeError('PYEDGE_FILE_EXISTS', `File already exists ('${filename}'). Use a new version or a new build tag.`, { filename })
      : new PyedgeError('PYEDGE_FILENAME_REUSED', `This filename ('${filename}') has already been used, use a different version.`, { filename });
  }

  private async store(
    checked: ReturnType<UploadService['checkForm']>,
    identity: { name: string; version: string },
    metadata: CoreMetadata,
    rawMetadata: Buffer,
    token: ApiToken,
    spool: { taken: boolean },
  ): Promise<UploadOutcome> {
    const { parsed, file } = checked;
    if (await this.db.isFilenameUsed(parsed.filename)) throw await this.filenameError(parsed.filename);
    const path = packagePath(file.digests.blake2b_256, parsed.filename);
    const servesMetadata = parsed.kind === 'wheel';
    await this.blobs.putFile(path, file.path, { contentType: 'application/octet-stream' });
    spool.taken = true;
    let result: AddFileResult;
    try {
      result = await this.db.addFile({
        projectName: identity.name,
        version: identity.version,
        canonicalVersion: canonicalVersion(identity.version) ?? identity.version,
        metadata: toReleaseMetadata(metadata),
        file: {
          filename: parsed.filename,
          packagetype: checked.packagetype,
          pythonVersion: checked.pyversion,
          requiresPython: metadata.requiresPython ?? null,
          size: file.size,
          md5: file.digests.md5,
          sha256: file.digests.sha256,
          blake2b256: file.digests.blake2b_256,
          path,
          metadataSha256: servesMetadata ? sha256Hex(rawMetadata) : null,
        },
        // Valid UTF-8: readDistMetadata decoded it strictly.
        coreMetadata: servesMetadata ? rawMetadata.toString('utf8') : null,
        uploader: { userId: token.userId, username: token.username },
        tokenScope: token.projectScope,
      });
    } catch (err) {
      await this.removeUnreferenced(path);
      throw err;
    }
    return { ...result, filename: parsed.filename, path };
  }

  private async removeUnreferenced(path: string): Promise<void> {
    try {
      if (await this.db.isPathReferenced(path)) return;
      await this.blobs.delete(path);
    } catch (err) {
      this.log.error({ err, path }, 'could not remove the blob of a refused upload');
    }
  }
}

/** The name and version the file's own metadata gives, checked against the form. */
function checkMetadataMatches(md: CoreMetadata, name: string, version: string): { name: string; version: string } {
  if (md.name === null || md.version === null) {
    throw new PyedgeError('PYEDGE_INVALID_METADATA', "The file's metadata lacks a Name or Version field.");
  }
  if (normalizeName(md.name) !== normalizeName(name)) {
    throw new PyedgeError(
      'PYEDGE_METADATA_MISMATCH',
      `Name in the file's metadata ('${md.name}') does not match the form ('${name}').`,
      { metadataName: md.name, name },
    );
  }
  if (!sameVersion(md.version, version)) {
    throw new PyedgeError(
      'PYEDGE_METADATA_MISMATCH',
      `Version in the file's metadata ('${md.version}') does not match the form ('${version}').`,
      { metadataVersion: md.version, version },
    );
  }
  return { name: md.name, version: md.version };
}

