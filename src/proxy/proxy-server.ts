/**
 * `pyedge proxy`: an index that pip points at, answering from several
 * upstreams (DESIGN.md §6). Routes:
 *
 *   /simple/<name>/                 project pages, negotiated (PEP 691), file links rewritten
 *   /_files/<name>/<hash>/<file>    files and `.metadata`, verified against the page's hash
 *   /pypi/<name>[/<version>]/json   JSON API, file URLs rewritten
 *   /_status, /metrics, /_health    the proxy's own state
 *   anything else                   passed through from the first upstream that answers
 */
import { createReadStream } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { normalizeName } from '../core/names.js';
import { negotiateSimpleFormat } from '../render/negotiate.js';
import { FileIndex } from './file-index.js';
import { FileSource, UnknownFile } from './file-source.js';
import { Forwarder, VIA } from './forwarder.js';
import { AllUpstreamsFailed, Hedger } from './hedger.js';
import { PageSignatures } from './page-signatures.js';
import { PageSource, type PageAnswer } from './page-source.js';
import { Prober } from './prober.js';
import { ProxyCache } from './proxy-cache.js';
import type { ProxyConfig } from './proxy-config.js';
import { ProxyMetrics } from './proxy-metrics.js';
import { statusHtml, upstreamStatuses, type ProxyStatus } from './proxy-status.js';
import { parseHashSegment, renderPage } from './simple-page.js';
import { closeAgents } from './upstream-client.js';
import { UpstreamSet } from './upstream-set.js';
import { listenHttp } from '../runtime/listen.js';

export interface RunningProxy {
  /** `http://HOST:PORT` (no trailing slash). */
  readonly url: string;
  status(): ProxyStatus;
  close(): Promise<void>;
}

class HttpAnswer extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reason phrases that say what happened where clients show only the status line (pip -v: "502 Server Error: <reason>"). */
const REASONS: Record<number, string> = { 502: 'Bad Gateway: no upstream could answer and the cache has no copy' };

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  const reason = REASONS[status];
  const fields = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', via: VIA, ...headers };
  if (reason) res.writeHead(status, reason, fields);
  else res.writeHead(status, fields);
  res.end(body.endsWith('\n') ? body : `${body}\n`);
}

/** What a client is told when no upstream could answer. */
function failedMessage(err: AllUpstreamsFailed, what: string): string {
  return `pyedge proxy: no upstream could serve ${what}, and the cache has no copy.\n${err.failures.map((f) => `  ${f.upstream}: ${f.failure.kind}: ${f.failure.message}`).join('\n')}`;
}

