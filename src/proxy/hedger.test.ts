import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { AllUpstreamsFailed, Hedger } from './hedger.js';
import type { HealthPolicy, HedgePolicy } from './proxy-config.js';
import { UpstreamFailure } from './upstream-client.js';
import { UpstreamSet } from './upstream-set.js';

const HEALTH: HealthPolicy = { downAfter: 2, backoffMs: 1000, maxBackoffMs: 8000, probeIntervalMs: 0, penaltyMs: 60_000 };
const HEDGE: HedgePolicy = { budget: 0.1, percentile: 0.95, initialDelayMs: 30, minDelayMs: 5, maxDelayMs: 500 };
const silent = pino({ level: 'silent' });

function set(n: number): UpstreamSet {
  return new UpstreamSet(Array.from({ length: n }, (_, i) => `http://u${i}.test/simple/`), HEALTH, silent);
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new UpstreamFailure('aborted', 'cancelled'));
    });
  });

test('a failure moves on to the next upstream at once and is recorded', async () => {
  const ups = set(3);
  const hedger = new Hedger(HEDGE);
  const won = await hedger.run('page', ups.list, async (u) => {
    if (u.index < 2) throw new UpstreamFailure('refused', 'connection refused');
    return 'ok';
  });
  assert.equal(won.value, 'ok');
  assert.equal(won.upstream.index, 2);
  assert.equal(ups.list[0]!.health.state, 'degraded');
  assert.equal(ups.list[0]!.health.failuresByKind.get('refused'), 1);
  await assert.rejects(
    hedger.run('page', ups.list.slice(0, 2), async () => {
      throw new UpstreamFailure('refused', 'connection refused');
    }),
    (err: unknown) => err instanceof AllUpstreamsFailed && err.failures.length === 2 && !err.notFound,
  );
  assert.equal(ups.list[0]!.health.state, 'down', 'two failures in a row');
  assert.ok(ups.list[0]!.health.resting);
  assert.deepEqual(
    ups.order('page').upstreams.map((u) => u.index),
    [2],
    'a resting upstream is left out',
  );
});

test('a slow upstream is hedged, the hedge wins and the loser is cancelled', async () => {
  const ups = set(2);
  const hedger = new Hedger({ ...HEDGE, budget: 1 });
  let cancelled = false;
  const started = performance.now();
  const won = await hedger.run('page', ups.list, async (u, signal, progress) => {
    if (u.index === 0) {
      try {
        await sleep(5000, signal);
      } catch (err) {
        cancelled = true;
        throw err;
      }
      return 'slow';
    }
    progress.firstByte(1);
    return 'fast';
  });
  assert.equal(won.value, 'fast');
  assert.ok(won.hedged);
  assert.ok(performance.now() - started < 1000);
  await sleep(10);
  assert.ok(cancelled, 'the slow request was aborted');
  assert.equal(ups.list[1]!.health.hedgesWon, 1);
  assert.equal(ups.list[0]!.health.hedgesLost, 1);
  assert.deepEqual(
    ups.order('page').upstreams.map((u) => u.index),
    [1, 0],
    'the beaten one goes last until it answers',
  );
  assert.equal(hedger.counts.page.hedged, 1);
});

test('the budget caps hedges, and the delay follows recent latencies', async () => {
  const ups = set(2);
  const hedger = new Hedger(HEDGE);
  for (let i = 0; i < 40; i++) {
    await hedger.run('page', ups.list, async (_u, _s, progress) => {
      progress.firstByte(2 + (i % 5));
      return i;
    });
  }
  assert.equal(hedger.counts.page.hedged, 0);
  const delay = hedger.delay('page');
  assert.ok(delay >= 5 && delay < 15, `delay ${delay} ms from latencies of 2–6 ms`);
  // Every request slow: at most budget × requests + 1 hedges.
  for (let i = 0; i < 20; i++) {
    await hedger.run('page', ups.list, async (u, signal, progress) => {
      if (u.index === 0) await sleep(40, signal);
      progress.firstByte(40);
      return i;
    });
  }
  assert.ok(hedger.counts.page.hedged <= 0.1 * 60 + 1, `hedged ${hedger.counts.page.hedged} of 60`);
  assert.ok(hedger.counts.page.hedged >= 1);
  assert.ok(hedger.hedgedShare <= 0.12);
});

test('not found everywhere is not a failure of the upstreams', async () => {
  const ups = set(2);
  const hedger = new Hedger(HEDGE);
  await assert.rejects(
    hedger.run('page', ups.list, async () => {
      throw new UpstreamFailure('not-found', 'HTTP 404');
    }),
    (err: unknown) => err instanceof AllUpstreamsFailed && err.notFound,
  );
  assert.equal(ups.list[0]!.health.state, 'healthy');
});

test('a wrong answer keeps an upstream degraded even when it answers again', () => {
  const ups = set(2);
  const h = ups.list[0]!.health;
  h.failure('integrity', 'sha256 mismatch');
  assert.equal(h.state, 'degraded');
  h.success(3);
  assert.equal(h.state, 'degraded');
  assert.deepEqual(
    ups.order('file').upstreams.map((u) => u.index),
    [1, 0],
  );
});

test('an upstream that keeps losing hedges is degraded as slow until it answers', () => {
  const ups = set(2);
  const h = ups.list[0]!.health;
  h.success(2);
  h.lostHedge(50);
  h.lostHedge(60);
  assert.equal(h.state, 'healthy');
  h.lostHedge(70);
  assert.equal(h.state, 'degraded');
  assert.match(h.reason, /^slow: lost 3 hedged requests in a row$/);
  h.success(2);
  assert.equal(h.state, 'healthy');
});

test('a hedge that fails at once is replaced by the next upstream without waiting for the slow one', async () => {
  const ups = set(3);
  const hedger = new Hedger({ ...HEDGE, budget: 1 });
  const started = performance.now();
  const won = await hedger.run('page', ups.list, async (u, signal, progress) => {
    if (u.index === 0) await sleep(5000, signal);
    if (u.index === 1) throw new UpstreamFailure('refused', 'connection refused');
    progress.firstByte(1);
    return u.index;
  });
  assert.equal(won.value, 2);
  assert.ok(performance.now() - started < 1000);
  assert.equal(hedger.counts.page.hedged, 1, 'the replacement is not another hedge');
});
