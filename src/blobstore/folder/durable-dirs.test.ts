import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DurableDirs } from './durable-dirs.js';

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'pyedge-durable-dirs-'));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

test('prepare creates missing folders at once and settles durable after their parents are flushed', () =>
  withRoot(async (root) => {
    const dirs = new DurableDirs(root);
    const deep = path.join(root, 'packages', 'ab', 'cd', 'rest');
    const prepared = await dirs.prepare(deep);
    assert.ok((await stat(deep)).isDirectory(), 'the folder exists once prepare resolves');
    await prepared.durable;
    // Many at once, overlapping: each folder is made once and all settle.
    const many = Array.from({ length: 30 }, (_, i) => path.join(root, 'packages', `x${i % 3}`, `y${i % 5}`, `z${i}`));
    const all = await Promise.all([...many, ...many].map((d) => dirs.prepare(d)));
    await Promise.all(all.map((p) => p.durable));
    for (const d of many) assert.ok((await stat(d)).isDirectory(), d);
    // Known folders cost nothing more: the same promise, already settled.
    assert.equal((await dirs.prepare(deep)).durable, (await dirs.prepare(root)).durable);
  }));

test('a folder that cannot be made fails prepare, and a later prepare tries again', () =>
  withRoot(async (root) => {
    const dirs = new DurableDirs(root);
    await writeFile(path.join(root, 'blocker'), 'a file where a folder should go');
    await assert.rejects(dirs.prepare(path.join(root, 'blocker', 'inside')), { code: 'ENOTDIR' });
    await assert.rejects(dirs.prepare(path.join(path.dirname(root), 'elsewhere')), /outside/);
    await rm(path.join(root, 'blocker'));
    await mkdir(path.join(root, 'blocker'));
    await dirs.ensure(path.join(root, 'blocker', 'inside'));
    assert.ok((await stat(path.join(root, 'blocker', 'inside'))).isDirectory());
  }));

test('after forgetWithAncestors a folder removed behind its back is made again', () =>
  withRoot(async (root) => {
    const dirs = new DurableDirs(root);
    const dir = path.join(root, 'a', 'b');
    await dirs.ensure(dir);
    await rm(path.join(root, 'a'), { recursive: true });
    // Still believed to exist: prepare does nothing.
    await dirs.ensure(dir);
    await assert.rejects(stat(dir), { code: 'ENOENT' });
    dirs.forgetWithAncestors(dir);
    await dirs.ensure(dir);
    assert.ok((await stat(dir)).isDirectory());
  }));
