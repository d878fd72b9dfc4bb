/**
 * Writes of many small files straight into place, for a bulk load into a
 * folder nobody reads yet (the first build of a static tree): no temp file, no
 * rename, no flush; sync() makes them durable at the end. A file the process
 * was writing when it died may be left short, so whoever relies on these
 * writes must check sizes or write everything again after a crash.
 *
 * Through node's promise API each file costs five calls on the thread pool
 * (open, write, close, mkdir, rename) and as many round trips through the
 * event loop. Here the files wait in a queue; a few write threads take them a
 * batch at a time (one message each way for hundreds of files, the bytes in
 * one transferred buffer) and make them with synchronous calls: open, write,
 * close, plus one mkdir per new folder. While every thread is busy the queue
 * grows, so batches grow with the load.
 */
import path from 'node:path';
import { WorkerChannel, fromThreadError, leastBusy, type ThreadError } from '../../runtime/worker-channel.js';

/** Write threads. */
const THREADS = 2;
/** Batches sent to one thread before it answers the first (so it never waits for the next). */
const AHEAD = 2;
/** Most files and bytes in one batch. */
const BATCH_FILES = 1024;
const BATCH_BYTES = 8 * 1024 * 1024;
/** Folders known to exist, at most; past it they are forgotten (a miss costs one mkdir that finds it there). */
const MAX_KNOWN = 50_000;

/**
 * To a write thread: folders to make (parents first), then files whose bytes end at `ends[i]` in
 * `data`, each followed by the other names it gets (`links[i]`, hard links; absent: none).
 */
export interface InPlaceBatch {
  readonly id: number;
  readonly dirs: readonly string[];
  readonly files: readonly string[];
  readonly ends: readonly number[];
  readonly links: readonly (readonly string[] | undefined)[];
  readonly data: ArrayBuffer;
}

/** From a write thread: the batch id and the index and error of each file that failed. */
export type InPlaceReply = readonly [id: number, failed: readonly (readonly [index: number, error: ThreadError])[]];

interface Pending {
  readonly file: string;
  readonly bytes: Uint8Array;
  readonly links: readonly string[] | undefined;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

type WriteThread = WorkerChannel<InPlaceReply>;

function writeThread(): WriteThread {
  return new WorkerChannel<InPlaceReply>(new URL('./in-place-worker.js', import.meta.url), 'a write thread', ([id]) => id);
}

/** Sends `items` (and the folders to make first) to `thread`; resolves with the items that failed, each rejected. */
async function send(thread: WriteThread, dirs: string[], items: readonly Pending[]): Promise<readonly Pending[]> {
  let total = 0;
  for (const item of items) total += item.bytes.byteLength;
  // A fresh buffer (never a slice of node's shared pool), handed over without a copy.
  const data = new Uint8Array(total);
  const ends: number[] = [];
  let at = 0;
  for (const item of items) {
    data.set(item.bytes, at);
    at += item.bytes.byteLength;
    ends.push(at);
  }
  let failed: InPlaceReply[1];
  try {
    [, failed] = await thread.request(
      (id): InPlaceBatch => ({ id, dirs, files: items.map((i) => i.file), ends, links: items.map((i) => i.links), data: data.buffer }),
      [data.buffer],
    );
  } catch (err) {
    // The thread died: every file of the batch is lost.
    for (const item of items) item.reject(err as Error);
    return items;
  }
  const errors = new Map(failed);
  const lost: Pending[] = [];
  items.forEach((item, i) => {
    const error = errors.get(i);
    if (error === undefined) {
      item.resolve();
    } else {
      lost.push(item);
      item.reject(fromThreadError(error));
    }
  });
  return lost;
}

/** In-place writes under one root folder (see above). */
export class InPlaceWriter {
  readonly #root: string;
  readonly #known = new Set<string>();
  #pending: Pending[] = [];
  #threads: WriteThread[] = [];
  /** Items sent to the threads and not answered yet. */
  #inFlight = 0;
  #scheduled = false;
  #idle: (() => void)[] = [];

  constructor(root: string) {
    this.#root = root;
    this.#known.add(root);
  }

  /**
   * Writes `bytes` as `file` (an absolute path under the root), making its folders; then, when
   * given, makes each of `links` another name of it (a hard link, one call instead of three and
   * no second copy on disk; a filesystem without them gets a copy).
   */
  write(file: string, bytes: Uint8Array, links?: readonly string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ file, bytes, links: links !== undefined && links.length > 0 ? links : undefined, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // Whatever else is queued in this turn of the event loop goes in the same batch.
        setImmediate(() => {
          this.#scheduled = false;
          this.#dispatch();
        });
      }
    });
  }

  /** Resolves once every write asked for so far has ended. */
  drain(): Promise<void> {
    if (this.#busy === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Stops the threads once the writes under way have ended. */
  async close(): Promise<void> {
    await this.drain();
    const threads = this.#threads;
    this.#threads = [];
    await Promise.all(threads.map((t) => t.terminate()));
  }

  get #busy(): number {
    return this.#pending.length + this.#inFlight;
  }

  #dispatch(): void {
    while (this.#pending.length > 0) {
      const best = leastBusy(this.#threads, THREADS, writeThread);
      if (best.load >= AHEAD) break;
      const items: Pending[] = [];
      let bytes = 0;
      let taken = 0;
      while (taken < this.#pending.length && items.length < BATCH_FILES && (items.length === 0 || bytes + this.#pending[taken]!.bytes.byteLength <= BATCH_BYTES)) {
        const item = this.#pending[taken++]!;
        items.push(item);
        bytes += item.bytes.byteLength;
      }
      this.#pending = this.#pending.slice(taken);
      this.#inFlight += items.length;
      void send(best, this.#foldersFor(items), items).then((failed) => {
        this.#inFlight -= items.length;
        this.#answered(failed);
      });
    }
  }

  /** The folders of `items` not known to exist, parents first; noted as existing from now on. */
  #foldersFor(items: readonly Pending[]): string[] {
    const dirs: string[] = [];
    for (const file of items.flatMap((i) => (i.links === undefined ? [i.file] : [i.file, ...i.links]))) {
      const missing: string[] = [];
      for (let dir = path.dirname(file); !this.#known.has(dir) && dir.startsWith(this.#root) && dir !== path.dirname(dir); dir = path.dirname(dir)) {
        missing.push(dir);
      }
      if (missing.length === 0) continue;
      if (this.#known.size + missing.length > MAX_KNOWN) {
        this.#known.clear();
        this.#known.add(this.#root);
      }
      for (let i = missing.length - 1; i >= 0; i--) {
        dirs.push(missing[i]!);
        this.#known.add(missing[i]!);
      }
    }
    return dirs;
  }

  #answered(failed: readonly Pending[]): void {
    // A folder that failed to appear (or went away) is made again next time.
    for (const file of failed.flatMap((i) => (i.links === undefined ? [i.file] : [i.file, ...i.links]))) {
      for (let dir = path.dirname(file); dir !== this.#root && dir.startsWith(this.#root); dir = path.dirname(dir)) this.#known.delete(dir);
    }
    if (this.#pending.length > 0) this.#dispatch();
    if (this.#busy === 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }
}
