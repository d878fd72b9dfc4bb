import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino, type Logger } from 'pino';
import type { PutOptions } from '../blobstore/blob-store.js';
import { FolderBlobStore } from '../blobstore/folder/folder-blob-store.js';
import { PyedgeError } from '../core/errors.js';
import { resolvePublisherConfig } from './publisher-config.js';
import { KEY_PURGE_HEADER, Purger, purgeTargets } from './purge.js';
import { cacheHeadersOf, urlsOf } from './purge-targets.js';
import { RecordingStore } from './recording-store.js';
import { StaticTree } from './static-tree.js';
import { batchResult as batch } from './fake-index.js';


interface Seen {
  readonly method: string;
  readonly url: string;
  readonly keys: string | undefined;
}

/** A cache that records PURGE requests and answers as `answer` says (default 200). */
class FakeCache {
  readonly seen: Seen[] = [];
  answer: (req: IncomingMessage, n: number) => number | Promise<number> = () => 200;
  #server: Server | null = null;
  url = '';

  async start(): Promise<this> {
    this.#server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const keys = req.headers[KEY_PURGE_HEADER];
      this.seen.push({ method: req.method ?? '', url: req.url ?? '', keys: typeof keys === 'string' ? keys : undefined });
      void Promise.resolve(this.answer(req, this.seen.length)).then((status) => res.writeHead(status).end());
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve));
  }
}

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

function capturingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

const FAST = { initialMs: 5, maxMs: 20, factor: 2, jitter: 0 };

describe('what a batch purges', () => {
  const changed = [
    'last-modified',
    'packages/ab/cd/ef/demo-1.0.tar.gz',
    'pyedge-state.json',
    'pypi/demo/1.0+local/json',
    'pypi/demo/json',
    'simple/demo/index.html',
    'simple/demo/index.v1_json',
    'simple/demo/serversig',
    'simple/index.v1_json',
  ];

  it('keys mode: one surrogate key per project and all-projects for the root; deleted files by URL', () => {
    assert.deepEqual(purgeTargets(batch(), changed, 'keys'), {
      keys: ['all-projects', 'project/demo'],
      urls: ['/packages/ab/cd/ef/demo-1.0.tar.gz'],
    });
  });

  it('urls mode: every URL that serves a changed key, folder URLs and release pages included', () => {
    assert.deepEqual(purgeTargets(batch(), changed, 'urls'), {
      keys: [],
      urls: [
        '/last-modified',
        '/packages/ab/cd/ef/demo-1.0.tar.gz',
        '/pyedge-state.json',
        '/pypi/demo/1.0+local/json',
        '/pypi/demo/json',
        '/serversig/demo',
        '/simple/',
        '/simple/demo/',
        '/simple/demo/index.html',
        '/simple/demo/index.v1_json',
        '/simple/demo/serversig',
        '/simple/index.v1_json',
      ],
    });
  });

  it('without the changed keys, purges the pages of the projects written and removed, and the root when written', () => {
    assert.deepEqual(purgeTargets(batch({ projectsWritten: ['a'], projectsRemoved: ['b'], rootWritten: true }), undefined, 'keys').keys, [
      'all-projects',
      'project/a',
      'project/b',
    ]);
    assert.deepEqual(purgeTargets(batch({ projectsWritten: ['a'] }), undefined, 'keys').keys, ['project/a']);
    const urls = purgeTargets(batch({ projectsWritten: ['a'] }), undefined, 'urls').urls;
    for (const u of ['/simple/a/', '/simple/a/index.html', '/simple/a/index.v1_html', '/simple/a/index.v1_json', '/pypi/a/json']) assert.ok(urls.includes(u), u);
    assert.ok(!urls.includes('/simple/'), 'the root was not written');
    assert.deepEqual(purgeTargets(batch(), undefined, 'keys'), { keys: [], urls: [] });
  });

  it('gives pages short client TTLs, stale-if-error and their key; files immutable and untagged', () => {
    const page = cacheHeadersOf('simple/demo/index.v1_json');
    assert.equal(page.surrogateKey, 'project/demo');
    assert.match(page.cacheControl!, /stale-if-error=\d+/);
    assert.match(page.surrogateControl!, /max-age=\d+.*stale-if-error=\d+/);
    assert.equal(cacheHeadersOf('simple/index.html').surrogateKey, 'all-projects');
    assert.equal(cacheHeadersOf('pypi/demo/2.0/json').surrogateKey, 'project/demo');
    assert.deepEqual(cacheHeadersOf('packages/ab/cd/ef/demo-1.0.whl.metadata'), { cacheControl: 'max-age=31536000, public, immutable' });
    assert.deepEqual(urlsOf('simple/index.v1_html'), ['/simple/', '/simple/index.v1_html']);
  });
});

