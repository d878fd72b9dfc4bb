/**
 * The edge's lean HTTP/1.1 front. node:http spends more per request than an
 * edge answering pages from memory can afford (its parser, header objects,
 * streams and one write per header block and body): nginx answered twice as
 * many requests. This front reads requests off the socket itself and answers
 * the plain ones the handler can answer at once (GET or HEAD, no body, a
 * page kept in memory, a redirect, a refusal) with one write per batch of
 * answers. Anything else — another method, a body, an upgrade, a header it
 * does not take, a request cut across reads — goes, with its connection and
 * the bytes not yet answered, to a node:http server that answers it as if it
 * had had the connection from the start. So the front never has to be a full
 * HTTP server: what it is unsure of, node:http decides.
 */
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { remembered } from '../core/memo.js';
import type { EdgeReply, EdgeRequest } from './edge-responses.js';

/** Answers what it can at once and returns true, or writes nothing and returns false. */
export type AnswerNow = (req: EdgeRequest, res: EdgeReply) => boolean;

export interface LeanHttpOptions {
  /** Idle time after which a kept-alive connection is closed, in ms (node:http's keepAliveTimeout). */
  readonly keepAliveMs: number;
}

/** The most bytes of a request head read here; beyond, node:http answers (431). */
const MAX_HEAD = 16 * 1024;
/** Sweeps of idle connections per keep-alive time. */
const IDLE_SWEEPS = 4;
/** Answers queued on a connection beyond which reading stops until the client takes them. */
const MAX_QUEUED = 1024 * 1024;
/** Control characters other than tab, CR and LF: never in a head the front answers. */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** The request-target: origin-form, visible ASCII only. */
const TARGET = /^\/[\x21-\x7e]*$/;
/** Headers the handler reads; a request with one of them twice goes to node:http. */
const READ = new Set(['accept', 'if-none-match', 'range', 'if-range', 'host']);
/** Headers that mean a body, an upgrade or an expectation: node:http handles those. */
const NOT_HERE = new Set(['content-length', 'transfer-encoding', 'upgrade', 'expect']);

let dateSecond = -1;
let dateLine = '';

/** `Date: …\r\n` of the current second. */
function date(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateLine = `Date: ${new Date(second * 1000).toUTCString()}\r\n`;
  }
  return dateLine;
}

/** Status line and fields made of a frozen list of fields (keptFields; see LeanReply.writeHead). */
const keptHeads = new WeakMap<readonly string[], { status: number; reason: string; head: string; hasLength: boolean }>();

/** One answer given at once, serialized into the connection's queue of bytes. */
class LeanReply implements EdgeReply {
  headersSent = false;
  #head = '';
  #hasLength = false;
  body: Buffer | null = null;
  done = false;
  keepAlive: boolean;
  readonly #isHead: boolean;
  #status = 200;

  constructor(keepAlive: boolean, isHead: boolean) {
    this.keepAlive = keepAlive;
    this.#isHead = isHead;
  }

  writeHead(status: number, reasonOrHeaders?: string | OutgoingHttpHeaders | string[], headers?: OutgoingHttpHeaders | string[]): this {
    if (this.headersSent) throw new Error('the head of this answer was already written');
    const reason = typeof reasonOrHeaders === 'string' ? reasonOrHeaders : (STATUS_CODES[status] ?? 'Unknown');
    const fields = typeof reasonOrHeaders === 'string' ? headers : reasonOrHeaders;
    this.#status = status;
    // A frozen list of fields is one its caller keeps (keptFields): so is what it makes.
    const keep = Array.isArray(fields) && Object.isFrozen(fields) ? fields : null;
    const kept = keep === null ? undefined : keptHeads.get(keep);
    if (kept !== undefined && kept.status === status && kept.reason === reason) {
      this.#head = kept.head;
      this.#hasLength = kept.hasLength;
    } else {
      this.#head = this.#serialize(status, reason, fields);
      if (keep !== null) keptHeads.set(keep, { status, reason, head: this.#head, hasLength: this.#hasLength });
    }
    this.headersSent = true;
    return this;
  }

  #serialize(status: number, reason: string, fields: OutgoingHttpHeaders | string[] | undefined): string {
    let head = `HTTP/1.1 ${status} ${reason}\r\n`;
    if (Array.isArray(fields)) {
      for (let i = 0; i + 1 < fields.length; i += 2) head += this.#field(fields[i]!, fields[i + 1]!);
    } else if (fields) {
      for (const name in fields) {
        const value = fields[name];
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const v of value) head += this.#field(name, v);
        else head += this.#field(name, String(value));
      }
    }
    return head;
  }

