/** `/_status`: each upstream's state, latencies, errors and hedges, as JSON or a small HTML page. */
import { escapeHtml } from '../render/escape-html.js';
import type { Hedger, RequestKind } from './hedger.js';
import type { HealthState } from './upstream-health.js';
import type { UpstreamSet } from './upstream-set.js';

export interface UpstreamStatus {
  readonly url: string;
  readonly state: HealthState;
  readonly reason: string;
  readonly consecutiveFailures: number;
  /** When a down upstream is tried again (ISO), or null. */
  readonly retryAt: string | null;
  readonly requests: number;
  readonly successes: number;
  readonly failures: number;
  readonly failuresByKind: Record<string, number>;
  readonly lastError: { at: string; kind: string; message: string } | null;
  readonly latencyMs: { p50: number | null; p90: number | null; p99: number | null; samples: number };
  readonly hedgesWon: number;
  readonly hedgesLost: number;
  readonly indexSerial: number | null;
}

export interface ProxyStatus {
  readonly startedAt: string;
  readonly cache: { dir: string; persistent: boolean };
  readonly signatures: { mode: string; keys: Record<string, string>; source: string | null };
  readonly hedging: {
    readonly budget: number;
    readonly share: number;
    readonly delayMs: Record<RequestKind, number>;
    readonly byKind: Hedger['counts'];
  };
  readonly pagesServedStale: number;
  readonly integrityFailures: number;
  readonly upstreams: readonly UpstreamStatus[];
}

const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);

export function upstreamStatuses(upstreams: UpstreamSet): UpstreamStatus[] {
  return upstreams.list.map((u) => {
    const h = u.health;
    return {
      url: u.root,
      state: h.state,
      reason: h.reason,
      consecutiveFailures: h.consecutiveFailures,
      retryAt: h.retryAt > 0 ? new Date(h.retryAt).toISOString() : null,
      requests: h.requests,
      successes: h.successes,
      failures: h.failures,
      failuresByKind: Object.fromEntries(h.failuresByKind),
      lastError: h.lastError,
      latencyMs: { p50: round(h.latency.percentile(0.5)), p90: round(h.latency.percentile(0.9)), p99: round(h.latency.percentile(0.99)), samples: h.latency.count },
      hedgesWon: h.hedgesWon,
      hedgesLost: h.hedgesLost,
      indexSerial: h.indexSerial,
    };
  });
}

export function statusHtml(status: ProxyStatus): string {
  const ms = (v: number | null): string => (v === null ? '–' : `${v} ms`);
  const rows = status.upstreams
    .map(
      (u) =>
        `      <tr class="${u.state}"><td>${escapeHtml(u.url)}</td><td>${u.state}</td><td>${escapeHtml(u.reason)}</td>` +
        `<td>${u.requests}</td><td>${u.failures}</td><td>${ms(u.latencyMs.p50)}</td><td>${ms(u.latencyMs.p90)}</td><td>${ms(u.latencyMs.p99)}</td>` +
        `<td>${u.hedgesWon}/${u.hedgesLost}</td><td>${u.indexSerial ?? '–'}</td></tr>\n`,
    )
    .join('');
  const h = status.hedging;
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>pyedge proxy status</title>
    <style>
      body { font-family: sans-serif; margin: 2em; } table { border-collapse: collapse; } td, th { padding: .3em .8em; border-bottom: 1px solid #ddd; text-align: left; }
      tr.healthy td:nth-child(2) { color: #080; } tr.degraded td:nth-child(2) { color: #b60; } tr.down td:nth-child(2) { color: #c00; font-weight: bold; }
    </style>
  </head>
  <body>
    <h1>pyedge proxy</h1>
    <table>
      <tr><th>upstream</th><th>state</th><th>why</th><th>requests</th><th>failures</th><th>p50</th><th>p90</th><th>p99</th><th>hedges won/lost</th><th>index serial</th></tr>
${rows}    </table>
    <p>Hedged ${(h.share * 100).toFixed(1)}% of requests (budget ${(h.budget * 100).toFixed(0)}%); delay ${h.delayMs.page} ms for pages, ${h.delayMs.file} ms for files.</p>
    <p>Pages served from the cache because every upstream failed: ${status.pagesServedStale}. Downloads refused for a wrong hash: ${status.integrityFailures}.</p>
    <p>Signatures: ${escapeHtml(status.signatures.mode)}${Object.keys(status.signatures.keys).length > 0 ? `, keys ${escapeHtml(Object.entries(status.signatures.keys).map(([u, k]) => `${k} (${u})`).join(', '))} from ${escapeHtml(status.signatures.source ?? '')}` : ', no key yet'}. Cache: ${escapeHtml(status.cache.dir)}${status.cache.persistent ? '' : ' (temporary)'}.</p>
    <p><a href="/_status?format=json">JSON</a> · <a href="/metrics">metrics</a></p>
  </body>
</html>
`;
}
