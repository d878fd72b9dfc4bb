import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { PyedgeError } from '../../core/errors.js';
import { runBlobStoreContract } from '../blob-store.contract.js';
import { FolderBlobStore } from './folder-blob-store.js';

async function tempRoot(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'pyedge-folder-store-'));
}

runBlobStoreContract('folder', async () => {
  const root = await tempRoot();
  return { store: new FolderBlobStore(path.join(root, 'blobs')), cleanup: () => rm(root, { recursive: true, force: true }) };
});

describe('FolderBlobStore', () => {
  it('keeps key a/b/c in the file <root>/a/b/c and leaves no temp files behind', async () => {
    const root = await tempRoot();
    try {
      const store = new FolderBlobStore(root);
      await store.put('a/b/c', Buffer.from('buffer'));
      await store.put('a/b/d', Readable.from([Buffer.from('stream')]));
      const local = path.join(root, 'spool');
      await writeFile(local, 'file');
      await store.putFile('e/f', local);
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`many/${i % 3}/${i}`, Buffer.alloc(100, i))));
      await assert.rejects(store.put('x', Readable.from((async function* () { yield Buffer.from('partial'); throw new Error('client went away'); })())));

      assert.equal((await stat(path.join(root, 'a/b/c'))).size, 6);
      assert.equal((await stat(path.join(root, 'a/b/d'))).size, 6);
      assert.equal((await stat(path.join(root, 'e/f'))).size, 4);
      await assert.rejects(stat(local), { code: 'ENOENT' }, 'putFile took the local file');
      await assert.rejects(stat(path.join(root, 'x')), { code: 'ENOENT' }, 'a failed put leaves no blob');
      assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
      await writeFile(path.join(root, '.tmp', 'stray'), 'an upload in progress');
      const keys = [];
      for await (const entry of store.list('')) keys.push(entry.key);
      assert.ok(!keys.some((k) => k.startsWith('.tmp')), 'list skips .tmp');
      assert.equal(keys.length, 3 + 20);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('lists what a folder holds right under it, links as what they point to, without the reserved .tmp', async () => {
    const root = await tempRoot();
    try {
      const store = new FolderBlobStore(root);
      await store.put('simple/a/index.html', Buffer.from('a'));
      await store.put('simple/a/deeper/x', Buffer.from('x'));
      await store.put('simple/b/index.html', Buffer.from('b'));
      await store.put('top', Buffer.from('t'));
      await mkdir(path.join(root, 'elsewhere'));
      await symlink(path.join(root, 'elsewhere'), path.join(root, 'simple', 'linked'));
      await symlink(path.join(root, 'top'), path.join(root, 'simple', 'file-link'));
      await symlink(path.join(root, 'nowhere'), path.join(root, 'simple', 'dangling'));
      const sorted = (l: { blobs: string[]; folders: string[] }): { blobs: string[]; folders: string[] } => ({ blobs: l.blobs.sort(), folders: l.folders.sort() });
      assert.deepEqual(sorted(await store.listFolder('simple/')), { blobs: ['file-link'], folders: ['a', 'b', 'linked'] });
      assert.deepEqual(sorted(await store.listFolder('simple/a/')), { blobs: ['index.html'], folders: ['deeper'] });
      assert.deepEqual(sorted(await store.listFolder('')), { blobs: ['top'], folders: ['elsewhere', 'simple'] });
      assert.deepEqual(await store.listFolder('missing/'), { blobs: [], folders: [] });
      assert.deepEqual(await store.listFolder('top/'), { blobs: [], folders: [] });
      await assert.rejects(store.listFolder('simple'), (err: unknown) => err instanceof PyedgeError && /must end with \//.test(err.message));
      await assert.rejects(store.listFolder('../'), PyedgeError);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('creates its root folder and refuses the reserved .tmp keys', async () => {
    const root = await tempRoot();
    try {
      const store = new FolderBlobStore(path.join(root, 'new', 'store'));
      assert.ok((await stat(path.join(root, 'new', 'store', '.tmp'))).isDirectory());
      for (const key of ['.tmp', '.tmp/x']) {
        await assert.rejects(store.put(key, Buffer.from('x')), (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_BAD_REQUEST');
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('removes folders a delete left empty and can write into them again', async () => {
    const root = await tempRoot();
    try {
      const store = new FolderBlobStore(root);
      await store.put('packages/aa/bb/f1/x.whl', Buffer.from('1'));
      await store.put('packages/aa/cc/f2/y.whl', Buffer.from('2'));
      await store.delete('packages/aa/bb/f1/x.whl');
      await assert.rejects(stat(path.join(root, 'packages/aa/bb')), { code: 'ENOENT' });
      assert.ok((await stat(path.join(root, 'packages/aa/cc/f2'))).isDirectory());
      // The store remembered packages/aa/bb/f1 as existing; the put must notice it is gone.
      await store.put('packages/aa/bb/f1/x.whl', Buffer.from('again'));
      assert.equal((await stat(path.join(root, 'packages/aa/bb/f1/x.whl'))).size, 5);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('explains a key that collides with a folder', async () => {
    const root = await tempRoot();
    try {
      const store = new FolderBlobStore(root);
      await store.put('a/b', Buffer.from('x'));
      await assert.rejects(store.put('a', Buffer.from('y')), (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_STORAGE' && /cannot both be stored/.test(err.message));
      await assert.rejects(store.put('a/b/c', Buffer.from('z')), (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_STORAGE');
      assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
