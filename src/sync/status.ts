/**
 * The publisher's status object (`pyedge-status.json` beside the state
 * object): what `pyedge publish --status` shows beyond the state — the
 * source's serial as the publisher last saw it, the last batch, the last
 * error. The state object is written only by batches that succeed, so a
 * failure has to be recorded elsewhere; this object is that place. It is not
 * part of the tree's consistency (DESIGN.md §4): written apart from batches,
 * at most every few seconds, and a failed write is only logged.
 */
import type { Logger } from 'pino';
import { isPyedgeError } from '../core/errors.js';
import type { BatchResult } from './batch-result.js';
import type { TreeView } from './metrics.js';
import type { StaticTree } from './static-tree.js';
import { CONTENT_TYPES } from './tree-layout.js';

export const STATUS_KEY = 'pyedge-status.json';
export const STATUS_FORMAT = 'pyedge-status-v1';

export interface StatusError {
  /** When it happened (ISO 8601). */
  readonly time: string;
  readonly code: string;
  readonly message: string;
}

export interface PublisherStatus {
  readonly format: typeof STATUS_FORMAT;
  /** When this object was written (ISO 8601). */
  readonly updated: string;
  readonly source: string;
  /** A `--watch` publisher wrote it (else a one-shot run). */
  readonly watching: boolean;
  readonly appliedSerial: number;
  readonly rootSerial: number;
  /** The source's newest serial as the publisher last learned it, and when. */
  readonly sourceSerial: number | null;
  readonly sourceSeen: string | null;
  readonly lastBatch: { readonly time: string; readonly ok: boolean; readonly ms: number; readonly serial: number } | null;
  /** When a batch last succeeded. */
  readonly lastSuccess: string | null;
  /** The last failure of a batch or of the change feed; kept after recovery (see `failuresInARow`). */
  readonly lastError: StatusError | null;
  /** Failures since the last success (0: the publisher is fine now). */
  readonly failuresInARow: number;
}

/** The status object, or null when `bytes` is not one. */
export function parsePublisherStatus(bytes: Uint8Array): PublisherStatus | null {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<PublisherStatus> | null;
    if (v === null || typeof v !== 'object' || v.format !== STATUS_FORMAT || typeof v.appliedSerial !== 'number') return null;
    return v as PublisherStatus;
  } catch {
    return null;
  }
}

export interface StatusRecorderOptions {
  readonly source: string;
  readonly watching: boolean;
  /** The engine's serials. */
  readonly tree: TreeView;
  readonly logger: Logger;
  /** Least time between two writes. Default 5 s. */
  readonly minIntervalMs?: number;
  /** The clock, for tests. */
  readonly now?: () => number;
}

function errorOf(err: unknown, time: string): StatusError {
  const code = isPyedgeError(err) ? err.code : 'PYEDGE_UNAVAILABLE';
  return { time, code, message: err instanceof Error ? err.message : String(err) };
}

/** Keeps the status in memory and writes it to the tree when it changed, at most every `minIntervalMs`. */
export class StatusRecorder {
  readonly #tree: StaticTree;
  readonly #options: StatusRecorderOptions;
  readonly #minIntervalMs: number;
  readonly #now: () => number;
  #sourceSerial: number | null = null;
  #sourceSeen: string | null = null;
  #lastBatch: PublisherStatus['lastBatch'] = null;
  #lastSuccess: string | null = null;
  #lastError: StatusError | null = null;
  #failuresInARow = 0;
  #dirty = false;
  #lastWrite = 0;
  #timer: NodeJS.Timeout | null = null;
  #writing: Promise<void> | null = null;

  constructor(tree: StaticTree, options: StatusRecorderOptions) {
    this.#tree = tree;
    this.#options = options;
    this.#minIntervalMs = options.minIntervalMs ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  #iso(): string {
    return new Date(this.#now()).toISOString();
  }

  batch(result: BatchResult): void {
    const time = this.#iso();
    this.#lastBatch = { time, ok: result.ok, ms: result.ms, serial: result.serial };
    if (result.ok) {
      this.#lastSuccess = time;
      this.#failuresInARow = 0;
      if (this.#sourceSerial === null || result.serial > this.#sourceSerial) this.#source(result.serial, time);
    } else {
      const f = result.failures[0];
      this.#lastError = { time, code: f?.code ?? 'PYEDGE_UNAVAILABLE', message: f ? (f.project ? `${f.project}: ${f.message}` : f.message) : 'the batch failed' };
      this.#failuresInARow++;
    }
    this.#changed();
  }

  /** The source's newest serial, from the change feed. */
  sourceSerial(serial: number): void {
    if (serial === this.#sourceSerial) return;
    this.#source(serial, this.#iso());
    this.#changed();
  }

  /** The change feed failed. */
  sourceError(err: unknown): void {
    this.#lastError = errorOf(err, this.#iso());
    this.#failuresInARow++;
    this.#changed();
  }

  /** The status as it would be written now. */
  snapshot(): PublisherStatus {
    return {
      format: STATUS_FORMAT,
      updated: this.#iso(),
      source: this.#options.source,
      watching: this.#options.watching,
      appliedSerial: this.#options.tree.appliedSerial,
      rootSerial: this.#options.tree.rootSerial,
      sourceSerial: this.#sourceSerial,
      sourceSeen: this.#sourceSeen,
      lastBatch: this.#lastBatch,
      lastSuccess: this.#lastSuccess,
      lastError: this.#lastError,
      failuresInARow: this.#failuresInARow,
    };
  }

  /** Writes what changed now, and stops the timer. */
  async close(): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#writing;
    if (this.#dirty) await this.#write();
  }

  #source(serial: number, time: string): void {
    this.#sourceSerial = serial;
    this.#sourceSeen = time;
  }

  #changed(): void {
    this.#dirty = true;
    if (this.#timer !== null || this.#writing !== null) return;
    const wait = Math.max(0, this.#lastWrite + this.#minIntervalMs - this.#now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#write();
    }, wait);
    this.#timer.unref();
  }

  async #write(): Promise<void> {
    this.#dirty = false;
    this.#lastWrite = this.#now();
    const body = Buffer.from(JSON.stringify(this.snapshot(), null, 2) + '\n');
    this.#writing = this.#tree.store.put(STATUS_KEY, body, { contentType: CONTENT_TYPES.json }).catch((err: unknown) => {
      this.#options.logger.warn({ err, key: STATUS_KEY }, 'writing the status object failed');
    });
    await this.#writing;
    this.#writing = null;
    // Something changed while it was written: write again (after the interval).
    if (this.#dirty) this.#changed();
  }
}
