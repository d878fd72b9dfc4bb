/** Wires a publisher: an origin source, a static tree on a blob store, the signing key and the engine. */
import type { Logger } from 'pino';
import { createBlobStore } from '../blobstore/create-blob-store.js';
import { s3Overrides } from '../origin/origin-config.js';
import { loadServerKey } from '../signing/key-file.js';
import { SyncEngine } from './engine.js';
import { OriginSource } from './origin-source.js';
import type { PublisherConfig } from './publisher-config.js';
import { StaticTree } from './static-tree.js';

export interface Publisher {
  readonly engine: SyncEngine;
  readonly source: OriginSource;
  readonly tree: StaticTree;
  close(): Promise<void>;
}

/** Opens the tree and the key (creating the key on first use) and reads what the tree holds. */
export async function openPublisher(config: PublisherConfig, logger: Logger): Promise<Publisher> {
  const key = await loadServerKey(config.keyFile, { create: true });
  const tree = new StaticTree(createBlobStore(config.target, s3Overrides(config)));
  const source = new OriginSource(config.source, { publicUrl: config.publicUrl, concurrency: config.concurrency });
  const engine = new SyncEngine({
    source,
    tree,
    key,
    logger: logger.child({ component: 'sync' }),
    concurrency: config.concurrency,
    rootIntervalMs: config.rootIntervalMs,
  });
  try {
    await engine.open();
  } catch (err) {
    await tree.close();
    throw err;
  }
  return {
    engine,
    source,
    tree,
    async close() {
      await Promise.allSettled([source.close(), tree.close()]);
    },
  };
}
