/**
 * Requests to a worker thread and their answers, matched by id: the part every
 * thread of ours shares (the folder store's flush, write and read threads, the
 * SQLite upload thread). The thread keeps the process alive only while a
 * request is on its way; when it dies, every request waiting on it fails and
 * the channel says it is no longer alive, so its owner starts another.
 */
import { once } from 'node:events';
import { Worker, type Transferable, type WorkerOptions } from 'node:worker_threads';

/** A failed system call as a thread reports it: the fields of node's own system errors. */
export interface ThreadError {
  readonly message: string;
  readonly code?: string | undefined;
  readonly errno?: number | undefined;
  readonly syscall?: string | undefined;
  readonly path?: string | undefined;
}

/** In the thread: what to send back for a failed call. */
export function toThreadError(err: unknown): ThreadError {
  const e = err as NodeJS.ErrnoException;
  return { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall, path: e.path };
}

/** On the calling side: an Error carrying the thread's `code`, `errno`, `syscall` and `path`, as node's own do. */
export function fromThreadError(error: ThreadError): Error {
  return Object.assign(new Error(error.message), error);
}

interface Waiting<Reply> {
  readonly resolve: (reply: Reply) => void;
  readonly reject: (err: Error) => void;
}

export class WorkerChannel<Reply> {
  readonly #worker: Worker;
  readonly #what: string;
  readonly #waiting = new Map<number, Waiting<Reply>>();
  #nextId = 1;
  #dead: Error | null = null;

  /** `what` names the thread in errors ("a flush thread"); `idOf` finds the request id in a reply. */
  constructor(script: URL, what: string, idOf: (reply: Reply) => number, options?: WorkerOptions) {
    this.#what = what;
    this.#worker = new Worker(script, options);
    this.#worker.unref();
    this.#worker.on('message', (reply: Reply) => {
      const id = idOf(reply);
      const waiting = this.#waiting.get(id);
      if (!waiting) return;
      this.#waiting.delete(id);
      if (this.#waiting.size === 0) this.#worker.unref();
      waiting.resolve(reply);
    });
    const lost = (err: Error): void => {
      this.#dead ??= err;
      for (const waiting of this.#waiting.values()) waiting.reject(err);
      this.#waiting.clear();
    };
    this.#worker.on('error', lost);
    this.#worker.on('exit', (code) => lost(new Error(`${what} stopped (exit code ${code})`)));
  }

  /** Requests waiting for their answer. */
  get load(): number {
    return this.#waiting.size;
  }

  get alive(): boolean {
    return this.#dead === null;
  }

  /** Sends the message `make` builds for a new request id; resolves to the answer with that id. */
  request(make: (id: number) => unknown, transfer?: readonly Transferable[]): Promise<Reply> {
    if (this.#dead !== null) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      if (this.#waiting.size === 1) this.#worker.ref();
      this.#worker.postMessage(make(id), transfer);
    });
  }

  /**
   * Sends `message` (which makes the thread end once it has answered everything) and waits for it
   * to exit; after `graceMs`, stops it.
   */
  async end(message: unknown, graceMs = Infinity): Promise<void> {
    if (this.#dead !== null) return;
    const exited = once(this.#worker, 'exit');
    this.#worker.postMessage(message);
    this.#worker.ref();
    const timer = Number.isFinite(graceMs) ? setTimeout(() => void this.#worker.terminate(), graceMs) : null;
    await exited;
    if (timer !== null) clearTimeout(timer);
  }

  /** Stops the thread at once; requests still waiting fail. */
  async terminate(): Promise<void> {
    this.#dead ??= new Error(`${this.#what} was stopped`);
    await this.#worker.terminate();
  }
}

/**
 * The least busy live channel of `pool`, or a new one (added to `pool`) while every one is busy
 * and there are fewer than `max`. Dead channels are dropped from `pool`.
 */
export function leastBusy<C extends { readonly load: number; readonly alive: boolean }>(pool: C[], max: number, create: () => C): C {
  for (let i = pool.length - 1; i >= 0; i--) if (!pool[i]!.alive) pool.splice(i, 1);
  let best: C | undefined;
  for (const c of pool) if (best === undefined || c.load < best.load) best = c;
  if (best === undefined || (best.load > 0 && pool.length < max)) {
    best = create();
    pool.push(best);
  }
  return best;
}
