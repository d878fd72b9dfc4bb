/**
 * The publisher's Prometheus metrics (`pyedge publish --watch --metrics`):
 * where the tree is (applied serial, root serial), where the source is, the
 * lag between them, and what the batches did. Each PublisherMetrics has its
 * own prom-client Registry (never the global one), so tests and several
 * publishers in one process do not collide. Other parts of the publisher (the
 * CDN purger) register their own metrics on `registry`.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BatchResult } from './batch-result.js';

/** What the metrics read from the engine at each scrape. */
export interface TreeView {
  readonly appliedSerial: number;
  readonly rootSerial: number;
}

export interface PublisherMetricsOptions {
  /** The engine (or anything with its serials). */
  readonly tree: TreeView;
  /** The clock, for tests. */
  readonly now?: () => number;
}

/** Counts the CDN purger (purge.ts `Purger`) keeps, read at each scrape. */
export interface PurgeCounts {
  /** Purge requests the caches accepted. */
  readonly sent: number;
  /** Purge requests that failed (most are retried). */
  readonly failed: number;
  /** Keys and URLs given up on. */
  readonly dropped: number;
  /** Keys and URLs waiting. */
  readonly pending: number;
}

/** Batch durations from a quick push (tens of ms) to a first build of a big index (hours). */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400];

export class PublisherMetrics {
  readonly registry = new Registry();
  readonly #tree: TreeView;
  readonly #now: () => number;
  #sourceSerial: number | null = null;
  /** When the publisher first saw a source serial it had not applied yet (null: caught up). */
  #behindSince: number | null = null;

  readonly #batches: Counter<'result'>;
  readonly #projectsWritten: Counter;
  readonly #projectsRemoved: Counter;
  readonly #filesCopied: Counter;
  readonly #bytesCopied: Counter;
  readonly #keysDeleted: Counter;
  readonly #rootWrites: Counter;
  readonly #sourceErrors: Counter;
  readonly #duration: Histogram;
  readonly #lastBatch: Gauge;
  readonly #lastDuration: Gauge;
  readonly #lastSuccess: Gauge;

