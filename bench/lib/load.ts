/** A closed-loop HTTP load generator: N clients on keep-alive connections, each sending its next request as soon as the last is answered. */
import http from 'node:http';
import { percentile } from './stats.js';

/** One request to send. */
export interface LoadRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: http.OutgoingHttpHeaders;
  readonly body?: Buffer;
}

/** What a load run measured. */
export interface LoadResult {
  readonly requests: number;
  /** Answers other than 2xx, plus transport failures. */
  readonly errors: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The first failure seen, to tell a reader why errors is not 0. */
  readonly firstError: string | null;
}

const REQUEST_TIMEOUT_MS = 60_000;

function send(agent: http.Agent, base: URL, r: LoadRequest): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = { ...r.headers };
    if (r.body) headers['content-length'] = r.body.length;
    const req = http.request(
      { host: base.hostname, port: base.port, method: r.method, path: r.path, headers, agent, timeout: REQUEST_TIMEOUT_MS },
      (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        // Keep the body only of failures: reading it is all a success costs.
        res.on('data', (c: Buffer) => {
          if (status >= 300) chunks.push(c);
        });
        res.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(r.body);
  });
}

/** Send every request once, `concurrency` at a time, and time each. */
export async function runLoad(baseUrl: string, requests: readonly LoadRequest[], concurrency: number): Promise<LoadResult> {
  const base = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = new Float64Array(requests.length);
  let next = 0;
  let errors = 0;
  let firstError: string | null = null;
  const started = process.hrtime.bigint();
  const client = async (): Promise<void> => {
    for (let i = next++; i < requests.length; i = next++) {
      const t0 = process.hrtime.bigint();
      try {
        const { status, body } = await send(agent, base, requests[i]!);
        if (status < 200 || status >= 300) {
          errors++;
          firstError ??= `HTTP ${status}: ${body.slice(0, 300).trim()}`;
        }
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  const sorted = latencies.sort();
  return {
    requests: requests.length,
    errors,
    seconds,
    perSecond: requests.length / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    firstError,
  };
}
