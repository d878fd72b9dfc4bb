/**
 * The publisher into an S3 bucket (s3rver): the same tree as in a folder, pages
 * equal to the origin's bytes, removals deleted from the bucket, and
 * `pyedge verify` on the bucket.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { startS3rver, type RunningS3rver } from '../helpers/s3rver.js';
import { S3BlobStore } from '../../src/blobstore/s3/s3-blob-store.js';
import { BlobNotFoundError } from '../../src/core/errors.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';

describe('pyedge publish to S3', () => {
  let work: string;
  let data: string;
  let origin: Service;
  let s3: RunningS3rver;
  let bucket: S3BlobStore;
  let token: string;
  let target: string;
  let publishArgs: string[];

  const object = async (key: string): Promise<Buffer | null> => {
    try {
      const chunks: Buffer[] = [];
      for await (const c of (await bucket.get(key)).body) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    } catch (err) {
      if (err instanceof BlobNotFoundError) return null;
      throw err;
    }
  };
  const fromOrigin = async (path: string, accept?: string): Promise<Buffer> =>
    Buffer.from(await (await fetch(`${origin.url}${path}`, accept ? { headers: { accept } } : {})).arrayBuffer());

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-publish-s3-'));
    data = join(work, 'data');
    s3 = await startS3rver('pyedge-tree');
    bucket = new S3BlobStore({ bucket: s3.bucket, prefix: 'tree', endpoint: s3.endpoint, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    origin = await startPyedge(['serve', '--data', data, '--port', '0']);
    token = (await pyedge(['token', 'create', '--data', data, '--user', 'sam'])).stdout.trim();
    target = `s3://${s3.bucket}/tree`;
    publishArgs = ['publish', '--source', origin.url, '--target', target, '--key-file', join(work, 'key.pem')];
  });

  after(async () => {
    await origin?.stop();
    await bucket?.close();
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('a one-shot publish fills the bucket with the origin bytes, and verify passes', async () => {
    for (const [name, version] of [
      ['s3-demo', '1.0'],
      ['s3-demo', '1.1'],
      ['s3-other', '0.1'],
    ] as const) {
      const wheel = await buildWheel(work, { name, version, module: name.replace('-', '_'), value: version });
      assert.equal((await formUpload(origin.url, wheel, { token })).status, 200);
    }
    const r = await pyedge(publishArgs, s3.env);
    assert.equal(r.code, 0, `publish failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^synced: serial \d+, 2 projects written, 0 removed, 6 files copied/m);
    assert.deepEqual(await object('simple/index.html'), await fromOrigin('/simple/'));
    assert.deepEqual(await object('simple/index.v1_json'), await fromOrigin('/simple/', SIMPLE_JSON));
    for (const name of ['s3-demo', 's3-other']) {
      assert.deepEqual(await object(`simple/${name}/index.html`), await fromOrigin(`/simple/${name}/`));
      assert.deepEqual(await object(`simple/${name}/index.v1_json`), await fromOrigin(`/simple/${name}/`, SIMPLE_JSON));
      // Without --public-url the JSON API is the origin's, byte for byte.
      assert.deepEqual(await object(`pypi/${name}/json`), await fromOrigin(`/pypi/${name}/json`));
    }
    const v = await pyedge(['verify', '--target', target], s3.env);
    assert.equal(v.code, 0, `verify failed:\n${v.stdout}\n${v.stderr}`);
    const again = await pyedge(publishArgs, s3.env);
    assert.equal(again.code, 0);
    assert.equal(again.stdout, '', 'a second run has nothing to do');
  });

  test('a removed release leaves the bucket; a tampered page fails verify', async () => {
    const page = JSON.parse((await object('simple/s3-demo/index.v1_json'))!.toString()) as { files: { filename: string; url: string }[] };
    const gone = page.files.find((f) => f.filename.includes('-1.0-'))!;
    const key = gone.url.replace(/^\.\.\/\.\.\//, '');
    assert.notEqual(await object(key), null);
    const rr = await pyedge(['project', 'remove-release', 's3-demo', '1.0', '--data', data]);
    assert.equal(rr.code, 0, rr.stderr);
    // At once: the origin's root index already shows the CLI write while its page cache
    // catches up within half a second; the publisher waits for the pages to agree.
    const r = await pyedge(publishArgs, s3.env);
    assert.equal(r.code, 0, `publish failed:\n${r.stdout}\n${r.stderr}`);
    assert.equal(await object(key), null, `${basename(key)} deleted from the bucket`);
    assert.equal(await object('pypi/s3-demo/1.0/json'), null);
    assert.deepEqual(await object('simple/s3-demo/index.html'), await fromOrigin('/simple/s3-demo/'));
    assert.equal((await pyedge(['verify', '--target', target], s3.env)).code, 0);

    await bucket.put('simple/s3-other/index.v1_json', Buffer.from((await object('simple/s3-other/index.v1_json'))!.toString().replace('"files":[', '"files":[ ')));
    const v = await pyedge(['verify', '--target', target], s3.env);
    assert.equal(v.code, 1, v.stdout);
    assert.match(v.stdout, /problem: simple\/s3-other\/serversig: page bytes do not match the signed hash/);
  });
});
