/**
 * The sync engine behind `pyedge publish` (and later `pyedge mirror`): brings a
 * static tree to the source's state, one batch at a time, in the order of
 * DESIGN.md §4 —
 *
 *   1. the projects the change feed named, then every project whose serial in
 *      the source's root index differs from the tree's (reconcile): new files
 *      first (streamed, hash-checked), then each project's pages, signed;
 *   2. the root index, once every project it lists has its page: at once
 *      when the project list changed, otherwise (only per-project serials
 *      moved) at most every `rootIntervalMs` — at PyPI's size the root is tens
 *      of MB, too much to rewrite for every upload;
 *   3. deletions: pages of removed projects, files no page links any more;
 *   4. `last-modified` and the state object (the applied serial, and the
 *      projects whose pages are newer than their root entry), last.
 *
 * In watch mode (`rootInBackground`) steps 2–4 run beside the next batches:
 * their project pages do not depend on the root, so a new version need not
 * wait for a root of megabytes to be rendered and flushed. Roots are then
 * written one at a time, the newest listing asked for replacing an older one
 * not started yet; deletions and the state follow each root, and the state
 * records only a batch whose project list is the one the root in the tree
 * shows (pages of a project not listed yet are past the recorded serial).
 *
 * A crash anywhere leaves a tree whose links resolve; running again from the
 * recorded serial converges (every step is a put of what the source says now,
 * or a delete of what nothing links).
 */
import type { Logger } from 'pino';
import { PyedgeError } from '../core/errors.js';
import { sha256Hex } from '../core/hashes.js';
import { signProject } from '../core/signing.js';
import type { ServerKey } from '../signing/key-file.js';
import { BatchRecorder, type BatchResult } from './batch-result.js';
import { copyFile } from './file-copier.js';
import { projectLinks, type ProjectLinks } from './page-links.js';
import { settleLimit } from './pool.js';
import { sleep, type BackoffPolicy } from './retry.js';
import { ListingTracker } from './listing-tracker.js';
import { rootHtmlDigest } from './root-pages.js';
import { RootSchedule, type RootJob } from './root-schedule.js';
import type { ProjectSnapshot, SourceChange, SourceListing, SyncSource } from './source.js';
import type { StaticTree, TreeProjects } from './static-tree.js';
import { Leftovers } from './leftovers.js';
import { BatchProgress } from './progress.js';
import { ROOT_KEYS, metadataKey } from './tree-layout.js';
import { TREE_STATE_FORMAT, lastModifiedText } from './tree-state.js';

/**
 * Most projects the state object lists as newer than the root: past this the
 * root is written whatever the interval (a state object of a few hundred KB).
 */
const MAX_NEWER = 10_000;
/** Projects fetched and written at a time by a first build (a tree with no state yet), so memory stays bounded. */
const FIRST_BUILD_CHUNK = 1000;
/** Chunks a first build announces to the source beyond the one it reads, so the source never waits for the writes. */
const FIRST_BUILD_READ_AHEAD = 2;
/** Chunks of a first build whose writes may be under way while the next one is read. */
const FIRST_BUILD_WRITING = 2;
/** Projects and files written at once while the tree batches its writes (StaticTree.batchesWrites). */
const BATCHED_WRITES = 1024;

/** Whether a fetched project disagrees with the listing: older than its entry, gone but listed, or new but unlisted. */
function behindListing(f: Fetched, entries: ReadonlyMap<string, number>): boolean {
  const listed = entries.get(f.name);
  if (f.snapshot !== null && f.releases === null) return true;
  return listed === undefined ? f.snapshot !== null : f.snapshot === null || f.snapshot.serial < listed;
}

/**
 * Fetched projects the listing leaves out although their pages are at its serial or older, as
 * removed: the source's root is what the index holds (the origin leaves out a project whose
 * releases were all removed, while still serving its empty page), and a tree lists every project
 * it has pages of. A page newer than the listing may be a project created since: that one waits.
 */
