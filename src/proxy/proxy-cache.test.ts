import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyCache, type CachedPage } from './proxy-cache.js';

const page = (serial: number): CachedPage => ({
  name: 'demo',
  serial,
  fetchedAt: new Date().toISOString(),
  upstream: 'http://up.example/simple/',
  page: { name: 'demo', serial, source: 'json', apiVersion: '1.0', json: null, meta: [], files: [] },
});

test('the newest page survives a restart and an older one never replaces it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-proxy-cache-'));
  try {
    const cache = await ProxyCache.open(dir);
    await Promise.all([cache.putPage(page(5)), cache.putPage(page(7)), cache.putPage(page(6))]);
    assert.equal((await cache.page('demo'))?.serial, 7);
    const hex = 'ab'.repeat(32);
    await cache.putFile(Buffer.from('verified bytes'), { name: 'sha256', hex });
    await cache.close();

    const reopened = await ProxyCache.open(dir);
    assert.equal((await reopened.page('demo'))?.serial, 7);
    assert.equal(await reopened.fileSize({ name: 'sha256', hex }), 'verified bytes'.length);
    assert.equal(await reopened.fileSize({ name: 'sha256', hex: 'cd'.repeat(32) }), null);
    await reopened.close();
    assert.deepEqual((await readdir(dir)).sort(), ['files', 'pages'], 'no spool files left behind');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('without a folder, everything goes when the proxy stops', async () => {
  const cache = await ProxyCache.open(null);
  await cache.putPage(page(1));
  assert.equal((await cache.page('demo'))?.serial, 1);
  await cache.close();
  await assert.rejects(readdir(cache.dir), /ENOENT/);
});
