/**
 * A write thread of the folder store's in-place writes (in-place-writes.ts):
 * for each batch it makes the folders listed, parents first, then writes each
 * file where it belongs (open, write, close: no temp file, no flush), and
 * answers with the batch id and the files that failed. Synchronous calls, one
 * batch at a time: a batch of hundreds of files costs one message each way.
 */
import { linkSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { toThreadError, type ThreadError } from '../../runtime/worker-channel.js';
import type { InPlaceBatch, InPlaceReply } from './in-place-writes.js';

const port = parentPort;
if (!port) throw new Error('in-place-worker.js runs as a worker thread of the folder blob store');

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/**
 * Makes `dir`; one that exists is fine, a missing parent is made too. The recursive form does
 * it in one call that throws for neither: a folder forgotten by the caller and made again (a
 * large build's shared folders) costs a syscall or two, not an exception.
 */
function makeDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    // Something else is there: the write into it reports what (ENOTDIR).
    if (code(err) !== 'EEXIST') throw err;
  }
}

/** Writes `bytes` as `file`, making its folder when it is missing. */
function writeFile(file: string, bytes: Uint8Array): void {
  try {
    writeFileSync(file, bytes);
  } catch (err) {
    // Its folder is made by a batch on another thread that has not run yet, or was removed since.
    if (code(err) !== 'ENOENT') throw err;
    makeDir(path.dirname(file));
    writeFileSync(file, bytes);
  }
}

/** Makes `to` another name of `from` (whose bytes are `bytes`); a copy where hard links fail. */
function linkFile(from: string, to: string, bytes: Uint8Array): void {
  for (let attempt = 1; ; attempt++) {
    try {
      linkSync(from, to);
      return;
    } catch (err) {
      const c = code(err);
      if (attempt < 3 && c === 'EEXIST') unlinkSync(to);
      else if (attempt < 3 && c === 'ENOENT') makeDir(path.dirname(to));
      else if (c === 'EPERM' || c === 'EXDEV' || c === 'EMLINK' || c === 'ENOTSUP' || c === 'EOPNOTSUPP') return writeFile(to, bytes);
      else throw err;
    }
  }
}

port.on('message', (batch: InPlaceBatch) => {
  const failed: [index: number, error: ThreadError][] = [];
  const data = new Uint8Array(batch.data);
  const dirErrors = new Map<string, ThreadError>();
  for (const dir of batch.dirs) {
    try {
      makeDir(dir);
    } catch (err) {
      dirErrors.set(dir, toThreadError(err));
    }
  }
  let start = 0;
  for (let i = 0; i < batch.files.length; i++) {
    const file = batch.files[i]!;
    const end = batch.ends[i]!;
    const bytes = data.subarray(start, end);
    start = end;
    try {
      writeFile(file, bytes);
      for (const to of batch.links[i] ?? []) linkFile(file, to, bytes);
    } catch (err) {
      failed.push([i, dirErrors.get(path.dirname(file)) ?? toThreadError(err)]);
    }
  }
  const reply: InPlaceReply = [batch.id, failed];
  port.postMessage(reply);
});
