/**
 * Reads of many small files at once, on a thread of their own: through node's
 * promise API (or a read stream) each file costs four or more calls on the
 * thread pool and as many trips through the event loop; here a batch of
 * hundreds costs one message each way, the bytes in one transferred buffer.
 * For the origin's sync bundles, which carry a few hundred small files each.
 */
import { WorkerChannel } from '../../runtime/worker-channel.js';

/** To the read thread: the files to read, and the largest one wanted. */
export interface ReadBatch {
  readonly id: number;
  readonly files: readonly string[];
  readonly maxBytes: number;
}

/** From the read thread: each file's size in `data` (one after another), -1 when it was not read. */
export type ReadReply = readonly [id: number, sizes: readonly number[], data: ArrayBuffer];

export class SmallReader {
  #thread: WorkerChannel<ReadReply> | null = null;

  /**
   * The bytes of each file (absolute paths), or null for one that is missing,
   * unreadable or bigger than `maxBytes`.
   */
  async read(files: readonly string[], maxBytes: number): Promise<(Buffer | null)[]> {
    if (files.length === 0) return [];
    if (this.#thread === null || !this.#thread.alive) {
      this.#thread = new WorkerChannel<ReadReply>(new URL('./read-worker.js', import.meta.url), 'the read thread', ([id]) => id);
    }
    const [, sizes, data] = await this.#thread.request((id): ReadBatch => ({ id, files, maxBytes }));
    let at = 0;
    return sizes.map((size) => {
      if (size < 0) return null;
      const bytes = Buffer.from(data, at, size);
      at += size;
      return bytes;
    });
  }

  async close(): Promise<void> {
    const thread = this.#thread;
    this.#thread = null;
    await thread?.terminate();
  }
}
