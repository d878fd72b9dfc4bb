/**
 * Requests to upstreams over node:http with keep-alive agents and three
 * separate timeouts: connect, first byte (the response's headers) and idle
 * (silence between body chunks). Every failure becomes an UpstreamFailure with
 * a kind, so health and retry logic can tell a refusal from a hang.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Transform, pipeline, type Readable } from 'node:stream';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Timeouts } from './proxy-config.js';

/** Why an upstream's answer was not used. */
export type FailureKind =
  | 'refused'
  | 'connect-timeout'
  | 'first-byte-timeout'
  | 'idle-timeout'
  | 'reset'
  | 'protocol'
  | 'status'
  | 'invalid'
  | 'integrity'
  | 'signature'
  | 'stale'
  | 'not-found'
  | 'aborted';

/** Kinds that say the upstream gave a wrong answer, not that it was unreachable or slow. */
export const WRONG_ANSWER: ReadonlySet<FailureKind> = new Set(['integrity', 'signature', 'stale']);

export class UpstreamFailure extends Error {
  readonly kind: FailureKind;
  readonly status: number | null;
  constructor(kind: FailureKind, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UpstreamFailure';
    this.kind = kind;
    this.status = options.status ?? null;
  }
}

export function asFailure(err: unknown): UpstreamFailure {
  if (err instanceof UpstreamFailure) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EAI_AGAIN') {
    return new UpstreamFailure('refused', `connection refused (${code})`, { cause: err });
  }
  if (code.startsWith('HPE_') || code === 'ERR_INVALID_HTTP_RESPONSE') return new UpstreamFailure('protocol', `not an HTTP answer (${code})`, { cause: err });
  if (code === 'ABORT_ERR') return new UpstreamFailure('aborted', 'cancelled', { cause: err });
  return new UpstreamFailure('reset', `connection failed: ${e?.message ?? String(err)}`, { cause: err });
}

const agentOptions = { keepAlive: true, keepAliveMsecs: 1000, maxSockets: 32, maxFreeSockets: 16, scheduling: 'lifo' as const };
const httpAgent = new HttpAgent(agentOptions);
const httpsAgent = new HttpsAgent(agentOptions);

export interface RequestOptions {
  readonly method?: 'GET' | 'HEAD';
  readonly headers?: Record<string, string>;
  readonly timeouts: Timeouts;
  readonly signal?: AbortSignal;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body; reading it fails with an `idle-timeout` UpstreamFailure after a silence of `idleMs`. */
  readonly body: Readable;
  /** The whole body arrived (as the message framing says). */
  readonly complete: boolean;
  /** Milliseconds from the request to the headers. */
  readonly firstByteMs: number;
  /** Read the whole body (at most `limit` bytes, else an `invalid` failure). */
  text(limit?: number): Promise<Buffer>;
  /** Stop reading and drop the connection. */
  cancel(): void;
}

/** A 200, or the answer dropped and a failure of its kind: `not-found` for 404 and 410, else `status`. */
export function requireOk(res: UpstreamResponse): UpstreamResponse {
  if (res.status === 200) return res;
  res.cancel();
  throw new UpstreamFailure(res.status === 404 || res.status === 410 ? 'not-found' : 'status', `HTTP ${res.status}`, { status: res.status });
}

/** One request; resolves at the response's headers, whatever the status. */
export function upstreamRequest(url: string, options: RequestOptions): Promise<UpstreamResponse> {
  const { timeouts, signal } = options;
  const started = performance.now();
  return new Promise<UpstreamResponse>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new UpstreamFailure('aborted', 'cancelled'));
      return;
    }
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const req = (secure ? httpsRequest : httpRequest)(target, {
      method: options.method ?? 'GET',
      headers: { 'user-agent': 'pyedge-proxy', ...options.headers },
      agent: secure ? httpsAgent : httpAgent,
    });
    let timer: NodeJS.Timeout | null = null;
    let settled = false;
    const arm = (ms: number, kind: FailureKind, what: string): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => req.destroy(new UpstreamFailure(kind, `${what} after ${ms} ms`)), ms);
    };
    const disarm = (): void => {
      if (timer) clearTimeout(timer);
      timer = null;
    };
    const onAbort = (): void => {
      req.destroy(new UpstreamFailure('aborted', 'cancelled'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = (): void => {
      disarm();
      signal?.removeEventListener('abort', onAbort);
    };

    req.on('socket', (socket) => {
      if (socket.connecting) {
        arm(timeouts.connectMs, 'connect-timeout', 'no connection');
        socket.once(secure ? 'secureConnect' : 'connect', () => {
          if (!settled) arm(timeouts.firstByteMs, 'first-byte-timeout', 'no answer');
        });
      } else {
        arm(timeouts.firstByteMs, 'first-byte-timeout', 'no answer');
      }
    });
    req.on('error', (err) => {
      cleanup();
      if (!settled) {
        settled = true;
        reject(asFailure(err));
      }
    });
    req.on('response', (res) => {
      settled = true;
      disarm();
      const firstByteMs = performance.now() - started;
      // The body as read through a watch that ends it after `idleMs` of silence.
      let idle: NodeJS.Timeout | null = null;
      const rearm = (): void => {
        if (idle) clearTimeout(idle);
        idle = setTimeout(() => res.destroy(new UpstreamFailure('idle-timeout', `body stalled for ${timeouts.idleMs} ms`)), timeouts.idleMs);
      };
      const body = new Transform({
        transform(chunk: Buffer, _enc, done) {
          rearm();
          done(null, chunk);
        },
      });
      rearm();
      signal?.removeEventListener('abort', onAbort);
      const onBodyAbort = (): void => {
        res.destroy(new UpstreamFailure('aborted', 'cancelled'));
      };
      signal?.addEventListener('abort', onBodyAbort, { once: true });
      pipeline(res, body, () => {
        if (idle) clearTimeout(idle);
        idle = null;
        signal?.removeEventListener('abort', onBodyAbort);
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        body,
        get complete() {
          return res.complete;
        },
        firstByteMs,
        async text(limit = 64 * 1024 * 1024) {
          const chunks: Buffer[] = [];
          let size = 0;
          try {
            for await (const chunk of body as AsyncIterable<Buffer>) {
              size += chunk.length;
              if (size > limit) {
                res.destroy();
                throw new UpstreamFailure('invalid', `answer larger than ${limit} bytes`);
              }
              chunks.push(chunk);
            }
          } catch (err) {
            throw asFailure(err);
          }
          if (!res.complete) throw new UpstreamFailure('reset', 'answer cut short');
          return Buffer.concat(chunks);
        },
        cancel() {
          res.destroy();
        },
      });
    });
    req.end();
  });
}

/** Close idle keep-alive connections (at shutdown). */
export function closeAgents(): void {
  httpAgent.destroy();
  httpsAgent.destroy();
}
