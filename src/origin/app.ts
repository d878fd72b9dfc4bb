/** Builds the origin's HTTP application. Never listens: server.ts does, tests call inject(). */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { BlobStore } from '../blobstore/blob-store.js';
import type { OriginConfig } from './origin-config.js';
import { handleError } from './http-errors.js';
import { PageCache } from './page-cache.js';
import { ChangeHub } from './change-hub.js';
import { RootIndex } from './root-index.js';
import { DownloadCounter } from './download-counter.js';
import { join } from 'node:path';
import type { ServerKey } from '../signing/key-file.js';
import { pep381Routes } from './routes/pep381.js';
import { UploadService } from './upload/upload-service.js';
import { legacyRoutes } from './routes/legacy.js';
import { simpleRoutes } from './routes/simple.js';
import { packageRoutes } from './routes/packages.js';
import { healthRoutes } from './routes/health.js';
import { jsonApiRoutes } from './routes/json-api.js';
import { xmlrpcRoutes } from './routes/xmlrpc.js';
import { manageRoutes } from './routes/manage.js';
import { docsRoutes } from './routes/docs.js';
import { DocsService } from './docs/docs-service.js';
import { changesRoutes } from './routes/changes.js';
import { syncRoutes } from './routes/sync.js';

export interface OriginDeps {
  readonly db: Database;
  readonly blobs: BlobStore;
  readonly config: OriginConfig;
  readonly logger: Logger;
  /** Where uploads are spooled while they are checked. */
  readonly spoolDir: string;
  /** Signs project pages (`/serversig/<name>`); its public half is `/serverkey`. */
  readonly serverKey: ServerKey;
}

/** What route plugins share. */
export interface OriginContext extends OriginDeps {
  readonly pages: PageCache;
  readonly uploads: UploadService;
  /** Documentation uploads and the pointer cache `/docs/` reads through. */
  readonly docs: DocsService;
  readonly changes: ChangeHub;
  readonly root: RootIndex;
  readonly downloads: DownloadCounter;
  /**
   * Call after every write this process commits: drops the cached pages of the
   * projects it touched and wakes change-feed clients.
   */
  committed(normalizedNames: readonly string[], serial: number): void;
  /** The origin's public base URL without a trailing slash (`--public-url`, else the address it listens on). */
  baseUrl(): string;
  /** Set by the server once it listens, when no public URL is configured. */
  setBaseUrl(url: string): void;
}

export function buildApp(deps: OriginDeps): { app: FastifyInstance; context: OriginContext } {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    disableRequestLogging: true,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    routerOptions: { maxParamLength: 300, ignoreDuplicateSlashes: false },
  });
  const pages = new PageCache(deps.db);
  const changes = new ChangeHub();
  let base = deps.config.publicUrl ?? 'http://localhost';
  const context: OriginContext = {
    ...deps,
    pages,
    changes,
    downloads: new DownloadCounter(deps.db, deps.logger.child({ component: 'downloads' })),
    root: new RootIndex(deps.db, join(deps.config.dataDir, 'cache'), deps.logger.child({ component: 'root-index' }), {
      dbUrl: deps.config.db,
    }),
    uploads: new UploadService(deps.db, deps.blobs, deps.logger.child({ component: 'upload' })),
    docs: new DocsService(deps.db, deps.blobs, deps.logger.child({ component: 'docs' }), { spoolDir: deps.spoolDir }),
    committed(normalizedNames, serial) {
      pages.invalidate(normalizedNames);
      changes.committed(serial);
    },
    baseUrl: () => base,
    setBaseUrl(url) {
      if (!deps.config.publicUrl) base = url.replace(/\/+$/, '');
    },
  };

  // Uploads are multipart bodies streamed by the route itself, never buffered by a parser.
  app.addContentTypeParser('multipart/form-data', (_req, _payload, done) => done(null, undefined));
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .type('text/plain; charset=utf-8')
      .send(`404 Not Found: ${request.url.length > 200 ? request.url.slice(0, 200) + '…' : request.url}\n`);
  });
  app.addHook('onResponse', (request, reply, done) => {
    request.log.info(
      { method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 },
      'request',
    );
    done();
  });

  void app.register(healthRoutes, { context });
  void app.register(legacyRoutes, { context });
  void app.register(simpleRoutes, { context });
  void app.register(packageRoutes, { context });
  void app.register(jsonApiRoutes, { context });
  void app.register(xmlrpcRoutes, { context });
  void app.register(manageRoutes, { context });
  void app.register(docsRoutes, { context });
  void app.register(pep381Routes, { context });
  void app.register(syncRoutes, { context });
  void app.register(changesRoutes, { context, options: { maxWaiting: deps.config.feedMaxClients } });
  return { app, context };
}
