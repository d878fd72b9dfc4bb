/**
 * Upstreams that misbehave, for the proxy's tests: small node servers in front
 * of a real index that pass requests through, or refuse, hang, answer late,
 * answer 500, answer garbage, trickle, serve a stale page, corrupt files or
 * tamper with pages so their signature fails. The mode can change while the
 * server runs.
 */
import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type UpstreamMode =
  /** Pass everything through to the real index. */
  | 'pass'
  /** Nothing listens on the port: connections are refused. */
  | 'refuse'
  /** Accept connections and never answer. */
  | 'hang'
  /** Answer, correctly, after 10 seconds. */
  | 'slow'
  /** HTTP 500 to everything. */
  | 'error'
  /** HTTP 200 with random bytes of the expected content type. */
  | 'garbage'
  /** Not HTTP at all: random bytes on the connection. */
  | 'not-http'
  /** Headers at once, then the body one byte per second. */
  | 'trickle'
  /** Project pages (and their signatures) as they were at `freeze()`; everything else passed through. */
  | 'stale'
  /** Package files with bytes changed (same length); everything else passed through. */
  | 'corrupt'
  /** Project pages with the newest version's files taken out; the signature passed through unchanged. */
  | 'bad-signature';

export interface BadUpstream {
  /** The index root, `http://127.0.0.1:PORT/simple/`. */
  readonly url: string;
  readonly port: number;
  mode: UpstreamMode;
  /** Requests received. */
  readonly requests: number;
  /** Keep the current project pages (and signatures) of these projects for 'stale'. */
  freeze(projects: readonly string[]): Promise<void>;
  setMode(mode: UpstreamMode): Promise<void>;
  close(): Promise<void>;
}

interface Captured {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** One request to the real index, read whole. */
function fetchFrom(target: string, req: { method?: string; url?: string; headers: IncomingMessage['headers'] }): Promise<Captured> {
  const url = new URL(req.url ?? '/', target);
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, host: url.host };
    delete headers.connection;
    const out = request(url, { method: req.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string' && k !== 'transfer-encoding' && k !== 'connection') h[k] = v;
        resolve({ status: res.statusCode ?? 502, headers: h, body: Buffer.concat(chunks) });
      });
    });
    out.on('error', reject);
    out.end();
  });
}

const PROJECT_PAGE = /^\/simple\/[^/]+\/(\?.*)?$/;
const SIGNATURE = /^\/(serversig\/[^/?]+|simple\/[^/]+\/serversig)(\?.*)?$/;

function send(res: ServerResponse, answer: Captured, body: Buffer = answer.body): void {
  res.writeHead(answer.status, { ...answer.headers, 'content-length': String(body.length) });
  res.end(body);
}

/** The page with the files of its newest version taken out (a downgrade, as an attacker on the path would try). */
function withoutNewest(answer: Captured): Buffer {
  const text = answer.body.toString('utf8');
  if (/json/.test(answer.headers['content-type'] ?? '')) {
    const doc = JSON.parse(text) as { versions?: string[]; files: { filename: string }[] };
    const newest = doc.versions?.at(-1);
    if (newest !== undefined) doc.files = doc.files.filter((f) => !f.filename.includes(`-${newest}-`) && !f.filename.includes(`-${newest}.tar`));
    else doc.files = doc.files.slice(0, -1);
    return Buffer.from(JSON.stringify(doc));
  }
  const anchors = [...text.matchAll(/ *<a [^>]*>[^<]*<\/a><br \/>\n/g)];
  const last = anchors.at(-1);
  return Buffer.from(last ? text.replace(last[0], '') : `${text} `);
}

export async function startBadUpstream(index: string, initial: UpstreamMode): Promise<BadUpstream> {
  const target = index.replace(/\/?$/, '/');
  const frozen = new Map<string, Captured>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let requests = 0;
  let mode: UpstreamMode = initial;

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requests++;
    const path = req.url ?? '/';
    switch (mode) {
      case 'hang':
      case 'refuse':
        return;
      case 'error':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error\n');
        return;
      case 'garbage': {
        const type = PROJECT_PAGE.test(path) ? 'application/vnd.pypi.simple.v1+json' : path.includes('_health') ? 'application/json' : 'application/octet-stream';
        const answer = path.startsWith('/packages/') ? await fetchFrom(target, req) : null;
        const body = randomBytes(answer?.body.length ?? 2048);
        res.writeHead(200, { 'content-type': type, 'content-length': String(body.length) }).end(body);
        return;
      }
      case 'slow': {
        const answer = await fetchFrom(target, req);
        later(10_000, () => send(res, answer));
        return;
      }
      case 'trickle': {
        const answer = await fetchFrom(target, req);
        res.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.length) });
        let i = 0;
        const drip = (): void => {
          if (res.destroyed) return;
          if (i >= answer.body.length) {
            res.end();
            return;
          }
          res.write(answer.body.subarray(i, i + 1));
          i++;
          later(1000, drip);
        };
        drip();
        return;
      }
      case 'stale': {
        const key = `${req.headers.accept?.includes('json') ? 'json' : 'html'} ${path}`;
        const kept = PROJECT_PAGE.test(path) ? frozen.get(key) : SIGNATURE.test(path) ? frozen.get(`sig ${path}`) : undefined;
        send(res, kept ?? (await fetchFrom(target, req)));
        return;
      }
      case 'corrupt': {
        const answer = await fetchFrom(target, req);
        if (!path.startsWith('/packages/') || answer.status !== 200) return send(res, answer);
        const body = Buffer.from(answer.body);
        // Same length, different bytes: in the middle, where a truncation check cannot see it.
        for (let i = Math.floor(body.length / 2); i < Math.min(body.length, Math.floor(body.length / 2) + 16); i++) body[i] = body[i]! ^ 0xff;
        return send(res, answer, body);
      }
      case 'bad-signature': {
        const answer = await fetchFrom(target, req);
        if (!PROJECT_PAGE.test(path) || answer.status !== 200) return send(res, answer);
        return send(res, answer, withoutNewest(answer));
      }
      default:
        send(res, await fetchFrom(target, req));
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (mode === 'not-http') {
      socket.end(randomBytes(512));
    }
  });

  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const stopListening = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });

  const port = await listen(0);
  if (initial === 'refuse') await stopListening();

  return {
    url: `http://127.0.0.1:${port}/simple/`,
    port,
    get mode() {
      return mode;
    },
    set mode(m: UpstreamMode) {
      mode = m;
    },
    get requests() {
      return requests;
    },
    async freeze(projects) {
      for (const name of projects) {
        for (const accept of ['application/vnd.pypi.simple.v1+json', 'text/html']) {
          const path = `/simple/${name}/`;
          frozen.set(`${accept.includes('json') ? 'json' : 'html'} ${path}`, await fetchFrom(target, { url: path, headers: { accept } }));
        }
        for (const path of [`/serversig/${name}`, `/simple/${name}/serversig`]) frozen.set(`sig ${path}`, await fetchFrom(target, { url: path, headers: {} }));
      }
    },
    async setMode(m) {
      if (m === 'refuse') await stopListening();
      else if (!server.listening) await listen(port);
      // Connections held open by the old mode would keep answering in it.
      if (m !== mode) for (const s of sockets) s.destroy();
      mode = m;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      await stopListening();
    },
  };
}
