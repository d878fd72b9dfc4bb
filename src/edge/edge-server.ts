/** Starts an edge: opens its tree, listens with the lean front over node:http, stops cleanly. */
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { s3Overrides } from '../origin/origin-config.js';
import type { EdgeConfig } from './edge-config.js';
import { EdgeHandler } from './edge-handler.js';
import { FolderTreeSource } from './folder-tree-source.js';
import type { TreeSource } from './tree-source.js';
import { listenHttp } from '../runtime/listen.js';
import { LeanHttpFront } from './lean-http.js';

/** How long an idle connection is kept open, as node:http's keepAliveTimeout. */
const KEEP_ALIVE_MS = 65_000;

export interface RunningEdge {
  /** e.g. `http://127.0.0.1:8081` (no trailing slash). */
  readonly url: string;
  readonly handler: EdgeHandler;
  close(): Promise<void>;
}

/** The tree at `root`: a folder read directly (the fast path), or a bucket through its blob store. */
export async function openTreeSource(root: string, config: Pick<EdgeConfig, 's3'>): Promise<TreeSource> {
  if (/^s3:/i.test(root)) {
    // Loaded only for a bucket: the AWS SDK is large, and a folder edge never needs it.
    const [{ createBlobStore }, { BlobTreeSource }] = await Promise.all([import('../blobstore/create-blob-store.js'), import('./blob-tree-source.js')]);
    return new BlobTreeSource(createBlobStore(root, s3Overrides(config)));
  }
  // Not a FolderBlobStore: that one creates the folder and its temp folder, and an edge only reads.
  return new FolderTreeSource(folderOf(root));
}

function folderOf(root: string): string {
  return path.resolve(/^file:/i.test(root) ? fileURLToPath(root) : root);
}

export async function startEdge(config: EdgeConfig, logger: Logger): Promise<RunningEdge> {
  const source = config.root === null ? null : await openTreeSource(config.root, config);
  if (config.root !== null && !/^s3:/i.test(config.root) && !existsSync(folderOf(config.root))) {
    logger.warn({ root: config.root }, 'the tree folder does not exist (yet): nothing is served until a publisher writes it');
  }
  const handler = new EdgeHandler({
    source,
    redirect: config.redirectTo === null ? null : { base: config.redirectTo, prefixes: config.redirectPaths },
    logger,
  });
  const listener = await serveEdge(handler, config.port, config.host);
  if (handler.status) void handler.status.refresh();
  return {
    url: listener.url,
    handler,
    async close() {
      await listener.close();
      await source?.close();
    },
  };
}

export interface EdgeListener {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `handler` on `host:port`: the lean front answers what the handler can
 * answer at once, node:http the rest (lean-http.ts).
 */
export async function serveEdge(handler: EdgeHandler, port: number, host: string): Promise<EdgeListener> {
  const server: Server = createServer({ keepAliveTimeout: KEEP_ALIVE_MS }, handler.handle);
  server.on('clientError', (err, socket) => {
    // What Node's parser refuses: 431 for oversized headers, else 400 (Node's own answers, kept quiet in the log).
    const status = (err as NodeJS.ErrnoException).code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    else socket.destroy(err);
  });
  // node:http gets only the connections the lean front hands over; it never listens itself, so its
  // connection tracking (closing idle connections, header and request timeouts), which starts on
  // 'listening', is started here.
  server.emit('listening');
  const front = new LeanHttpFront((req, res) => handler.answerNow(req, res), server, { keepAliveMs: KEEP_ALIVE_MS });
  const url = await listenHttp(front.server, port, host);
  return {
    url,
    async close() {
      const stopped = front.close();
      server.close();
      // Downloads under way get a moment to finish, then go.
      const timer = setTimeout(() => server.closeAllConnections(), 5_000);
      await stopped;
      clearTimeout(timer);
    },
  };
}
