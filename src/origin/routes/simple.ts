/** The Simple API (PEP 503 HTML, PEP 691 JSON), negotiated, cached by serial. */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { OriginContext } from '../app.js';
import type { RenderedPage } from '../page-cache.js';
import { pageCacheHeaders } from '../cache-headers.js';
import { normalizeName } from '../../core/names.js';
import { PyedgeError } from '../../core/errors.js';
import { ifNoneMatchHits } from '../../core/etags.js';
import { SIMPLE_NOT_ACCEPTABLE } from '../../core/http-headers.js';
import { ALL_PROJECTS_KEY, projectKey } from '../../core/surrogate-keys.js';
import { contentTypeOf, negotiateSimpleFormat, type SimpleFormat } from '../../render/index.js';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';


function queryString(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? '' : url.slice(q);
}

function formatParam(request: FastifyRequest): string | undefined {
  const q = request.query as Record<string, unknown> | undefined;
  const f = q?.format;
  return typeof f === 'string' ? f : undefined;
}

function negotiate(request: FastifyRequest): SimpleFormat {
  const format = negotiateSimpleFormat(request.headers.accept, formatParam(request));
  if (format === null) {
    throw new PyedgeError('PYEDGE_NOT_ACCEPTABLE', SIMPLE_NOT_ACCEPTABLE, { accept: request.headers.accept });
  }
  return format;
}

function notModified(request: FastifyRequest, etag: string): boolean {
  return ifNoneMatchHits(request.headers['if-none-match'], etag);
}

export const simpleRoutes: FastifyPluginAsync<{ context: OriginContext }> = async (app, { context }) => {
  const { pages, config } = context;

  /** The headers every Simple page carries; true when the client's copy is current (answer 304). */
  const pageHeaders = (request: FastifyRequest, reply: FastifyReply, format: SimpleFormat, etag: string, serial: number, surrogateKey: string): boolean => {
    void reply
      .header('content-type', contentTypeOf(format))
      .header('etag', etag)
      .header('vary', 'Accept')
      .headers(pageCacheHeaders(config.pageMaxAge, surrogateKey))
      .header('x-pypi-last-serial', String(serial));
    return notModified(request, etag);
  };

  const send = (request: FastifyRequest, reply: FastifyReply, name: string, page: RenderedPage): Buffer | undefined => {
    const format = negotiate(request);
    const json = format === 'json';
    if (pageHeaders(request, reply, format, json ? page.jsonEtag : page.htmlEtag, page.serial, projectKey(name))) {
      void reply.code(304);
      return undefined;
    }
    return json ? page.json : page.html;
  };

  app.get('/simple', async (request, reply) => reply.redirect(`/simple/${queryString(request.url)}`, 301));

  app.get('/simple/', async (request, reply) => {
    const format = negotiate(request);
    const root = await context.root.files();
    const json = format === 'json';
    if (pageHeaders(request, reply, format, json ? root.jsonEtag : root.htmlEtag, root.serial, ALL_PROJECTS_KEY)) return reply.code(304).send();
    // Tens of MB at PyPI's size: streamed from the rendering on disk, never held in memory.
    return reply
      .header('content-length', String(json ? root.jsonSize : root.htmlSize))
      .send(request.method === 'HEAD' ? Readable.from([]) : createReadStream(json ? root.jsonPath : root.htmlPath));
  });

  const project = async (request: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply, slash: boolean) => {
    const name = request.params.name;
    const normalized = normalizeName(name);
    if (!slash || name !== normalized) {
      return reply.redirect(`/simple/${encodeURIComponent(normalized)}/${queryString(request.url)}`, 301);
    }
    const page = await pages.project(normalized);
    if (!page) {
      throw new PyedgeError('PYEDGE_NOT_FOUND', `Not Found: there is no project named '${normalized}' on this index.`, {
        project: normalized,
      });
    }
    return send(request, reply, normalized, page);
  };
  app.get<{ Params: { name: string } }>('/simple/:name/', (request, reply) => project(request, reply, true));
  app.get<{ Params: { name: string } }>('/simple/:name', (request, reply) => project(request, reply, false));
};