function dropUnlisted(fetched: readonly Fetched[], listing: SourceListing, entries: ReadonlyMap<string, number>): Fetched[] {
  return fetched.map((f) => (f.snapshot !== null && !entries.has(f.name) && f.snapshot.serial <= listing.serial ? { ...f, snapshot: null, releases: undefined, links: null } : f));
}

export interface SyncEngineOptions {
  readonly source: SyncSource;
  readonly tree: StaticTree;
  /** Signs every project page; its public half goes to `serverkey`. */
  readonly key: ServerKey;
  readonly logger: Logger;
  /** Pages fetched and files copied at once. Default 8. */
  readonly concurrency?: number;
  /** How long a batch waits for the source's pages to catch up with its root index, in ms. Default 5000. */
  readonly settleMs?: number;
  /** Backoff of file copies that fail transiently. */
  readonly backoff?: BackoffPolicy;
  /**
   * While the project list stays the same, the root index (only its
   * per-project serials change) is written at most this often, in ms. A new or
   * removed project writes it at once (in the background, once
   * `backgroundRootGapMs` has passed since the last). Default 0: whenever the serial moves.
   */
  readonly rootIntervalMs?: number;
  /** The clock the root interval is measured with, for tests. */
  readonly now?: () => number;
  /** Least time between two roots written in the background, in ms (see RootScheduleOptions). Default 1000. */
  readonly backgroundRootGapMs?: number;
}

/** What one batch should do beyond following the source's root index. */
export interface BatchRequest {
  /** Changes from the feed: their projects are refreshed first, before the root index is read. */
  readonly changes?: readonly SourceChange[];
  /** Projects to refresh whatever their serial (repair of tampered pages). */
  readonly force?: Iterable<string>;
  /** Write the root, `last-modified` and the state even when the serial did not move. */
  readonly rewriteRoot?: boolean;
  /** Bring the root's per-project serials up to date now, whatever `rootIntervalMs` says (the end of a one-shot run). */
  readonly refreshRoot?: boolean;
  /** Aborts waiting on the source; writes already started finish. */
  readonly signal?: AbortSignal;
  /**
   * Write the root (and then the deletions and the state) in the background:
   * the batch resolves once the project pages are up, and this is called with
   * the result of each root written, or failed, for this request or a later one.
   */
  readonly rootInBackground?: (result: BatchResult) => void;
}

interface Fetched {
  readonly name: string;
  /** Check every linked file, not only the ones the old page did not link (repair). */
  readonly full: boolean;
  readonly snapshot: ProjectSnapshot | null;
  /** The snapshot's release pages: not read yet (undefined), or null when the project moved on. */
  readonly releases: ReadonlyMap<string, Buffer> | null | undefined;
  readonly old: ProjectLinks | null;
  readonly links: ProjectLinks | null;
}

