/**
 * GETs against one index with Node's fetch: a time limit per request, network
 * failures and 5xx/429 turned into PYEDGE_UNAVAILABLE and retried with backoff
 * (bounded), so the callers only see answers or a clear error.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { PyedgeError } from '../core/errors.js';
import { DEFAULT_BACKOFF, withRetry, type BackoffPolicy } from './retry.js';

/** Limits of the client; durations in milliseconds. */
export interface OriginHttpOptions {
  /** Longest wait for a page (headers and body), or for a file's headers. */
  readonly timeoutMs: number;
  /** Attempts per request, the first included. */
  readonly attempts: number;
  readonly backoff: BackoffPolicy;
  readonly userAgent: string;
}

export const ORIGIN_HTTP_DEFAULTS: OriginHttpOptions = Object.freeze({
  timeoutMs: 30_000,
  attempts: 4,
  backoff: DEFAULT_BACKOFF,
  userAgent: 'pyedge-publisher/0.1',
});

/** A whole answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

function combine(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

export class OriginHttp {
  readonly base: string;
  readonly #options: OriginHttpOptions;

  /** `base` is the index's URL without a trailing slash. */
  constructor(base: string, options: Partial<OriginHttpOptions> = {}) {
    this.base = base.replace(/\/+$/, '');
    this.#options = { ...ORIGIN_HTTP_DEFAULTS, ...options };
  }

  /** GET `path` (starting with `/`) and read the whole body; 2xx and 404 are answers, the rest errors. */
  get(path: string, options: { accept?: string; signal?: AbortSignal | undefined; timeoutMs?: number; attempts?: number } = {}): Promise<HttpAnswer> {
    return withRetry(
      async () => {
        const res = await this.#fetch(path, options.accept, combine(options.signal, options.timeoutMs ?? this.#options.timeoutMs));
        let body: Buffer;
        try {
          body = Buffer.from(await res.arrayBuffer());
        } catch (err) {
          throw this.#networkError(path, err);
        }
        if (res.status === 404 || (res.status >= 200 && res.status < 300)) return { status: res.status, headers: res.headers, body };
        throw this.#statusError(path, res.status, body.toString('utf8', 0, 300));
      },
      { attempts: options.attempts ?? this.#options.attempts, policy: this.#options.backoff, signal: options.signal },
    );
  }

  /** GET `path` and stream its body; 404 is PYEDGE_NOT_FOUND. The time limit covers the headers only. */
  stream(path: string, signal?: AbortSignal): Promise<Readable> {
    return withRetry(
      async () => {
        const headersDone = new AbortController();
        const timer = setTimeout(() => headersDone.abort(new DOMException('no answer in time', 'TimeoutError')), this.#options.timeoutMs);
        try {
          const res = await this.#fetch(path, undefined, signal ? AbortSignal.any([signal, headersDone.signal]) : headersDone.signal);
          if (res.status !== 200 || res.body === null) {
            const text = await res.text().catch(() => '');
            if (res.status === 404) throw new PyedgeError('PYEDGE_NOT_FOUND', `The source ${this.base} has no ${path}.`, { path });
            throw this.#statusError(path, res.status, text.slice(0, 300));
          }
          return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
        } finally {
          clearTimeout(timer);
        }
      },
      { attempts: this.#options.attempts, policy: this.#options.backoff, signal },
    );
  }

  async #fetch(path: string, accept: string | undefined, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { 'user-agent': this.#options.userAgent };
    if (accept) headers.accept = accept;
    try {
      return await fetch(this.base + path, { headers, signal, redirect: 'follow' });
    } catch (err) {
      throw this.#networkError(path, err);
    }
  }

  #networkError(path: string, err: unknown): unknown {
    if (err instanceof Error && err.name === 'AbortError') return err;
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : err instanceof Error ? err.message : String(err);
    return new PyedgeError('PYEDGE_UNAVAILABLE', `The source ${this.base} is unreachable (${cause}) while fetching ${path}.`, { path }, { cause: err });
  }

  #statusError(path: string, status: number, text: string): PyedgeError {
    const transient = status >= 500 || status === 429 || status === 408;
    return new PyedgeError(
      transient ? 'PYEDGE_UNAVAILABLE' : 'PYEDGE_BAD_REQUEST',
      `The source ${this.base} answered ${status} for ${path}${text ? `: ${text.trim()}` : ''}.`,
      { path, status },
    );
  }
}
