import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { PyedgeError } from '../core/errors.js';
import { createBlobStore, parseS3Url } from './create-blob-store.js';
import { FolderBlobStore } from './folder/folder-blob-store.js';
import { S3BlobStore } from './s3/s3-blob-store.js';

const isConfigError = (err: unknown): boolean => err instanceof PyedgeError && err.code === 'PYEDGE_CONFIG';

describe('parseS3Url', () => {
  it('splits bucket and prefix', () => {
    assert.deepEqual(parseS3Url('s3://bucket/some/prefix/'), { bucket: 'bucket', prefix: 'some/prefix' });
    assert.deepEqual(parseS3Url('s3://bucket/pkgs'), { bucket: 'bucket', prefix: 'pkgs' });
    assert.deepEqual(parseS3Url('s3://bucket'), { bucket: 'bucket', prefix: '' });
    assert.deepEqual(parseS3Url('s3://my.bucket-1/'), { bucket: 'my.bucket-1', prefix: '' });
  });

  it('refuses URLs without a bucket', () => {
    for (const url of ['s3://', 's3:///prefix', 's3:bucket', 'http://bucket/x', 's3://bad bucket/x']) {
      assert.throws(() => parseS3Url(url), isConfigError, url);
    }
  });
});

describe('createBlobStore', () => {
  it('opens a folder store for a path or a file: URL', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'pyedge-create-store-'));
    try {
      const byPath = createBlobStore(path.join(root, 'a'));
      assert.ok(byPath instanceof FolderBlobStore);
      assert.ok((await stat(path.join(root, 'a'))).isDirectory());
      const byUrl = createBlobStore(pathToFileURL(path.join(root, 'b')).href);
      assert.ok(byUrl instanceof FolderBlobStore);
      await byUrl.put('k', Buffer.from('v'));
      assert.equal((await stat(path.join(root, 'b', 'k'))).size, 1);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('opens an S3 store for s3://BUCKET/PREFIX', async () => {
    const store = createBlobStore('s3://bucket/pkgs/', { endpoint: 'http://127.0.0.1:9', region: 'eu-west-1' });
    try {
      assert.ok(store instanceof S3BlobStore);
      assert.match(store.description, /^s3:\/\/bucket\/pkgs at http:\/\/127\.0\.0\.1:9$/);
    } finally {
      await store.close();
    }
  });

  it('names the accepted forms for anything else', () => {
    for (const url of ['', '   ', 'http://example.com/blobs', 'gs://bucket/x', 's3://', 's3://bucket/../x']) {
      assert.throws(
        () => createBlobStore(url),
        (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_CONFIG' && /s3:\/\/BUCKET\/PREFIX/.test(err.message),
        url,
      );
    }
  });
});
