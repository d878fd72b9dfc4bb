/**
 * Driving the engine: once to the source's current serial (`pyedge publish`),
 * or for ever (`--watch`): a batch the moment the change feed moves, a full
 * reconcile every interval, a batch when the root's per-project serials are
 * due for their refresh (the engine's root interval), and backoff while the
 * source is down — the tree keeps its last consistent state meanwhile, since
 * a failed batch records nothing. While watching, the root index is written in
 * the background: the next change's pages need not wait for it.
 */
import type { Logger } from 'pino';
import type { BatchResult } from './batch-result.js';
import type { SyncEngine } from './engine.js';
import { Backoff, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from './retry.js';
import type { ChangePage, SyncSource } from './source.js';
import type { TreeProjects } from './static-tree.js';

export interface SyncOnceOptions {
  /** Batches tried before giving up. Default 5. */
  readonly attempts?: number;
  readonly backoff?: BackoffPolicy;
  readonly signal?: AbortSignal;
  readonly onBatch?: (result: BatchResult) => void;
}

/**
 * Brings the tree to the source's current serial, its root included (nobody
 * refreshes a lagging root after a one-shot run); resolves with the last
 * batch's result (ok or not).
 */
export async function syncOnce(engine: SyncEngine, options: SyncOnceOptions = {}): Promise<BatchResult> {
  const backoff = new Backoff(options.backoff ?? DEFAULT_BACKOFF);
  const attempts = options.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    const result = await engine.runBatch({ refreshRoot: true, ...(options.signal ? { signal: options.signal } : {}) });
    options.onBatch?.(result);
    if (result.ok || attempt >= attempts || options.signal?.aborted) return result;
    await sleep(backoff.next(), options.signal);
  }
}

export interface WatchOptions {
  /** Full reconcile (tree rescan + root comparison) every this many ms. */
  readonly intervalMs: number;
  /** Stops the loop: the batch under way finishes, and the root being written with what follows it; then watch resolves. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /** Each batch's result, and each root written in the background (a result with `rootWritten` and no projects). */
  readonly onBatch?: (result: BatchResult) => void;
  /** Waits between failed attempts while the source is down. */
  readonly backoff?: BackoffPolicy;
  /** Longest single wait on the change feed, in ms. Default 30 s. */
  readonly pollMs?: number;
  /** The source's newest serial, each time the change feed answers. */
  readonly onSourceSerial?: (serial: number) => void;
  /** The change feed failed (the source is down or unreachable); the loop retries. */
  readonly onSourceError?: (err: unknown) => void;
}

/** How often the change feed is read while a reconcile's scan of the tree runs, in ms. */
const SCAN_POLL_MS = 250;
/**
 * Waits before reading the source's root index again when it lagged (a busy origin serves its
 * previous rendering): older than the tree's root, or than the changes a batch applied.
 */
const SOURCE_ROOT_RETRY = { initialMs: 1000, maxMs: 60_000, factor: 2, jitter: 0 };

/** A scan of the tree's projects for a reconcile, running on its own. */
interface TreeScan {
  done: boolean;
  projects: TreeProjects | null;
  error: unknown;
}

function startScan(engine: SyncEngine): TreeScan {
  const scan: TreeScan = { done: false, projects: null, error: null };
  engine.scanProjects().then(
    (projects) => {
      scan.projects = projects;
      scan.done = true;
    },
    (err: unknown) => {
      scan.error = err;
      scan.done = true;
    },
  );
  return scan;
}

/** Follows the source's change feed until `signal` aborts. */
export async function watch(engine: SyncEngine, source: SyncSource, options: WatchOptions): Promise<void> {
  const { signal, logger } = options;
  const backoff = new Backoff(options.backoff ?? DEFAULT_BACKOFF);
  const pollMs = options.pollMs ?? 30_000;
  let nextReconcile = 0;
  let retry = true;
  let cursor = Math.max(0, engine.appliedSerial);
  let down = false;
  // Whether the tree was read since the last reconcile (engine.open() has just read it).
  let scanned = true;
  // A reconcile's scan of the tree's projects, under way while batches go on (tens of seconds at PyPI's size).
  let scan: TreeScan | null = null;
  /** The reconcile can run: it is due, and the tree's projects were scanned for it (or open() has just read them). */
  const reconcileReady = (): boolean => Date.now() >= nextReconcile && (scanned || scan?.done === true);
  // While the source's root index lags, a batch without changes reads it again at `sourceRootAt`.
  const lag = new Backoff(SOURCE_ROOT_RETRY);
  let sourceRootAt: number | null = null;
  /** When a batch without changes is due for the root: the source's lagging root read again, or the root's refresh (never: neither). */
  const rootDue = (): number => sourceRootAt ?? engine.rootRefreshDue ?? Infinity;
  const rootInBackground = (result: BatchResult): void => options.onBatch?.(result);

  while (!signal.aborted) {
    const now = Date.now();
    if (now >= nextReconcile && !scanned && scan === null) scan = startScan(engine);
    let page: ChangePage = { changes: [], next: cursor, lastSerial: cursor };
    if (!retry && !reconcileReady() && now < rootDue()) {
      try {
        // While the scan runs, batches go on; the feed is read every SCAN_POLL_MS to see it end.
        const wait = Math.min(pollMs, scan !== null ? SCAN_POLL_MS : nextReconcile - now, rootDue() - now);
        page = await source.changesSince(cursor, Math.max(0, wait), signal);
        if (down) logger.info({ source: source.description }, 'source is back');
        down = false;
        backoff.reset();
        options.onSourceSerial?.(page.lastSerial);
      } catch (err) {
        if (signal.aborted) break;
        if (!down) logger.warn({ source: source.description, err }, 'source unreachable; the tree keeps its last state; retrying');
        down = true;
        options.onSourceError?.(err);
        await sleep(backoff.next(), signal);
        continue;
      }
      if (signal.aborted) break;
      if (page.changes.length === 0 && !reconcileReady() && Date.now() < rootDue()) continue;
    }
    const refreshingRoot = Date.now() >= rootDue();

    const reconciling = reconcileReady();
    if (reconciling && !scanned) {
      const ended = scan;
      scan = null;
      try {
        if (ended?.error) throw ended.error;
        await engine.rescan(ended?.projects ?? undefined);
        scanned = true;
      } catch (err) {
        logger.warn({ err }, 'reading the tree failed; retrying');
        await sleep(backoff.next(), signal);
        continue;
      }
    }
    const result = await engine.runBatch({ changes: page.changes, signal, rootInBackground });
    options.onBatch?.(result);
    if (result.ok) {
      cursor = Math.max(cursor, page.next, result.serial);
      retry = false;
      // The source's root was older than the tree's (the refresh could not be made), or than the
      // changes just applied (the state cannot follow them): read it again in a moment rather than spin.
      const refreshStalled = refreshingRoot && engine.rootRefreshDue !== null && engine.rootRefreshDue <= Date.now();
      if (refreshStalled || engine.settledSerial < cursor) {
        sourceRootAt = Date.now() + lag.next();
        logger.debug({ settled: engine.settledSerial, feed: cursor }, "the source's root index lags; reading it again");
      } else {
        lag.reset();
        sourceRootAt = null;
      }
      if (reconciling) {
        nextReconcile = Date.now() + options.intervalMs;
        scanned = false;
      }
      backoff.reset();
    } else {
      // The cursor stays: the feed answers with the same changes once the source is back.
      retry = true;
      if (!signal.aborted) await sleep(backoff.next(), signal);
    }
  }
  await engine.idle();
}
