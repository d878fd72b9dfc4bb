/**
 * When the sync engine writes the root index, and which batch the state
 * object may record. A batch settles on a listing and writes its project
 * pages; then it asks for a root when the project list changed, or when only
 * serials moved and the last root is `intervalMs` old. Roots are written one
 * at a time, in the background or not: the newest listing asked for replaces
 * one not started yet. Each root asked for with a new project list starts a
 * generation; a batch belongs to the generation it settled in, and the state
 * may record it once a root of that generation is in the tree — so no
 * recorded serial is past a project page the root does not list yet.
 */
import type { SourceListing } from './source.js';

/** A root index to write. */
export interface RootJob {
  readonly listing: SourceListing;
  /** Write the HTML root too (the project list changed, a repair, or a write failed). */
  readonly html: boolean;
  /** The project list's generation. */
  readonly gen: number;
  /** Which listing it is, for whoever follows its names (ListingTracker.seq). */
  readonly seq: number;
  /** Called with the outcome when the root was asked for in the background. */
  readonly report: ((ok: boolean, err?: unknown) => void) | null;
}

/** A batch whose pages are up, waiting for a root of its generation before the state can record it. */
export interface DoneBatch {
  readonly serial: number;
  readonly gen: number;
  /** A listed project changed at `serial`: its page shows that the tree reached it. */
  readonly showsSerial: boolean;
  readonly time: string | null;
  readonly projects: number;
}

/** What a batch asks of the root. */
export interface RootAsk {
  /** Write the whole root whatever changed (repair). */
  readonly force: boolean;
  /** Bring its serials up to date whatever the interval. */
  readonly refresh: boolean;
  /** Past the interval on other grounds (too many projects newer than the root). */
  readonly overdue: boolean;
  readonly report: ((ok: boolean, err?: unknown) => void) | null;
}

export interface RootScheduleOptions {
  readonly intervalMs: number;
  /**
   * A root asked for in the background starts at least this long after the last one ended, in ms:
   * under a stream of new projects the roots asked for meanwhile make one write, and the pages of
   * the uploads in between do not queue their flushes behind megabytes of root (a new project's
   * page is up at once; the root lists it within about this long). Default BACKGROUND_GAP_MS.
   */
  readonly backgroundGapMs?: number;
  readonly now: () => number;
  /** Puts a root into the tree. */
  readonly write: (job: RootJob) => Promise<void>;
  /** The root of `job` is in the tree (called before anything else runs). */
  readonly up: (job: RootJob) => void;
  /** Writing `job` failed. */
  readonly failed: (job: RootJob, err: unknown) => void;
}

/** After a root write failed, the next batch that writes it again is due this much later, in ms. */
const RETRY_MS = 1000;
/** Default of RootScheduleOptions.backgroundGapMs. */
export const BACKGROUND_GAP_MS = 1000;
/** Batches kept while their root is not up yet; past this the oldest are forgotten (a later one is recorded). */
const MAX_DONE = 10_000;

export class RootSchedule {
  readonly #o: RootScheduleOptions;
  /** The root last asked for (written, being written or waiting): its serial and listing (null: the tree's as read), and when. */
  #target: { serial: number; listing: SourceListing | null; at: number } = { serial: -1, listing: null, at: 0 };
  /** The names of the last listing may differ from the target root's. */
  #namesMoved = false;
  #gen = 0;
  #writtenGen = 0;
  /** The newest batch whose pages are up (its serial), recorded or not. */
  #doneSerial = -1;
  #done: DoneBatch[] = [];
  #pending: RootJob | null = null;
  #writing: RootJob | null = null;
  #writer: Promise<void> = Promise.resolve();
  #broken: { at: number; err: unknown } | null = null;
  /** When the last root write ended (performance.now()). */
  #endedAt = -Infinity;

  constructor(options: RootScheduleOptions) {
    this.#o = options;
  }

  /** The root in the tree is the one read (at `serial`), and every batch up to `applied` is recorded. Only while idle. */
  reset(serial: number, applied: number): void {
    this.#target = { serial, listing: null, at: this.#target.at };
    this.#namesMoved = false;
    this.#writtenGen = this.#gen;
    this.#done = [];
    this.#doneSerial = Math.max(this.#doneSerial, applied);
  }

  /** The serial of the newest listing a batch settled on (its pages are up), recorded or not. */
  get settledSerial(): number {
    return this.#doneSerial;
  }

  /** The serial of the root last asked for. */
  get targetSerial(): number {
    return this.#target.serial;
  }

  /** The listing of the root last asked for, or null when it is the tree's as read. */
  get targetListing(): SourceListing | null {
    return this.#target.listing;
  }

  get namesMoved(): boolean {
    return this.#namesMoved;
  }

