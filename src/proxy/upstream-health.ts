/**
 * One upstream's health record: healthy, degraded or down, learned from live
 * traffic and background probes. It only records outcomes and answers "may I
 * send to it now, and how good is it"; retrying and hedging live elsewhere.
 *
 * - a success resets the consecutive failures; `downAfter` of them in a row
 *   mark the upstream down until a back-off has passed (doubling per failed
 *   probe, up to a cap);
 * - one failure, or a wrong answer (bad hash, bad signature, stale page) within
 *   the penalty period, keeps it degraded.
 */
import type { HealthPolicy } from './proxy-config.js';
import { WRONG_ANSWER, type FailureKind } from './upstream-client.js';
import { LatencyWindow } from './latency-window.js';

export type HealthState = 'healthy' | 'degraded' | 'down';

/** Hedges lost in a row that mark an upstream degraded (slow). */
const SLOW_AFTER = 3;

export interface StateChange {
  readonly from: HealthState;
  readonly to: HealthState;
  readonly reason: string;
}

export class UpstreamHealth {
  readonly latency = new LatencyWindow(200);
  readonly #policy: HealthPolicy;
  readonly #now: () => number;
  readonly #onChange: (change: StateChange) => void;
  #state: HealthState = 'healthy';
  #consecutiveFailures = 0;
  #backoffMs: number;
  #retryAt = 0;
  #penaltyUntil = 0;
  #lastReason = 'no traffic yet';
  /** Hedged requests lost in a row: an upstream that answers, but slower than the others. */
  #slowStreak = 0;

  requests = 0;
  successes = 0;
  failures = 0;
  readonly failuresByKind = new Map<FailureKind, number>();
  hedgesWon = 0;
  hedgesLost = 0;
  lastError: { at: string; kind: FailureKind; message: string } | null = null;
  /** Newest serial the upstream reported for the whole index (from probes), or null. */
  indexSerial: number | null = null;

  constructor(policy: HealthPolicy, onChange: (change: StateChange) => void, now: () => number = Date.now) {
    this.#policy = policy;
    this.#onChange = onChange;
    this.#now = now;
    this.#backoffMs = policy.backoffMs;
  }

  get state(): HealthState {
    this.#refresh();
    return this.#state;
  }

  get reason(): string {
    return this.#lastReason;
  }

  /** Hedged requests lost in a row since its last good answer. */
  get slowStreak(): number {
    return this.#slowStreak;
  }

  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** When a down upstream may be tried again (ms since the epoch), else 0. */
  get retryAt(): number {
    return this.#state === 'down' ? this.#retryAt : 0;
  }

  /** Down and still inside its back-off. */
  get resting(): boolean {
    return this.state === 'down' && this.#now() < this.#retryAt;
  }

  success(firstByteMs: number | null): void {
    this.requests++;
    this.successes++;
    if (firstByteMs !== null) this.latency.add(firstByteMs);
    this.#consecutiveFailures = 0;
    this.#slowStreak = 0;
    this.#backoffMs = this.#policy.backoffMs;
    this.#settle(this.#penaltyUntil > this.#now() ? 'degraded' : 'healthy', 'answering');
  }

  failure(kind: FailureKind, message: string): void {
    if (kind === 'aborted' || kind === 'not-found') return;
    this.requests++;
    this.failures++;
    this.failuresByKind.set(kind, (this.failuresByKind.get(kind) ?? 0) + 1);
    this.lastError = { at: new Date(this.#now()).toISOString(), kind, message };
    const reason = `${kind}: ${message}`;
    if (WRONG_ANSWER.has(kind)) {
      // A wrong answer comes from a server that answers quickly: probes would call it healthy again.
      this.#penaltyUntil = this.#now() + this.#policy.penaltyMs;
      this.#settle(this.#state === 'down' ? 'down' : 'degraded', reason);
      return;
    }
    this.#consecutiveFailures++;
    if (this.#consecutiveFailures >= this.#policy.downAfter) {
      if (this.#state === 'down') this.#backoffMs = Math.min(this.#backoffMs * 2, this.#policy.maxBackoffMs);
      this.#retryAt = this.#now() + this.#backoffMs;
      this.#settle('down', reason);
    } else {
      this.#settle('degraded', reason);
    }
  }

  /** A hedged request this upstream lost: it was slower than another, which says something about it. */
  lostHedge(elapsedMs: number): void {
    this.hedgesLost++;
    this.latency.add(elapsedMs);
    this.#slowStreak++;
    if (this.#slowStreak >= SLOW_AFTER && this.#state === 'healthy') this.#settle('degraded', `slow: lost ${this.#slowStreak} hedged requests in a row`);
  }

  /** Lower is better: the order in which upstreams are tried. */
  rank(): number {
    const state = this.state;
    if (state === 'healthy') return 0;
    if (state === 'degraded') return this.#penaltyUntil > this.#now() ? 2 : 1;
    return this.resting ? 4 : 3;
  }

  #refresh(): void {
    if (this.#state === 'degraded' && this.#consecutiveFailures === 0 && this.#slowStreak < SLOW_AFTER && this.#penaltyUntil <= this.#now()) {
      this.#settle('healthy', 'penalty over');
    }
  }

  #settle(next: HealthState, reason: string): void {
    if (next === this.#state) {
      this.#lastReason = reason;
      return;
    }
    const from = this.#state;
    this.#state = next;
    this.#lastReason = reason;
    this.#onChange({ from, to: next, reason });
  }
}
