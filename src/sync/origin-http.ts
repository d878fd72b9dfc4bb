/**
 * Requests to one index over keep-alive connections of its own (node:http or
 * node:https, far cheaper per request than fetch, which matters when a full
 * build makes hundreds of thousands of them): a time limit per request,
 * network failures and 5xx/429 turned into PYEDGE_UNAVAILABLE and retried with
 * backoff (bounded), so the callers only see answers or a clear error.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
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
  /** Most connections open to the index at once. */
  readonly maxSockets: number;
}

export const ORIGIN_HTTP_DEFAULTS: OriginHttpOptions = Object.freeze({
  timeoutMs: 30_000,
  attempts: 4,
  backoff: DEFAULT_BACKOFF,
  userAgent: 'pyedge-publisher/0.1',
  maxSockets: 64,
});

/** Redirects followed per request. */
const MAX_REDIRECTS = 5;

/** An answer's headers, by lower-case name. */
export interface AnswerHeaders {
  get(name: string): string | null;
}

/** A whole answer. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: AnswerHeaders;
  readonly body: Buffer;
}

/** What one request sends. */
export interface RequestOptions {
  readonly accept?: string;
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs?: number;
  readonly attempts?: number;
  /** POST this body (with `contentType`) instead of a GET. */
  readonly body?: Buffer;
  readonly contentType?: string;
}

function headersOf(res: IncomingMessage): AnswerHeaders {
  return {
    get(name: string): string | null {
      const v = res.headers[name.toLowerCase()];
      return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
    },
  };
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** Reads a whole response body. */
function readBody(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    res.once('error', reject);
    res.once('close', () => {
      if (!res.complete) reject(new Error('the connection closed before the answer was complete'));
    });
  });
}

export class OriginHttp {
  readonly base: string;
  readonly #url: URL;
  readonly #options: OriginHttpOptions;
  readonly #agent: http.Agent;

  /** `base` is the index's URL without a trailing slash. */
  constructor(base: string, options: Partial<OriginHttpOptions> = {}) {
    this.base = base.replace(/\/+$/, '');
    this.#url = new URL(this.base);
    this.#options = { ...ORIGIN_HTTP_DEFAULTS, ...options };
    const agentOptions = { keepAlive: true, maxSockets: this.#options.maxSockets, scheduling: 'lifo' as const };
    this.#agent = this.#url.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** GET (or POST) `path` (starting with `/`) and read the whole body; 2xx and 404 are answers, the rest errors. */
  get(path: string, options: RequestOptions = {}): Promise<HttpAnswer> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs;
    return withRetry(
      async () => {
        const { res, path: at, done } = await this.#send(path, options, timeoutMs);
        try {
          let body: Buffer;
          try {
            body = await readBody(res);
          } catch (err) {
            throw this.#networkError(at, err, options.signal);
          }
          if (res.statusCode === 404 || (res.statusCode! >= 200 && res.statusCode! < 300)) return { status: res.statusCode!, headers: headersOf(res), body };
          throw this.#statusError(at, res.statusCode!, body.toString('utf8', 0, 300));
        } finally {
          done();
        }
      },
      { attempts: options.attempts ?? this.#options.attempts, policy: this.#options.backoff, signal: options.signal },
    );
  }

  /** GET `path` and stream its body; 404 is PYEDGE_NOT_FOUND. The time limit covers the headers only. */
  stream(path: string, signal?: AbortSignal): Promise<Readable> {
    return withRetry(
      async () => {
        const { res, path: at, done } = await this.#send(path, { signal }, this.#options.timeoutMs);
        // From here on, the body's own consumer decides how long it takes.
        done();
        if (res.statusCode !== 200) {
          const text = await readBody(res).then(
            (b) => b.toString('utf8', 0, 300),
            () => '',
          );
          if (res.statusCode === 404) throw new PyedgeError('PYEDGE_NOT_FOUND', `The source ${this.base} has no ${at}.`, { path: at });
          throw this.#statusError(at, res.statusCode!, text);
        }
        if (signal) {
          const onAbort = (): void => {
            res.destroy(abortError(signal) as Error);
          };
          signal.addEventListener('abort', onAbort, { once: true });
          res.once('close', () => signal.removeEventListener('abort', onAbort));
        }
        return res;
      },
      { attempts: this.#options.attempts, policy: this.#options.backoff, signal },
    );
  }

  /** Closes the idle connections; requests under way finish. */
  close(): void {
    this.#agent.destroy();
  }

  /**
   * Sends one request (following redirects) and resolves once the headers are in. The time limit
   * and `signal` keep covering the body until `done()` is called.
   */
  async #send(path: string, options: RequestOptions, timeoutMs: number): Promise<{ res: IncomingMessage; path: string; done: () => void }> {
    const { signal } = options;
    signal?.throwIfAborted();
    let target = new URL(this.base + path);
    for (let hop = 0; ; hop++) {
      const at = target.pathname + target.search;
      const res = await this.#once(target, at, options, timeoutMs);
      const location = res.res.headers.location;
      if (res.res.statusCode !== undefined && [301, 302, 303, 307, 308].includes(res.res.statusCode) && location && hop < MAX_REDIRECTS && options.body === undefined) {
        res.res.resume();
        res.done();
        target = new URL(location, target);
        continue;
      }
      return { ...res, path: at };
    }
  }

  #once(target: URL, at: string, options: RequestOptions, timeoutMs: number): Promise<{ res: IncomingMessage; done: () => void }> {
    const { signal } = options;
    const headers: http.OutgoingHttpHeaders = { 'user-agent': this.#options.userAgent };
    if (options.accept) headers.accept = options.accept;
    if (options.body !== undefined) {
      headers['content-type'] = options.contentType ?? 'application/octet-stream';
      headers['content-length'] = options.body.length;
    }
    const client = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let res: IncomingMessage | null = null;
      const fail = (err: unknown): void => {
        cleanup();
        req.destroy();
        res?.destroy(err as Error);
        reject(err);
      };
      const onAbort = (): void => fail(abortError(signal!));
      const timer = setTimeout(
        () => fail(new PyedgeError('PYEDGE_UNAVAILABLE', `The source ${this.base} gave no answer to ${at} within ${timeoutMs} ms.`, { path: at })),
        timeoutMs,
      );
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const req = client.request(target, { method: options.body === undefined ? 'GET' : 'POST', headers, agent: this.#agent }, (r) => {
        res = r;
        resolve({ res: r, done: cleanup });
      });
      req.once('error', (err) => {
        cleanup();
        reject(this.#networkError(at, err, signal));
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      req.end(options.body);
    });
  }

  #networkError(path: string, err: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return abortError(signal);
    if (err instanceof PyedgeError || (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError'))) return err;
    const cause = err instanceof Error ? err.message : String(err);
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
