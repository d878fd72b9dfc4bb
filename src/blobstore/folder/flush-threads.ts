/**
 * Flushes (fsync, fdatasync) on threads of their own. A flush waits for the
 * disk, often for milliseconds; in node's thread pool (four threads unless
 * UV_THREADPOOL_SIZE says otherwise) each one holds a thread that every other
 * file operation, inflate and DNS lookup of the process queues behind. An
 * upload makes four flushes and a dozen quick file operations, so under load
 * the quick ones spent most of their time waiting for flushes to end. Here
 * each flush thread runs one flush at a time, and the thread pool keeps to
 * the quick work.
 */
import { Worker } from 'node:worker_threads';

/** How many flushes can wait for the disk at once. */
const THREADS = 4;

/** A failed flush as the thread reports it: the fields of node's own system errors. */
export interface FlushError {
  readonly message: string;
  readonly code?: string | undefined;
  readonly errno?: number | undefined;
  readonly syscall?: string | undefined;
  readonly path?: string | undefined;
}

/** To a flush thread: request id, path, whether to flush only the data (fdatasync). */
export type FlushRequest = readonly [id: number, path: string, dataOnly: boolean];
/** From a flush thread: request id and the error, if the flush failed. */
export type FlushReply = readonly [id: number, error: FlushError | null];

interface Waiting {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

class FlushThread {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;
  #dead: Error | null = null;

  constructor() {
    this.#worker = new Worker(new URL('./flush-worker.js', import.meta.url));
    this.#worker.unref();
    this.#worker.on('message', ([id, error]: FlushReply) => {
      const waiting = this.#waiting.get(id);
      if (!waiting) return;
      this.#waiting.delete(id);
      if (this.#waiting.size === 0) this.#worker.unref();
      if (error) waiting.reject(Object.assign(new Error(error.message), error));
      else waiting.resolve();
    });
    const lost = (err: Error): void => {
      this.#dead ??= err;
      for (const waiting of this.#waiting.values()) waiting.reject(err);
      this.#waiting.clear();
    };
    this.#worker.on('error', lost);
    this.#worker.on('exit', (code) => lost(new Error(`a flush thread stopped (exit code ${code})`)));
  }

  /** Flushes waiting on this thread. */
  get load(): number {
    return this.#waiting.size;
  }

  get alive(): boolean {
    return this.#dead === null;
  }

  flush(path: string, dataOnly: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = this.#nextId++;
      this.#waiting.set(id, { resolve, reject });
      // Keep the process alive only while a flush is on its way.
      if (this.#waiting.size === 1) this.#worker.ref();
      const request: FlushRequest = [id, path, dataOnly];
      this.#worker.postMessage(request);
    });
  }
}

let threads: FlushThread[] = [];

/**
 * Open `path` read-only, flush it (only its data and size when `dataOnly`)
 * and close it, on the least busy flush thread. Errors carry the `code` of
 * the failed call, as node's own do.
 */
export function flushOnThread(path: string, dataOnly: boolean): Promise<void> {
  threads = threads.filter((t) => t.alive);
  let best: FlushThread | undefined;
  for (const t of threads) if (best === undefined || t.load < best.load) best = t;
  if (best === undefined || (best.load > 0 && threads.length < THREADS)) {
    best = new FlushThread();
    threads.push(best);
  }
  return best.flush(path, dataOnly);
}
