import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { after, before, describe, it } from 'node:test';
import { startS3rver, type RunningS3rver } from '../../../test/helpers/s3rver.js';
import { BlobNotFoundError, PyedgeError } from '../../core/errors.js';
import { runBlobStoreContract } from '../blob-store.contract.js';
import { createBlobStore } from '../create-blob-store.js';
import { S3BlobStore } from './s3-blob-store.js';

let server: RunningS3rver | undefined;
let runs = 0;

before(async () => {
  server = await startS3rver('test');
  // The SDK's default chain reads credentials, region and endpoint from here.
  Object.assign(process.env, server.env);
});

after(async () => {
  await server?.stop();
});

function running(): RunningS3rver {
  assert.ok(server, 's3rver is running');
  return server;
}

// Each test gets its own prefix under pkgs/ in one server, so stores never see each other's blobs.
runBlobStoreContract('s3 (s3rver)', async () => {
  const s = running();
  const store = new S3BlobStore({ bucket: s.bucket, prefix: `pkgs/run${++runs}/`, endpoint: s.endpoint, partSizeBytes: 5 * 1024 * 1024 });
  return { store, cleanup: async () => undefined };
}, { nonAtomicServer: 's3rver writes objects in place (S3 itself makes each PUT atomic)' });

describe('S3BlobStore', () => {
  it('keeps stores with different prefixes apart', async () => {
    const s = running();
    const a = new S3BlobStore({ bucket: s.bucket, prefix: 'iso', endpoint: s.endpoint });
    const b = new S3BlobStore({ bucket: s.bucket, prefix: 'iso2', endpoint: s.endpoint });
    const top = new S3BlobStore({ bucket: s.bucket, endpoint: s.endpoint });
    try {
      await a.put('k', Buffer.from('a'));
      await b.put('k', Buffer.from('b'));
      const keysOf = async (store: S3BlobStore, prefix: string): Promise<string[]> => {
        const keys: string[] = [];
        for await (const entry of store.list(prefix)) keys.push(entry.key);
        return keys;
      };
      assert.deepEqual(await keysOf(a, ''), ['k']);
      assert.deepEqual(await keysOf(b, ''), ['k']);
      assert.deepEqual(await keysOf(top, 'iso'), ['iso/k', 'iso2/k']);
      await assert.rejects(a.head('iso2/k'), BlobNotFoundError);
    } finally {
      await Promise.all([a.close(), b.close(), top.close()]);
    }
  });

  it('paginates long listings', async () => {
    const s = running();
    const store = new S3BlobStore({ bucket: s.bucket, prefix: 'many', endpoint: s.endpoint });
    try {
      const keys = Array.from({ length: 1005 }, (_, i) => `k/${String(i).padStart(4, '0')}`);
      for (let i = 0; i < keys.length; i += 50) {
        await Promise.all(keys.slice(i, i + 50).map((key) => store.put(key, Buffer.from(key))));
      }
      const listed: string[] = [];
      for await (const entry of store.list('k/')) listed.push(entry.key);
      assert.deepEqual(listed, keys);
    } finally {
      await store.close();
    }
  });

  it('reads the endpoint and credentials from the AWS environment when given an s3:// URL', async () => {
    const store = createBlobStore('s3://test/from-env/');
    try {
      assert.ok(store instanceof S3BlobStore);
      await store.put('x/y', Buffer.from('via env'));
      const head = await store.head('x/y');
      assert.equal(head.size, 7);
    } finally {
      await store.close();
    }
  });

  it('keeps the content type, Cache-Control and surrogate headers a put gives, for a CDN in front of the bucket', async () => {
    const s = running();
    const store = new S3BlobStore({ bucket: s.bucket, prefix: 'cache', endpoint: s.endpoint });
    const client = new S3Client({ endpoint: s.endpoint, forcePathStyle: true });
    const cache = { cacheControl: 'max-age=60, public, stale-if-error=86400', surrogateControl: 'max-age=86400, stale-if-error=604800', surrogateKey: 'project/demo' };
    try {
      await store.put('simple/demo/index.html', Buffer.from('<html></html>'), { contentType: 'text/html; charset=utf-8', cache });
      await store.put('pypi/demo/json', Readable.from([Buffer.from('{}')]), { contentType: 'application/json', cache });
      for (const [key, type] of [['cache/simple/demo/index.html', 'text/html; charset=utf-8'], ['cache/pypi/demo/json', 'application/json']] as const) {
        const head = await client.send(new HeadObjectCommand({ Bucket: s.bucket, Key: key }));
        assert.equal(head.ContentType, type, key);
        assert.equal(head.CacheControl, cache.cacheControl, key);
        assert.deepEqual(head.Metadata, { 'surrogate-key': 'project/demo', 'surrogate-control': cache.surrogateControl }, key);
      }
      await store.put('plain', Buffer.from('x'));
      const plain = await client.send(new HeadObjectCommand({ Bucket: s.bucket, Key: 'cache/plain' }));
      assert.equal(plain.CacheControl, undefined);
      assert.deepEqual(plain.Metadata ?? {}, {});
    } finally {
      client.destroy();
      await store.close();
    }
  });

  it('reports a missing bucket as a configuration error', async () => {
    const s = running();
    const store = new S3BlobStore({ bucket: 'no-such-bucket', endpoint: s.endpoint });
    try {
      await assert.rejects(store.put('k', Buffer.from('x')), (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_CONFIG' && /no-such-bucket/.test(err.message));
    } finally {
      await store.close();
    }
  });
});