describe('the static tree notes what caches may hold stale', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pyedge-purge-tree-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('records pages put and keys deleted (not new files) once asked to, and hands the store their cache headers', async () => {
    const options = new Map<string, PutOptions | undefined>();
    const store = new (class extends RecordingStore {
      override async put(key: string, body: Uint8Array | Readable, opts?: PutOptions): Promise<void> {
        options.set(key, opts);
        await super.put(key, body, opts);
      }
    })(new FolderBlobStore(join(dir, 'tree')));
    const tree = new StaticTree(store);
    try {
      await tree.writeServerKey('before recording');
      tree.recordChanges();
      assert.deepEqual(tree.takeChanges(), []);
      await tree.putFile('packages/ab/cd/ef/demo-1.0.whl', Readable.from([Buffer.from('wheel')]));
      await tree.writeJsonApi('demo', Buffer.from('{}'), new Map([['1.0', Buffer.from('{}')]]));
      await tree.delete('packages/ab/cd/ef/old-0.1.whl');
      assert.deepEqual(tree.takeChanges(), ['packages/ab/cd/ef/old-0.1.whl', 'pypi/demo/1.0/json', 'pypi/demo/json']);
      assert.deepEqual(tree.takeChanges(), [], 'taking empties the record');
      assert.equal(options.get('pypi/demo/json')?.cache?.surrogateKey, 'project/demo');
      assert.equal(options.get('pypi/demo/json')?.contentType, 'application/json');
      assert.match(options.get('packages/ab/cd/ef/demo-1.0.whl')?.cache?.cacheControl ?? '', /immutable/);
    } finally {
      await tree.close();
    }
  });
});

