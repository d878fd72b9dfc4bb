/** Starts the origin: opens the database and blob store, migrates, listens. */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import type { Logger } from 'pino';
import { createDatabase } from '../db/create-database.js';
import { createBlobStore } from '../blobstore/create-blob-store.js';
import { buildApp } from './app.js';
import { loadServerKey } from '../signing/key-file.js';
import { s3Overrides, type OriginConfig } from './origin-config.js';

export interface RunningOrigin {
  /** The URL the origin answers at (the public URL when configured). */
  readonly url: string;
  /** The address it listens on. */
  readonly listenUrl: string;
  /** Stop accepting, finish in-flight requests (at most the grace period), close stores. */
  close(): Promise<void>;
}

/** How often the page cache looks for writes made by other processes. */
const SYNC_INTERVAL_MS = 500;
/** How often download counts go to the database. */
const STATS_FLUSH_MS = 5000;

export async function startOrigin(config: OriginConfig, logger: Logger): Promise<RunningOrigin> {
  // While the root index (tens of MB) streams to slow readers, V8 sees objects
  // from allocation sites that every response uses live long, and from then on
  // allocates them in the old generation ("pretenuring"). Each later response's
  // young objects are then kept alive by those old ones until a full collection:
  // at 886k projects every scavenge copied and promoted ~2 MB and took 5-10x as
  // long, for the rest of the process. The origin keeps little long-lived data,
  // so pretenuring gains it nothing.
  setFlagsFromString('--no-allocation-site-pretenuring');
  await mkdir(config.dataDir, { recursive: true });
  const spoolDir = join(config.dataDir, 'tmp');
  await mkdir(spoolDir, { recursive: true });
  // Spool files left by a crash belong to uploads that never answered 200.
  for (const f of await readdir(spoolDir)) if (f.endsWith('.part')) await rm(join(spoolDir, f), { force: true });

  const db = createDatabase(config.db);
  await db.migrate();
  const blobs = createBlobStore(config.blobs, s3Overrides(config));
  const serverKey = await loadServerKey(config.keyFile, { create: true });
  const { app, context } = buildApp({ db, blobs, config, logger, spoolDir, serverKey });
  // Writes by other processes (the CLI) reach the page cache and the change feed through this poll.
  const catchUp = async (): Promise<void> => {
    await context.pages.sync();
    context.changes.committed(context.pages.lastSerial);
  };
  await context.root.init();
  context.root.warm();
  await catchUp();
  const timer = setInterval(() => {
    catchUp().catch((err: unknown) => logger.warn({ err }, 'page cache sync failed'));
  }, SYNC_INTERVAL_MS);
  timer.unref();
  const statsTimer = setInterval(() => void context.downloads.flush(), STATS_FLUSH_MS);
  statsTimer.unref();

  const address = await app.listen({ host: config.host, port: config.port });
  const listenUrl = address;
  context.setBaseUrl(listenUrl);
  const url = config.publicUrl ?? listenUrl;
  logger.info({ url, listen: listenUrl, db: db.dialect, blobs: blobs.description }, 'origin listening');

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      clearInterval(timer);
      clearInterval(statsTimer);
      const grace = setTimeout(() => {
        logger.warn({ graceMs: config.shutdownGrace }, 'in-flight requests did not finish in time; closing anyway');
        app.server.closeAllConnections();
      }, config.shutdownGrace);
      grace.unref();
      await app.close();
      clearTimeout(grace);
      await context.root.close();
      await context.downloads.flush();
      await Promise.allSettled([db.close(), blobs.close()]);
      logger.info('origin stopped');
    })();
    return closing;
  };
  return { url, listenUrl, close };
}
