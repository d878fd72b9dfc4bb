import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FolderBlobStore } from './folder-blob-store.js';

test('getSmall reads many blobs in one batch: null for a missing one, one too big, or a folder', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'pyedge-small-'));
  const store = new FolderBlobStore(root);
  try {
    const blobs = Array.from({ length: 300 }, (_, i) => ({ key: `packages/${i % 7}/f${i}`, bytes: Buffer.from(`blob ${i} `.repeat(i % 40)) }));
    await Promise.all(blobs.map((b) => store.put(b.key, b.bytes)));
    await store.put('big', Buffer.alloc(5000, 1));
    await mkdir(path.join(root, 'a-folder'));
    const keys = [...blobs.map((b) => b.key), 'missing/blob', 'big', 'a-folder'];
    const got = await store.getSmall(keys, 4096);
    assert.equal(got.length, keys.length);
    blobs.forEach((b, i) => assert.deepEqual(got[i], b.bytes, b.key));
    assert.deepEqual(got.slice(-3), [null, null, null]);
    assert.deepEqual(await store.getSmall(['big'], 5000), [Buffer.alloc(5000, 1)]);
    assert.deepEqual(await store.getSmall([], 10), []);
    await assert.rejects(store.getSmall(['../outside'], 10), /invalid blob key/);
  } finally {
    await store.close();
    await rm(root, { recursive: true, force: true });
  }
});
