/**
 * The main thread's side of the SQLite upload thread. A commit with
 * synchronous=FULL waits for its fsync, and now and then for a WAL checkpoint;
 * better-sqlite3 waits on the calling thread, so on the main thread every
 * request of the process waited with it. On a thread of its own, with its own
 * connection, the commit overlaps with everything else, and the uploads that
 * arrive meanwhile make up the next group. Readers on the main connection see
 * a group once it is committed (WAL), that is, once it is on disk.
 */
import { WorkerChannel } from '../../runtime/worker-channel.js';
import type { AddFileInput, AddFileResult } from '../database.js';
import type { Settled } from './group-commit.js';
import { decodeError, decodeSettled, type Reply, type Request } from './upload-wire.js';

export class UploadThread {
  readonly #path: string;
  #thread: WorkerChannel<Reply> | null = null;

  /** The thread starts with the first commit; the schema must be migrated by then. */
  constructor(path: string) {
    this.#path = path;
  }

  /** Apply and commit one group on the upload thread. If the thread died, the next commit starts a new one. */
  async commit(inputs: readonly AddFileInput[]): Promise<Settled<AddFileResult>[]> {
    if (this.#thread === null || !this.#thread.alive) {
      this.#thread = new WorkerChannel<Reply>(new URL('./upload-worker.js', import.meta.url), 'the SQLite upload thread', (reply) => reply.id, {
        workerData: { path: this.#path },
      });
    }
    const reply = await this.#thread.request((id): Request => ({ type: 'commit', id, inputs }));
    if (reply.type === 'committed') return reply.results.map(decodeSettled);
    throw decodeError(reply.error);
  }

  /** Stop the thread (closing its connection) once it has answered every group sent. */
  async close(): Promise<void> {
    const thread = this.#thread;
    this.#thread = null;
    const request: Request = { type: 'close' };
    await thread?.end(request);
  }
}
