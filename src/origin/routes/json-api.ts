/** Warehouse's JSON API: `/pypi/<name>/json` and `/pypi/<name>/<version>/json`, cached by project serial. */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { OriginContext } from '../app.js';
import type { RenderedJson } from '../page-cache.js';
import { normalizeName } from '../../core/names.js';
import { PyedgeError } from '../../core/errors.js';
import { projectKey } from '../../core/surrogate-keys.js';
import { pageCacheHeaders } from '../cache-headers.js';
import { ifNoneMatchHits } from '../../core/etags.js';
import { JSON_API_CORS_HEADERS as CORS_HEADERS } from '../../core/http-headers.js';


interface ProjectParams {
  name: string;
}
interface ReleaseParams {
  name: string;
  version: string;
}

function queryString(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? '' : url.slice(q);
}

function notFound(message: string, context: Record<string, unknown>): PyedgeError {
  return new PyedgeError('PYEDGE_NOT_FOUND', message, context);
}

export const jsonApiRoutes: FastifyPluginAsync<{ context: OriginContext }> = async (app, { context }) => {
  const { pages, config } = context;

  const send = (request: FastifyRequest, reply: FastifyReply, name: string, doc: RenderedJson): Buffer | undefined => {
    void reply
      .header('content-type', 'application/json')
      .header('etag', doc.etag)
      .headers(pageCacheHeaders(config.pageMaxAge, projectKey(name)))
      .header('x-pypi-last-serial', String(doc.serial));
    if (ifNoneMatchHits(request.headers['if-none-match'], doc.etag)) {
      void reply.code(304);
      return undefined;
    }
    return doc.body;
  };

  const project = async (request: FastifyRequest<{ Params: ProjectParams }>, reply: FastifyReply, slash: boolean) => {
    void reply.headers(CORS_HEADERS);
    const { name } = request.params;
    const normalized = normalizeName(name);
    if (name !== normalized) {
      return reply.redirect(`/pypi/${encodeURIComponent(normalized)}/json${slash ? '/' : ''}${queryString(request.url)}`, 301);
    }
    const api = await pages.jsonApi(normalized, context.baseUrl());
    const doc = api?.project() ?? null;
    if (!api || !doc) {
      throw notFound(`Not Found: there is no project named '${normalized}' with releases on this index.`, { project: normalized });
    }
    return send(request, reply, normalized, doc);
  };

  const release = async (request: FastifyRequest<{ Params: ReleaseParams }>, reply: FastifyReply, slash: boolean) => {
    void reply.headers(CORS_HEADERS);
    const { name, version } = request.params;
    const normalized = normalizeName(name);
    const api = await pages.jsonApi(normalized, context.baseUrl());
    if (!api) throw notFound(`Not Found: there is no project named '${normalized}' on this index.`, { project: normalized });
    const stored = api.resolveVersion(version);
    if (stored === null) {
      throw notFound(`Not Found: project '${api.name}' has no release '${version}'.`, { project: normalized, version });
    }
    if (name !== normalized || version !== stored) {
      const path = `/pypi/${encodeURIComponent(normalized)}/${encodeURIComponent(stored)}/json${slash ? '/' : ''}`;
      return reply.redirect(path + queryString(request.url), 301);
    }
    const doc = api.release(stored);
    if (!doc) throw notFound(`Not Found: project '${api.name}' has no release '${version}'.`, { project: normalized, version });
    return send(request, reply, normalized, doc);
  };

  app.get<{ Params: ProjectParams }>('/pypi/:name/json', (request, reply) => project(request, reply, false));
  app.get<{ Params: ProjectParams }>('/pypi/:name/json/', (request, reply) => project(request, reply, true));
  app.get<{ Params: ReleaseParams }>('/pypi/:name/:version/json', (request, reply) => release(request, reply, false));
  app.get<{ Params: ReleaseParams }>('/pypi/:name/:version/json/', (request, reply) => release(request, reply, true));
};