export class SyncEngine {
  readonly #source: SyncSource;
  readonly #tree: StaticTree;
  readonly #key: ServerKey;
  readonly #log: Logger;
  readonly #concurrency: number;
  readonly #settleMs: number;
  readonly #backoff: BackoffPolicy | undefined;
  readonly #now: () => number;
  /** Serial of each project's pages in the tree; -1 when unknown (refresh it). Changed through #setKnown/#dropKnown only. */
  readonly #known = new Map<string, number>();
  /** The source's listing as last seen, compared with the tree one changed entry at a time. */
  readonly #tracker = new ListingTracker();
  /** Projects whose pages may disagree with the last listing: every other one agrees (see #differences). */
  #suspects = new Set<string>();
  /** What pages stopped linking: deleted after the root is written. */
  readonly #leftovers = new Leftovers();
  /** Projects the source removed whose pages are not deleted yet. */
  readonly #gone = new Set<string>();
  #applied = -1;
  /** The serial of the root index in the tree. */
  #rootSerial = -1;
  /** Projects whose pages are newer than their entry in the tree's root, with their serial. */
  #newer = new Map<string, number>();
  /** When roots are written, and which batch the state may record. */
  readonly #roots: RootSchedule;
  /** Counts of the batch under way, for a progress display. */
  #progress: BatchProgress | null = null;
  /** The projects the tree's root index lists, and the tracker's seq of the listing they are from. */
  #listed = new Set<string>();
  #listedSeq = 0;
  /** SHA-256 of the tree's HTML root as read (null: none, or its two keys differ). */
  #rootHtmlDigest: string | null = null;
  /** Every page must be written again (new key or page shape) until a batch records the change. */
  #rewriteAll = false;
  /** The tree has a state: refetch what changed since it, in case a crash cut short the cleanup of a batch. */
  #recover = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: SyncEngineOptions) {
    this.#source = options.source;
    this.#tree = options.tree;
    this.#key = options.key;
    this.#log = options.logger;
    this.#concurrency = options.concurrency ?? 8;
    this.#settleMs = options.settleMs ?? 5000;
    this.#backoff = options.backoff;
    this.#now = options.now ?? Date.now;
    this.#roots = new RootSchedule({
      intervalMs: options.rootIntervalMs ?? 0,
      ...(options.backgroundRootGapMs !== undefined ? { backgroundGapMs: options.backgroundRootGapMs } : {}),
      now: this.#now,
      write: (job) => this.#tree.writeRoot(job.listing.projects, job.listing.serial, job.html),
      up: (job) => this.#rootUp(job),
      failed: (job, err) => {
        this.#log.warn({ err, serial: job.listing.serial }, 'writing the root index failed; it is written again');
        job.report?.(false, err);
      },
    });
  }

  /** The serial the tree's state object records (-1: none). */
  get appliedSerial(): number {
    return this.#applied;
  }

  /**
   * The serial of the source's root index that the last batch settled on (its pages are up, the
   * state follows with the root). Behind the change feed when the source's root lagged its pages.
   */
  get settledSerial(): number {
    return this.#roots.settledSerial;
  }

  /** The serial of the tree's root index (behind `appliedSerial` while its per-project serials wait for `rootIntervalMs`). */
  get rootSerial(): number {
    return this.#rootSerial;
  }

  /**
   * When a batch should run to bring the root's per-project serials up to
   * date (ms since the epoch), or null when the root is current (or on its way).
   */
  get rootRefreshDue(): number | null {
    return this.#roots.refreshDue;
  }

  /** What the batch under way has done so far, or null between batches. */
  get progress(): BatchProgress | null {
    return this.#progress;
  }

  /** Read what the tree holds; publish the key. Call once before the first batch. */
  async open(): Promise<void> {
    const state = await this.#tree.readState();
    this.#applied = state?.serial ?? -1;
    this.#recover = state !== null;
    await this.rescan();
    const pem = await this.#tree.readServerKey();
    if (pem !== this.#key.publicPem) await this.#tree.writeServerKey(this.#key.publicPem);
    const keyChanged = (state !== null && state.key !== this.#key.id) || (pem !== null && pem !== this.#key.publicPem);
    const renderingChanged = state !== null && state.rendering !== this.#source.rendering;
    if (keyChanged || renderingChanged) {
      // Pages signed by another key, or shaped otherwise (another public URL): write them all again.
      this.#log.info({ key: this.#key.id, previousKey: state?.key, rendering: this.#source.rendering, previousRendering: state?.rendering }, 'signing key or page shape changed; refreshing every project');
      this.#rewriteAll = true;
      for (const name of this.#known.keys()) this.#known.set(name, -1);
    }
  }

  /**
   * The projects the tree has folders for, and which have all their Simple pages: the long part
   * of a rescan at PyPI's size, which only reads, so batches may run meanwhile. Pass the result to
   * `rescan`: a project written or removed during the scan is at worst fetched once more.
   */
  scanProjects(): Promise<TreeProjects> {
    return this.#tree.projectNames();
  }

  /**
   * Reload the tree's project serials: from its root index and the state's
   * projects newer than it, plus every project folder (one the root does not
   * list, e.g. after a crash, is checked again) — those of `projects` when a
   * scan was made already. Waits for a root being written in the background,
   * and what follows it, first.
   */
  async rescan(projects?: TreeProjects): Promise<void> {
    await this.idle();
    const [root, state, names, html, v1Html] = await Promise.all([
      this.#tree.readRoot(),
      this.#tree.readState(),
      projects ?? this.#tree.projectNames(),
      this.#tree.read(ROOT_KEYS.html),
      this.#tree.read(ROOT_KEYS.v1Html),
    ]);
    this.#rootSerial = root?.serial ?? -1;
    this.#listed = new Set(root?.projects.keys() ?? []);
    this.#rootHtmlDigest = html !== null && v1Html !== null && html.equals(v1Html) ? sha256Hex(html) : null;
    // The next listing is compared whole with what was just read; every root asked for is written.
    this.#tracker.reset();
    this.#listedSeq = this.#tracker.seq;
    this.#roots.reset(this.#rootSerial, this.#applied);
    this.#known.clear();
    this.#newer.clear();
    for (const [name, serial] of root?.projects ?? []) if (names.complete.has(name)) this.#known.set(name, serial);
    // The pages carry their serial; the state names the ones the root has not caught up with (written before the state).
    for (const [name, serial] of Object.entries(state?.newer ?? {})) {
      const listed = this.#known.get(name);
      if (listed !== undefined && serial > listed) {
        this.#known.set(name, serial);
        this.#newer.set(name, serial);
      }
    }
    // Listed without all its pages, or with pages but not listed: fetch it again (or remove it).
    for (const name of names.all) if (!this.#known.has(name)) this.#known.set(name, -1);
    if (this.#rewriteAll) for (const name of this.#known.keys()) this.#known.set(name, -1);
  }

  /** Run one batch (batches never overlap). Never throws: failures are in the result. */
  runBatch(request: BatchRequest = {}): Promise<BatchResult> {
    const run = this.#queue.then(() => this.#batch(request));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves once no root is being written in the background and nothing follows one (bounded: a busy engine may stay busy). */
  async idle(): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      const queue = this.#queue;
      await this.#roots.written();
      await queue;
      if (!this.#roots.busy && queue === this.#queue) return;
    }
  }

  async #batch(request: BatchRequest): Promise<BatchResult> {
    const run = new BatchRecorder(this.#applied);
    const progress = (this.#progress = new BatchProgress(this.#applied));
    try {
      return await this.#steps(request, run, progress);
    } finally {
      this.#progress = null;
    }
  }

  async #steps(request: BatchRequest, run: BatchRecorder, progress: BatchProgress): Promise<BatchResult> {
    const { signal } = request;
    try {
      const forced = new Set<string>(request.force ?? []);
      const wanted = new Set<string>(forced);
      for (const c of request.changes ?? []) if ((this.#known.get(c.project) ?? -1) < c.serial) wanted.add(c.project);
      // Projects a batch cut short by a crash may have written without cleaning up after them.
      if (this.#recover) {
        progress.phase = 'reading changes';
        for (const name of await this.#changedSince(this.#applied, signal)) wanted.add(name);
      }
      // Fast path: projects the tree's root already lists get their pages before the source's root
      // index is even read. A new project waits for it, so its page never goes up unlisted.
      const first = [...wanted].filter((n) => this.#listed.has(n));
      if (first.length > 0) {
        await this.#write(await this.#fetch(first, run, signal, forced, false), run, signal, false);
        if (run.failed) return run.finish(this.#applied);
      }

      const listing = await this.#settle(run, signal, new Set([...wanted].filter((n) => !this.#listed.has(n))), forced);
      if (listing === null) return run.finish(this.#applied);
      if (listing.serial < this.#roots.targetSerial && !request.rewriteRoot) {
        // The source's root index lags behind one already written (a busy origin serves the previous rendering).
        this.#log.debug({ listing: listing.serial, root: this.#roots.targetSerial }, 'source root index is older than the tree; keeping the tree root');
        return run.finish(this.#applied);
      }
      progress.phase = 'writing the root';
      const job = this.#roots.afterBatch(listing, this.#tracker.seq, this.#tracker.hasNewest, {
        force: request.rewriteRoot === true,
        refresh: request.refreshRoot === true,
        overdue: this.#newer.size >= MAX_NEWER,
        report: request.rootInBackground ? this.#reporter(request.rootInBackground) : null,
      });
      this.#recover = false;
      // In the background, the root (when one is being written) brings the deletions and the state after it.
      if (request.rootInBackground && this.#roots.busy) return run.finish(this.#applied);
      await this.#roots.written();
      if (this.#roots.broken) {
        run.fail(null, this.#roots.failure);
        return run.finish(this.#applied);
      }
      run.rootWritten = job !== null;
      await this.#finalize(run, request.rewriteRoot === true);
    } catch (err) {
      run.fail(null, err);
    }
    return run.finish(this.#applied);
  }

  /** The projects the source's changelog names after `since` (bounded: a tree far behind is refreshed by serial anyway). */
  async #changedSince(since: number, signal: AbortSignal | undefined): Promise<Set<string>> {
    const names = new Set<string>();
    let cursor = since;
    for (let pages = 0; pages < 100; pages++) {
      const page = await this.#source.changesSince(cursor, 0, signal);
      for (const c of page.changes) names.add(c.project);
      if (page.changes.length === 0 || page.next <= cursor) break;
      cursor = page.next;
    }
    return names;
  }

  /**
   * Read the source's root index and fetch every project that differs from the tree, until all
   * of them agree with that index; only then write them (files, pages). Everything the root will
   * need is read from the source before the first page goes up, so a source that dies now cannot
   * leave a new project's page unlisted.
   */
  async #settle(run: BatchRecorder, signal: AbortSignal | undefined, extra: ReadonlySet<string>, forced: ReadonlySet<string>): Promise<SourceListing | null> {
    let deadline = Date.now() + this.#settleMs;
    let delay = 20;
    let chunked = false;
    for (;;) {
      if (this.#progress) this.#progress.phase = 'reading the root index';
      const listing = await this.#source.listing(signal);
      const todo = [...new Set([...this.#differences(listing), ...extra])];
      if (todo.length === 0) return listing;
      this.#progress?.expect(todo.length);
      const entries = new Map<string, number>();
      for (const name of todo) {
        const serial = this.#tracker.entry(name);
        if (serial !== undefined) entries.set(name, serial);
      }
      if (this.#applied < 0 && todo.length > FIRST_BUILD_CHUNK && !chunked) {
        // A first build: no state, so nothing is published and no root can list a page too early.
        // Projects go up a chunk at a time (#firstBuild: reading, writing and the source overlap); those that
        // disagree with the listing wait, and the root waits until every project agrees with it.
        chunked = true;
        await this.#firstBuild(todo, listing, entries, run, signal, forced);
        if (run.failed) return null;
        deadline = Date.now() + this.#settleMs;
        continue;
      }
      const fetched = dropUnlisted(await this.#fetch(todo, run, signal, forced, true), listing, entries);
      if (run.failed) return null;
      const behind = fetched.filter((f) => behindListing(f, entries));
      if (behind.length === 0) {
        await this.#write(fetched, run, signal, true);
        return run.failed ? null : listing;
      }
      if (Date.now() > deadline) {
        const names = behind.slice(0, 5).map((f) => f.name).join(', ');
        run.fail(null, new PyedgeError('PYEDGE_UNAVAILABLE', `The source's pages of ${names} do not agree with its root index at serial ${listing.serial}; will retry.`));
        return null;
      }
      // The source moved between its root and its pages, or its page cache lags (it catches up within a moment).
      await sleep(delay, signal);
      signal?.throwIfAborted();
      delay = Math.min(500, delay * 2);
    }
  }

  /**
   * The projects of a first build, a chunk at a time, as a pipeline: while one chunk is read (the
   * source already reading the next ones), the chunks before it are written, each one's files
   * before its pages. Reading, writing and the source's own work then overlap instead of taking
   * turns, and memory stays bounded by the chunks under way. Every write has ended when it returns.
   */
  async #firstBuild(
    todo: readonly string[],
    listing: SourceListing,
    entries: ReadonlyMap<string, number>,
    run: BatchRecorder,
    signal: AbortSignal | undefined,
    forced: ReadonlySet<string>,
  ): Promise<void> {
    const writing: Promise<void>[] = [];
    for (let i = 0; i < todo.length && !run.failed; i += FIRST_BUILD_CHUNK) {
      this.#source.prefetch?.(todo.slice(i, i + (1 + FIRST_BUILD_READ_AHEAD) * FIRST_BUILD_CHUNK), signal);
      const fetched = dropUnlisted(await this.#fetch(todo.slice(i, i + FIRST_BUILD_CHUNK), run, signal, forced, true, false), listing, entries);
      if (run.failed) break;
      writing.push(
        this.#write(
          fetched.filter((f) => !behindListing(f, entries)),
          run,
          signal,
          true,
        ).catch((err: unknown) => run.fail(null, err)),
      );
      if (writing.length >= FIRST_BUILD_WRITING) await writing.shift();
    }
    await Promise.all(writing);
  }

  /**
   * Projects whose tree pages differ from what the listing says: older, missing, or not listed any
   * more. Only the entries that changed since the last listing, and the projects whose pages were
   * written since, are looked at (#suspects); a listing taken whole is compared whole.
   */
  #differences(listing: SourceListing): string[] {
    const update = this.#tracker.update(listing);
    if (update.changed === null) {
      const suspects = new Set<string>();
      for (const p of listing.projects) {
        const have = this.#known.get(p.normalizedName);
        if (have === undefined || have < p.lastSerial) suspects.add(p.normalizedName);
      }
      for (const name of this.#known.keys()) if (this.#tracker.entry(name) === undefined) suspects.add(name);
      this.#suspects = suspects;
      // Whether the HTML root changes: the tree's as read, or the one asked for last.
      const target = this.#roots.targetListing;
      if (!this.#roots.namesMoved && rootHtmlDigest(listing.projects) !== (target === null ? this.#rootHtmlDigest : rootHtmlDigest(target.projects))) this.#roots.namesMove();
    } else {
      for (const name of update.changed) this.#suspects.add(name);
      if (update.namesMoved) this.#roots.namesMove();
    }
    const todo: string[] = [];
    for (const name of this.#suspects) {
      const listed = this.#tracker.entry(name);
      const have = this.#known.get(name);
      if (listed !== undefined) {
        if (have === undefined || have < listed) todo.push(name);
        else this.#suspects.delete(name);
      } else if (have === undefined) {
        this.#suspects.delete(name);
      } else if (have <= listing.serial) {
        todo.push(name);
      }
      // A page newer than the listing belongs to a project created after it: not an extra (it stays a suspect).
    }
    return todo;
  }

  #setKnown(name: string, serial: number): void {
    this.#known.set(name, serial);
    this.#suspects.add(name);
  }

  #dropKnown(name: string): void {
    this.#known.delete(name);
    this.#suspects.add(name);
  }

  /**
   * Fetch projects from the source, with what their pages in the tree link now. `withReleases`
   * reads the release pages too; otherwise they are read once the Simple pages are up. Unless
   * `announce` is false (the caller announced them, with more), the source is told of them first.
   */
  async #fetch(
    names: readonly string[],
    run: BatchRecorder,
    signal: AbortSignal | undefined,
    full: ReadonlySet<string>,
    withReleases: boolean,
    announce = true,
  ): Promise<Fetched[]> {
    const fetched: Fetched[] = [];
    const progress = this.#progress;
    if (progress) {
      progress.phase = 'fetching';
      progress.expect(names.length);
    }
    if (announce) this.#source.prefetch?.(names, signal);
    const settled = await settleLimit(names, this.#concurrency, async (name): Promise<Fetched> => {
      const [snapshot, old] = await Promise.all([this.#source.project(name, signal), this.#tree.readProjectLinks(name)]);
      const releases = withReleases && snapshot !== null ? await snapshot.releases(signal) : undefined;
      if (progress) progress.projectsFetched++;
      return { name, full: full.has(name), snapshot, releases, old, links: snapshot === null ? null : projectLinks(snapshot.json, snapshot.jsonApi) };
    });
    settled.forEach((s, i) => (s.status === 'fulfilled' ? fetched.push(s.value) : run.fail(names[i]!, s.reason)));
    return fetched;
  }

  /**
   * Copy the fetched projects' new files, then write their pages. With `allOrNothing`, a failed
   * copy writes no page at all (new projects must not go up while the root cannot follow).
   */
  async #write(fetched: readonly Fetched[], run: BatchRecorder, signal: AbortSignal | undefined, allOrNothing: boolean): Promise<void> {
    const broken = await this.#copyNewFiles(fetched, run, signal);
    if (allOrNothing && broken.size > 0) return;
    if (this.#progress) this.#progress.phase = 'writing pages';
    await settleLimit(
      fetched.filter((f) => !broken.has(f.name)),
      this.#writeLimit,
      async (f) => {
        try {
          await this.#apply(f, signal);
          (f.snapshot === null ? run.removed : run.written).push(f.name);
          if (this.#progress) this.#progress.projectsWritten++;
        } catch (err) {
          run.fail(f.name, err);
        }
      },
    );
  }

  /** Writes under way at once: many while the tree batches them, else the configured concurrency. */
  get #writeLimit(): number {
    return this.#tree.batchesWrites ? Math.max(BATCHED_WRITES, this.#concurrency) : this.#concurrency;
  }

  /** Copies every file a new page links that the old page did not; returns the projects whose copies failed. */
  async #copyNewFiles(fetched: readonly Fetched[], run: BatchRecorder, signal: AbortSignal | undefined): Promise<Set<string>> {
    const copies = new Map<string, { project: string; sha256: string; size: number | null }>();
    for (const f of fetched) {
      for (const link of f.links?.files.values() ?? []) {
        const before = f.full ? undefined : f.old?.files.get(link.path);
        if (before === undefined) copies.set(link.path, { project: f.name, sha256: link.sha256, size: link.size });
        if (link.metadataSha256 !== null && before?.metadataSha256 !== link.metadataSha256) {
          copies.set(metadataKey(link.path), { project: f.name, sha256: link.metadataSha256, size: null });
        }
      }
    }
    const list = [...copies];
    const progress = this.#progress;
    if (progress) {
      progress.phase = 'copying files';
      progress.filesTotal += list.length;
    }
    const results = await settleLimit(list, this.#writeLimit, async ([key, c]) => {
      // After a crash the file may be there already: content-addressed, so its presence is enough.
      const bytes = (await this.#tree.has(key, c.size)) ? 0 : await copyFile(this.#source, this.#tree, key, c, { signal, ...(this.#backoff ? { backoff: this.#backoff } : {}) });
      if (progress) {
        progress.filesDone++;
        progress.bytesCopied += bytes;
      }
      return bytes;
    });
    const broken = new Set<string>();
    results.forEach((r, i) => {
      const [key, c] = list[i]!;
      if (r.status === 'fulfilled') {
        if (r.value > 0) {
          run.filesCopied++;
          run.bytesCopied += r.value;
        }
      } else if (!broken.has(c.project)) {
        broken.add(c.project);
        run.fail(c.project, r.reason);
        this.#log.warn({ project: c.project, key, err: r.reason }, 'file copy failed; the project keeps its old pages');
      }
    });
    return broken;
  }

  /**
   * Writes a project's pages (or marks it gone) and notes what its old pages linked that the new
   * ones do not. The Simple pages go up first; when the release pages then show that the project
   * moved on, its JSON API waits for a fresh snapshot (its serial stays unknown until then).
   */
  async #apply(f: Fetched, signal: AbortSignal | undefined): Promise<void> {
    const { name, snapshot, old, links } = f;
    this.#leftovers.unlinked(name, old, links);
    if (snapshot === null) {
      this.#dropKnown(name);
      this.#newer.delete(name);
      this.#leftovers.gone(name);
      this.#gone.add(name);
      return;
    }
    // Until the JSON API matches the Simple pages, a later batch must fetch the project again.
    this.#setKnown(name, -1);
    const sig = signProject(this.#key.privateKey, name, snapshot.serial, snapshot.html, snapshot.json);
    await this.#tree.writeSimplePages(snapshot, sig);
    this.#leftovers.exists(name);
    this.#gone.delete(name);
    const releases = f.releases !== undefined ? f.releases : await snapshot.releases(signal);
    if (releases === null) return;
    await this.#tree.writeJsonApi(name, snapshot.jsonApi, releases);
    this.#setKnown(name, snapshot.serial);
    // Entries of the root are at its serial or older: a page past it is newer than its entry.
    if (snapshot.serial > this.#rootSerial) this.#newer.set(name, snapshot.serial);
    // A project new to the tree leaves nothing behind: its JSON API pages are removed before its
    // Simple JSON page, so without that page it has none (a repair checks everything anyway).
    if (old !== null || f.full) this.#leftovers.written(name, snapshot.jsonApi !== null ? new Set(releases.keys()) : null);
  }

  /** The report of a root asked for in the background: a result of its own once the state follows it. */
  #reporter(to: (result: BatchResult) => void): (ok: boolean, err?: unknown) => void {
    const run = new BatchRecorder(this.#applied);
    return (ok, err) => {
      if (ok) {
        run.rootWritten = true;
        this.#finalizeLater(run, to);
      } else {
        run.fail(null, err);
        this.#deliver(to, run.finish(this.#applied));
      }
    };
  }

  /** The tree's root is now `job`'s. */
  #rootUp(job: RootJob): void {
    this.#rootSerial = job.listing.serial;
    this.#listed = this.#tracker.namesAt(this.#listed, this.#listedSeq, job.seq) ?? new Set(job.listing.projects.map((p) => p.normalizedName));
    this.#listedSeq = job.seq;
    // A page written from a snapshot newer than the listing stays newer than its entry.
    for (const [name, serial] of this.#newer) if (serial <= job.listing.serial) this.#newer.delete(name);
    job.report?.(true);
  }

  /** After a root written in the background: deletions and the state, between batches. */
  #finalizeLater(report: BatchRecorder, deliver: (result: BatchResult) => void): void {
    const run = this.#queue.then(async () => {
      try {
        await this.#finalize(report, false);
      } catch (err) {
        report.fail(null, err);
      }
      this.#deliver(deliver, report.finish(this.#applied));
    });
    this.#queue = run.catch(() => undefined);
  }

  #deliver(to: (result: BatchResult) => void, result: BatchResult): void {
    try {
      to(result);
    } catch (err) {
      this.#log.warn({ err }, 'a batch result callback failed');
    }
  }

  /**
   * Deletes what the root in the tree no longer needs, then records the newest batch it is
   * consistent with (`last-modified` and the state object, last).
   */
  async #finalize(run: BatchRecorder, force: boolean): Promise<void> {
    if (this.#progress) this.#progress.phase = 'deleting';
    const keep = this.#keep();
    run.keysDeleted += await this.#leftovers.sweep(this.#tree, keep);
    for (const name of this.#gone) if (!keep.has(name)) this.#gone.delete(name);
    const batch = this.#roots.recordable(this.#rootSerial);
    if (batch === null) return;
    if (run.rootWritten || run.keysDeleted > 0 || batch.serial !== this.#applied || force || this.#rewriteAll) {
      if (this.#progress) this.#progress.phase = 'recording';
      await this.#tree.writeFinal(lastModifiedText(batch.time), {
        format: TREE_STATE_FORMAT,
        serial: batch.serial,
        time: new Date().toISOString(),
        source: this.#source.description,
        key: this.#key.id,
        rendering: this.#source.rendering,
        projects: batch.projects,
        rootSerial: this.#rootSerial,
        newer: Object.fromEntries(this.#newer),
      });
      this.#applied = batch.serial;
      this.#rewriteAll = false;
    }
    this.#roots.recorded(batch.serial);
  }

  /** The projects whose pages stay: those the tree's root lists, and removed ones a root being written still lists. */
  #keep(): ReadonlySet<string> {
    if (this.#gone.size === 0) return this.#listed;
    const roots = this.#roots.jobs;
    const held = [...this.#gone].filter((n) => !this.#listed.has(n) && roots.some((j) => j.listing.projects.some((p) => p.normalizedName === n)));
    return held.length === 0 ? this.#listed : new Set([...this.#listed, ...held]);
  }
}
