/**
 * Sends one logical request to upstreams in order until one gives a good
 * answer. A failure moves on to the next upstream at once; an upstream that
 * has not answered (no response headers) within the hedge delay gets company:
 * the same request goes to the next one, within the hedging budget, and the
 * first good answer wins while the others are cancelled.
 *
 * The delay is a high percentile of recent first-byte latencies (per kind of
 * request); the budget caps hedged requests at a share of all requests.
 * Outcomes are reported to each upstream's health record, which this module
 * only reads through the order it is given.
 */
import type { HedgePolicy, Timeouts } from './proxy-config.js';
import { asFailure, UpstreamFailure } from './upstream-client.js';
import { LatencyWindow } from './latency-window.js';
import type { Upstream } from './upstream.js';

export type RequestKind = 'page' | 'file' | 'other';

/** What an attempt tells the hedger while it runs. */
export interface AttemptProgress {
  /** The upstream's response headers arrived: no hedge is needed for this attempt. */
  firstByte(ms: number): void;
}

export type Attempt<T> = (upstream: Upstream, signal: AbortSignal, progress: AttemptProgress) => Promise<T>;

export interface Won<T> {
  readonly value: T;
  readonly upstream: Upstream;
  /** The winner was a hedged request. */
  readonly hedged: boolean;
}

/** Every upstream failed; `failures` says how each did. */
export class AllUpstreamsFailed extends Error {
  readonly failures: readonly { upstream: string; failure: UpstreamFailure }[];
  constructor(failures: { upstream: string; failure: UpstreamFailure }[]) {
    super(
      failures.length === 0
        ? 'no upstream to ask'
        : `every upstream failed: ${failures.map((f) => `${f.upstream} (${f.failure.kind}: ${f.failure.message})`).join('; ')}`,
    );
    this.name = 'AllUpstreamsFailed';
    this.failures = failures;
  }

  /** Every upstream said the thing does not exist. */
  get notFound(): boolean {
    return this.failures.length > 0 && this.failures.every((f) => f.failure.kind === 'not-found');
  }
}

export interface HedgeCounts {
  requests: number;
  hedged: number;
  hedgesWon: number;
}

export class Hedger {
  readonly #policy: HedgePolicy;
  readonly #windows = new Map<RequestKind, LatencyWindow>();
  readonly counts: Record<RequestKind, HedgeCounts> = {
    page: { requests: 0, hedged: 0, hedgesWon: 0 },
    file: { requests: 0, hedged: 0, hedgesWon: 0 },
    other: { requests: 0, hedged: 0, hedgesWon: 0 },
  };
  #requests = 0;
  #hedged = 0;

  constructor(policy: HedgePolicy) {
    this.#policy = policy;
  }

