/**
 * Sends bytes of an open file to an HTTP response without a stream in
 * between: positional reads into buffers taken from a pool, each written to
 * the socket and given back once the socket has taken it (its write callback),
 * so a busy edge reads and writes without allocating (or faulting in) a fresh
 * buffer per chunk. Reads never close the descriptor, which other downloads
 * may share (open-files.ts). The closest Node comes to sendfile.
 */
import { read } from 'node:fs';
import type { ServerResponse } from 'node:http';

/** Bytes per read and write: a 1 MB file goes in one of each. */
export const SEND_CHUNK = 1024 * 1024;
/** Buffers kept for reuse; more are allocated under load and dropped afterwards. */
const POOL_MAX = 32;

const pool: Buffer[] = [];

function take(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK);
}

function give(buf: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(buf);
}

function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** Resolves once the socket took the chunk, false when the response was closed first. */
function writeChunk(res: ServerResponse, chunk: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed) return resolve(false);
    // A closed connection cancels the write; its callback may then never come.
    const closed = (): void => resolve(false);
    res.once('close', closed);
    res.write(chunk, (err) => {
      res.off('close', closed);
      resolve(!err);
    });
  });
}

/**
 * Writes bytes `start`–`end` (inclusive) of `fd` to `res` and ends it; the
 * headers must have been written. Resolves when done or when the client went
 * away (no read is under way then, so the caller may let go of the file);
 * rejects on a read failure, after cutting the connection (its length was promised).
 */
export async function sendFileRange(res: ServerResponse, fd: number, start: number, end: number): Promise<void> {
  let pos = start;
  while (pos <= end) {
    const buf = take();
    let n: number;
    try {
      n = await readAt(fd, buf, Math.min(buf.length, end - pos + 1), pos);
    } catch (err) {
      give(buf);
      res.destroy();
      throw err;
    }
    if (n === 0) {
      give(buf);
      res.destroy();
      throw new Error(`the file ended at byte ${pos}, before byte ${end}`);
    }
    pos += n;
    const written = await writeChunk(res, n === buf.length ? buf : buf.subarray(0, n));
    // Taken by the socket (or never to be: the connection is gone); either way no longer in use.
    give(buf);
    if (!written) return;
  }
  res.end();
}