  /** One header line; names come from the edge's code, values may carry what a request or the tree gave. */
  #field(name: string, value: string): string {
    if (/[\r\n\0]/.test(value)) throw new Error(`invalid value of header ${name}`);
    if (name.length === 14 && name.toLowerCase() === 'content-length') this.#hasLength = true;
    return `${name}: ${value}\r\n`;
  }

  end(body?: Buffer): this {
    if (!this.headersSent) this.writeHead(200);
    const bodiless = this.#isHead || this.#status === 304 || this.#status === 204;
    const sent = bodiless || body === undefined || body.length === 0 ? null : body;
    let head = this.#head + date();
    if (!this.#hasLength && !bodiless) head += `Content-Length: ${sent?.length ?? 0}\r\n`;
    head += this.keepAlive ? 'Connection: keep-alive\r\nKeep-Alive: timeout=65\r\n\r\n' : 'Connection: close\r\n\r\n';
    this.#head = head;
    this.body = sent;
    this.done = true;
    return this;
  }

  destroy(): this {
    this.keepAlive = false;
    this.done = false;
    return this;
  }

  /** The answer's head, its empty line included (the body follows). */
  get head(): string {
    return this.#head;
  }
}

interface Parsed {
  readonly req: EdgeRequest;
  readonly keepAlive: boolean;
}

/** A request head the front answers, or null for one it leaves to node:http. */
function parseHead(head: string): Parsed | null {
  if (CONTROL.test(head)) return null;
  const lines = head.split('\r\n');
  const first = lines[0]!;
  const sp1 = first.indexOf(' ');
  const sp2 = first.indexOf(' ', sp1 + 1);
  if (sp1 < 0 || sp2 < 0 || first.indexOf(' ', sp2 + 1) >= 0) return null;
  const method = first.slice(0, sp1);
  if (method !== 'GET' && method !== 'HEAD') return null;
  const url = first.slice(sp1 + 1, sp2);
  if (!TARGET.test(url)) return null;
  const version = first.slice(sp2 + 1);
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') return null;
  const headers: IncomingHttpHeaders = {};
  let connection = '';
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.includes('\r') || line.includes('\n')) return null;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return null;
    const lower = name.toLowerCase();
    if (NOT_HERE.has(lower)) return null;
    const value = line.slice(colon + 1).trim();
    if (lower === 'connection') {
      if (connection !== '') return null;
      connection = value.toLowerCase();
    } else if (READ.has(lower)) {
      if (headers[lower] !== undefined) return null;
      headers[lower] = value;
    }
  }
  if (version === 'HTTP/1.1' && headers.host === undefined) return null;
  if (connection.includes('upgrade')) return null;
  const keepAlive = version === 'HTTP/1.1' ? !/(?:^|[\s,])close(?:$|[\s,])/.test(connection) : /(?:^|[\s,])keep-alive(?:$|[\s,])/.test(connection);
  return { req: Object.freeze({ method, url, headers: Object.freeze(headers) }), keepAlive };
}

/** Heads seen lately and what they parsed to: clients repeat theirs (same headers, often the same target). */
const parseHeadKept = remembered(1024, parseHead);

/**
 * A net server in front of `fallback` (a node:http server that never listens
 * itself): connections start here and move to `fallback` for good at the first
 * request this front leaves to it.
 */