  /** The names of the listing seen last may differ from the target root's. */
  namesMove(): void {
    this.#namesMoved = true;
  }

  /** The last root write failed, with its error (null: it did not). */
  get failure(): unknown {
    return this.#broken?.err ?? null;
  }

  get broken(): boolean {
    return this.#broken !== null;
  }

  /** A root is being written or waits to be. */
  get busy(): boolean {
    return this.#writing !== null || this.#pending !== null;
  }

  /** The roots being written and waiting. */
  get jobs(): RootJob[] {
    return [this.#writing, this.#pending].filter((j): j is RootJob => j !== null);
  }

  /** When a batch should run to bring the root up to date (ms since the epoch), or null when it is current or on its way. */
  get refreshDue(): number | null {
    if (this.#broken !== null && !this.busy) return this.#broken.at + RETRY_MS;
    return this.#target.serial < this.#doneSerial ? this.#target.at + this.#o.intervalMs : null;
  }

  /**
   * After a batch settled on `listing` (`seq`, `hasNewest` from the tracker): asks for a root
   * when one is due, and notes the batch. The root is written whole when the project list
   * changed; otherwise only when serials moved and the last root is `intervalMs` old, or when no
   * listed project changed at the listing's serial (e.g. a project created and removed between
   * two batches): then no page would show that the tree reached it.
   */
  afterBatch(listing: SourceListing, seq: number, hasNewest: boolean, ask: RootAsk): RootJob | null {
    let job: RootJob | null = null;
    const html = ask.force || this.#namesMoved || this.#broken !== null;
    const due = html || (listing.serial !== this.#target.serial && (ask.refresh || ask.overdue || !hasNewest || this.#o.now() >= this.#target.at + this.#o.intervalMs));
    if (due) {
      if (html) this.#gen++;
      this.#namesMoved = false;
      this.#target = { serial: listing.serial, listing, at: this.#o.now() };
      job = { listing, html, gen: this.#gen, seq, report: ask.report };
      this.#pending = this.#pending !== null && this.#pending.html && !job.html ? { ...job, html: true } : job;
      if (this.#writing === null) this.#writer = this.#writeAll();
    }
    this.#doneSerial = listing.serial;
    this.#done.push({ serial: listing.serial, gen: this.#gen, showsSerial: hasNewest, time: listing.time, projects: listing.projects.length });
    if (this.#done.length > MAX_DONE) this.#done.splice(0, this.#done.length - MAX_DONE);
    return job;
  }

  /** Resolves when no root is being written (a root asked for meanwhile included). Never rejects. */
  written(): Promise<void> {
    return this.#writer;
  }

  /**
   * The newest batch the state can record with the root in the tree at `rootSerial`: settled in
   * that root's generation, at its serial or later, and shown by a page or by the root.
   */
  recordable(rootSerial: number): DoneBatch | null {
    if (this.#broken !== null) return null;
    for (let k = this.#done.length - 1; k >= 0; k--) {
      const d = this.#done[k]!;
      if (d.gen === this.#writtenGen && d.serial >= rootSerial && (d.showsSerial || d.serial === rootSerial)) return d;
    }
    return null;
  }

  /** The state recorded `serial`: forget the batches it covers. */
  recorded(serial: number): void {
    this.#done = this.#done.filter((d) => d.serial > serial && d.gen >= this.#writtenGen);
  }

  async #writeAll(): Promise<void> {
    for (let job = this.#pending; job !== null; job = this.#pending) {
      const wait = this.#endedAt + (this.#o.backgroundGapMs ?? BACKGROUND_GAP_MS) - performance.now();
      if (job.report !== null && wait > 0) {
        // Roots asked for meanwhile replace this one; one asked for not in the background ends the wait.
        this.#writing = job;
        await this.#gap(wait);
        job = this.#pending!;
      }
      this.#pending = null;
      this.#writing = job;
      try {
        await this.#o.write(job);
        this.#writtenGen = job.gen;
        if (job.html) this.#broken = null;
        this.#o.up(job);
      } catch (err) {
        // The JSON root may be up and the HTML not: the next root written is whole.
        this.#broken = { at: this.#o.now(), err };
        const next = this.#pending as RootJob | null;
        if (next !== null) this.#pending = { ...next, html: true };
        this.#o.failed(job, err);
      }
      this.#endedAt = performance.now();
    }
    this.#writing = null;
  }

  /** Waits `ms`, or less when a root is asked for not in the background (a one-shot run, a repair). */
  async #gap(ms: number): Promise<void> {
    const until = performance.now() + ms;
    for (let left = ms; left > 0; left = until - performance.now()) {
      if (this.#pending?.report === null) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(left, 50)));
    }
  }
}
