/**
 * `GET /changes?since=SERIAL`: the changelog as JSON, with `wait=SECONDS` to long-poll,
 * or as Server-Sent Events (`Accept: text/event-stream`, `id:` = serial, resume with
 * `Last-Event-ID`). The publisher and mirrors learn of a commit within milliseconds.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { OriginContext } from '../app.js';
import type { Change } from '../../core/model.js';
import { PyedgeError } from '../../core/errors.js';

/** Limits of the feed; defaults carry their units. */
export interface ChangeFeedOptions {
  /** Most changes in one JSON answer or SSE burst. */
  readonly pageLimit: number;
  /** Longest long-poll, in seconds. */
  readonly maxWaitSeconds: number;
  /** Most clients waiting at once (long-poll and SSE together); past it, 503. */
  readonly maxWaiting: number;
  /** SSE comment sent when nothing happened for this long, in milliseconds, so proxies keep the stream. */
  readonly heartbeatMs: number;
}

export const CHANGE_FEED_DEFAULTS: ChangeFeedOptions = {
  pageLimit: 1000,
  maxWaitSeconds: 60,
  maxWaiting: 1000,
  heartbeatMs: 15_000,
};

/** The wire form of a change. */
export function changeJson(c: Change): Record<string, unknown> {
  return {
    serial: c.serial,
    name: c.name,
    project: c.normalizedName,
    version: c.version,
    filename: c.filename,
    action: c.action,
    detail: c.detail,
    time: c.submittedAt,
  };
}

function parseSerial(value: unknown, what: string): number {
  if (value === undefined || value === '') return 0;
  const s = String(value);
  if (!/^\d{1,15}$/.test(s)) {
    throw new PyedgeError('PYEDGE_BAD_REQUEST', `Invalid ${what}: '${s.slice(0, 40)}'. Give a serial, a whole number ≥ 0.`);
  }
  return Number(s);
}

export const changesRoutes: FastifyPluginAsync<{ context: OriginContext; options?: Partial<ChangeFeedOptions> }> = async (
  app,
  { context, options },
) => {
  const { db, changes: hub } = context;
  const limits: ChangeFeedOptions = { ...CHANGE_FEED_DEFAULTS, ...options };
  let waiting = 0;
  // Waiting clients end when the server closes, so a shutdown does not wait out their long-polls.
  const stoppers = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const stop of stoppers) stop();
  });

  const admit = (): void => {
    if (waiting >= limits.maxWaiting) {
      throw new PyedgeError(
        'PYEDGE_UNAVAILABLE',
        `Too many clients are waiting on the change feed (limit ${limits.maxWaiting}). Retry in a few seconds, or poll without wait.`,
      );
    }
    waiting++;
  };

  const longPoll = async (request: FastifyRequest, reply: FastifyReply, since: number, limit: number, waitSeconds: number) => {
    let page = await db.changesSince(since, limit);
    if (page.length === 0 && waitSeconds > 0) {
      admit();
      const abort = new AbortController();
      const onClose = (): void => abort.abort();
      request.raw.once('close', onClose);
      stoppers.add(onClose);
      try {
        const moved = await hub.waitPast(since, waitSeconds * 1000, abort.signal);
        if (moved !== null) page = await db.changesSince(since, limit);
      } finally {
        waiting--;
        request.raw.off('close', onClose);
        stoppers.delete(onClose);
      }
    }
    const last = page.length > 0 ? page[page.length - 1]!.serial : since;
    void reply.header('cache-control', 'no-store').header('x-pypi-last-serial', String(Math.max(hub.lastSerial, last)));
    return { since, next: last, last_serial: Math.max(hub.lastSerial, last), changes: page.map(changeJson) };
  };

  const stream = async (request: FastifyRequest, reply: FastifyReply, since: number, limit: number) => {
    admit();
    const res = reply.raw;
    reply.hijack();
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 1000\n\n');
    let cursor = since;
    let closed = false;
    let wake: (() => void) | null = null;
    const unsubscribe = hub.subscribe(() => wake?.());
    const onClose = (): void => {
      closed = true;
      wake?.();
    };
    request.raw.once('close', onClose);
    res.once('close', onClose);
    stoppers.add(onClose);
    try {
      while (!closed) {
        const page = await db.changesSince(cursor, limit);
        for (const c of page) {
          res.write(`id: ${c.serial}\nevent: change\ndata: ${JSON.stringify(changeJson(c))}\n\n`);
          cursor = c.serial;
        }
        if (page.length === limit) continue;
        if (hub.lastSerial > cursor) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            if (!closed) res.write(': keep-alive\n\n');
            resolve();
          }, limits.heartbeatMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    } catch (err) {
      request.log.warn({ err }, 'change stream ended by an error');
    } finally {
      waiting--;
      unsubscribe();
      stoppers.delete(onClose);
      res.end();
    }
  };

  app.get('/changes', async (request, reply) => {
    const q = (request.query ?? {}) as Record<string, unknown>;
    const lastEventId = request.headers['last-event-id'];
    const since = parseSerial(typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : q.since, 'since');
    const limit = Math.min(limits.pageLimit, q.limit === undefined ? limits.pageLimit : Math.max(1, parseSerial(q.limit, 'limit')));
    const accept = request.headers.accept ?? '';
    if (/text\/event-stream/i.test(accept)) return stream(request, reply, since, limit);
    const waitSeconds = Math.min(limits.maxWaitSeconds, parseSerial(q.wait, 'wait'));
    return longPoll(request, reply, since, limit, waitSeconds);
  });
};
