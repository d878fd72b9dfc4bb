/**
 * Caches in front of the tree: `pyedge publish --watch --purge` with Varnish
 * (deploy/varnish/default.vcl) in front of nginx (deploy/nginx/pyedge-tree.conf).
 * A cached project page shows a new upload right after the batch, while an
 * identical Varnish that nobody purges keeps serving the old page; Varnish
 * answers from its copy while nginx is down. An unreachable purge URL does not
 * hold publishing back and is retried and logged. nginx as a short-TTL cache
 * (deploy/nginx/pyedge-cache.conf) serves its copy while the tree's server is down.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { freePort } from './helpers/nginx.js';
import { VARNISHD, startShippedNginx, startShippedVarnish, startTreeNginx, type Running } from './helpers/deploy-servers.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

async function get(url: string, accept?: string): Promise<Answer> {
  const res = await fetch(url, accept ? { headers: { accept } } : {});
  return { status: res.status, headers: res.headers, body: await res.text() };
}

async function fileText(path: string): Promise<string | null> {
  return readFile(path, 'utf8').catch(() => null);
}

let work: string;
let data: string;
let keyFile: string;
let origin: Service;
let token: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'pyedge-publish-purge-'));
  data = join(work, 'data');
  keyFile = join(work, 'publisher-key.pem');
  origin = await startPyedge(['serve', '--data', data, '--port', '0']);
  token = (await pyedge(['token', 'create', '--data', data, '--user', 'pat'])).stdout.trim();
});

after(async () => {
  await origin?.stop();
  await rm(work, { recursive: true, force: true });
});

async function upload(name: string, version: string): Promise<string> {
  const wheel = await buildWheel(work, { name, version, module: name.replace(/-/g, '_'), value: `${name}-${version}` });
  const answer = await formUpload(origin.url, wheel, { token });
  assert.equal(answer.status, 200, answer.body);
  return basename(wheel);
}

async function publishOnce(tree: string): Promise<void> {
  const r = await pyedge(['publish', '--source', origin.url, '--target', tree, '--key-file', keyFile]);
  assert.equal(r.code, 0, `publish failed:\n${r.stdout}\n${r.stderr}`);
}

describe('Varnish in front of the tree, purged by the publisher', { skip: existsSync(VARNISHD) ? false : `${VARNISHD} is not installed` }, () => {
  let tree: string;
  let nginx: Running;
  /** Purged by the publisher. */
  let purged: Running;
  /** The same VCL, that nobody purges: what a cache without purging serves. */
  let control: Running;
  let publisher: Service;
  let firstFile: string;

  before(async () => {
    tree = join(work, 'tree');
    firstFile = await upload('purge-demo', '1.0');
    await publishOnce(tree);
    nginx = await startTreeNginx(tree);
    [purged, control] = await Promise.all([startShippedVarnish(nginx.port), startShippedVarnish(nginx.port)]);
    publisher = await startPyedge(
      ['publish', '--source', origin.url, '--target', tree, '--watch', '--key-file', keyFile, '--interval', '300', '--purge', purged.url, '--log-level', 'debug'],
      { ready: /following (\S+?)\/? into/ },
    );
  });

  after(async () => {
    await publisher?.kill();
    await Promise.all([purged?.stop(), control?.stop()]);
    await nginx?.stop();
  });

  test('a cached project page shows a new upload right after the batch; an unpurged cache keeps the old page', async () => {
    const page = '/simple/purge-demo/';
    for (const cache of [purged, control]) {
      const first = await get(`${cache.url}${page}`, SIMPLE_JSON);
      assert.equal(first.status, 200);
      assert.ok(first.body.includes(firstFile), first.body);
      const second = await get(`${cache.url}${page}`, SIMPLE_JSON);
      assert.equal(second.headers.get('x-cache'), 'HIT', 'the second request is a cache hit');
      assert.equal(second.body, first.body);
      assert.equal((await get(`${cache.url}${page}`)).status, 200, 'the HTML is cached too');
      assert.equal((await get(`${cache.url}/pypi/purge-demo/json`)).status, 200);
      assert.equal((await get(`${cache.url}/pypi/purge-demo/1.1/json`)).status, 404, 'a release not yet uploaded');
    }
    const hit = await get(`${purged.url}${page}`, SIMPLE_JSON);
    assert.equal(hit.headers.get('content-type'), SIMPLE_JSON);
    assert.equal(hit.headers.get('surrogate-key'), 'project/purge-demo');
    assert.equal(hit.headers.get('vary'), 'Accept');
    assert.match(hit.headers.get('cache-control')!, /stale-if-error=\d+/);
    assert.ok(Number(hit.headers.get('age')) >= 0);

    const newFile = await upload('purge-demo', '1.1');
    const inTree = Date.now();
    await waitFor('1.1 in the tree', async () => (await fileText(join(tree, 'simple/purge-demo/index.v1_json')))?.includes(newFile) ?? false);
    const ms = await waitFor('1.1 through the purged Varnish', async () => (await get(`${purged.url}${page}`, SIMPLE_JSON)).body.includes(newFile), 5000);
    process.stdout.write(`# upload visible through Varnish ${ms} ms after the tree's page, ${Date.now() - inTree} ms after the upload answered\n`);

    // Every representation and page of the project went with its key.
    assert.ok((await get(`${purged.url}${page}`)).body.includes(newFile), 'the HTML was purged too');
    assert.ok((await get(`${purged.url}/pypi/purge-demo/json`)).body.includes('"1.1"'), 'the JSON API was purged');
    assert.equal((await get(`${purged.url}/pypi/purge-demo/1.1/json`)).status, 200, 'the cached 404 of the new release was purged');

    // Without a purge the cache keeps serving what it holds.
    const stale = await get(`${control.url}${page}`, SIMPLE_JSON);
    assert.equal(stale.headers.get('x-cache'), 'HIT');
    assert.ok(!stale.body.includes(newFile), 'the unpurged Varnish still has the old page');
    assert.ok(stale.body.includes(firstFile));

    // The log is written asynchronously: its line may follow the purge by a moment.
    await waitFor('the purge in the log', async () => /"msg":"purge sent"/.test(publisher.logs()));
    assert.match(publisher.logs(), /"xkey-purge":"[^"]*project\/purge-demo/);
  });

  test('a new project shows in the cached root index right after the batch', async () => {
    // Cached in both first (a root the publisher rewrites in the background meanwhile purges it: ask again).
    for (const cache of [purged, control]) {
      await waitFor(`the root cached in ${cache.url}`, async () => (await get(`${cache.url}/simple/`)).headers.get('x-cache') === 'HIT');
    }
    await upload('purge-fresh', '0.1');
    await waitFor('the root through the purged Varnish to list purge-fresh', async () => (await get(`${purged.url}/simple/`)).body.includes('purge-fresh'));
    const root = await get(`${purged.url}/simple/`, SIMPLE_JSON);
    assert.ok(root.body.includes('"purge-fresh"'), 'the JSON root too');
    assert.equal(root.headers.get('surrogate-key'), 'all-projects');
    assert.ok(!(await get(`${control.url}/simple/`)).body.includes('purge-fresh'));
  });

  test('with nginx down, Varnish answers from its copy, even a purged one (stale-if-error)', async () => {
    const page = `${purged.url}/simple/purge-demo/`;
    const before = await get(page, SIMPLE_JSON);
    assert.equal(before.status, 200);
    await nginx.stop();
    const cached = await get(page, SIMPLE_JSON);
    assert.equal(cached.status, 200);
    assert.equal(cached.body, before.body);
    const purge = await fetch(`${purged.url}/`, { method: 'PURGE', headers: { 'xkey-purge': 'project/purge-demo' } });
    assert.equal(purge.status, 200, await purge.text());
    const stale = await get(page, SIMPLE_JSON);
    assert.equal(stale.status, 200);
    assert.equal(stale.headers.get('x-cache'), 'STALE');
    assert.equal(stale.body, before.body);
    assert.equal((await get(`${purged.url}/simple/never-cached/`)).status, 503, 'nothing to fall back on');
  });
});