export async function startProxy(config: ProxyConfig, logger: Logger): Promise<RunningProxy> {
  const startedAt = new Date().toISOString();
  const cache = await ProxyCache.open(config.cacheDir);
  const upstreams = new UpstreamSet(config.upstreams, config.health, logger.child({ component: 'upstreams' }));
  const hedger = new Hedger(config.hedge);
  const files = new FileIndex();
  const signatures = new PageSignatures(config.signatures, cache, logger.child({ component: 'signatures' }));
  await signatures.init(config.serverKeyFile);
  const pages = new PageSource({ upstreams, hedger, cache, files, signatures, timeouts: config.pageTimeouts, logger: logger.child({ component: 'pages' }) });
  const fileSource = new FileSource({ upstreams, hedger, cache, files, pages, timeouts: config.fileTimeouts, logger: logger.child({ component: 'files' }) });
  const forwarder = new Forwarder({ upstreams, hedger, files, timeouts: config.pageTimeouts, logger: logger.child({ component: 'forward' }) });
  const metrics = new ProxyMetrics(upstreams, hedger, { staleServed: () => pages.staleServed, integrityFailures: () => fileSource.integrityFailures });
  const prober = new Prober(upstreams, config.health, config.pageTimeouts);

  const status = (): ProxyStatus => ({
    startedAt,
    cache: { dir: cache.dir, persistent: cache.persistent },
    signatures: { mode: signatures.mode, keys: signatures.keys(), source: signatures.keySource },
    hedging: {
      budget: config.hedge.budget,
      share: hedger.hedgedShare,
      delayMs: { page: hedger.delay('page'), file: hedger.delay('file'), other: hedger.delay('other') },
      byKind: hedger.counts,
    },
    pagesServedStale: pages.staleServed,
    integrityFailures: fileSource.integrityFailures,
    upstreams: upstreamStatuses(upstreams),
  });

  const servePage = async (req: IncomingMessage, res: ServerResponse, name: string, query: URLSearchParams): Promise<number> => {
    const format = negotiateSimpleFormat(req.headers.accept, query.get('format') ?? undefined);
    if (format === null) throw new HttpAnswer(406, 'Not Acceptable: this index serves application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html or text/html (PEP 691).');
    let answer: PageAnswer;
    try {
      answer = await pages.get(name);
    } catch (err) {
      if (err instanceof AllUpstreamsFailed) {
        if (err.notFound) throw new HttpAnswer(404, `Not Found: no upstream has a project named '${name}'.`);
        throw new HttpAnswer(502, failedMessage(err, `the page of '${name}'`));
      }
      throw err;
    }
    const { body, contentType } = renderPage(answer.page, format);
    const headers: Record<string, string> = {
      'content-type': contentType,
      'content-length': String(Buffer.byteLength(body)),
      vary: 'Accept',
      'cache-control': 'max-age=0, must-revalidate',
      via: VIA,
      'x-pyedge-cache': answer.origin === 'upstream' ? 'miss' : answer.origin,
    };
    if (answer.page.serial !== null) headers['x-pypi-last-serial'] = String(answer.page.serial);
    if (answer.upstream !== null) headers['x-pyedge-upstream'] = answer.upstream;
    if (answer.origin === 'stale-if-error') headers.warning = '111 pyedge-proxy "Revalidation Failed"';
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return 200;
  };

  const serveFile = async (req: IncomingMessage, res: ServerResponse, segments: string[]): Promise<number> => {
    const [projectRaw, hashRaw, fileRaw] = segments;
    const hash = hashRaw === undefined ? null : parseHashSegment(hashRaw);
    if (segments.length !== 3 || hash === null || !projectRaw || !fileRaw) throw new HttpAnswer(404, 'Not Found: file links look like /_files/<project>/<sha256>/<filename>.');
    const project = normalizeName(decodeURIComponent(projectRaw));
    let filename = decodeURIComponent(fileRaw);
    // Distributions end in .whl, .tar.gz, .zip…: a name ending in .metadata is PEP 658's file beside one.
    const metadata = filename.endsWith('.metadata');
    if (metadata) filename = filename.slice(0, -'.metadata'.length);
    try {
      const answer = await fileSource.get(project, hash, filename, metadata);
      const headers: Record<string, string> = {
        'content-type': metadata ? 'text/plain; charset=utf-8' : 'application/octet-stream',
        'content-length': String(answer.size),
        'cache-control': 'max-age=31536000, immutable',
        via: VIA,
        'x-pyedge-cache': answer.fromCache ? 'hit' : 'miss',
      };
      if (answer.upstream !== null) headers['x-pyedge-upstream'] = answer.upstream;
      res.writeHead(200, headers);
      if (req.method === 'HEAD') res.end();
      else if (answer.bytes !== null) res.end(answer.bytes);
      else await pipeline(createReadStream(answer.path!), res);
      return 200;
    } catch (err) {
      if (err instanceof UnknownFile) throw new HttpAnswer(404, `Not Found: ${err.message}.`);
      if (err instanceof AllUpstreamsFailed) {
        if (err.notFound) throw new HttpAnswer(404, `Not Found: no upstream has ${filename}${metadata ? '.metadata' : ''}.`);
        throw new HttpAnswer(502, failedMessage(err, `${filename}${metadata ? '.metadata' : ''} with the right hash`));
      }
      throw err;
    }
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<[string, number]> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpAnswer(405, 'Method Not Allowed: the proxy serves GET and HEAD.');
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const path = url.pathname;
    if (path === '/_health') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ status: 'ok' }));
      return ['status', 200];
    }
    if (path === '/_status') {
      const wantsJson = url.searchParams.get('format') === 'json' || !/text\/html/.test(req.headers.accept ?? '');
      const s = status();
      if (wantsJson) res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(s, null, 2));
      else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(statusHtml(s));
      return ['status', 200];
    }
    if (path === '/metrics') {
      const body = await metrics.text();
      res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' }).end(body);
      return ['status', 200];
    }
    const simple = /^\/simple\/([^/]+)(\/?)$/.exec(path);
    if (simple) {
      const raw = decodeURIComponent(simple[1]!);
      const name = normalizeName(raw);
      if (raw !== name || simple[2] !== '/') {
        res.writeHead(301, { location: `/simple/${encodeURIComponent(name)}/${url.search}`, via: VIA }).end();
        return ['page', 301];
      }
      return ['page', await servePage(req, res, name, url.searchParams)];
    }
    if (path.startsWith('/_files/')) {
      const status = await serveFile(req, res, path.slice('/_files/'.length).split('/'));
      return ['file', status];
    }
    const jsonApi = /^\/pypi\/([^/]+)\/(?:[^/]+\/)?json\/?$/.exec(path);
    if (jsonApi) {
      const project = normalizeName(decodeURIComponent(jsonApi[1]!));
      try {
        const base = `http://${req.headers.host ?? `${config.host}:${config.port}`}`;
        const answer = await forwarder.jsonApi(project, path.slice(1) + url.search, base);
        res.writeHead(answer.status, answer.headers).end(req.method === 'HEAD' ? undefined : answer.body);
        return ['json-api', answer.status];
      } catch (err) {
        if (err instanceof AllUpstreamsFailed) {
          if (err.notFound) throw new HttpAnswer(404, `Not Found: no upstream has ${path}.`);
          throw new HttpAnswer(502, failedMessage(err, path));
        }
        throw err;
      }
    }
    try {
      await forwarder.forward(req.method, path.slice(1) + url.search, req.headers, res);
      return ['forward', res.statusCode];
    } catch (err) {
      if (err instanceof AllUpstreamsFailed) throw new HttpAnswer(err.notFound ? 404 : 502, failedMessage(err, path));
      throw err;
    }
  };

  const server: Server = createServer((req, res) => {
    route(req, res).then(
      ([name, code]) => metrics.response(name, code),
      (err: unknown) => {
        const status = err instanceof HttpAnswer ? err.status : 500;
        if (!(err instanceof HttpAnswer)) logger.error({ err, url: req.url }, 'request failed');
        else if (status >= 500) logger.warn({ url: req.url, status, message: err.message }, 'no upstream could answer');
        metrics.response('error', status);
        if (res.headersSent) res.destroy();
        else text(res, status, err instanceof HttpAnswer ? err.message : 'pyedge proxy: internal error');
      },
    );
  });
  server.keepAliveTimeout = 30_000;

  await prober.start();
  const url = await listenHttp(server, config.port, config.host);
  return {
    url,
    status,
    async close() {
      prober.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      closeAgents();
      await cache.close();
    },
  };
}
