import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { pino } from 'pino';
import { FileIndex } from './file-index.js';
import { FileSource } from './file-source.js';
import { Hedger } from './hedger.js';
import { PageSignatures } from './page-signatures.js';
import { PageSource } from './page-source.js';
import { ProxyCache } from './proxy-cache.js';
import type { HealthPolicy } from './proxy-config.js';
import { UpstreamSet } from './upstream-set.js';

const silent = pino({ level: 'silent' });
const HEALTH: HealthPolicy = { downAfter: 5, backoffMs: 1000, maxBackoffMs: 8000, probeIntervalMs: 0, penaltyMs: 60_000 };
const TIMEOUTS = { connectMs: 300, firstByteMs: 500, idleMs: 500 };
const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** An index with one project page linking one file; `corrupt` flips bytes, `chunked` sends no length. */
async function fakeIndex(file: Buffer, options: { corrupt: boolean; chunked: boolean }): Promise<string> {
  const sha = createHash('sha256').update(file).digest('hex');
  const server = createServer((req, res) => {
    if (req.url === '/simple/demo/') {
      res.writeHead(200, { 'content-type': 'application/vnd.pypi.simple.v1+json' });
      return void res.end(JSON.stringify({ meta: { 'api-version': '1.0', '_last-serial': 3 }, name: 'demo', files: [{ filename: 'demo-1.0.tar.gz', url: '../../packages/demo-1.0.tar.gz', hashes: { sha256: sha } }] }));
    }
    if (req.url !== '/packages/demo-1.0.tar.gz') return void res.writeHead(404).end();
    const body = Buffer.from(file);
    if (options.corrupt) body[body.length >> 1] ^= 0xff;
    res.writeHead(200, options.chunked ? {} : { 'content-length': String(body.length) });
    // In pieces, as a network delivers it.
    for (let i = 0; i < body.length; i += 64 * 1024) res.write(body.subarray(i, i + 64 * 1024));
    res.end();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/simple/`;
}

for (const chunked of [false, true]) {
  test(`a corrupt download is dropped and the file comes whole from the next upstream (${chunked ? 'no length: spooled to disk' : 'length known: in memory'})`, async () => {
    const file = randomBytes(chunked ? 5 * 1024 * 1024 : 300 * 1024);
    const sha256 = createHash('sha256').update(file).digest('hex');
    const roots = [await fakeIndex(file, { corrupt: true, chunked }), await fakeIndex(file, { corrupt: false, chunked })];
    const upstreams = new UpstreamSet(roots, HEALTH, silent);
    const cache = await ProxyCache.open(null);
    const hedger = new Hedger({ budget: 0, percentile: 0.95, initialDelayMs: 100, minDelayMs: 5, maxDelayMs: 500 });
    const files = new FileIndex();
    const pages = new PageSource({ upstreams, hedger, cache, files, signatures: new PageSignatures('off', cache, silent), timeouts: TIMEOUTS, logger: silent });
    const source = new FileSource({ upstreams, hedger, cache, files, pages, timeouts: TIMEOUTS, logger: silent });
    try {
      const answer = await source.get('demo', { name: 'sha256', hex: sha256 }, 'demo-1.0.tar.gz', false);
      const bytes = answer.bytes ?? (await readFile(answer.path!));
      assert.equal(answer.bytes === null, chunked, 'small files with a length stay in memory');
      assert.equal(createHash('sha256').update(bytes).digest('hex'), sha256);
      assert.equal(answer.upstream, roots[1]);
      assert.equal(source.integrityFailures, 1);
      assert.equal(upstreams.list[0]!.health.failuresByKind.get('integrity'), 1);
      assert.equal(upstreams.list[0]!.health.state, 'degraded');
      // Verified once, then served from the cache.
      await new Promise((r) => setTimeout(r, 50));
      const again = await source.get('demo', { name: 'sha256', hex: sha256 }, 'demo-1.0.tar.gz', false);
      assert.ok(again.fromCache);
      assert.equal(createHash('sha256').update(again.bytes ?? (await readFile(again.path!))).digest('hex'), sha256);
    } finally {
      await cache.close();
    }
  });
}
