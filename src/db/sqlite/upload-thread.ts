/**
 * The main thread's side of the SQLite upload thread. A commit with
 * synchronous=FULL waits for its fsync, and now and then for a WAL checkpoint;
 * better-sqlite3 waits on the calling thread, so on the main thread every
 * request of the process waited with it. On a thread of its own, with its own
 * connection, the commit overlaps with everything else, and the uploads that
 * arrive meanwhile make up the next group. Readers on the main connection see
 * a group once it is committed (WAL), that is, once it is on disk.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { AddFileInput, AddFileResult } from '../database.js';
import type { Settled } from './group-commit.js';
import { decodeError, decodeSettled, type Reply, type Request } from './upload-wire.js';

interface Waiting {
  readonly resolve: (results: Settled<AddFileResult>[]) => void;
  readonly reject: (err: unknown) => void;
}

export class UploadThread {
  readonly #path: string;
  readonly #waiting = new Map<number, Waiting>();
  #worker: Worker | null = null;
  #nextId = 1;

  /** The thread starts with the first commit; the schema must be migrated by then. */
  constructor(path: string) {
    this.#path = path;
  }

  /** Apply and commit one group on the upload thread. */
  commit(inputs: readonly AddFileInput[]): Promise<Settled<AddFileResult>[]> {
    const worker = this.#started();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      // Keep the process alive only while a group is on its way.
      if (this.#waiting.size === 1) worker.ref();
      const request: Request = { type: 'commit', id, inputs };
      worker.postMessage(request);
    });
  }

  /** Stop the thread (closing its connection) once it has answered every group sent. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#worker = null;
    const exited = once(worker, 'exit');
    const request: Request = { type: 'close' };
    worker.postMessage(request);
    worker.ref();
    await exited;
  }

  #started(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL('./upload-worker.js', import.meta.url), { workerData: { path: this.#path } });
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiting = this.#waiting.get(reply.id);
      if (!waiting) return;
      this.#waiting.delete(reply.id);
      if (this.#waiting.size === 0) worker.unref();
      if (reply.type === 'committed') waiting.resolve(reply.results.map(decodeSettled));
      else waiting.reject(decodeError(reply.error));
    });
    worker.on('error', (err) => this.#lost(worker, err));
    worker.on('exit', (code) => this.#lost(worker, new Error(`the SQLite upload thread stopped (exit code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  /** The thread died: fail what it held; the next commit starts a new one. */
  #lost(worker: Worker, err: unknown): void {
    if (this.#worker === worker) this.#worker = null;
    for (const waiting of this.#waiting.values()) waiting.reject(err);
    this.#waiting.clear();
  }
}
