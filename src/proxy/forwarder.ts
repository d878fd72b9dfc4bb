/**
 * Everything that is not a project page or a file: the root index, the JSON
 * API, PEP 381 pages and the rest, passed through from the first upstream
 * that answers without a server error. Failing over is possible until the
 * headers are in; the body is then streamed, and a body that stalls ends the
 * client's response. The JSON API is read whole instead: it is checked against
 * the newest serial seen, and its file URLs are pointed at the proxy.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Hedger } from './hedger.js';
import type { FileIndex } from './file-index.js';
import type { Timeouts } from './proxy-config.js';
import { serialHeader } from './page-source.js';
import { proxyFileUrl, type PageFile } from './simple-page.js';
import { UpstreamFailure, requireOk, upstreamRequest, type UpstreamResponse } from './upstream-client.js';
import type { UpstreamSet } from './upstream-set.js';

/** RFC 9110 §7.6.1 hop-by-hop fields, and the length we may change. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);
const FORWARDED_REQUEST_HEADERS = ['accept', 'accept-encoding', 'if-none-match', 'if-modified-since', 'range', 'user-agent'];

export const VIA = '1.1 pyedge-proxy';

export function responseHeaders(headers: IncomingHttpHeaders, site: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  // Fields the Connection header names are hop-by-hop too.
  const named = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((t) => t.trim()));
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k)) continue;
    out[k] = k === 'location' && typeof v === 'string' && v.startsWith(site) ? `/${v.slice(site.length)}` : v;
  }
  out.via = headers.via ? `${String(headers.via)}, ${VIA}` : VIA;
  return out;
}

export interface ForwarderDeps {
  readonly upstreams: UpstreamSet;
  readonly hedger: Hedger;
  readonly files: FileIndex;
  readonly timeouts: Timeouts;
  readonly logger: Logger;
}

export class Forwarder {
  readonly #d: ForwarderDeps;

  constructor(deps: ForwarderDeps) {
    this.#d = deps;
  }

  /** Stream `path` (site-relative, with its query) from the first upstream that answers. */
  async forward(method: 'GET' | 'HEAD', path: string, requestHeaders: IncomingHttpHeaders, res: ServerResponse): Promise<void> {
    const headers: Record<string, string> = {};
    for (const h of FORWARDED_REQUEST_HEADERS) {
      const v = requestHeaders[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const { upstreams, hedger, timeouts } = this.#d;
    const won = await hedger.run(
      'other',
      upstreams.order('other').upstreams,
      async (u, signal, progress) => {
        const answer = await upstreamRequest(u.siteUrl(path), { method, headers, timeouts, signal });
        progress.firstByte(answer.firstByteMs);
        if (answer.status >= 500) {
          answer.cancel();
          throw new UpstreamFailure('status', `HTTP ${answer.status}`, { status: answer.status });
        }
        return answer;
      },
      { dispose: (late: UpstreamResponse) => late.cancel() },
    );
    const answer = won.value;
    res.writeHead(answer.status, { ...responseHeaders(answer.headers, won.upstream.site), 'x-pyedge-upstream': won.upstream.root });
    try {
      await pipeline(answer.body, res);
    } catch (err) {
      this.#d.logger.warn({ err, upstream: won.upstream.root, path }, 'an upstream answer broke off while streaming');
      res.destroy();
    }
  }

  /** The JSON API of a project (or release), checked against the newest serial and with file URLs through the proxy. */
  async jsonApi(project: string, path: string, base: string): Promise<{ status: number; body: string; headers: Record<string, string> }> {
    const { upstreams, hedger, timeouts, files } = this.#d;
    const won = await hedger.run('page', upstreams.order('page', project).upstreams, async (u, signal, progress) => {
      const answer = await upstreamRequest(u.siteUrl(path), { timeouts, signal, headers: { accept: 'application/json' } });
      progress.firstByte(answer.firstByteMs);
      requireOk(answer);
      let doc: Record<string, unknown>;
      try {
        doc = JSON.parse((await answer.text(64 * 1024 * 1024)).toString('utf8')) as Record<string, unknown>;
      } catch (err) {
        if (err instanceof UpstreamFailure) throw err;
        throw new UpstreamFailure('invalid', 'the JSON API answer is not JSON');
      }
      if (!doc || typeof doc !== 'object' || typeof doc.info !== 'object') throw new UpstreamFailure('invalid', 'not a JSON API document');
      const serial = typeof doc.last_serial === 'number' ? doc.last_serial : serialHeader(answer.headers['x-pypi-last-serial']);
      const known = upstreams.serial(project);
      if (serial !== null && known !== undefined && serial < known) {
        throw new UpstreamFailure('stale', `JSON API serial ${serial} of '${project}' is older than ${known} already seen`);
      }
      return { doc, serial, upstream: u };
    });
    const { doc, serial, upstream } = won.value;
    if (serial !== null) upstreams.sawSerial(project, serial, upstream.index);
    const links: PageFile[] = [];
    const rewrite = (entries: unknown): void => {
      if (!Array.isArray(entries)) return;
      for (const e of entries as Record<string, unknown>[]) {
        const digests = e.digests as Record<string, unknown> | undefined;
        const sha256 = typeof digests?.sha256 === 'string' ? digests.sha256.toLowerCase() : null;
        if (typeof e.url !== 'string' || typeof e.filename !== 'string' || sha256 === null || !/^[0-9a-f]{64}$/.test(sha256)) continue;
        const original = new URL(e.url, upstream.siteUrl(path)).toString();
        links.push({ filename: e.filename, url: original, hashes: { sha256 }, requiresPython: null, yanked: false, coreMetadata: false, json: null, attributes: null });
        e.url = base + proxyFileUrl(project, { name: 'sha256', hex: sha256 }, e.filename);
      }
    };
    rewrite(doc.urls);
    if (doc.releases && typeof doc.releases === 'object') for (const entries of Object.values(doc.releases)) rewrite(entries);
    files.learn(project, upstream, links);
    const headers: Record<string, string> = { 'content-type': 'application/json', via: VIA, 'x-pyedge-upstream': upstream.root };
    if (serial !== null) headers['x-pypi-last-serial'] = String(serial);
    return { status: 200, body: JSON.stringify(doc), headers };
  }
}