describe('an unreachable purge URL', () => {
  test('does not hold publishing back; the purges are retried and logged', async () => {
    const tree = join(work, 'tree-unreachable');
    const dead = `http://127.0.0.1:${await freePort()}`;
    const publisher = await startPyedge(
      ['publish', '--source', origin.url, '--target', tree, '--watch', '--key-file', keyFile, '--interval', '300', '--purge', dead],
      { ready: /following (\S+?)\/? into/ },
    );
    try {
      const file = await upload('purge-unreachable', '1.0');
      const ms = await waitFor('the upload in the tree', async () => (await fileText(join(tree, 'simple/purge-unreachable/index.html')))?.includes(file) ?? false, 5000);
      assert.ok(ms < 3000, `in the tree after ${ms} ms`);
      await waitFor('a second purge attempt', async () => (publisher.logs().match(/"msg":"purge failed; retrying"/g) ?? []).length >= 2);
      assert.match(publisher.logs(), new RegExp(`"endpoint":"${dead}/"`));
      assert.match(publisher.logs(), /ECONNREFUSED|connect/);
      const started = Date.now();
      assert.equal(await publisher.stop(), 0, publisher.logs());
      assert.ok(Date.now() - started < 10_000, `stopped after ${Date.now() - started} ms`);
      assert.match(publisher.logs(), /"msg":"purger stopped with purges still queued"/);
    } finally {
      await publisher.kill();
    }
  });
});

describe('nginx as a short-lived cache in front of the tree', () => {
  test('serves its copy while the tree server is down (stale-if-error)', async () => {
    const tree = join(work, 'tree-nginx-cache');
    const file = await upload('purge-nginx', '1.0');
    await publishOnce(tree);
    const backend = await startTreeNginx(tree);
    const cache = await startShippedNginx('pyedge-cache.conf', (conf, port) =>
      conf
        .replace(/listen 8080;/, `listen 127.0.0.1:${port};`)
        .replace(/server 127\.0\.0\.1:8081;/, `server 127.0.0.1:${backend.port};`)
        .replace(/proxy_cache_valid 200 301 302 10s;/, 'proxy_cache_valid 200 301 302 1s;'),
    );
    try {
      const first = await get(`${cache.url}/simple/purge-nginx/`, SIMPLE_JSON);
      assert.equal(first.status, 200);
      assert.equal(first.headers.get('content-type'), SIMPLE_JSON);
      assert.ok(first.body.includes(file));
      assert.equal((await get(`${cache.url}/simple/purge-nginx/`, SIMPLE_JSON)).headers.get('x-cache'), 'HIT');
      const html = await get(`${cache.url}/simple/purge-nginx/`);
      assert.match(html.headers.get('content-type')!, /^text\/html/);
      assert.notEqual(html.body, first.body, 'each representation is its own entry');
      await backend.stop();
      // Until the entry expires (nginx counts in whole seconds) it is a plain hit; then a stale one.
      await waitFor('the cache to answer from an expired entry', async () => {
        const answer = await get(`${cache.url}/simple/purge-nginx/`, SIMPLE_JSON);
        assert.equal(answer.status, 200);
        assert.equal(answer.body, first.body);
        return answer.headers.get('x-cache') === 'STALE';
      }, 5000);
    } finally {
      await cache.stop();
      await backend.stop();
    }
  });
});
