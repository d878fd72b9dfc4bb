/**
 * Who renders the root index. At PyPI's size a rendering is seconds of
 * JavaScript (reading 886k rows, building 85 MB of HTML and JSON): on the
 * origin's main thread it would stall every request while it runs, and its
 * garbage would grow the heap that every later request's collections walk. So
 * the origin renders in a worker thread with its own database connection and
 * its own heap (root-worker.ts); only a database that cannot be opened twice
 * (SQLite `:memory:`) renders on the calling thread.
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import type { Database } from '../db/database.js';
import { renderRootFiles, type RootRendering } from './root-render.js';

export interface RootRenderer {
  /** Render the root for at least `minSerial`. */
  render(minSerial: number): Promise<RootRendering>;
  /** Stop; renderings still running fail. */
  close(): Promise<void>;
}

/** What the worker thread is started with. */
export interface RootWorkerData {
  readonly dbUrl: string;
  readonly dir: string;
  readonly pageSize: number;
}

/** A message to the worker thread. */
export type RootWorkerRequest = { readonly type: 'render'; readonly id: number; readonly minSerial: number } | { readonly type: 'close' };

/** The worker thread's answer to one render request. */
export type RootWorkerReply =
  | { readonly id: number; readonly ok: true; readonly rendering: RootRendering }
  | { readonly id: number; readonly ok: false; readonly message: string };

/**
 * The worker's heap holds one page of rows and its strings at a time; these
 * limits keep its memory small and make a runaway rendering fail, not the origin.
 */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 96, maxYoungGenerationSizeMb: 16 };
/** How long close() lets the worker close its database before terminating it. */
const CLOSE_GRACE_MS = 2000;

/** Renders on the calling thread, with the caller's connection. */
export class InlineRootRenderer implements RootRenderer {
  private count = 0;

  constructor(
    private readonly db: Database,
    private readonly dir: string,
    private readonly pageSize: number,
  ) {}

  render(minSerial: number): Promise<RootRendering> {
    return renderRootFiles(this.db, this.dir, minSerial, this.pageSize, `${process.pid}-0-${++this.count}`);
  }

  async close(): Promise<void> {}
}

interface Pending {
  resolve(rendering: RootRendering): void;
  reject(err: Error): void;
}

/**
 * Renders in a worker thread, started on the first rendering and started again
 * after it fails. The thread does not keep the process alive while it is idle.
 */
export class WorkerRootRenderer implements RootRenderer {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly data: RootWorkerData) {}

  render(minSerial: number): Promise<RootRendering> {
    if (this.closed) return Promise.reject(new Error('the root renderer is closed'));
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    return new Promise<RootRendering>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      const request: RootWorkerRequest = { type: 'render', id, minSerial };
      worker.postMessage(request);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (!worker) return;
    const exited = once(worker, 'exit').catch(() => undefined);
    const request: RootWorkerRequest = { type: 'close' };
    worker.postMessage(request);
    const timer = setTimeout(() => void worker.terminate(), CLOSE_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./root-worker.js', import.meta.url), { workerData: this.data, resourceLimits: WORKER_LIMITS });
    worker.on('message', (reply: RootWorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.ok) p.resolve(reply.rendering);
      else p.reject(new Error(reply.message));
    });
    worker.on('error', (err) => this.lost(worker, err));
    worker.on('exit', (code) => this.lost(worker, new Error(`the root worker thread exited (code ${code})`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  /** The thread died: fail what it was doing; the next rendering starts a new one. */
  private lost(worker: Worker, err: Error): void {
    if (this.worker !== worker) return;
    this.worker = null;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/** A worker thread, unless the database lives only in this connection. */
export function createRootRenderer(db: Database, dbUrl: string | undefined, dir: string, pageSize: number): RootRenderer {
  const memory = dbUrl === undefined || /^(sqlite:(\/\/)?)?(:memory:)?$/i.test(dbUrl.trim());
  return memory ? new InlineRootRenderer(db, dir, pageSize) : new WorkerRootRenderer({ dbUrl, dir, pageSize });
}
