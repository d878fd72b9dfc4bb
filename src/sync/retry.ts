/**
 * Waiting out a source that is down: exponential backoff, capped and
 * jittered (so many publishers do not come back in lock-step), abortable.
 */
import { PyedgeError } from '../core/errors.js';

/** How long to wait between attempts; every duration in milliseconds. */
export interface BackoffPolicy {
  /** The first delay. */
  readonly initialMs: number;
  /** No delay is longer than this. */
  readonly maxMs: number;
  /** Each delay is this many times the previous one. */
  readonly factor: number;
  /** 0..1: a delay is drawn from [d·(1-jitter), d]. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 100, maxMs: 5_000, factor: 2, jitter: 0.5 });

/** Successive delays of one run of failures. */
export class Backoff {
  #attempt = 0;

  constructor(
    private readonly policy: BackoffPolicy = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** Failures since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt. */
  next(): number {
    const { initialMs, maxMs, factor, jitter } = this.policy;
    const full = Math.min(maxMs, initialMs * factor ** this.#attempt);
    this.#attempt++;
    return Math.round(full * (1 - jitter * this.random()));
  }

  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** True for failures worth retrying: the source is unreachable, overloaded or timed out. */
export function isTransient(err: unknown): boolean {
  if (err instanceof PyedgeError) return err.code === 'PYEDGE_UNAVAILABLE';
  if (!(err instanceof Error)) return false;
  // fetch reports network failures as a TypeError ('fetch failed', 'terminated') whose cause is the socket error.
  if (err.name === 'TypeError' && /^(fetch failed|terminated)/.test(err.message)) return true;
  if (err.name === 'TimeoutError') return true;
  const code = (err as NodeJS.ErrnoException).code;
  return code !== undefined && /^(ECONN|EPIPE|ETIMEDOUT|EAI_AGAIN|UND_ERR)/.test(code);
}

export interface RetryOptions {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  readonly policy?: BackoffPolicy;
  readonly signal?: AbortSignal | undefined;
  /** Called before each wait, with the failure and the delay. */
  readonly onRetry?: (err: unknown, delayMs: number) => void;
}

/** Runs `fn` until it succeeds, a failure is not transient, the attempts run out or `signal` aborts. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const backoff = new Backoff(options.policy);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= options.attempts || !isTransient(err) || options.signal?.aborted) throw err;
      const delay = backoff.next();
      options.onRetry?.(err, delay);
      await sleep(delay, options.signal);
      if (options.signal?.aborted) throw err;
    }
  }
}
