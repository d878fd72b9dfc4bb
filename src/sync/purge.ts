/**
 * CDN purges after each batch (`pyedge publish --purge URL`): the caches in
 * front of the tree (Varnish with deploy/varnish/default.vcl, or a CDN that
 * takes `PURGE <url>`) drop exactly what the batch changed, so that they can
 * keep pages for long and still show an upload at once.
 *
 * Two ways to say what changed (purge-targets.ts maps tree keys to both):
 *   keys: `PURGE /` with `xkey-purge: project/a project/b all-projects`, a few
 *         hundred keys per request — every variant and every per-version JSON
 *         page of a project goes with one key;
 *   urls: `PURGE /simple/a/`, `PURGE /pypi/a/json`, … one request per URL.
 * Deleted files (never tagged) are purged by URL in both modes.
 *
 * Purging runs in the background and never blocks or fails a batch: each
 * endpoint has its own queue of keys and URLs (coalesced: a key asked for
 * twice is purged once), bounded, sent as soon as it fills, retried with
 * backoff while the endpoint fails, and dropped with an error in the log when
 * it keeps failing or refuses — the cache then serves the old page until its
 * TTL, the same as without purging.
 */
import type { Logger } from 'pino';
import type { BatchResult } from './batch-result.js';
import { mapLimit } from './pool.js';
import { impliedKeys, isFileKey, surrogateKeysOf, urlsOf } from './purge-targets.js';
import { Backoff, sleep, type BackoffPolicy } from './retry.js';

export const PURGE_MODES = ['keys', 'urls'] as const;
export type PurgeMode = (typeof PURGE_MODES)[number];

/** The request header carrying surrogate keys to purge, as deploy/varnish/default.vcl reads it. */
export const KEY_PURGE_HEADER = 'xkey-purge';

/** What to ask every cache to drop. */
export interface PurgeTargets {
  /** Surrogate keys (keys mode). */
  readonly keys: readonly string[];
  /** URL paths, starting with `/`. */
  readonly urls: readonly string[];
}

/**
 * What a batch asks the caches to drop: from `changed`, the tree keys it put or deleted
 * (StaticTree.takeChanges), or, when not known, from the projects and root it wrote.
 */
export function purgeTargets(result: BatchResult, changed: readonly string[] | undefined, mode: PurgeMode): PurgeTargets {
  const treeKeys = changed ?? impliedKeys(new Set([...result.projectsWritten, ...result.projectsRemoved]), result.rootWritten);
  const keys = new Set<string>();
  const urls = new Set<string>();
  for (const key of treeKeys) {
    const tags = mode === 'keys' && !isFileKey(key) ? surrogateKeysOf(key) : [];
    if (tags.length > 0) for (const tag of tags) keys.add(tag);
    else for (const url of urlsOf(key)) urls.add(url);
  }
  return { keys: [...keys].sort(), urls: [...urls].sort() };
}

export interface PurgerOptions {
  /** Base URLs of the caches: key purges go to the URL itself, URL purges to the path below it. */
  readonly endpoints: readonly string[];
  readonly mode: PurgeMode;
  readonly logger: Logger;
  /** Waits between attempts while an endpoint fails. Default 200 ms doubling to 30 s. */
  readonly backoff?: BackoffPolicy;
  /** Failed attempts in a row after which an endpoint's queue is dropped. Default 10 (about 3 minutes). */
  readonly attempts?: number;
  /** Time limit of one purge request, in ms. Default 5000. */
  readonly timeoutMs?: number;
  /** Keys and URLs waiting per endpoint; more are dropped (and counted). Default 100,000. */
  readonly maxPending?: number;
  /** URL purges in flight per endpoint. Default 8. */
  readonly concurrency?: number;
  /** Longest `xkey-purge` header, in bytes (Varnish takes 8 KB of headers by default). Default 4000. */
  readonly maxHeaderBytes?: number;
}

export const PURGE_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 200, maxMs: 30_000, factor: 2, jitter: 0.5 });

/** One cache: its queue and the worker draining it. */
interface Endpoint {
  readonly url: URL;
  readonly keys: Set<string>;
  readonly urls: Set<string>;
  readonly backoff: Backoff;
  /** Failed attempts in a row. */
  failures: number;
  /** The worker, while one runs. */
  worker: Promise<void> | null;
  /** A drop for a full queue was logged since the queue last emptied. */
  overflowLogged: boolean;
}

/** How one request went: done (2xx, or nothing to purge), worth retrying, or refused for good. */
type Outcome = 'done' | 'retry' | 'refused';

function outcomeOf(status: number, kind: 'key' | 'url'): Outcome {
  if (status >= 200 && status < 300) return 'done';
  // Some caches answer 404 when they hold nothing under that URL: nothing to drop.
  if (status === 404 && kind === 'url') return 'done';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'refused';
}

