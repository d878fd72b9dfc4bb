import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { flushOnThread } from './flush-threads.js';

test('flushes files and folders, many at once, and reports a failure with its code', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'pyedge-flush-'));
  try {
    const files = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const file = path.join(dir, `f${i}`);
        await writeFile(file, `content ${i}`);
        return file;
      }),
    );
    await Promise.all([...files.map((f, i) => flushOnThread(f, i % 2 === 0)), flushOnThread(dir, false)]);
    await assert.rejects(flushOnThread(path.join(dir, 'missing'), true), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOENT');
      assert.equal((err as NodeJS.ErrnoException).syscall, 'open');
      return true;
    });
    // The threads still work after a failure.
    await flushOnThread(files[0]!, true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('idle flush threads do not keep the process alive', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'pyedge-flush-'));
  try {
    const file = path.join(dir, 'f');
    await writeFile(file, 'x');
    const moduleUrl = pathToFileURL(path.join(import.meta.dirname, 'flush-threads.js')).href;
    const script = path.join(dir, 'flush-once.mjs');
    await writeFile(
      script,
      `const { flushOnThread } = await import(${JSON.stringify(moduleUrl)});
      await Promise.all([1, 2, 3].map(() => flushOnThread(${JSON.stringify(file)}, true)));
      console.log('flushed');`,
    );
    const started = Date.now();
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [script], { timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    assert.equal(out.trim(), 'flushed');
    assert.ok(Date.now() - started < 20_000);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
