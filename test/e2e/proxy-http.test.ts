/**
 * `pyedge proxy` over HTTP: the Simple API out as in (negotiated, links
 * rewritten, metadata, JSON API, root), a static tree on nginx as an upstream
 * (pip installs through it), live fail-over and hedging without background
 * probes, downloads from another upstream than the page's, signatures with
 * `--server-key`, and the status page and metrics.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { pyedge, run, startPyedge, type Service } from './helpers/processes.js';
import { buildWheels, formUpload } from './helpers/distributions.js';
import { SYSTEM_PYTHON, isolatedEnv, makeVenv, type Venv } from './helpers/python.js';
import { startNginx, type RunningNginx } from './helpers/nginx.js';
import { startBadUpstream, type BadUpstream, type UpstreamMode } from './helpers/bad-upstreams.js';

const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';

interface PageJson {
  meta: Record<string, unknown>;
  files: { filename: string; url: string; hashes: { sha256: string }; 'core-metadata': false | { sha256: string } }[];
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('pyedge proxy over HTTP', () => {
  let work: string;
  let origin: Service;
  let nginx: RunningNginx;
  let pip: Venv;
  const started: { stop(): Promise<unknown> }[] = [];
  let originSimple: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-proxy-http-'));
    const data = join(work, 'data');
    [origin, pip] = await Promise.all([startPyedge(['serve', '--data', data, '--port', '0']), makeVenv(work)]);
    originSimple = `${origin.url}/simple/`;
    const token = (await pyedge(['token', 'create', '--data', data, '--user', 'fay'])).stdout.trim();
    const wheels = await buildWheels(work, [
      { name: 'Http_Demo', version: '1.0', module: 'http_demo', value: 'one', headers: ['Requires-Python: >=3.7'] },
      { name: 'Http_Demo', version: '1.1', module: 'http_demo', value: 'eleven', headers: ['Requires-Python: >=3.7'], padding: 30_000 },
    ]);
    for (const w of wheels) assert.equal((await formUpload(origin.url, w, { token })).status, 200);
    const tree = join(work, 'tree');
    const published = await pyedge(['publish', '--source', origin.url, '--target', tree, '--key-file', join(work, 'publisher-key.pem')]);
    assert.equal(published.code, 0, published.stderr);
    nginx = await startNginx(tree);
  });

  after(async () => {
    for (const s of started) await s.stop();
    await nginx?.stop();
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const proxy = async (upstreams: string[], extra: string[] = []): Promise<Service> => {
    const p = await startPyedge(['proxy', ...upstreams.flatMap((u) => ['--upstream', u]), '--port', '0', ...extra]);
    started.push(p);
    return p;
  };
  const bad = async (mode: UpstreamMode): Promise<BadUpstream> => {
    const b = await startBadUpstream(origin.url, mode);
    started.push({ stop: () => b.close() });
    return b;
  };
  const page = async (p: Service, accept = JSON_TYPE): Promise<Response> => fetch(`${p.url}/simple/http-demo/`, { headers: { accept } });
  const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
    const t = performance.now();
    const v = await f();
    return [v, performance.now() - t];
  };

  test('pages are negotiated, links go through the proxy, files and metadata are verified', async () => {
    const p = await proxy([originSimple]);
    const upstreamJson = (await (await fetch(`${originSimple}http-demo/`, { headers: { accept: JSON_TYPE } })).json()) as PageJson;
    const res = await page(p);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), JSON_TYPE);
    assert.equal(res.headers.get('via'), '1.1 pyedge-proxy');
    assert.equal(res.headers.get('x-pypi-last-serial'), String(upstreamJson.meta['_last-serial']));
    const json = (await res.json()) as PageJson;
    assert.deepEqual(json.files.map((f) => [f.filename, f.hashes, f['core-metadata']]), upstreamJson.files.map((f) => [f.filename, f.hashes, f['core-metadata']]));
    for (const f of json.files) {
      assert.match(f.url, new RegExp(`^/_files/http-demo/${f.hashes.sha256}/${f.filename}$`));
      const file = await fetch(new URL(f.url, p.url));
      assert.equal(file.status, 200);
      assert.equal(sha256(new Uint8Array(await file.arrayBuffer())), f.hashes.sha256);
      const metadata = await fetch(new URL(`${f.url}.metadata`, p.url));
      assert.equal(metadata.status, 200);
      const bytes = new Uint8Array(await metadata.arrayBuffer());
      assert.equal(sha256(bytes), (f['core-metadata'] as { sha256: string }).sha256);
      assert.match(Buffer.from(bytes).toString(), /^Metadata-Version: 2\.4\nName: Http_Demo\n/);
      // Again: now from the cache.
      assert.equal((await fetch(new URL(f.url, p.url))).headers.get('x-pyedge-cache'), 'hit');
    }
    const html = await page(p, 'text/html');
    assert.equal(html.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(await html.text(), /<a href="\/_files\/http-demo\/[0-9a-f]{64}\/Http_Demo-1\.0-py3-none-any\.whl#sha256=[0-9a-f]{64}" data-requires-python="&gt;=3.7" data-dist-info-metadata="sha256=[0-9a-f]{64}" data-core-metadata="sha256=[0-9a-f]{64}">/);
    assert.equal((await fetch(`${p.url}/simple/Http_Demo/`, { redirect: 'manual' })).headers.get('location'), '/simple/http-demo/');
    assert.equal((await page(p, 'application/json')).status, 406);
    assert.equal((await fetch(`${p.url}/simple/no-such-project/`)).status, 404);
    const wrong = json.files[0]!.url.replace(/[0-9a-f]{64}/, 'f'.repeat(64));
    assert.equal((await fetch(new URL(wrong, p.url))).status, 404);
    const api = (await (await fetch(`${p.url}/pypi/http-demo/json`)).json()) as { urls: { url: string; digests: { sha256: string } }[] };
    assert.match(api.urls[0]!.url, new RegExp(`^${p.url}/_files/http-demo/${api.urls[0]!.digests.sha256}/`));
    const root = await fetch(`${p.url}/simple/`, { headers: { accept: 'text/html' } });
    assert.match(await root.text(), /<a href="http-demo\/">Http_Demo<\/a>|http-demo/);
  });

  test('a static tree served by nginx is an upstream pip installs through', async () => {
    const p = await proxy([`${nginx.url}/simple/`]);
    const json = (await (await page(p)).json()) as PageJson;
    assert.deepEqual(json.files.map((f) => f.filename), ['Http_Demo-1.0-py3-none-any.whl', 'Http_Demo-1.1-py3-none-any.whl']);
    const target = await mkdtemp(join(work, 'venv-'));
    assert.equal((await run(SYSTEM_PYTHON, ['-m', 'venv', '--without-pip', target], { env: isolatedEnv() })).code, 0);
    const r = await pip.pip(['--python', join(target, 'bin', 'python'), 'install', '--retries', '0', '--index-url', `${p.url}/simple/`, 'http-demo']);
    assert.equal(r.code, 0, r.stdout + r.stderr + p.logs());
    const v = await run(join(target, 'bin', 'python'), ['-c', 'import http_demo; print(http_demo.VALUE)'], { env: isolatedEnv() });
    assert.equal(v.stdout.trim(), 'eleven');
    // The tree's pages are signed by the publisher's key, trusted on first use from the tree's /serverkey.
    const status = (await (await fetch(`${p.url}/_status`)).json()) as { signatures: { keys: Record<string, string> } };
    assert.match(status.signatures.keys[`${nginx.url}/simple/`] ?? '', /^[0-9a-f]{16}$/);
  });

  test('without probes or hedging, a hanging upstream costs one timeout, then nothing', async () => {
    const hang = await bad('hang');
    const p = await proxy([hang.url, originSimple], ['--probe-interval', '0', '--hedge-budget', '0', '--first-byte-timeout', '500ms']);
    const [first, firstMs] = await timed(() => page(p));
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-pyedge-upstream'), originSimple);
    assert.ok(firstMs >= 450 && firstMs < 3000, `first request took ${firstMs} ms`);
    const [second, secondMs] = await timed(() => fetch(`${p.url}/simple/http-demo/?format=application/vnd.pypi.simple.v1%2Bhtml`));
    assert.equal(second.status, 200);
    // Not asked again: a second timeout would have cost at least 500 ms and shown in the counts.
    assert.ok(secondMs < 2000, `second request took ${secondMs} ms`);
    const status = (await (await fetch(`${p.url}/_status`)).json()) as { upstreams: { url: string; state: string; requests: number; failuresByKind: Record<string, number> }[] };
    assert.equal(status.upstreams[0]!.state, 'degraded');
    assert.equal(status.upstreams[0]!.requests, 1);
    assert.equal(status.upstreams[0]!.failuresByKind['first-byte-timeout'], 1);
    assert.equal(hang.requests, 1);
  });

  test('a slow upstream is hedged: the next one answers and the hedge is counted', async () => {
    const slow = await bad('slow');
    const p = await proxy([slow.url, originSimple], ['--probe-interval', '0', '--hedge-budget', '1', '--hedge-delay', '50ms', '--first-byte-timeout', '5s']);
    const [res, ms] = await timed(() => page(p));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-pyedge-upstream'), originSimple);
    assert.ok(ms < 1500, `hedged request took ${ms} ms`);
    const status = (await (await fetch(`${p.url}/_status`)).json()) as { hedging: { byKind: { page: { hedged: number; hedgesWon: number } } } };
    assert.equal(status.hedging.byKind.page.hedged, 1);
    assert.equal(status.hedging.byKind.page.hedgesWon, 1);
    const metrics = await (await fetch(`${p.url}/metrics`)).text();
    assert.match(metrics, /pyedge_proxy_hedged_requests_total\{kind="page"\} 1/);
    assert.match(metrics, new RegExp(`pyedge_proxy_upstream_state\\{upstream="${originSimple}",state="healthy"\\} 1`));
  });

  test('a file is fetched from another upstream when the page came from one that went away', async () => {
    const relay = await bad('pass');
    // No hedging: on a loaded machine a hedge to the origin could win, and the page must come from the relay.
    const p = await proxy([relay.url, originSimple], ['--probe-interval', '0', '--hedge-budget', '0']);
    const json = (await (await page(p)).json()) as PageJson;
    assert.equal((await page(p)).headers.get('x-pyedge-upstream'), relay.url);
    await relay.setMode('refuse');
    const f = json.files[1]!;
    const file = await fetch(new URL(f.url, p.url));
    assert.equal(file.status, 200);
    assert.equal(file.headers.get('x-pyedge-upstream'), originSimple);
    assert.equal(sha256(new Uint8Array(await file.arrayBuffer())), f.hashes.sha256);
  });

  test('with --server-key, pages signed by another key are refused', async () => {
    const right = join(work, 'origin-key.pem');
    await writeFile(right, await (await fetch(`${origin.url}/serverkey`)).text());
    const wrong = join(work, 'other-key.pem');
    await writeFile(wrong, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const good = await proxy([originSimple], ['--server-key', right]);
    assert.equal((await page(good)).status, 200);
    const refused = await proxy([originSimple], ['--server-key', wrong]);
    const res = await page(refused);
    assert.equal(res.status, 502);
    assert.match(await res.text(), /signature: signed by key [0-9a-f]{16}, not the trusted key/);
  });

  test('background probes mark dead and hanging upstreams down without any client request', async () => {
    const hang = await bad('hang');
    const error = await bad('error');
    const p = await proxy([hang.url, error.url, originSimple], ['--first-byte-timeout', '300ms']);
    type Status = { upstreams: { url: string; state: string; failuresByKind: Record<string, number> }[] };
    let status: Status = { upstreams: [] };
    for (let i = 0; i < 50; i++) {
      status = (await (await fetch(`${p.url}/_status`)).json()) as Status;
      if (status.upstreams.filter((u) => u.state === 'down').length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(status.upstreams.map((u) => u.state), ['down', 'down', 'healthy'], JSON.stringify(status));
    assert.ok(status.upstreams[0]!.failuresByKind['first-byte-timeout']! >= 2);
    assert.ok(status.upstreams[1]!.failuresByKind.status! >= 2);
    const changes = p.logs().split('\n').filter((l) => l.includes('upstream state changed'));
    assert.equal(changes.filter((l) => l.includes(hang.url)).length, 2, changes.join('\n'));
    assert.match(changes.find((l) => l.includes(hang.url) && l.includes('"to":"down"'))!, /"level":40.*"from":"degraded"/);
  });

  test('the status page in HTML', async () => {
    const p = await proxy([originSimple, `${nginx.url}/simple/`]);
    await page(p);
    const res = await fetch(`${p.url}/_status`, { headers: { accept: 'text/html' } });
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    const html = await res.text();
    assert.match(html, new RegExp(`<tr class="healthy"><td>${originSimple}</td><td>healthy</td>`));
    assert.match(html, /Hedged \d+\.\d% of requests \(budget 10%\)/);
  });
});