  /** The current hedge delay for a kind of request, in ms. */
  delay(kind: RequestKind): number {
    const window = this.#windows.get(kind);
    const p = window && window.count >= 20 ? window.percentile(this.#policy.percentile) : null;
    const learned = p === null ? this.#policy.initialDelayMs : p * 1.2 + 2;
    return Math.min(this.#policy.maxDelayMs, Math.max(this.#policy.minDelayMs, learned));
  }

  /** Share of requests hedged so far. */
  get hedgedShare(): number {
    return this.#requests === 0 ? 0 : this.#hedged / this.#requests;
  }

  #window(kind: RequestKind): LatencyWindow {
    let w = this.#windows.get(kind);
    if (!w) this.#windows.set(kind, (w = new LatencyWindow(500)));
    return w;
  }

  /** A hedge fits the budget (one spare hedge so the first hang after a start is covered too). */
  #takeHedge(): boolean {
    if (this.#hedged + 1 > this.#policy.budget * this.#requests + 1) return false;
    this.#hedged++;
    return true;
  }

  /** Run `attempt` against `order` (best first) until one succeeds. */
  run<T>(
    kind: RequestKind,
    order: readonly Upstream[],
    attempt: Attempt<T>,
    options: { hedge?: boolean; dispose?: (late: T) => void } = {},
  ): Promise<Won<T>> {
    this.#requests++;
    this.counts[kind].requests++;
    const hedging = (options.hedge ?? true) && this.#policy.budget > 0;
    return new Promise<Won<T>>((resolve, reject) => {
      const failures: { upstream: string; failure: UpstreamFailure }[] = [];
      const running = new Map<Upstream, { controller: AbortController; started: number; hedge: boolean; answered: boolean }>();
      let next = 0;
      let done = false;
      let hedgeTimer: NodeJS.Timeout | null = null;

      const finish = (): void => {
        done = true;
        if (hedgeTimer) clearTimeout(hedgeTimer);
      };

      const scheduleHedge = (): void => {
        if (!hedging || next >= order.length) return;
        if (hedgeTimer) clearTimeout(hedgeTimer);
        hedgeTimer = setTimeout(() => {
          hedgeTimer = null;
          if (done || next >= order.length) return;
          // Only when nothing under way has answered yet.
          if ([...running.values()].some((r) => r.answered)) return;
          if (running.size === 0 || !this.#takeHedge()) return;
          this.counts[kind].hedged++;
          start(true);
          scheduleHedge();
        }, this.delay(kind));
      };

      const start = (hedge: boolean): boolean => {
        if (next >= order.length) return false;
        const upstream = order[next++]!;
        const controller = new AbortController();
        const entry = { controller, started: performance.now(), hedge, answered: false };
        running.set(upstream, entry);
        const progress: AttemptProgress = {
          firstByte: (ms) => {
            entry.answered = true;
            upstream.health.latency.add(ms);
            if (!done) this.#window(kind).add(ms);
          },
        };
        attempt(upstream, controller.signal, progress).then(
          (value) => {
            running.delete(upstream);
            if (done) {
              options.dispose?.(value);
              return;
            }
            finish();
            upstream.health.success(null);
            if (hedge) {
              upstream.health.hedgesWon++;
              this.counts[kind].hedgesWon++;
            }
            for (const [other, r] of running) {
              r.controller.abort();
              other.health.lostHedge(performance.now() - r.started);
            }
            running.clear();
            resolve({ value, upstream, hedged: hedge });
          },
          (err: unknown) => {
            running.delete(upstream);
            const failure = asFailure(err);
            if (done && failure.kind === 'aborted') return;
            upstream.health.failure(failure.kind, failure.message);
            failures.push({ upstream: upstream.root, failure });
            if (done) return;
            // A failed attempt is replaced at once (no budget: it is fail-over, not a hedge), unless
            // another one under way has already answered and is only sending its body.
            const answering = [...running.values()].some((r) => r.answered);
            if (!answering && start(false)) scheduleHedge();
            else if (running.size === 0) {
              finish();
              reject(new AllUpstreamsFailed(failures));
            }
          },
        );
        return true;
      };

      if (!start(false)) {
        finish();
        reject(new AllUpstreamsFailed(failures));
        return;
      }
      scheduleHedge();
    });
  }
}

/**
 * After every upstream failed: the ones that were only slow (no headers, or a
 * stalled body, in time) and are not resting, to ask once more with patient
 * timeouts. A loaded server is then slow rather than gone; a refusing or
 * wrong one is not asked again.
 */
export function slowOnly(err: AllUpstreamsFailed, upstreams: readonly Upstream[]): Upstream[] {
  const slow = new Set(err.failures.filter((f) => f.failure.kind === 'first-byte-timeout' || f.failure.kind === 'idle-timeout').map((f) => f.upstream));
  const failedOtherwise = new Set(err.failures.filter((f) => !slow.has(f.upstream)).map((f) => f.upstream));
  return upstreams.filter((u) => slow.has(u.root) && !failedOtherwise.has(u.root) && !u.health.resting);
}

/** Timeouts for the patient round: four times as long to the first byte and between chunks. */
export function patient(timeouts: Timeouts): Timeouts {
  return { connectMs: timeouts.connectMs, firstByteMs: timeouts.firstByteMs * 4, idleMs: timeouts.idleMs * 4 };
}
