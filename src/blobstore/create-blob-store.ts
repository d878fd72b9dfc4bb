/** Picks a blob store back-end from a URL, as `--blobs`, `--target` and `--root` give it. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PyedgeError } from '../core/errors.js';
import type { BlobStore } from './blob-store.js';
import { FolderBlobStore } from './folder/folder-blob-store.js';
import { S3BlobStore, type S3BlobStoreOptions } from './s3/s3-blob-store.js';

/** Settings for S3 stores that a URL cannot carry (endpoint, region, …). */
export type S3Overrides = Partial<Omit<S3BlobStoreOptions, 'bucket' | 'prefix'>>;

const ACCEPTED = 'a folder path, a file: URL, or s3://BUCKET/PREFIX';

/** Splits `s3://BUCKET/PREFIX` (prefix optional) into its parts. */
export function parseS3Url(url: string): { readonly bucket: string; readonly prefix: string } {
  const match = /^s3:\/\/([^/?#]+)(?:\/([^?#]*))?$/i.exec(url);
  const bucket = match?.[1];
  if (!bucket || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(bucket)) {
    throw new PyedgeError('PYEDGE_CONFIG', `invalid S3 URL ${JSON.stringify(url)}: expected s3://BUCKET/PREFIX`, { url });
  }
  return { bucket, prefix: (match?.[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

/**
 * A blob store for `url`: a folder path or `file:` URL gives a FolderBlobStore,
 * `s3://BUCKET/PREFIX` an S3BlobStore (with `s3` filling in what the URL cannot say).
 */
export function createBlobStore(url: string, s3: S3Overrides = {}): BlobStore {
  const trimmed = url.trim();
  if (trimmed === '') {
    throw new PyedgeError('PYEDGE_CONFIG', `empty blob store location: expected ${ACCEPTED}`, { url });
  }
  if (/^s3:/i.test(trimmed)) {
    const { bucket, prefix } = parseS3Url(trimmed);
    try {
      return new S3BlobStore({ ...s3, bucket, prefix });
    } catch (err) {
      if (err instanceof PyedgeError && err.code === 'PYEDGE_BAD_REQUEST') {
        throw new PyedgeError('PYEDGE_CONFIG', `invalid S3 URL ${JSON.stringify(url)}: expected s3://BUCKET/PREFIX with a valid prefix (${err.message})`, { url }, { cause: err });
      }
      throw err;
    }
  }
  if (/^file:/i.test(trimmed)) {
    let folder: string;
    try {
      folder = fileURLToPath(trimmed);
    } catch (err) {
      throw new PyedgeError('PYEDGE_CONFIG', `invalid file URL ${JSON.stringify(url)}: expected file:///ABSOLUTE/PATH`, { url }, { cause: err });
    }
    return new FolderBlobStore(folder);
  }
  // Any other scheme (http:, gs:, …) is a mistake, not a folder named "http:".
  if (/^[A-Za-z][A-Za-z0-9+.-]+:/.test(trimmed)) {
    throw new PyedgeError('PYEDGE_CONFIG', `unsupported blob store location ${JSON.stringify(url)}: expected ${ACCEPTED}`, { url });
  }
  return new FolderBlobStore(path.resolve(trimmed));
}
