/** `/packages/…`: distribution files and their PEP 658 metadata, with ETag and Range. */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { OriginContext } from '../app.js';
import { PyedgeError } from '../../core/errors.js';
import { fileEtag, ifNoneMatchHits } from '../../core/etags.js';
import { parseRange } from '../../core/http-range.js';
import { normalizeName } from '../../core/names.js';
import { parseFilename } from '../../core/filenames.js';
import { PACKAGE_PATH } from '../../core/hashes.js';

/** The normalized project name a distribution filename starts with (best effort, for statistics). */
function projectOfFilename(filename: string): string {
  try {
    return normalizeName(parseFilename(filename).name);
  } catch {
    return filename;
  }
}


export const packageRoutes: FastifyPluginAsync<{ context: OriginContext }> = async (app, { context }) => {
  const { blobs, db, downloads } = context;
  const notFound = (key: string): PyedgeError => new PyedgeError('PYEDGE_NOT_FOUND', 'Not Found: no such file on this index.', { key });

  app.get<{ Params: { '*': string } }>('/packages/*', async (request, reply) => {
    let key: string;
    try {
      key = `packages/${decodeURIComponent(request.params['*'])}`;
    } catch {
      key = '';
    }
    if (!PACKAGE_PATH.test(key) || key.includes('..')) {
      throw new PyedgeError('PYEDGE_NOT_FOUND', 'Not Found: no such file on this index.', { key: key.slice(0, 300) });
    }
    const isMetadata = key.endsWith('.metadata');
    const etag = fileEtag(key);
    let metadata: Buffer | null = null;
    let size: number;
    if (isMetadata) {
      // PEP 658 metadata lives in the database, committed with its file's row.
      const text = await db.getCoreMetadata(key.slice(0, -'.metadata'.length));
      if (text === undefined) throw notFound(key);
      metadata = Buffer.from(text, 'utf8');
      size = metadata.length;
    } else {
      // Only files the database records are served: a blob left by an upload that crashed
      // before its commit, or a deleted file whose blob is not yet gone, is not reachable.
      if (!(await db.isPathReferenced(key))) throw notFound(key);
      const info = await blobs.head(key).catch((err: unknown) => {
        if (err instanceof PyedgeError && err.code === 'PYEDGE_BLOB_NOT_FOUND') throw notFound(key);
        throw err;
      });
      size = info.size;
      void reply.header('last-modified', info.lastModified.toUTCString());
    }
    void reply
      .header('etag', etag)
      .header('cache-control', 'max-age=31536000, public, immutable')
      .header('accept-ranges', 'bytes')
      .type('application/octet-stream');
    if (ifNoneMatchHits(request.headers['if-none-match'], etag)) {
      return reply.code(304).send();
    }
    const ifRange = request.headers['if-range'];
    const range = ifRange && ifRange !== etag ? null : parseRange(request.headers.range, size);
    if (range === 'unsatisfiable') {
      void reply.header('content-range', `bytes */${size}`);
      throw new PyedgeError('PYEDGE_RANGE_NOT_SATISFIABLE', `Range Not Satisfiable: the file has ${size} bytes.`);
    }
    if (range) void reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`);
    if (request.method === 'HEAD') {
      // An empty stream keeps the Content-Length set here (fastify's HEAD handling zeroes it for no payload).
      return reply.header('content-length', String(range ? range.end - range.start + 1 : size)).send(Readable.from([]));
    }
    if (metadata) return reply.send(range ? metadata.subarray(range.start, range.end + 1) : metadata);
    const blob = await blobs.get(key, range ? { range } : {});
    if (!range || range.start === 0) {
      const filename = key.slice(key.lastIndexOf('/') + 1);
      downloads.record(projectOfFilename(filename), filename, request.headers['user-agent']);
    }
    return reply.header('content-length', String(blob.contentLength)).send(blob.body);
  });
};
