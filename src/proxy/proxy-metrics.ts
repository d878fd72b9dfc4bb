/**
 * The proxy's Prometheus metrics, on their own prom-client Registry. Most are
 * read from the health records and the hedger at each scrape; client requests
 * are counted as they are answered.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Hedger, RequestKind } from './hedger.js';
import type { UpstreamSet } from './upstream-set.js';

const KINDS: readonly RequestKind[] = ['page', 'file', 'other'];

export interface ProxyCounts {
  readonly staleServed: () => number;
  readonly integrityFailures: () => number;
}

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly #responses: Counter<'route' | 'status'>;

  constructor(upstreams: UpstreamSet, hedger: Hedger, counts: ProxyCounts) {
    const registers = [this.registry];
    new Gauge({
      name: 'pyedge_proxy_upstream_state',
      help: 'Health of each upstream: 1 for its current state (healthy, degraded, down), 0 for the others.',
      labelNames: ['upstream', 'state'],
      registers,
      collect() {
        for (const u of upstreams.list) for (const s of ['healthy', 'degraded', 'down']) this.set({ upstream: u.root, state: s }, u.health.state === s ? 1 : 0);
      },
    });
    new Counter({
      name: 'pyedge_proxy_upstream_requests_total',
      help: 'Requests to each upstream by outcome (probes included).',
      labelNames: ['upstream', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const u of upstreams.list) {
          this.inc({ upstream: u.root, outcome: 'success' }, u.health.successes);
          this.inc({ upstream: u.root, outcome: 'failure' }, u.health.failures);
        }
      },
    });
    new Counter({
      name: 'pyedge_proxy_upstream_failures_total',
      help: 'Failures of each upstream by kind (refused, connect-timeout, first-byte-timeout, idle-timeout, status, invalid, integrity, signature, stale, …).',
      labelNames: ['upstream', 'kind'],
      registers,
      collect() {
        this.reset();
        for (const u of upstreams.list) for (const [kind, n] of u.health.failuresByKind) this.inc({ upstream: u.root, kind }, n);
      },
    });
    new Gauge({
      name: 'pyedge_proxy_upstream_first_byte_seconds',
      help: 'Recent time to first byte of each upstream, by quantile.',
      labelNames: ['upstream', 'quantile'],
      registers,
      collect() {
        this.reset();
        for (const u of upstreams.list) {
          for (const q of [0.5, 0.9, 0.99]) {
            const v = u.health.latency.percentile(q);
            if (v !== null) this.set({ upstream: u.root, quantile: String(q) }, v / 1000);
          }
        }
      },
    });
    new Counter({
      name: 'pyedge_proxy_requests_total',
      help: 'Logical requests sent to upstreams, by kind (page, file, other).',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const k of KINDS) this.inc({ kind: k }, hedger.counts[k].requests);
      },
    });
    new Counter({
      name: 'pyedge_proxy_hedged_requests_total',
      help: 'Requests also sent to a second upstream because the first was slow, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const k of KINDS) this.inc({ kind: k }, hedger.counts[k].hedged);
      },
    });
    new Counter({
      name: 'pyedge_proxy_hedges_won_total',
      help: 'Hedged requests whose second request answered first, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const k of KINDS) this.inc({ kind: k }, hedger.counts[k].hedgesWon);
      },
    });
    new Gauge({
      name: 'pyedge_proxy_hedge_delay_seconds',
      help: 'Current hedge delay, learned from recent first-byte latencies, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const k of KINDS) this.set({ kind: k }, hedger.delay(k) / 1000);
      },
    });
    new Counter({
      name: 'pyedge_proxy_stale_pages_served_total',
      help: 'Pages served from the cache because every upstream failed.',
      registers,
      collect() {
        this.reset();
        this.inc(counts.staleServed());
      },
    });
    new Counter({
      name: 'pyedge_proxy_integrity_failures_total',
      help: 'Downloads refused because their hash did not match the page.',
      registers,
      collect() {
        this.reset();
        this.inc(counts.integrityFailures());
      },
    });
    this.#responses = new Counter({
      name: 'pyedge_proxy_responses_total',
      help: 'Answers to clients, by route (page, file, metadata, json-api, forward, status) and HTTP status.',
      labelNames: ['route', 'status'],
      registers,
    });
  }

  response(route: string, status: number): void {
    this.#responses.inc({ route, status: String(status) });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