describe('Purger', () => {
  let cache: FakeCache;
  before(async () => {
    cache = await new FakeCache().start();
  });
  after(async () => {
    await cache.stop();
  });
  const reset = (): void => {
    cache.seen.length = 0;
    cache.answer = () => 200;
  };

  it('sends one PURGE with the keys to the endpoint and URL purges for deleted files below its path', async () => {
    reset();
    const { logger } = capturingLogger();
    const purger = new Purger({ endpoints: [`${cache.url}/mirror/`], mode: 'keys', logger, backoff: FAST });
    purger.onBatch(batch(), ['simple/a/index.html', 'simple/b/index.html', 'simple/index.html', 'packages/ab/cd/ef/a-1.0.whl']);
    assert.equal(await purger.drain(5000), true);
    await purger.close();
    const keyPurges = cache.seen.filter((s) => s.keys !== undefined);
    assert.deepEqual(keyPurges, [{ method: 'PURGE', url: '/mirror/', keys: 'all-projects project/a project/b' }]);
    assert.deepEqual(cache.seen.filter((s) => s.keys === undefined).map((s) => `${s.method} ${s.url}`), ['PURGE /mirror/packages/ab/cd/ef/a-1.0.whl']);
    assert.equal(purger.sent, 2);
    assert.equal(purger.failed, 0);
  });

  it('coalesces what batches queue while a purge is under way', async () => {
    reset();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    cache.answer = async (_req, n) => {
      if (n === 1) await held;
      return 200;
    };
    const purger = new Purger({ endpoints: [cache.url], mode: 'keys', logger: capturingLogger().logger, backoff: FAST });
    purger.onBatch(batch({ projectsWritten: ['a'] }));
    for (let i = 0; i < 50 && cache.seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    purger.onBatch(batch({ projectsWritten: ['b'] }));
    purger.onBatch(batch({ projectsWritten: ['b', 'c'] }));
    purger.onBatch(batch({ projectsWritten: ['c'] }));
    release();
    assert.equal(await purger.drain(5000), true);
    await purger.close();
    assert.deepEqual(cache.seen.map((s) => s.keys), ['project/a', 'project/b project/c']);
  });

  it('splits many keys over requests that keep the header short', async () => {
    reset();
    const purger = new Purger({ endpoints: [cache.url], mode: 'keys', logger: capturingLogger().logger, maxHeaderBytes: 100 });
    const names = Array.from({ length: 40 }, (_, i) => `project-${String(i).padStart(3, '0')}`);
    purger.onBatch(batch({ projectsWritten: names }));
    await purger.drain(5000);
    await purger.close();
    assert.ok(cache.seen.length > 1, `${cache.seen.length} requests`);
    for (const s of cache.seen) assert.ok(Buffer.byteLength(s.keys!) <= 100, s.keys);
    assert.deepEqual(cache.seen.flatMap((s) => s.keys!.split(' ')).sort(), names.map((n) => `project/${n}`));
  });

  it('retries a failing cache with backoff and logs it, then sends', async () => {
    reset();
    cache.answer = (_req, n) => (n <= 2 ? 503 : 200);
    const { logger, lines } = capturingLogger();
    const purger = new Purger({ endpoints: [cache.url], mode: 'urls', logger, backoff: FAST });
    purger.onBatch(batch(), ['pypi/a/json']);
    assert.equal(await purger.drain(5000), true);
    await purger.close();
    assert.deepEqual(cache.seen.map((s) => s.url), ['/pypi/a/json', '/pypi/a/json', '/pypi/a/json']);
    assert.equal(purger.failed, 2);
    assert.equal(purger.sent, 1);
    assert.equal(purger.dropped, 0);
    const retries = lines.filter((l) => l.msg === 'purge failed; retrying');
    assert.equal(retries.length, 2);
    assert.equal(retries[0]!['status'], 503);
  });

  it('never blocks the batch on an unreachable cache, and gives up after its attempts', async () => {
    const dead = await new FakeCache().start();
    const deadUrl = dead.url;
    await dead.stop();
    const { logger, lines } = capturingLogger();
    const purger = new Purger({ endpoints: [deadUrl], mode: 'keys', logger, backoff: FAST, attempts: 3 });
    const started = performance.now();
    purger.onBatch(batch({ projectsWritten: ['a', 'b'] }));
    const ms = performance.now() - started;
    assert.ok(ms < 50, `onBatch took ${ms} ms`);
    assert.equal(await purger.drain(10_000), true);
    await purger.close();
    assert.equal(purger.failed, 3);
    assert.equal(purger.sent, 0);
    assert.equal(purger.dropped, 2);
    assert.equal(lines.filter((l) => l.msg === 'purge failed; retrying').length, 2);
    const gaveUp = lines.find((l) => l.msg === 'purge failed; giving up (caches keep those pages until their TTL)');
    assert.ok(gaveUp, 'logged giving up');
    assert.match(String(gaveUp['err']), /ECONNREFUSED|connect/i);
  });

  it('does not retry a cache that refuses the purge', async () => {
    reset();
    cache.answer = () => 403;
    const { logger, lines } = capturingLogger();
    const purger = new Purger({ endpoints: [cache.url], mode: 'keys', logger, backoff: FAST });
    purger.onBatch(batch({ projectsWritten: ['a'] }));
    await purger.drain(5000);
    await purger.close();
    assert.equal(cache.seen.length, 1);
    assert.equal(purger.dropped, 1);
    assert.ok(lines.some((l) => l.level >= 50 && /refused/.test(l.msg)));
  });

  it('treats 404 on a URL purge as nothing to purge', async () => {
    reset();
    cache.answer = () => 404;
    const purger = new Purger({ endpoints: [cache.url], mode: 'urls', logger: capturingLogger().logger, backoff: FAST });
    purger.onBatch(batch(), ['last-modified']);
    await purger.drain(5000);
    await purger.close();
    assert.equal(purger.sent, 1);
    assert.equal(purger.failed, 0);
  });

  it('bounds its queue while a cache is down, and stops when closed', async () => {
    reset();
    cache.answer = () => 503;
    const { logger, lines } = capturingLogger();
    const purger = new Purger({ endpoints: [cache.url], mode: 'keys', logger, backoff: { initialMs: 10_000, maxMs: 10_000, factor: 1, jitter: 0 }, maxPending: 3 });
    purger.onBatch(batch({ projectsWritten: ['a'] }));
    for (let i = 0; i < 100 && purger.failed === 0; i++) await new Promise((r) => setTimeout(r, 10));
    purger.onBatch(batch({ projectsWritten: ['b', 'c', 'd', 'e'] }));
    assert.equal(purger.pending, 3);
    assert.equal(purger.dropped, 2);
    assert.ok(lines.some((l) => /queue full/.test(l.msg)));
    const started = Date.now();
    await purger.close(100);
    assert.ok(Date.now() - started < 2000, 'close does not wait for the backoff');
    assert.equal(purger.pending, 0);
    assert.equal(purger.dropped, 5);
  });

  it('purges every endpoint', async () => {
    reset();
    const other = await new FakeCache().start();
    try {
      const purger = new Purger({ endpoints: [cache.url, other.url], mode: 'keys', logger: capturingLogger().logger });
      purger.onBatch(batch({ rootWritten: true }));
      await purger.drain(5000);
      await purger.close();
      assert.deepEqual(cache.seen.map((s) => s.keys), ['all-projects']);
      assert.deepEqual(other.seen.map((s) => s.keys), ['all-projects']);
    } finally {
      await other.stop();
    }
  });
});

describe('--purge and --purge-mode', () => {
  const base = { source: 'http://127.0.0.1:8080', target: 'tree' };

  it('takes several caches, purging by key unless told', () => {
    const config = resolvePublisherConfig({ ...base, purge: ['http://127.0.0.1:6081/', 'https://cdn.example/mirror'] });
    assert.deepEqual(config.purge, ['http://127.0.0.1:6081', 'https://cdn.example/mirror']);
    assert.equal(config.purgeMode, 'keys');
    assert.equal(resolvePublisherConfig({ ...base, purge: 'http://127.0.0.1:6081', purgeMode: 'URLS' }).purgeMode, 'urls');
    assert.deepEqual(resolvePublisherConfig(base).purge, []);
  });

  it('names the bad option', () => {
    const isConfig = (key: string) => (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_CONFIG' && err.message.includes(key);
    assert.throws(() => resolvePublisherConfig({ ...base, purgeMode: 'tags' }), isConfig('--purge-mode'));
    assert.throws(() => resolvePublisherConfig({ ...base, purge: ['varnish:6081'] }), isConfig('--purge'));
  });
});
