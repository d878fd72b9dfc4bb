import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { pino } from 'pino';
import { FileIndex } from './file-index.js';
import { AllUpstreamsFailed, Hedger } from './hedger.js';
import { PageSignatures } from './page-signatures.js';
import { PageSource } from './page-source.js';
import { ProxyCache } from './proxy-cache.js';
import type { HealthPolicy } from './proxy-config.js';
import { UpstreamSet } from './upstream-set.js';

const silent = pino({ level: 'silent' });
const HEALTH: HealthPolicy = { downAfter: 5, backoffMs: 1000, maxBackoffMs: 8000, probeIntervalMs: 0, penaltyMs: 60_000 };
const TIMEOUTS = { connectMs: 300, firstByteMs: 300, idleMs: 300 };

/** An index that serves one project page at a serial the test sets (null: answer 503). */
async function fakeIndex(): Promise<{ url: string; serial: number | null; delayMs: number; server: Server }> {
  const state = { url: '', serial: 0 as number | null, delayMs: 0, server: createServer() };
  state.server.on('request', async (req, res) => {
    if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
    if (state.serial === null) return void res.writeHead(503).end();
    if (req.url !== '/simple/demo/') return void res.writeHead(404).end();
    const sha = String(state.serial).padStart(64, '0');
    res.writeHead(200, { 'content-type': 'application/vnd.pypi.simple.v1+json' }).end(
      JSON.stringify({ meta: { 'api-version': '1.0', '_last-serial': state.serial }, name: 'demo', files: [{ filename: `demo-${state.serial}.tar.gz`, url: `../../packages/demo-${state.serial}.tar.gz`, hashes: { sha256: sha } }] }),
    );
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(state.server.address() as { port: number }).port}/simple/`;
  return state;
}

const servers: Server[] = [];

async function pageSource(roots: string[]): Promise<{ pages: PageSource; upstreams: UpstreamSet; files: FileIndex; cache: ProxyCache }> {
  const upstreams = new UpstreamSet(roots, HEALTH, silent);
  const cache = await ProxyCache.open(null);
  const files = new FileIndex();
  const pages = new PageSource({
    upstreams,
    hedger: new Hedger({ budget: 0, percentile: 0.95, initialDelayMs: 100, minDelayMs: 5, maxDelayMs: 500 }),
    cache,
    files,
    signatures: new PageSignatures('off', cache, silent),
    timeouts: TIMEOUTS,
    logger: silent,
  });
  return { pages, upstreams, files, cache };
}
after(() => {
  for (const s of servers) s.close();
});

test('never an older page than one already served, and the cached one when every upstream fails', async () => {
  const a = await fakeIndex();
  const b = await fakeIndex();
  servers.push(a.server, b.server);
  const { pages, upstreams, files, cache } = await pageSource([a.url, b.url]);
  try {
    a.serial = 5;
    b.serial = 5;
    const first = await pages.get('demo');
    assert.equal(first.page.serial, 5);
    assert.equal(first.upstream, a.url);
    // The file the page links on A is looked for at the same path on B.
    const entry = files.get({ name: 'sha256', hex: '5'.padStart(64, '0') })!;
    assert.equal(files.urlOn(entry, upstreams.list[0]!), a.url.replace(/simple\/$/, 'packages/demo-5.tar.gz'));
    assert.equal(files.urlOn(entry, upstreams.list[1]!), b.url.replace(/simple\/$/, 'packages/demo-5.tar.gz'));

    // A falls behind: its page is refused as stale and B's newer one served.
    a.serial = 3;
    b.serial = 7;
    const second = await pages.get('demo');
    assert.equal(second.page.serial, 7);
    assert.equal(second.upstream, b.url);
    assert.equal(upstreams.list[0]!.health.state, 'degraded');
    assert.equal(upstreams.list[0]!.health.failuresByKind.get('stale'), 1);

    // Both behind what was served: the proxy's own copy is the newest source.
    b.serial = 6;
    const third = await pages.get('demo');
    assert.equal(third.page.serial, 7);
    assert.equal(third.origin, 'newer-than-upstreams');

    // Both failing: stale-if-error.
    a.serial = null;
    b.serial = null;
    const fourth = await pages.get('demo');
    assert.equal(fourth.page.serial, 7);
    assert.equal(fourth.origin, 'stale-if-error');
    assert.equal(pages.staleServed, 1);

    // A project never seen: nothing to fall back on.
    await assert.rejects(pages.get('other'), (err: unknown) => err instanceof AllUpstreamsFailed && !err.notFound);
  } finally {
    await cache.close();
  }
});

test('when every upstream was only slow, they are asked once more with patient timeouts', async () => {
  const a = await fakeIndex();
  servers.push(a.server);
  a.serial = 9;
  a.delayMs = 500;
  const { pages, upstreams, cache } = await pageSource([a.url]);
  try {
    const answer = await pages.get('demo');
    assert.equal(answer.page.serial, 9);
    assert.equal(upstreams.list[0]!.health.failuresByKind.get('first-byte-timeout'), 1);
  } finally {
    await cache.close();
  }
});