/** Splits keys into groups whose space-separated length stays under `max` bytes. */
function keyGroups(keys: readonly string[], max: number): string[][] {
  const groups: string[][] = [];
  let group: string[] = [];
  let size = 0;
  for (const key of keys) {
    const len = Buffer.byteLength(key);
    if (group.length > 0 && size + 1 + len > max) {
      groups.push(group);
      group = [];
      size = 0;
    }
    size += (group.length > 0 ? 1 : 0) + len;
    group.push(key);
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

/** What one round of requests to an endpoint left: what to try again, and the first failure of each kind, for the log. */
interface Round {
  readonly retry: PurgeTargets;
  readonly failed: number;
  readonly firstFailure: Record<string, unknown> | null;
  readonly refused: number;
  readonly firstRefusal: Record<string, unknown> | null;
}

export class Purger {
  /** Purge requests the caches accepted. */
  sent = 0;
  /** Purge requests that failed (each attempt; most are retried). */
  failed = 0;
  /** Keys and URLs given up on: refused, still failing after every attempt, or over the queue's bound. */
  dropped = 0;

  readonly #endpoints: Endpoint[];
  readonly #mode: PurgeMode;
  readonly #log: Logger;
  readonly #attempts: number;
  readonly #timeoutMs: number;
  readonly #maxPending: number;
  readonly #concurrency: number;
  readonly #maxHeaderBytes: number;
  readonly #stop = new AbortController();

  constructor(options: PurgerOptions) {
    this.#mode = options.mode;
    this.#log = options.logger;
    this.#attempts = options.attempts ?? 10;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#maxPending = options.maxPending ?? 100_000;
    this.#concurrency = options.concurrency ?? 8;
    this.#maxHeaderBytes = options.maxHeaderBytes ?? 4000;
    this.#endpoints = options.endpoints.map((e) => ({
      url: new URL(e),
      keys: new Set<string>(),
      urls: new Set<string>(),
      backoff: new Backoff(options.backoff ?? PURGE_BACKOFF),
      failures: 0,
      worker: null,
      overflowLogged: false,
    }));
  }

  /** Keys and URLs waiting, over every endpoint. */
  get pending(): number {
    return this.#endpoints.reduce((n, e) => n + e.keys.size + e.urls.size, 0);
  }

  /** Queue the purges for one batch (after its writes); returns at once, never throws. */
  onBatch(result: BatchResult, changed?: readonly string[]): void {
    if (this.#stop.signal.aborted) return;
    const targets = purgeTargets(result, changed, this.#mode);
    if (targets.keys.length + targets.urls.length === 0) return;
    this.#log.debug({ serial: result.serial, keys: targets.keys.length, urls: targets.urls.length }, 'purge queued');
    for (const endpoint of this.#endpoints) {
      this.#enqueue(endpoint, targets);
      this.#kick(endpoint);
    }
  }

  /** Resolves once every queue is empty, or after `timeoutMs`; true when empty. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const busy = this.#endpoints.map((e) => e.worker).filter((w): w is Promise<void> => w !== null);
      if (busy.length === 0) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      // The timer goes with the wait, so that it does not keep a finished process alive.
      const done = new AbortController();
      await Promise.race([Promise.all(busy), sleep(left, done.signal)]);
      done.abort();
    }
  }

  /** Give the queues up to `flushMs` to empty, then stop (what is still queued is dropped). */
  async close(flushMs = 5000): Promise<void> {
    await this.drain(flushMs);
    this.#stop.abort();
    await Promise.all(this.#endpoints.map((e) => e.worker));
    const left = this.pending;
    if (left > 0) {
      this.dropped += left;
      this.#log.warn({ left }, 'purger stopped with purges still queued');
      for (const e of this.#endpoints) {
        e.keys.clear();
        e.urls.clear();
      }
    }
  }

  /** Starts the endpoint's worker unless one runs; it runs until the queue is empty. */
  #kick(endpoint: Endpoint): void {
    if (endpoint.worker !== null || this.#stop.signal.aborted) return;
    endpoint.worker = this.#work(endpoint).finally(() => {
      endpoint.worker = null;
      // Purges queued between the worker's last look and its end.
      if (endpoint.keys.size + endpoint.urls.size > 0) this.#kick(endpoint);
    });
  }

  #enqueue(endpoint: Endpoint, targets: PurgeTargets): void {
    let over = 0;
    const add = (set: Set<string>, item: string): void => {
      if (set.has(item)) return;
      if (endpoint.keys.size + endpoint.urls.size >= this.#maxPending) over++;
      else set.add(item);
    };
    for (const key of targets.keys) add(endpoint.keys, key);
    for (const url of targets.urls) add(endpoint.urls, url);
    if (over === 0) return;
    this.dropped += over;
    if (!endpoint.overflowLogged) {
      endpoint.overflowLogged = true;
      this.#log.error({ endpoint: endpoint.url.href, dropped: over, maxPending: this.#maxPending }, 'purge queue full; dropping purges (caches keep those pages until their TTL)');
    }
  }

  async #work(endpoint: Endpoint): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted && endpoint.keys.size + endpoint.urls.size > 0) {
      const keys = [...endpoint.keys];
      const urls = [...endpoint.urls];
      endpoint.keys.clear();
      endpoint.urls.clear();
      const round = await this.#send(endpoint, keys, urls, signal);
      const where = { endpoint: endpoint.url.href };
      if (round.refused > 0) {
        this.dropped += round.refused;
        this.#log.error({ ...where, refused: round.refused, ...round.firstRefusal }, 'purge refused; not retrying (does the cache take PURGE from this host?)');
      }
      const { retry } = round;
      const left = retry.keys.length + retry.urls.length;
      if (left === 0) {
        endpoint.failures = 0;
        endpoint.backoff.reset();
        continue;
      }
      if (signal.aborted) {
        this.#enqueue(endpoint, retry);
        break;
      }
      endpoint.failures++;
      if (endpoint.failures >= this.#attempts) {
        this.dropped += left;
        this.#log.error({ ...where, attempts: endpoint.failures, dropped: left, ...round.firstFailure }, 'purge failed; giving up (caches keep those pages until their TTL)');
        endpoint.failures = 0;
        endpoint.backoff.reset();
        continue;
      }
      // Back in the queue with whatever came meanwhile: the next attempt sends them all.
      this.#enqueue(endpoint, retry);
      const delayMs = endpoint.backoff.next();
      this.#log.warn({ ...where, attempt: endpoint.failures, failed: round.failed, delayMs, ...round.firstFailure }, 'purge failed; retrying');
      await sleep(delayMs, signal);
    }
    if (endpoint.keys.size + endpoint.urls.size === 0) endpoint.overflowLogged = false;
  }

  /** Sends keys (in groups) and URLs to one endpoint. */
  async #send(endpoint: Endpoint, keys: readonly string[], urls: readonly string[], signal: AbortSignal): Promise<Round> {
    const retryKeys: string[] = [];
    const retryUrls: string[] = [];
    let failed = 0;
    let refused = 0;
    let firstFailure: Record<string, unknown> | null = null;
    let firstRefusal: Record<string, unknown> | null = null;
    const note = (outcome: Outcome, detail: Record<string, unknown>, items: number): void => {
      if (outcome === 'done') return;
      this.failed++;
      if (outcome === 'refused') {
        refused += items;
        firstRefusal ??= detail;
      } else {
        failed++;
        firstFailure ??= detail;
      }
    };
    for (const group of keyGroups(keys, this.#maxHeaderBytes)) {
      const { outcome, detail } = await this.#request(endpoint.url, { [KEY_PURGE_HEADER]: group.join(' ') }, 'key', signal);
      note(outcome, { keys: group.length, ...detail }, group.length);
      if (outcome === 'retry') retryKeys.push(...group);
    }
    const base = endpoint.url.pathname.replace(/\/+$/, '');
    await mapLimit(urls, this.#concurrency, async (path) => {
      const { outcome, detail } = await this.#request(new URL(base + path, endpoint.url), {}, 'url', signal);
      note(outcome, { url: path, ...detail }, 1);
      if (outcome === 'retry') retryUrls.push(path);
    });
    return { retry: { keys: retryKeys, urls: retryUrls }, failed, firstFailure, refused, firstRefusal };
  }

  /** One PURGE request. */
  async #request(target: URL, headers: Record<string, string>, kind: 'key' | 'url', signal: AbortSignal): Promise<{ outcome: Outcome; detail: Record<string, unknown> }> {
    try {
      const res = await fetch(target, {
        method: 'PURGE',
        headers: { 'user-agent': 'pyedge-publisher', ...headers },
        signal: AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)]),
      });
      await res.arrayBuffer().catch(() => undefined);
      const outcome = outcomeOf(res.status, kind);
      if (outcome === 'done') {
        this.sent++;
        this.#log.debug({ url: target.href, ...headers, status: res.status }, 'purge sent');
      }
      return { outcome, detail: { status: res.status } };
    } catch (err) {
      // fetch reports a refused connection as 'fetch failed' with the socket error as its cause.
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
      return { outcome: 'retry', detail: { err: cause instanceof Error ? cause.message : String(cause) } };
    }
  }
}
