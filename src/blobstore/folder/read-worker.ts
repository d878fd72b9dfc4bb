/**
 * The read thread of the folder store's batched reads (small-reads.ts): for
 * each batch it reads every file no bigger than the batch's limit with
 * synchronous calls (open, fstat, read, close), and answers with all their
 * bytes in one transferred buffer: -1 for a file that is missing, too big or
 * unreadable (the caller then does without it).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { ReadBatch, ReadReply } from './small-reads.js';

const port = parentPort;
if (!port) throw new Error('read-worker.js runs as a worker thread of the folder blob store');

function readSmall(file: string, maxBytes: number): Buffer | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes) return null;
    const bytes = Buffer.allocUnsafeSlow(st.size);
    let at = 0;
    while (at < bytes.length) {
      const n = readSync(fd, bytes, at, bytes.length - at, at);
      if (n === 0) return null;
      at += n;
    }
    return bytes;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

port.on('message', ({ id, files, maxBytes }: ReadBatch) => {
  const found: (Buffer | null)[] = files.map((f) => readSmall(f, maxBytes));
  let total = 0;
  for (const b of found) total += b?.length ?? 0;
  const data = new Uint8Array(total);
  const sizes: number[] = [];
  let at = 0;
  for (const b of found) {
    if (b === null) {
      sizes.push(-1);
      continue;
    }
    data.set(b, at);
    at += b.length;
    sizes.push(b.length);
  }
  const reply: ReadReply = [id, sizes, data.buffer];
  port.postMessage(reply, [data.buffer]);
});
