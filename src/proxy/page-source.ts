/**
 * Project pages from the upstreams, checked before use: it must parse, be
 * signed when a key is known, and be no older than the newest serial already
 * seen for the project (monotonic reads). A page that fails any check is a
 * failure of that upstream, and the next one is asked. When every upstream
 * fails, the cached page is served (stale-if-error), saying so.
 */
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { SignedFormat } from '../core/signing.js';
import { AllUpstreamsFailed, patient, slowOnly, type AttemptProgress, type Hedger, type Won } from './hedger.js';
import type { FileIndex } from './file-index.js';
import type { PageSignatures } from './page-signatures.js';
import type { CachedPage, ProxyCache } from './proxy-cache.js';
import type { Timeouts } from './proxy-config.js';
import { parsePage, type ProjectPage } from './simple-page.js';
import { UpstreamFailure, requireOk, upstreamRequest } from './upstream-client.js';
import type { Upstream } from './upstream.js';
import type { UpstreamSet } from './upstream-set.js';

/** JSON first: the proxy renders HTML itself when the client wants it. */
const UPSTREAM_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1';
const PAGE_LIMIT = 256 * 1024 * 1024;

/** How a page was obtained: fresh from an upstream, or from the cache because upstreams failed or were older. */
export type PageOrigin = 'upstream' | 'stale-if-error' | 'newer-than-upstreams';

export interface PageAnswer {
  readonly page: ProjectPage;
  readonly origin: PageOrigin;
  readonly upstream: string | null;
  readonly hedged: boolean;
}

export interface PageSourceDeps {
  readonly upstreams: UpstreamSet;
  readonly hedger: Hedger;
  readonly cache: ProxyCache;
  readonly files: FileIndex;
  readonly signatures: PageSignatures;
  readonly timeouts: Timeouts;
  readonly logger: Logger;
}

export function serialHeader(value: string | string[] | undefined): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : null;
}

export class PageSource {
  readonly #d: PageSourceDeps;
  readonly #inflight = new Map<string, Promise<PageAnswer>>();
  staleServed = 0;

  constructor(deps: PageSourceDeps) {
    this.#d = deps;
  }

  /** The page of a normalized project name; throws AllUpstreamsFailed (maybe `notFound`) when nothing can be served. */
  get(name: string): Promise<PageAnswer> {
    let p = this.#inflight.get(name);
    if (!p) {
      p = this.#get(name).finally(() => this.#inflight.delete(name));
      this.#inflight.set(name, p);
    }
    return p;
  }

  async #get(name: string): Promise<PageAnswer> {
    const { upstreams, hedger, cache, logger } = this.#d;
    const cached = await cache.page(name);
    if (cached?.serial != null) upstreams.sawSerial(name, cached.serial, -1);
    const order = upstreams.order('page', name);
    if (order.allResting && cached) return this.#fromCache(cached, 'stale-if-error', 'every upstream is down');
    try {
      const ask = (list: readonly Upstream[], timeouts: Timeouts): Promise<Won<ProjectPage>> =>
        hedger.run('page', list, async (u, signal, progress) => this.#fetch(u, name, await this.#d.signatures.key(u, timeouts), timeouts, signal, progress, true));
      let won: Won<ProjectPage>;
      try {
        won = await ask(order.upstreams, this.#d.timeouts);
      } catch (err) {
        // With a cached copy to fall back on, answering now beats waiting longer.
        const slow = err instanceof AllUpstreamsFailed && !cached ? slowOnly(err, order.upstreams) : [];
        if (slow.length === 0) throw err;
        won = await ask(slow, patient(this.#d.timeouts));
      }
      const page = won.value;
      if (page.serial !== null) upstreams.sawSerial(name, page.serial, won.upstream.index);
      this.#d.files.learn(name, won.upstream, page.files);
      // Kept in memory at once; written to the cache folder behind the answer.
      cache.putPage({ name, serial: page.serial, fetchedAt: new Date().toISOString(), upstream: won.upstream.root, page }).catch((err: unknown) => {
        logger.warn({ err, project: name }, 'could not cache a page');
      });
      return { page, origin: 'upstream', upstream: won.upstream.root, hedged: won.hedged };
    } catch (err) {
      if (!(err instanceof AllUpstreamsFailed)) throw err;
      const failed = err;
      if (failed.notFound || !cached) throw failed;
      const onlyOlder = failed.failures.every((f) => f.failure.kind === 'stale' || f.failure.kind === 'not-found');
      return this.#fromCache(cached, onlyOlder ? 'newer-than-upstreams' : 'stale-if-error', failed.message);
    }
  }

  #fromCache(cached: CachedPage, origin: PageOrigin, why: string): PageAnswer {
    const upstream = this.#d.upstreams.list.find((u) => u.root === cached.upstream);
    if (upstream) this.#d.files.learn(cached.name, upstream, cached.page.files);
    if (origin === 'stale-if-error') {
      this.staleServed++;
      this.#d.logger.warn({ project: cached.name, serial: cached.serial, fetchedAt: cached.fetchedAt, why }, 'serving a cached page: every upstream failed');
    }
    return { page: cached.page, origin, upstream: null, hedged: false };
  }

  async #fetch(
    u: Upstream,
    name: string,
    key: KeyObject | null,
    timeouts: Timeouts,
    signal: AbortSignal,
    progress: AttemptProgress,
    retryOnRace: boolean,
  ): Promise<ProjectPage> {
    const { signatures, upstreams } = this.#d;
    const known = upstreams.serial(name);
    const sigPromise = key === null ? null : signatures.fetch(u, name, timeouts, signal).then((s) => s, (e: unknown) => e as Error);
    const url = `${u.root}${encodeURIComponent(name)}/`;
    const res = await upstreamRequest(url, { timeouts, signal, headers: { accept: UPSTREAM_ACCEPT } });
    progress.firstByte(res.firstByteMs);
    requireOk(res);
    const body = await res.text(PAGE_LIMIT);
    const page = parsePage(name, String(res.headers['content-type'] ?? ''), body, url, serialHeader(res.headers['x-pypi-last-serial']));
    // Older than what was already served: refused before its signature is even looked at.
    if (known !== undefined && page.serial !== null && page.serial < known) {
      throw new UpstreamFailure('stale', `serial ${page.serial} of '${name}' is older than ${known} already seen`);
    }
    if (key !== null && sigPromise !== null) {
      const sig = await sigPromise;
      if (sig instanceof Error) throw sig;
      try {
        signatures.check(key, sig, name, page.source as SignedFormat, body, known);
      } catch (err) {
        // A change between the page and its signature: ask once more before calling it a bad signature.
        if (retryOnRace && sig !== null && page.serial !== null && sig.serial !== page.serial) return this.#fetch(u, name, key, timeouts, signal, progress, false);
        throw err;
      }
    }
    return page;
  }
}
