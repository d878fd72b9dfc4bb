/** One HTTP request timed in its phases: headers, first body byte, last body byte. */
import http from 'node:http';
import type { LoadRequest } from './load.js';

/** A finished request; times are milliseconds on the monotonic clock (`nowMs()`). */
export interface TimedResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The body, when asked for (`keepBody`); otherwise empty. */
  readonly body: Buffer;
  readonly bytes: number;
  readonly startMs: number;
  /** When the status line and headers were parsed. */
  readonly headersMs: number;
  /** When the first body byte arrived (= headersMs for an empty body). */
  readonly firstByteMs: number;
  readonly endMs: number;
}

/** Milliseconds on the monotonic clock, with sub-millisecond precision. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

const TIMEOUT_MS = 120_000;

/** Send `r` to `baseUrl` and time it; `agent` false opens a fresh connection. */
export function timedRequest(
  baseUrl: string,
  r: LoadRequest,
  options: { agent?: http.Agent | false; keepBody?: boolean } = {},
): Promise<TimedResponse> {
  const base = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const headers = { ...r.headers };
    if (r.body) headers['content-length'] = r.body.length;
    const startMs = nowMs();
    const req = http.request(
      { host: base.hostname, port: base.port, method: r.method, path: r.path, headers, agent: options.agent ?? false, timeout: TIMEOUT_MS },
      (res) => {
        const headersMs = nowMs();
        let firstByteMs = NaN;
        let bytes = 0;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          if (bytes === 0) firstByteMs = nowMs();
          bytes += c.length;
          if (options.keepBody) chunks.push(c);
        });
        res.on('end', () => {
          const endMs = nowMs();
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            bytes,
            startMs,
            headersMs,
            firstByteMs: Number.isNaN(firstByteMs) ? headersMs : firstByteMs,
            endMs,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(r.body);
  });
}

/** A GET with an optional Accept header. */
export function timedGet(baseUrl: string, path: string, accept?: string, options: { agent?: http.Agent | false; keepBody?: boolean } = {}): Promise<TimedResponse> {
  return timedRequest(baseUrl, { method: 'GET', path, headers: accept ? { accept } : {} }, options);
}
