/**
 * Writing the edge's answers on plain node:http responses: errors in the
 * origin's style (a status, a plain-text message a user can act on, never
 * cached), redirects, pages from memory or a stream, and files with ranges.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import { reasonPhrase } from '../origin/http-errors.js';

/** What the edge reads of a request: node:http's IncomingMessage, or the lean front's (lean-http.ts). */
export interface EdgeRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
}

/** Where an answer given at once is written: node:http's ServerResponse, or the lean front's. */
export interface EdgeReply {
  readonly headersSent: boolean;
  writeHead(status: number, headers?: OutgoingHttpHeaders | string[]): unknown;
  writeHead(status: number, reason: string, headers?: OutgoingHttpHeaders | string[]): unknown;
  end(body?: Buffer): unknown;
  destroy(): unknown;
}

/** Headers every error answer carries besides its own. */
const ERROR_HEADERS = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' } as const;

/** An error answer: `STATUS message` as text, the message also as the reason phrase. */
export function sendError(req: EdgeRequest, res: EdgeReply, status: number, message: string, headers: OutgoingHttpHeaders = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(`${status} ${message}\n`);
  res.writeHead(status, reasonPhrase(message), { ...ERROR_HEADERS, 'content-length': body.length, ...headers });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The header fields of a redirect with an empty body (sendRedirect's). */
export function redirectFields(location: string, cacheControl: string): string[] {
  return ['location', location, 'cache-control', cacheControl, 'content-length', '0'];
}

/**
 * `fields` frozen, for a caller that keeps them and answers with them again and again: a reply
 * may then keep what it makes of them (LeanReply does).
 */
export function keptFields(fields: string[]): string[] {
  return Object.freeze(fields) as string[];
}

/** A redirect with an empty body. */
export function sendRedirect(res: EdgeReply, status: 301 | 302, location: string, cacheControl: string): void {
  res.writeHead(status, redirectFields(location, cacheControl));
  res.end();
}

/** A small JSON document that must never be cached (health and readiness). */
export function sendStatusJson(req: EdgeRequest, res: EdgeReply, status: number, doc: unknown): void {
  const body = Buffer.from(`${JSON.stringify(doc)}\n`);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Streams `body` into `res`; a failure midway cuts the connection (the length was already promised). */
export function sendStream(res: ServerResponse, body: Readable, onError: (err: Error) => void): void {
  pipeline(body, res, (err) => {
    // A client that went away is not an error of ours.
    if (err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') onError(err);
  });
}
