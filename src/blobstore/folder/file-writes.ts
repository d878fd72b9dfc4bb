/** The file writes of the folder store: whole buffers, abortable streams, flushes. */
import type { FileHandle } from 'node:fs/promises';
import { addAbortSignal, type Readable } from 'node:stream';
import { PyedgeError } from '../../core/errors.js';
import { flushOnThread } from './flush-threads.js';

/** Flushes a file's data (and size: all a reader needs) to disk. */
export function syncFile(file: string): Promise<void> {
  return flushOnThread(file, true);
}

/**
 * Writes `body` to `fh`. An abort rejects at once, even when the body is
 * stuck and slow to honour its own destruction.
 */
export async function copyStream(body: Readable, fh: FileHandle, signal: AbortSignal | undefined): Promise<void> {
  const chunks = (body as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  let rejectAborted: (reason: unknown) => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    rejectAborted = reject;
  });
  const onAbort = (): void => rejectAborted(signal?.reason);
  if (signal) {
    addAbortSignal(signal, body);
    signal.addEventListener('abort', onAbort, { once: true });
  }
  try {
    for (;;) {
      const next = await (signal ? Promise.race([chunks.next(), aborted]) : chunks.next());
      if (next.done) return;
      await writeAll(fh, toBytes(next.value));
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Writes all of `bytes`, however many calls it takes. */
export async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.byteLength) {
    const { bytesWritten } = await fh.write(bytes, offset, bytes.byteLength - offset);
    offset += bytesWritten;
  }
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  throw new PyedgeError('PYEDGE_BAD_REQUEST', 'a blob body stream must yield bytes or strings');
}
