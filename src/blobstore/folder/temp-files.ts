/**
 * The folder store's temp files (`<root>/.tmp/`), named after the process
 * that writes them: `<pid>-<host>-<uuid>`. A write that a crash or a SIGKILL
 * cut short leaves its temp file behind; whoever opens the store later removes
 * the ones whose writer is no longer running on this host, and any temp file
 * older than a day (a name from elsewhere, or a pid used again), so they never
 * pile up. A live writer's temp files are never touched.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { errorCode } from './durable-dirs.js';

/** Temp files older than this go whoever wrote them. */
export const STALE_TEMP_AGE_MS = 24 * 60 * 60 * 1000;

/** A short tag of this host, so that a folder shared between machines keeps another host's temp files. */
const HOST = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
const NAME = /^(\d+)-([0-9a-f]{8})-/;

/** A fresh temp file name for process `pid` (this process by default). */
export function tempName(pid: number = process.pid): string {
  return `${pid}-${HOST}-${randomUUID()}`;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user's process.
    return errorCode(err) === 'EPERM';
  }
}

/** Whether the temp file `name` was written by a process of this host that is gone. */
function deadWriter(name: string): boolean {
  const m = NAME.exec(name);
  if (m === null || m[2] !== HOST) return false;
  const pid = Number(m[1]);
  return pid !== process.pid && !running(pid);
}

/** Removes the stale temp files of `dir` (see above); resolves to how many went. Never throws. */
export async function removeStaleTemp(dir: string, now: number = Date.now()): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      if (!deadWriter(name) && now - (await stat(file)).mtimeMs < STALE_TEMP_AGE_MS) continue;
      await rm(file, { force: true });
      removed++;
    } catch {
      // Renamed into place or removed meanwhile, or not ours to remove: leave it.
    }
  }
  return removed;
}
