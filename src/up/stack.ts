/**
 * `pyedge up`: the whole stack in one process on loopback. The origin takes uploads, a publisher
 * follows its change feed into a static tree, an edge serves that tree, so reads go on when the
 * origin stops, and a fail-over proxy in front of edge and origin gives pip one URL for both. Ports and the first user's token are kept in the data folder between runs.
 */
import type { Logger } from 'pino';
import { createDatabase } from '../db/create-database.js';
import { PyedgeError } from '../core/errors.js';
import { resolveEdgeConfig } from '../edge/edge-config.js';
import { startEdge, type RunningEdge } from '../edge/edge-server.js';
import { resolveOriginConfig, type OriginConfig } from '../origin/origin-config.js';
import { resolveProxyConfig } from '../proxy/proxy-config.js';
import { startProxy, type RunningProxy } from '../proxy/proxy-server.js';
import { startOrigin, type RunningOrigin } from '../origin/server.js';
import { issueToken } from '../origin/tokens.js';
import type { BatchResult } from '../sync/batch-result.js';
import { resolvePublisherConfig } from '../sync/publisher-config.js';
import { openPublisher, type Publisher } from '../sync/publisher.js';
import { watch } from '../sync/sync-loop.js';
import { upLayout, type StackPart, type UpConfig, type UpLayout } from './up-config.js';
import { readUpState, writeUpState, type UpState } from './up-state.js';

/** The user `pyedge up` makes on its first run. */
export const FIRST_USER = 'admin';

export interface RunningStack {
  readonly dataDir: string;
  readonly layout: UpLayout;
  /** Base URLs without a trailing slash. */
  readonly originUrl: string;
  readonly edgeUrl: string;
  /** The fail-over proxy in front of the edge and the origin. */
  readonly proxyUrl: string;
  readonly user: string;
  readonly token: string;
  /** Whether this run made the user and token. */
  readonly firstRun: boolean;
  /** Stop the publisher after its batch under way, then the edge, then the origin. */
  close(): Promise<void>;
}

export interface StackOptions {
  /** Each publisher batch, for a line on the terminal. */
  readonly onBatch?: (result: BatchResult) => void;
}

function inUse(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'EADDRINUSE';
}

/**
 * Listen on the port asked for (it must be free), else on last run's port when it is still free,
 * else on any free port.
 */
async function listen<T>(part: StackPart, config: UpConfig, state: UpState, start: (port: number) => Promise<T>): Promise<T> {
  const asked = config.ports[part];
  if (asked !== null) {
    try {
      return await start(asked);
    } catch (err) {
      if (inUse(err)) {
        throw new PyedgeError('PYEDGE_CONFIG', `Port ${asked} (--${part}-port) is in use on ${config.host}: stop what listens there or pick another port.`, { key: `${part}Port` }, { cause: err });
      }
      throw err;
    }
  }
  const remembered = state.ports[part];
  if (remembered !== undefined) {
    try {
      return await start(remembered);
    } catch (err) {
      if (!inUse(err)) throw err;
    }
  }
  return start(0);
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** The first run's user and token, made before the origin opens its database. */
async function ensureToken(origin: OriginConfig, state: UpState): Promise<{ user: string; token: string; firstRun: boolean }> {
  if (state.user !== null && state.token !== null) return { user: state.user, token: state.token, firstRun: false };
  const db = createDatabase(origin.db);
  try {
    await db.migrate();
    const issued = await issueToken(db, FIRST_USER, null);
    return { user: issued.username, token: issued.token, firstRun: true };
  } finally {
    await db.close();
  }
}

export async function startStack(config: UpConfig, logger: Logger, options: StackOptions = {}): Promise<RunningStack> {
  const layout = upLayout(config.dataDir);
  const state = await readUpState(layout.stateFile);
  const originOptions = { data: layout.originData, host: config.host, logLevel: config.logLevel };
  const { user, token, firstRun } = await ensureToken(resolveOriginConfig(originOptions), state);
  // Written before anything listens: a crash now must not lose the only copy of the token.
  if (firstRun) await writeUpState(layout.stateFile, { ...state, user, token });

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    const origin: RunningOrigin = await listen('origin', config, state, (port) =>
      startOrigin(resolveOriginConfig({ ...originOptions, port }), logger.child({ component: 'origin' })),
    );
    stops.push(() => origin.close());
    const edge: RunningEdge = await listen('edge', config, state, (port) =>
      startEdge(resolveEdgeConfig({ root: layout.tree, host: config.host, port, logLevel: config.logLevel }), logger.child({ component: 'edge' })),
    );
    stops.push(() => edge.close());
    // The edge first: it answers while the origin is down; the origin has what the edge has not yet.
    const proxy: RunningProxy = await listen('proxy', config, state, (port) =>
      startProxy(
        resolveProxyConfig({ upstream: [`${edge.url}/simple/`, `${origin.listenUrl.replace(/\/$/, '')}/simple/`], host: config.host, port: String(port), cache: layout.proxyCache, logLevel: config.logLevel }),
        logger.child({ component: 'proxy' }),
      ),
    );
    stops.push(() => proxy.close());

    const publisherConfig = resolvePublisherConfig({
      source: origin.listenUrl,
      target: layout.tree,
      watch: true,
      // The tree's JSON API links files where the tree is served.
      publicUrl: edge.url,
      keyFile: layout.publisherKey,
      logLevel: config.logLevel,
    });
    const publisherLogger = logger.child({ component: 'publish' });
    const publisher: Publisher = await openPublisher(publisherConfig, publisherLogger);
    const stop = new AbortController();
    const running = watch(publisher.engine, publisher.source, {
      intervalMs: publisherConfig.intervalMs,
      signal: stop.signal,
      logger: publisherLogger,
      ...(options.onBatch ? { onBatch: options.onBatch } : {}),
    });
    stops.push(async () => {
      stop.abort();
      await running;
      await publisher.close();
    });

    await writeUpState(layout.stateFile, { user, token, ports: { origin: portOf(origin.listenUrl), edge: portOf(edge.url), proxy: portOf(proxy.url) } });
    let closing: Promise<void> | null = null;
    return {
      dataDir: config.dataDir,
      layout,
      originUrl: origin.listenUrl.replace(/\/$/, ''),
      edgeUrl: edge.url.replace(/\/$/, ''),
      proxyUrl: proxy.url.replace(/\/$/, ''),
      user,
      token,
      firstRun,
      close: () => (closing ??= stopAll()),
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
