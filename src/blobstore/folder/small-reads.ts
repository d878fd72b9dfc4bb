/**
 * Reads of many small files at once, on a thread of their own: through node's
 * promise API (or a read stream) each file costs four or more calls on the
 * thread pool and as many trips through the event loop; here a batch of
 * hundreds costs one message each way, the bytes in one transferred buffer.
 * For the origin's sync bundles, which carry a few hundred small files each.
 */
import { Worker } from 'node:worker_threads';

/** To the read thread: the files to read, and the largest one wanted. */
export interface ReadBatch {
  readonly id: number;
  readonly files: readonly string[];
  readonly maxBytes: number;
}

/** From the read thread: each file's size in `data` (one after another), -1 when it was not read. */
export type ReadReply = readonly [id: number, sizes: readonly number[], data: ArrayBuffer];

interface Waiting {
  readonly resolve: (files: (Buffer | null)[]) => void;
  readonly reject: (err: Error) => void;
}

export class SmallReader {
  #worker: Worker | null = null;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;

  /**
   * The bytes of each file (absolute paths), or null for one that is missing,
   * unreadable or bigger than `maxBytes`.
   */
  read(files: readonly string[], maxBytes: number): Promise<(Buffer | null)[]> {
    if (files.length === 0) return Promise.resolve([]);
    const worker = this.#thread();
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      this.#waiting.set(id, { resolve, reject });
      if (this.#waiting.size === 1) worker.ref();
      const batch: ReadBatch = { id, files, maxBytes };
      worker.postMessage(batch);
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = null;
    await worker?.terminate();
  }

  #thread(): Worker {
    if (this.#worker !== null) return this.#worker;
    const worker = new Worker(new URL('./read-worker.js', import.meta.url));
    worker.unref();
    worker.on('message', ([id, sizes, data]: ReadReply) => {
      const waiting = this.#waiting.get(id);
      if (!waiting) return;
      this.#waiting.delete(id);
      if (this.#waiting.size === 0) worker.unref();
      let at = 0;
      waiting.resolve(
        sizes.map((size) => {
          if (size < 0) return null;
          const bytes = Buffer.from(data, at, size);
          at += size;
          return bytes;
        }),
      );
    });
    const lost = (err: Error): void => {
      if (this.#worker === worker) this.#worker = null;
      for (const waiting of this.#waiting.values()) waiting.reject(err);
      this.#waiting.clear();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the read thread stopped (exit code ${code})`)));
    this.#worker = worker;
    return worker;
  }
}
