/**
 * Who renders the root index. At PyPI's size a rendering is seconds of
 * JavaScript (reading 886k rows, building 85 MB of HTML and JSON): on the
 * origin's main thread it would stall every request while it runs, and its
 * garbage would grow the heap that every later request's collections walk. So
 * the origin renders in a worker thread with its own database connection and
 * its own heap (root-worker.ts); only a database that cannot be opened twice
 * (SQLite `:memory:`) renders on the calling thread.
 */
import { WorkerChannel } from '../runtime/worker-channel.js';
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

/**
 * Renders in a worker thread, started on the first rendering and started again
 * after it fails. The thread does not keep the process alive while it is idle.
 */
export class WorkerRootRenderer implements RootRenderer {
  private thread: WorkerChannel<RootWorkerReply> | null = null;
  private closed = false;

  constructor(private readonly data: RootWorkerData) {}

  async render(minSerial: number): Promise<RootRendering> {
    if (this.closed) throw new Error('the root renderer is closed');
    if (this.thread === null || !this.thread.alive) {
      this.thread = new WorkerChannel<RootWorkerReply>(new URL('./root-worker.js', import.meta.url), 'the root worker thread', (reply) => reply.id, {
        workerData: this.data,
        resourceLimits: WORKER_LIMITS,
      });
    }
    const reply = await this.thread.request((id): RootWorkerRequest => ({ type: 'render', id, minSerial }));
    if (reply.ok) return reply.rendering;
    throw new Error(reply.message);
  }

  async close(): Promise<void> {
    this.closed = true;
    const thread = this.thread;
    this.thread = null;
    const request: RootWorkerRequest = { type: 'close' };
    await thread?.end(request, CLOSE_GRACE_MS);
  }
}

/** A worker thread, unless the database lives only in this connection. */
export function createRootRenderer(db: Database, dbUrl: string | undefined, dir: string, pageSize: number): RootRenderer {
  const memory = dbUrl === undefined || /^(sqlite:(\/\/)?)?(:memory:)?$/i.test(dbUrl.trim());
  return memory ? new InlineRootRenderer(db, dir, pageSize) : new WorkerRootRenderer({ dbUrl, dir, pageSize });
}
