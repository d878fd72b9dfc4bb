import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FolderBlobStore } from './folder-blob-store.js';
import { InPlaceWriter } from './in-place-writes.js';

test('writes thousands of files in new folders, each with its own bytes', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'pyedge-inplace-'));
  const writer = new InPlaceWriter(root);
  try {
    const files = Array.from({ length: 3000 }, (_, i) => ({
      file: path.join(root, 'simple', `p${i % 700}`, `f${i}`),
      bytes: Buffer.from(`content of ${i} `.repeat(1 + (i % 50))),
    }));
    // An empty file and one bigger than a batch's byte budget go through too.
    files.push({ file: path.join(root, 'empty'), bytes: Buffer.alloc(0) });
    files.push({ file: path.join(root, 'big', 'a', 'b'), bytes: Buffer.alloc(9 * 1024 * 1024, 7) });
    await Promise.all(files.map((f) => writer.write(f.file, f.bytes)));
    for (const f of files) assert.deepEqual(await readFile(f.file), f.bytes, f.file);
    assert.equal((await readdir(path.join(root, 'simple'))).length, 700);
    await writer.drain();
  } finally {
    await writer.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('a file with other names: one file, hard-linked, in folders of their own; written again, both names follow', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'pyedge-inplace-'));
  const writer = new InPlaceWriter(root);
  try {
    const a = path.join(root, 'p', 'index.html');
    const b = path.join(root, 'p', 'index.v1_html');
    const c = path.join(root, 'elsewhere', 'deep', 'copy');
    await writer.write(a, Buffer.from('<html>one</html>'), [b, c]);
    for (const f of [a, b, c]) assert.equal(await readFile(f, 'utf8'), '<html>one</html>');
    const ino = (await stat(a)).ino;
    assert.equal((await stat(b)).ino, ino);
    assert.equal((await stat(c)).ino, ino);
    assert.equal((await stat(a)).nlink, 3);
    // Over names that exist, one of them a file of its own.
    await rm(c);
    await writeFile(c, 'stale');
    await writer.write(a, Buffer.from('<html>two</html>'), [b, c]);
    for (const f of [a, b, c]) assert.equal(await readFile(f, 'utf8'), '<html>two</html>');
    assert.equal((await stat(c)).ino, (await stat(a)).ino);
  } finally {
    await writer.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('a file that cannot be written fails alone, with its code; the others land', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'pyedge-inplace-'));
  const writer = new InPlaceWriter(root);
  try {
    // "blocker" is a file, so nothing can go under it.
    await writeFile(path.join(root, 'blocker'), 'x');
    const results = await Promise.allSettled([
      writer.write(path.join(root, 'ok', 'one'), Buffer.from('1')),
      writer.write(path.join(root, 'blocker', 'inside'), Buffer.from('2')),
      writer.write(path.join(root, 'ok', 'two'), Buffer.from('3')),
    ]);
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(results[2]!.status, 'fulfilled');
    assert.equal(results[1]!.status, 'rejected');
    const err = (results[1] as PromiseRejectedResult).reason as NodeJS.ErrnoException;
    assert.ok(err instanceof Error);
    assert.equal(err.code, 'ENOTDIR');
    assert.equal(await readFile(path.join(root, 'ok', 'two'), 'utf8'), '3');
    // A folder removed behind the writer's back is made again.
    await rm(path.join(root, 'ok'), { recursive: true });
    await writer.write(path.join(root, 'ok', 'three'), Buffer.from('4'));
    assert.equal(await readFile(path.join(root, 'ok', 'three'), 'utf8'), '4');
  } finally {
    await writer.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('the folder store writes in place over an old blob, and sync() waits for the writes', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'pyedge-inplace-'));
  const store = new FolderBlobStore(root);
  try {
    await store.put('a/b/c', Buffer.from('old and longer'));
    const writes = [store.putInPlace('a/b/c', Buffer.from('new')), store.putInPlace('x/y', Buffer.from('y'))];
    await store.sync();
    await Promise.all(writes);
    assert.equal(await readFile(path.join(root, 'a', 'b', 'c'), 'utf8'), 'new');
    assert.equal((await store.head('x/y')).size, 1);
    await assert.rejects(store.putInPlace('.tmp/x', Buffer.from('no')), /reserved/);
    await assert.rejects(store.putInPlace('a/b/c/d', Buffer.from('no')), (err: Error) => /cannot both be stored/.test(err.message));
    // No temp file is left behind.
    assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
  } finally {
    await store.close();
    await rm(root, { recursive: true, force: true });
  }
});
