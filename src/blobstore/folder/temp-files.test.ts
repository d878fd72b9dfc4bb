import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FolderBlobStore } from './folder-blob-store.js';
import { STALE_TEMP_AGE_MS, removeStaleTemp, tempName } from './temp-files.js';

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid!;
}

describe('temp files of the folder store', () => {
  it('removes those of dead writers and old ones, and keeps live writers\' and other hosts\'', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'pyedge-temp-files-'));
    try {
      const dead = tempName(await deadPid());
      const mine = tempName();
      const parent = tempName(process.ppid);
      const otherHost = `${await deadPid()}-00000000-${'a'.repeat(36)}`;
      const unknownNew = 'c0ffee00-0000-4000-8000-000000000000';
      const unknownOld = 'c0ffee00-0000-4000-8000-000000000001';
      for (const name of [dead, mine, parent, otherHost, unknownNew, unknownOld]) await writeFile(path.join(dir, name), 'partial');
      const old = new Date(Date.now() - STALE_TEMP_AGE_MS - 60_000);
      await utimes(path.join(dir, unknownOld), old, old);

      assert.equal(await removeStaleTemp(dir), 2);
      assert.deepEqual((await readdir(dir)).sort(), [mine, parent, otherHost, unknownNew].sort());
      assert.equal(await removeStaleTemp(dir, Date.now() + 2 * STALE_TEMP_AGE_MS), 4, 'a day later every one goes');
      assert.equal(await removeStaleTemp(path.join(dir, 'missing')), 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('are cleared when a store is opened after its writer was killed mid-write', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'pyedge-temp-files-'));
    try {
      await mkdir(path.join(root, '.tmp'));
      const left = tempName(await deadPid());
      await writeFile(path.join(root, '.tmp', left), 'half a wheel');
      const store = new FolderBlobStore(root);
      await store.put('a/b', Buffer.from('whole'));
      for (let i = 0; i < 100 && (await readdir(path.join(root, '.tmp'))).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