export class LeanHttpFront {
  readonly server: Server;
  readonly #answer: AnswerNow;
  readonly #fallback: HttpServer;
  readonly #keepAliveMs: number;
  /** Connections still read here, each with the number of idle sweeps it has been through. */
  readonly #sockets = new Map<Socket, number>();
  readonly #sweeper: NodeJS.Timeout;
  #closing = false;

  constructor(answer: AnswerNow, fallback: HttpServer, options: LeanHttpOptions) {
    this.#answer = answer;
    this.#fallback = fallback;
    this.#keepAliveMs = options.keepAliveMs;
    this.server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
    // Idle connections are found by a sweep rather than a timer per socket, which every read and
    // write would reset: closed after IDLE_SWEEPS sweeps without a request, keepAliveMs to 1.25 × that.
    this.#sweeper = setInterval(() => this.#sweep(), this.#keepAliveMs / IDLE_SWEEPS);
    this.#sweeper.unref();
  }

  #sweep(): void {
    for (const [socket, idle] of this.#sockets) {
      if (idle + 1 > IDLE_SWEEPS) socket.destroy();
      else this.#sockets.set(socket, idle + 1);
    }
  }

  #accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#sockets.set(socket, 0);
    let pending: Buffer | null = null;
    // The last head answered on this connection and what it parsed to: a client's next head is most often the same bytes.
    let lastHead: Buffer | null = null;
    let lastParsed: Parsed | null = null;
    const onError = (): void => {
      socket.destroy();
    };
    const onClose = (): void => {
      this.#sockets.delete(socket);
    };
    const onDrain = (): void => {
      if (!socket.destroyed) socket.resume();
    };
    const handOff = (rest: Buffer | null): void => {
      socket.pause();
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('drain', onDrain);
      this.#sockets.delete(socket);
      if (rest !== null && rest.length > 0) socket.unshift(rest);
      this.#fallback.emit('connection', socket);
      socket.resume();
    };
    const onData = (chunk: Buffer): void => {
      this.#sockets.set(socket, 0);
      const buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
      pending = null;
      let at = 0;
      let corked = false;
      let open = true;
      while (at < buf.length) {
        const end = buf.indexOf('\r\n\r\n', at, 'latin1');
        if (end < 0) {
          if (buf.length - at > MAX_HEAD) break;
          // A head cut across reads: wait for one more read; a client slower than that goes to node:http and its timeouts.
          if (chunk === buf) {
            pending = buf.subarray(at);
            at = buf.length;
          }
          break;
        }
        if (end - at > MAX_HEAD) break;
        let parsed = lastParsed;
        if (lastHead === null || lastHead.length !== end - at || buf.compare(lastHead, 0, lastHead.length, at, end) !== 0) {
          parsed = parseHeadKept(buf.toString('latin1', at, end));
          lastHead = parsed === null ? null : Buffer.from(buf.subarray(at, end));
          lastParsed = parsed;
        }
        if (parsed === null) break;
        const reply = new LeanReply(parsed.keepAlive && !this.#closing, parsed.req.method === 'HEAD');
        if (!this.#answer(parsed.req, reply)) break;
        if (!reply.done) {
          // The handler gave up midway (an answer it could not finish): the connection is cut, as node:http would.
          socket.destroy();
          return;
        }
        // Head and body, and the answers to pipelined requests, go out together in one write.
        if (!corked && (reply.body !== null || end + 4 < buf.length)) {
          socket.cork();
          corked = true;
        }
        socket.write(reply.head, 'latin1');
        if (reply.body !== null) socket.write(reply.body);
        at = end + 4;
        if (!reply.keepAlive) {
          open = false;
          break;
        }
      }
      if (corked) socket.uncork();
      if (!open) {
        socket.end();
        socket.off('data', onData);
        return;
      }
      if (at < buf.length) {
        handOff(buf.subarray(at));
        return;
      }
      if (socket.writableLength > MAX_QUEUED) socket.pause();
    };
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('drain', onDrain);
    socket.on('data', onData);
  }

  /** Stops accepting; connections read here end once their answers are out. */
  close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#sweeper);
    for (const socket of this.#sockets.keys()) socket.end();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
