/**
 * Background probes: each upstream is asked now and then whether it is alive
 * (`/_health` where it exists, else a HEAD of the index root), and a down one
 * is asked again once its back-off has passed. Outcomes go to the same health
 * record live traffic feeds; probes also learn each upstream's index serial.
 */
import type { HealthPolicy, Timeouts } from './proxy-config.js';
import { asFailure, UpstreamFailure, upstreamRequest } from './upstream-client.js';
import type { Upstream } from './upstream.js';
import type { UpstreamSet } from './upstream-set.js';
import { serialHeader } from './page-source.js';

const TICK_MS = 200;

export class Prober {
  readonly #upstreams: UpstreamSet;
  readonly #policy: HealthPolicy;
  readonly #timeouts: Timeouts;
  readonly #last = new Map<Upstream, number>();
  readonly #busy = new Set<Upstream>();
  #timer: NodeJS.Timeout | null = null;
  probes = 0;

  constructor(upstreams: UpstreamSet, policy: HealthPolicy, timeouts: Timeouts) {
    this.#upstreams = upstreams;
    this.#policy = policy;
    this.#timeouts = timeouts;
  }

  /** Probe every upstream once, then keep probing in the background (unless the interval is 0). */
  async start(): Promise<void> {
    if (this.#policy.probeIntervalMs <= 0) return;
    await Promise.all(this.#upstreams.list.map((u) => this.probe(u)));
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  #tick(): void {
    const now = Date.now();
    for (const u of this.#upstreams.list) {
      if (this.#busy.has(u)) continue;
      const last = this.#last.get(u) ?? 0;
      const state = u.health.state;
      // A down upstream is asked when its back-off ends; a degraded one soon, to settle which it is.
      const due =
        state === 'down' ? now >= u.health.retryAt : state === 'degraded' && u.health.consecutiveFailures > 0 ? now - last >= this.#policy.backoffMs / 2 : now - last >= this.#policy.probeIntervalMs;
      if (due) void this.probe(u);
    }
  }

  /** One probe; its outcome goes to the upstream's health record. */
  async probe(u: Upstream): Promise<void> {
    if (this.#busy.has(u)) return;
    this.#busy.add(u);
    this.probes++;
    try {
      const ms = await this.#ask(u);
      u.health.success(ms);
    } catch (err) {
      const f = asFailure(err);
      u.health.failure(f.kind, `probe: ${f.message}`);
    } finally {
      this.#last.set(u, Date.now());
      this.#busy.delete(u);
    }
  }

  async #ask(u: Upstream): Promise<number> {
    if (u.hasHealthRoute !== false) {
      const res = await upstreamRequest(u.siteUrl('_health'), { timeouts: this.#timeouts, headers: { accept: 'application/json' } });
      const body = await res.text(64 * 1024);
      if (res.status === 200) {
        u.hasHealthRoute = true;
        let serial = serialHeader(res.headers['x-pypi-last-serial']);
        try {
          const doc = JSON.parse(body.toString('utf8')) as { serial?: unknown };
          if (typeof doc.serial === 'number') serial = doc.serial;
        } catch {
          throw new UpstreamFailure('invalid', '/_health is not JSON');
        }
        if (serial !== null) u.health.indexSerial = serial;
        return res.firstByteMs;
      }
      if (res.status >= 500 || u.hasHealthRoute === true) throw new UpstreamFailure('status', `HTTP ${res.status} from /_health`, { status: res.status });
      u.hasHealthRoute = false;
    }
    const res = await upstreamRequest(u.root, { method: 'HEAD', timeouts: this.#timeouts });
    await res.text(1024);
    if (res.status >= 500) throw new UpstreamFailure('status', `HTTP ${res.status} from the index root`, { status: res.status });
    const serial = serialHeader(res.headers['x-pypi-last-serial']);
    if (serial !== null) u.health.indexSerial = serial;
    return res.firstByteMs;
  }
}
