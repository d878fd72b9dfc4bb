/**
 * Progress of a long batch (a first build of a big index takes hours): the
 * engine counts what the batch under way has done in a BatchProgress, and a
 * ProgressReporter shows it — a one-line bar redrawn on a terminal at most
 * ~10 times a second, or, when stderr is a file or a pipe, one plain line
 * every interval for batches that run that long (short batches print nothing
 * more than their summary line).
 */

/** Counts of the batch under way; the engine updates them as it goes. */
export class BatchProgress {
  /** When the batch started (ms since the epoch). */
  readonly started = Date.now();
  /** What the batch is doing now, in words. */
  phase = 'starting';
  /** Project fetches done and still to do, as far as known (a project fetched twice counts twice). */
  projectsTotal = 0;
  projectsFetched = 0;
  projectsWritten = 0;
  /** Files (and metadata files) to check or copy, as far as known. */
  filesTotal = 0;
  /** Files checked or copied. */
  filesDone = 0;
  bytesCopied = 0;

  /** `fromSerial`: the serial the tree was at when the batch started (-1: none). */
  constructor(readonly fromSerial: number) {}

  /** `n` project fetches are to come (some may be planned already: a first build announces all, then fetches them in chunks). */
  expect(n: number): void {
    this.projectsTotal = Math.max(this.projectsTotal, this.projectsFetched + n);
  }

  /**
   * How far along, 0..1: fetching and writing each project and each file
   * weigh the same. Totals grow as the batch learns more, so this can drop.
   */
  get fraction(): number {
    const total = 2 * this.projectsTotal + this.filesTotal;
    return total === 0 ? 0 : Math.min(1, (this.projectsFetched + this.projectsWritten + this.filesDone) / total);
  }
}

/** `1536` → `1.5 KB`. */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(1)} ${units[i]}`;
}

/** `3723000` → `1:02:03`, `83000` → `1:23`. */
export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600);
  return h > 0 ? `${h}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}` : `${Math.floor(s / 60)}:${p(s % 60)}`;
}

/** The progress in words, for either display. */
export function describeProgress(p: BatchProgress, now: number): string {
  return (
    `${p.phase}: projects ${p.projectsFetched}/${p.projectsTotal} fetched, ${p.projectsWritten} written; ` +
    `files ${p.filesDone}/${p.filesTotal} (${formatBytes(p.bytesCopied)} copied); ${formatElapsed(now - p.started)}`
  );
}

/** Where the reporter writes: process.stderr, or a fake in tests. */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface ProgressReporterOptions {
  readonly stream: ProgressStream;
  /** Without a terminal: one line this often, for batches running at least this long. Default 10 s. */
  readonly lineEveryMs?: number;
  /** On a terminal: redraw at most this often. Default 100 ms. */
  readonly redrawMs?: number;
  /** On a terminal: show the bar once a batch has run this long (no flicker for quick ones). Default 500 ms. */
  readonly barAfterMs?: number;
  /** The clock, for tests. */
  readonly now?: () => number;
}

const BAR_WIDTH = 20;

/**
 * Shows a running batch's progress. `read` returns the batch under way (or
 * null between batches); the reporter polls it, so the engine only counts.
 */
export class ProgressReporter {
  readonly #read: () => BatchProgress | null;
  readonly #stream: ProgressStream;
  readonly #tty: boolean;
  readonly #lineEveryMs: number;
  readonly #redrawMs: number;
  readonly #barAfterMs: number;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  /** The batch the last output was about, and the furthest fraction shown for it (the bar never goes back). */
  #batch: BatchProgress | null = null;
  #shown = 0;
  #lastOutput = 0;
  /** A bar is on the terminal's current line. */
  #barVisible = false;

  constructor(read: () => BatchProgress | null, options: ProgressReporterOptions) {
    this.#read = read;
    this.#stream = options.stream;
    this.#tty = options.stream.isTTY === true;
    this.#lineEveryMs = options.lineEveryMs ?? 10_000;
    this.#redrawMs = options.redrawMs ?? 100;
    this.#barAfterMs = options.barAfterMs ?? 500;
    this.#now = options.now ?? Date.now;
  }

  /** Polls on a timer that does not keep the process alive. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.tick(), this.#tty ? this.#redrawMs : Math.min(1000, this.#lineEveryMs));
    this.#timer.unref();
  }

  /** Stops polling and takes the bar off the terminal. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.clear();
  }

  /** Takes the bar off the terminal's line (before other output goes there). */
  clear(): void {
    if (!this.#barVisible) return;
    this.#stream.write('\r\x1b[K');
    this.#barVisible = false;
  }

  /** Draws or prints what is due now. */
  tick(): void {
    const now = this.#now();
    const p = this.#read();
    if (p === null) {
      this.clear();
      this.#batch = null;
      return;
    }
    if (p !== this.#batch) {
      this.#batch = p;
      this.#shown = 0;
      this.#lastOutput = p.started;
    }
    const running = now - p.started;
    if (this.#tty) {
      if (running < this.#barAfterMs || (this.#barVisible && now - this.#lastOutput < this.#redrawMs)) return;
      this.#stream.write(`\r${this.#bar(p, now)}\x1b[K`);
      this.#barVisible = true;
      this.#lastOutput = now;
    } else if (running >= this.#lineEveryMs && now - this.#lastOutput >= this.#lineEveryMs) {
      this.#stream.write(`progress: ${describeProgress(p, now)}\n`);
      this.#lastOutput = now;
    }
  }

  #bar(p: BatchProgress, now: number): string {
    this.#shown = Math.max(this.#shown, p.fraction);
    const filled = Math.round(this.#shown * BAR_WIDTH);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}] ${String(Math.floor(this.#shown * 100)).padStart(3)}% ${describeProgress(p, now)}`;
    const columns = this.#stream.columns ?? 0;
    // One line only: a wrapped bar could not be redrawn in place.
    return columns > 1 && line.length >= columns ? line.slice(0, columns - 1) : line;
  }
}
