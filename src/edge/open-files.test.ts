import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync, readSync } from 'node:fs';
import { mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileRangeStream, OpenFiles } from './open-files.js';

function bytesOf(fd: number, size: number): string {
  const buf = Buffer.alloc(size);
  readSync(fd, buf, 0, size, 0);
  return buf.toString();
}

test('a kept descriptor is used while the path names the same file, never after', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-open-files-'));
  try {
    const file = join(dir, 'a.whl');
    await writeFile(file, 'first');
    const files = new OpenFiles(2);
    const one = (await files.acquire(file))!;
    const two = (await files.acquire(file))!;
    assert.equal(one.fd, two.fd, 'the same descriptor for the same file');
    one.release();
    two.release();
    // Replaced by a rename: the new bytes, while a reader of the old keeps them.
    const old = (await files.acquire(file))!;
    await writeFile(`${file}.new`, 'second!');
    await rename(`${file}.new`, file);
    const fresh = (await files.acquire(file))!;
    assert.notEqual(fresh.fd, old.fd);
    assert.equal(bytesOf(fresh.fd, fresh.stats.size), 'second!');
    assert.equal(bytesOf(old.fd, old.stats.size), 'first');
    old.release();
    fresh.release();
    await unlink(file);
    assert.equal(await files.acquire(file), null, 'a deleted file is gone at once');
    assert.equal(await files.acquire(join(dir, 'missing')), null);
    assert.equal(await files.acquire(dir), null, 'a folder is not a file');
    for (const n of ['x', 'y', 'z']) {
      await writeFile(join(dir, n), n);
      (await files.acquire(join(dir, n)))!.release();
    }
    assert.equal(files.size, 2, 'bounded');
    files.closeAll();
    assert.equal(files.size, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('streams share a descriptor: one cut off leaves it open for the others', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-open-files-'));
  try {
    const file = join(dir, 'big.whl');
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
    await writeFile(file, bytes);
    const files = new OpenFiles();
    const opened = (await files.acquire(file))!;
    const cut = new FileRangeStream(opened.fd, 0, bytes.length - 1, 16 * 1024);
    const whole = new FileRangeStream(opened.fd, 0, bytes.length - 1, 16 * 1024);
    const part = new FileRangeStream(opened.fd, 1000, 1999, 16 * 1024);
    await new Promise<void>((resolve) => cut.once('data', () => resolve()));
    cut.destroy();
    const collect = async (s: FileRangeStream): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      for await (const c of s) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    };
    assert.ok((await collect(whole)).equals(bytes));
    assert.ok((await collect(part)).equals(bytes.subarray(1000, 2000)));
    assert.equal(fstatSync(opened.fd).size, bytes.length, 'still open');
    const empty = new FileRangeStream(opened.fd, 0, -1, 1024);
    assert.equal((await collect(empty)).length, 0);
    opened.release();
    files.closeAll();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.throws(() => fstatSync(opened.fd), /EBADF/, 'closed once its last reader is done');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