  constructor(options: PublisherMetricsOptions) {
    this.#tree = options.tree;
    this.#now = options.now ?? Date.now;
    const registers = [this.registry];
    const counter = (name: string, help: string): Counter => new Counter({ name, help, registers });
    const gauge = (name: string, help: string, collect?: (g: Gauge) => void): Gauge =>
      new Gauge({ name, help, registers, ...(collect ? { collect(this: Gauge) { collect(this); } } : {}) });

    gauge('pyedge_publish_applied_serial', 'Serial the tree state records: every change up to it is in the tree.', (g) => g.set(this.#tree.appliedSerial));
    gauge('pyedge_publish_root_serial', "Serial of the tree's root index (its per-project serials are refreshed every --root-interval).", (g) => g.set(this.#tree.rootSerial));
    gauge('pyedge_publish_source_serial', "The source's newest serial, as the change feed last said (-1: not known yet).", (g) => g.set(this.#sourceSerial ?? -1));
    gauge('pyedge_publish_lag_serials', 'Serials the source is ahead of the tree.', (g) => g.set(this.#lagSerials()));
    gauge('pyedge_publish_lag_seconds', 'Seconds since the publisher first saw a serial it has not applied yet (0: caught up).', (g) => {
      this.#updateBehind();
      g.set(this.#behindSince === null ? 0 : (this.#now() - this.#behindSince) / 1000);
    });
    this.#lastBatch = gauge('pyedge_publish_last_batch_timestamp_seconds', 'When the last batch finished (Unix time).');
    this.#lastDuration = gauge('pyedge_publish_last_batch_duration_seconds', 'How long the last batch took.');
    this.#lastSuccess = gauge('pyedge_publish_last_success_timestamp_seconds', 'When the last batch that succeeded finished (Unix time).');
    this.#batches = new Counter({ name: 'pyedge_publish_batches_total', help: 'Batches run, by result (ok or failed).', labelNames: ['result'], registers });
    this.#batches.inc({ result: 'ok' }, 0);
    this.#batches.inc({ result: 'failed' }, 0);
    this.#projectsWritten = counter('pyedge_publish_projects_written_total', 'Projects whose pages were written.');
    this.#projectsRemoved = counter('pyedge_publish_projects_removed_total', 'Projects removed from the tree.');
    this.#filesCopied = counter('pyedge_publish_files_copied_total', 'Files (and metadata files) copied into the tree.');
    this.#bytesCopied = counter('pyedge_publish_bytes_copied_total', 'Bytes of files copied into the tree.');
    this.#keysDeleted = counter('pyedge_publish_keys_deleted_total', 'Files and pages deleted once nothing linked them.');
    this.#rootWrites = counter('pyedge_publish_root_writes_total', 'Times the root index was written.');
    this.#sourceErrors = counter('pyedge_publish_source_errors_total', 'Times the change feed could not be read (the source was down or unreachable).');
    this.#duration = new Histogram({ name: 'pyedge_publish_batch_duration_seconds', help: 'How long batches take.', buckets: DURATION_BUCKETS, registers });
  }

  /** The Prometheus text exposition format's content type. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Everything, as Prometheus text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  observeBatch(result: BatchResult): void {
    const seconds = result.ms / 1000;
    const finished = this.#now() / 1000;
    this.#batches.inc({ result: result.ok ? 'ok' : 'failed' });
    this.#duration.observe(seconds);
    this.#lastBatch.set(finished);
    this.#lastDuration.set(seconds);
    if (result.ok) this.#lastSuccess.set(finished);
    this.#projectsWritten.inc(result.projectsWritten.length);
    this.#projectsRemoved.inc(result.projectsRemoved.length);
    this.#filesCopied.inc(result.filesCopied);
    this.#bytesCopied.inc(result.bytesCopied);
    this.#keysDeleted.inc(result.keysDeleted);
    if (result.rootWritten) this.#rootWrites.inc();
    // A batch reads the source's root index: its serial is at least the one applied.
    if (result.ok && (this.#sourceSerial === null || result.serial > this.#sourceSerial)) this.#sourceSerial = result.serial;
    this.#updateBehind();
  }

  /** The source's newest serial, from the change feed. */
  sourceSerial(serial: number): void {
    this.#sourceSerial = serial;
    this.#updateBehind();
  }

  sourceError(): void {
    this.#sourceErrors.inc();
  }

  /** Adds the purger's counts (`pyedge publish --purge`). Call once. */
  watchPurger(purger: PurgeCounts): void {
    const registers = [this.registry];
    // The purger keeps the totals; each scrape copies them.
    const total = (name: string, help: string, read: () => number): Counter =>
      new Counter({
        name,
        help,
        registers,
        collect(this: Counter) {
          this.reset();
          this.inc(read());
        },
      });
    total('pyedge_publish_purge_requests_sent_total', 'Purge requests the caches accepted.', () => purger.sent);
    total('pyedge_publish_purge_requests_failed_total', 'Purge requests that failed (most are retried).', () => purger.failed);
    total('pyedge_publish_purge_dropped_total', 'Keys and URLs the purger gave up on (the cache keeps them until their TTL).', () => purger.dropped);
    new Gauge({
      name: 'pyedge_publish_purge_pending',
      help: 'Keys and URLs waiting to be purged.',
      registers,
      collect(this: Gauge) {
        this.set(purger.pending);
      },
    });
  }

  #lagSerials(): number {
    return this.#sourceSerial === null ? 0 : Math.max(0, this.#sourceSerial - this.#tree.appliedSerial);
  }

  #updateBehind(): void {
    if (this.#lagSerials() === 0) this.#behindSince = null;
    else this.#behindSince ??= this.#now();
  }
}
