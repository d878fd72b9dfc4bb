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
import { rootHtmlDigest } from './root-pages.js';
import type { ProjectSnapshot, SourceChange, SourceListing, SyncSource } from './source.js';
import type { StaticTree } from './static-tree.js';
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
const FIRST_BUILD_CHUNK = 2000;

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
   * removed project writes it at once. Default 0: whenever the serial moves.
   */
  readonly rootIntervalMs?: number;
  /** The clock the root interval is measured with, for tests. */
  readonly now?: () => number;
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
  readonly #rootIntervalMs: number;
  readonly #now: () => number;
  /** Serial of each project's pages in the tree; -1 when unknown (refresh it). */
  readonly #known = new Map<string, number>();
  /** What pages stopped linking: deleted after the root is written. */
  readonly #leftovers = new Leftovers();
  #applied = -1;
  #rootSerial = -1;
  /** When this engine last wrote the root (0: not yet, so the first batch that can refreshes it). */
  #rootWrittenAt = 0;
  /** Projects whose pages are newer than their entry in the tree's root, with their serial. */
  #newer = new Map<string, number>();
  /** Counts of the batch under way, for a progress display. */
  #progress: BatchProgress | null = null;
  /** The projects the tree's root index lists. */
  #listed = new Set<string>();
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
    this.#rootIntervalMs = options.rootIntervalMs ?? 0;
    this.#now = options.now ?? Date.now;
  }

  /** The serial the tree's state object records (-1: none). */
  get appliedSerial(): number {
    return this.#applied;
  }

  /** The serial of the tree's root index (behind `appliedSerial` while its per-project serials wait for `rootIntervalMs`). */
  get rootSerial(): number {
    return this.#rootSerial;
  }

  /**
   * When a batch should run to bring the root's per-project serials up to
   * date (ms since the epoch), or null when the root is current.
   */
  get rootRefreshDue(): number | null {
    return this.#rootSerial < this.#applied ? this.#rootWrittenAt + this.#rootIntervalMs : null;
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
   * Reload the tree's project serials: from its root index and the state's
   * projects newer than it, plus every project folder (one the root does not
   * list, e.g. after a crash, is checked again).
   */
  async rescan(): Promise<void> {
    const [root, state, names, html, v1Html] = await Promise.all([
      this.#tree.readRoot(),
      this.#tree.readState(),
      this.#tree.projectNames(),
      this.#tree.read(ROOT_KEYS.html),
      this.#tree.read(ROOT_KEYS.v1Html),
    ]);
    this.#rootSerial = root?.serial ?? -1;
    this.#listed = new Set(root?.projects.keys() ?? []);
    this.#rootHtmlDigest = html !== null && v1Html !== null && html.equals(v1Html) ? sha256Hex(html) : null;
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
      if (listing.serial < this.#rootSerial && !request.rewriteRoot) {
        // The source's root index lags behind one already written (a busy origin serves the previous rendering).
        this.#log.debug({ listing: listing.serial, root: this.#rootSerial }, 'source root index is older than the tree; keeping the tree root');
        return run.finish(this.#applied);
      }
      progress.phase = 'writing the root';
      await this.#writeRoot(listing, run, request.rewriteRoot === true, request.refreshRoot === true);
      progress.phase = 'deleting';
      run.keysDeleted += await this.#leftovers.sweep(this.#tree, this.#listed);
      if (run.rootWritten || run.keysDeleted > 0 || listing.serial !== this.#applied || request.rewriteRoot || this.#rewriteAll) {
        progress.phase = 'recording';
        await this.#tree.writeFinal(lastModifiedText(listing.time), {
          format: TREE_STATE_FORMAT,
          serial: listing.serial,
          time: new Date().toISOString(),
          source: this.#source.description,
          key: this.#key.id,
          rendering: this.#source.rendering,
          projects: listing.projects.length,
          rootSerial: this.#rootSerial,
          newer: Object.fromEntries(this.#newer),
        });
        this.#applied = listing.serial;
        this.#rewriteAll = false;
      }
      this.#recover = false;
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
      const wantedNames = new Set(todo);
      const entries = new Map<string, number>();
      for (const p of listing.projects) if (wantedNames.has(p.normalizedName)) entries.set(p.normalizedName, p.lastSerial);
      if (this.#applied < 0 && todo.length > FIRST_BUILD_CHUNK && !chunked) {
        // A first build: no state, so nothing is published and no root can list a page too early.
        // Projects go up a chunk at a time (the source reads the next chunk meanwhile); those that
        // disagree with the listing wait, and the root waits until every project agrees with it.
        chunked = true;
        for (let i = 0; i < todo.length && !run.failed; i += FIRST_BUILD_CHUNK) {
          const fetched = dropUnlisted(await this.#fetch(todo.slice(i, i + FIRST_BUILD_CHUNK), run, signal, forced, true), listing, entries);
          this.#source.prefetch?.(todo.slice(i + FIRST_BUILD_CHUNK, i + 2 * FIRST_BUILD_CHUNK), signal);
          if (!run.failed) await this.#write(fetched.filter((f) => !behindListing(f, entries)), run, signal, true);
        }
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

  /** Projects whose tree pages differ from what the listing says: older, missing, or not listed any more. */
  #differences(listing: SourceListing): string[] {
    const todo: string[] = [];
    const listed = new Set<string>();
    for (const p of listing.projects) {
      listed.add(p.normalizedName);
      const have = this.#known.get(p.normalizedName);
      if (have === undefined || have < p.lastSerial) todo.push(p.normalizedName);
    }
    // A page newer than the listing belongs to a project created after it: not an extra.
    for (const [name, serial] of this.#known) if (!listed.has(name) && serial <= listing.serial) todo.push(name);
    return todo;
  }

  /**
   * Fetch projects from the source, with what their pages in the tree link now. `withReleases`
   * reads the release pages too; otherwise they are read once the Simple pages are up.
   */
  async #fetch(names: readonly string[], run: BatchRecorder, signal: AbortSignal | undefined, full: ReadonlySet<string>, withReleases: boolean): Promise<Fetched[]> {
    const fetched: Fetched[] = [];
    const progress = this.#progress;
    if (progress) {
      progress.phase = 'fetching';
      progress.expect(names.length);
    }
    this.#source.prefetch?.(names, signal);
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
      this.#concurrency,
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
    const results = await settleLimit(list, this.#concurrency, async ([key, c]) => {
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
      this.#known.delete(name);
      this.#newer.delete(name);
      this.#leftovers.gone(name);
      return;
    }
    // Until the JSON API matches the Simple pages, a later batch must fetch the project again.
    this.#known.set(name, -1);
    const sig = signProject(this.#key.privateKey, name, snapshot.serial, snapshot.html, snapshot.json);
    await this.#tree.writeSimplePages(snapshot, sig);
    this.#leftovers.exists(name);
    const releases = f.releases !== undefined ? f.releases : await snapshot.releases(signal);
    if (releases === null) return;
    await this.#tree.writeJsonApi(name, snapshot.jsonApi, releases);
    this.#known.set(name, snapshot.serial);
    // Entries of the root are at its serial or older: a page past it is newer than its entry.
    if (snapshot.serial > this.#rootSerial) this.#newer.set(name, snapshot.serial);
    // A project new to the tree leaves nothing behind: its JSON API pages are removed before its
    // Simple JSON page, so without that page it has none (a repair checks everything anyway).
    if (old !== null || f.full) this.#leftovers.written(name, snapshot.jsonApi !== null ? new Set(releases.keys()) : null);
  }

  /**
   * Writes the root when the project list changed (the HTML root with it), or
   * when only serials moved and the last root write is `rootIntervalMs` old.
   * Until then the state object names the projects whose pages are newer than
   * the root. The root is written anyway when the listing's serial is not that
   * of a listed project's change (e.g. a project created and removed between
   * two batches): then no page would show that the tree reached it.
   */
  async #writeRoot(listing: SourceListing, run: BatchRecorder, force: boolean, refresh: boolean): Promise<void> {
    const digest = rootHtmlDigest(listing.projects);
    const htmlChanged = digest !== this.#rootHtmlDigest;
    if (!force && !htmlChanged) {
      if (listing.serial === this.#rootSerial) return;
      let newest = -1;
      for (const p of listing.projects) if (p.lastSerial > newest) newest = p.lastSerial;
      const due = refresh || this.#now() >= this.#rootWrittenAt + this.#rootIntervalMs || this.#newer.size >= MAX_NEWER || newest !== listing.serial;
      if (!due) return;
    }
    await this.#tree.writeRoot(listing.projects, listing.serial, htmlChanged || force);
    this.#rootSerial = listing.serial;
    this.#rootWrittenAt = this.#now();
    // The names the root lists change only with its HTML.
    if (htmlChanged || force) this.#listed = new Set(listing.projects.map((p) => p.normalizedName));
    this.#rootHtmlDigest = digest;
    // A page written from a snapshot newer than the listing stays newer than its entry.
    for (const [name, serial] of this.#newer) if (serial <= listing.serial) this.#newer.delete(name);
    run.rootWritten = true;
  }
}
