/** `/docs/<name>/…`: a project's published documentation, from its current generation only. */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { OriginContext } from '../app.js';
import { PyedgeError } from '../../core/errors.js';
import { isValidName, normalizeName } from '../../core/names.js';
import { contentTypeFor } from '../docs/docs-content-types.js';

const UNSAFE_SEGMENT = /[\u0000-\u001f\u007f\\/]/;

/** `/docs/<name>[/<rest>][?query]` split without decoding, or null when the URL is not under /docs/. */
function splitUrl(url: string): { rawName: string; rest: string | null; query: string } | null {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q);
  if (!path.startsWith('/docs/')) return null;
  const after = path.slice('/docs/'.length);
  const slash = after.indexOf('/');
  return slash < 0 ? { rawName: after, rest: null, query } : { rawName: after.slice(0, slash), rest: after.slice(slash + 1), query };
}

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/**
 * The file path a URL rest names (`''` → `index.html`, `a/` → `a/index.html`).
 * Each segment is decoded on its own, so `%2F` cannot make a separator and
 * `%2e%2e` is seen as `..` and refused.
 */
function filePath(rest: string): { path: string; folder: boolean } {
  const folder = rest === '' || rest.endsWith('/');
  const raw = rest === '' ? [] : (folder ? rest.slice(0, -1) : rest).split('/');
  const segments: string[] = [];
  for (const r of raw) {
    const s = decode(r);
    if (s === null || s === '' || s === '.' || s === '..' || UNSAFE_SEGMENT.test(s)) {
      throw new PyedgeError(
        'PYEDGE_BAD_REQUEST',
        "Bad Request: a documentation path may not contain '.', '..' or empty segments, encoded slashes, backslashes or control characters.",
        { rest: rest.slice(0, 300) },
      );
    }
    segments.push(s);
  }
  if (folder) segments.push('index.html');
  return { path: segments.join('/'), folder };
}

export const docsRoutes: FastifyPluginAsync<{ context: OriginContext }> = async (app, { context }) => {
  const { reader } = context.docs;
  const cacheControl = `max-age=${context.config.pageMaxAge}, public`;

  const serve = async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const parts = splitUrl(request.url);
    const name = parts ? decode(parts.rawName) : null;
    if (!parts || name === null || !isValidName(name)) {
      throw new PyedgeError('PYEDGE_NOT_FOUND', 'Not Found: no such project on this index.', { url: request.url.slice(0, 300) });
    }
    const normalized = normalizeName(name);
    if (parts.rawName !== normalized || parts.rest === null) {
      return reply.redirect(`/docs/${normalized}/${parts.rest ?? ''}${parts.query}`, 301);
    }
    const { path, folder } = filePath(parts.rest);
    const headOnly = request.method === 'HEAD';
    const file = await reader.open(normalized, path, { headOnly });
    if (!file) {
      if (!(await reader.current(normalized))) {
        throw new PyedgeError('PYEDGE_NOT_FOUND', `Not Found: project '${normalized}' has no documentation on this index.`, {
          project: normalized,
        });
      }
      // A folder asked for without its slash: send the browser to the form relative links work from.
      if (!folder && (await reader.open(normalized, `${path}/index.html`, { headOnly: true }))) {
        return reply.redirect(`/docs/${normalized}/${parts.rest}/${parts.query}`, 301);
      }
      throw new PyedgeError('PYEDGE_NOT_FOUND', `Not Found: the documentation of '${normalized}' has no file '${path}'.`, {
        project: normalized,
        path,
      });
    }
    const etag = `"docs-${file.generation}"`;
    void reply
      .header('content-type', contentTypeFor(file.path))
      .header('etag', etag)
      .header('last-modified', file.info.lastModified.toUTCString())
      .header('cache-control', cacheControl)
      .header('x-content-type-options', 'nosniff');
    const inm = request.headers['if-none-match'];
    if (inm && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
      file.body?.destroy();
      return reply.code(304).send();
    }
    // An empty stream keeps the Content-Length set here (fastify's HEAD handling zeroes it for no payload).
    return reply.header('content-length', String(file.contentLength)).send(file.body ?? Readable.from([]));
  };

  app.get('/docs/:name', serve);
  app.get('/docs/:name/*', serve);
};
