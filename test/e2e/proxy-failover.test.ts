/**
 * `pyedge proxy` with real pip: three upstreams, one a real origin and the
 * others misbehaving in every way we know (refusing, hanging, late, 500,
 * garbage, trickling, stale, corrupt files, bad signatures). pip must succeed
 * on its first try (no retries), install the right bytes, and the proxy must
 * mark the bad upstream. Then the cache: all upstreams down with a warm cache
 * still installs; with a cold cache pip fails quickly with a clear error.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, run, startPyedge, type Service } from './helpers/processes.js';
import { buildWheels, formUpload } from './helpers/distributions.js';
import { SYSTEM_PYTHON, isolatedEnv, makeVenv, type Venv } from './helpers/python.js';
import { startBadUpstream, type BadUpstream, type UpstreamMode } from './helpers/bad-upstreams.js';

interface UpstreamState {
  url: string;
  state: string;
  reason: string;
  failuresByKind: Record<string, number>;
}

async function statusOf(proxy: Service): Promise<{ upstreams: UpstreamState[]; integrityFailures: number; pagesServedStale: number }> {
  return (await (await fetch(`${proxy.url}/_status`, { headers: { accept: 'application/json' } })).json()) as {
    upstreams: UpstreamState[];
    integrityFailures: number;
    pagesServedStale: number;
  };
}

describe('pyedge proxy with pip', () => {
  let work: string;
  let origin: Service;
  const bad: BadUpstream[] = [];
  let stale: BadUpstream;
  let pip: Venv;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-proxy-'));
    const data = join(work, 'data');
    [origin, pip] = await Promise.all([startPyedge(['serve', '--data', data, '--port', '0']), makeVenv(work)]);
    const token = (await pyedge(['token', 'create', '--data', data, '--user', 'fay'])).stdout.trim();
    const [one, dep, two] = await buildWheels(work, [
      { name: 'proxy-demo', version: '1.0', module: 'proxy_demo', value: 'one' },
      { name: 'proxy-dep', version: '1.0', module: 'proxy_dep', value: 'dep', padding: 40_000 },
      { name: 'proxy-demo', version: '2.0', module: 'proxy_demo', value: 'two', headers: ['Requires-Dist: proxy-dep'], padding: 20_000, paddingSeed: 2 },
    ]);
    for (const wheel of [one!, dep!]) assert.equal((await formUpload(origin.url, wheel, { token })).status, 200);
    // A mirror that stopped at this point: it keeps proxy-demo's page (and signature) from before 2.0.
    stale = await startBadUpstream(origin.url, 'pass');
    await stale.freeze(['proxy-demo']);
    bad.push(stale);
    assert.equal((await formUpload(origin.url, two!, { token })).status, 200);
  });

  after(async () => {
    for (const b of bad) await b.close();
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const upstream = async (mode: UpstreamMode): Promise<BadUpstream> => {
    const b = await startBadUpstream(origin.url, mode);
    bad.push(b);
    return b;
  };

  /**
   * pip install proxy-demo through the proxy into a fresh venv, first try only;
   * returns what got installed. The venv is made without pip (the slow part of
   * making one) and pip runs from one shared venv with `--python`.
   */
  const install = async (proxy: Service, extra: readonly string[] = []): Promise<{ code: number | null; output: string; value: string; seconds: number }> => {
    const target = await mkdtemp(join(work, 'venv-'));
    const made = await run(SYSTEM_PYTHON, ['-m', 'venv', '--without-pip', target], { env: isolatedEnv() });
    assert.equal(made.code, 0, made.stderr);
    const python = join(target, 'bin', 'python');
    const started = performance.now();
    const r = await pip.pip(['--python', python, 'install', '--index-url', `${proxy.url}/simple/`, '--retries', '0', '--timeout', '15', ...extra, 'proxy-demo']);
    const seconds = (performance.now() - started) / 1000;
    const v = await run(python, ['-c', 'import proxy_demo, proxy_dep; print(proxy_demo.VALUE, proxy_dep.VALUE)'], { env: isolatedEnv() });
    return { code: r.code, output: r.stdout + r.stderr, value: v.stdout.trim(), seconds };
  };

  const cases: { mode: UpstreamMode; other: UpstreamMode; kinds: RegExp }[] = [
    { mode: 'refuse', other: 'hang', kinds: /^refused$/ },
    { mode: 'hang', other: 'refuse', kinds: /^first-byte-timeout$/ },
    { mode: 'slow', other: 'refuse', kinds: /^first-byte-timeout$/ },
    { mode: 'error', other: 'refuse', kinds: /^status$/ },
    { mode: 'garbage', other: 'refuse', kinds: /^(invalid|integrity)$/ },
    { mode: 'not-http', other: 'refuse', kinds: /^(protocol|reset)$/ },
    { mode: 'trickle', other: 'refuse', kinds: /^idle-timeout$/ },
    { mode: 'corrupt', other: 'refuse', kinds: /^integrity$/ },
    { mode: 'bad-signature', other: 'refuse', kinds: /^signature$/ },
  ];

  for (const c of cases) {
    test(`an upstream that answers '${c.mode}' is marked and pip installs from the healthy one`, async () => {
      const first = await upstream(c.mode);
      const second = await upstream(c.other);
      // Live traffic alone must find the bad upstream: no background probes, and no hedging that could route
      // around it before it answers (proxy-http.test.ts checks probes and hedging, bench/proxy.ts both under pip).
      const proxy = await startPyedge(['proxy', '--upstream', first.url, '--upstream', second.url, '--upstream', `${origin.url}/simple/`, '--port', '0', '--probe-interval', '0', '--hedge-budget', '0']);
      try {
        const r = await install(proxy);
        assert.equal(r.code, 0, r.output + proxy.logs());
        assert.equal(r.value, 'two dep', 'the newest version with its dependency, whole');
        const status = await statusOf(proxy);
        const marked = status.upstreams.find((u) => u.url === first.url)!;
        assert.notEqual(marked.state, 'healthy', JSON.stringify(marked));
        assert.ok(Object.keys(marked.failuresByKind).some((k) => c.kinds.test(k)), JSON.stringify(marked));
        assert.equal(status.upstreams.find((u) => u.url === `${origin.url}/simple/`)!.state, 'healthy');
        assert.match(proxy.logs(), new RegExp(`"upstream":"${first.url}","from":"healthy","to":"(degraded|down)".*"msg":"upstream state changed"`));
        if (c.mode === 'corrupt') assert.ok(status.integrityFailures >= 1);
      } finally {
        await proxy.stop();
      }
    });
  }

  test('a stale page is never served after a newer one (monotonic reads)', async () => {
    const refusing = await upstream('refuse');
    const proxy = await startPyedge(['proxy', '--upstream', stale.url, '--upstream', refusing.url, '--upstream', `${origin.url}/simple/`, '--port', '0', '--hedge-budget', '0']);
    try {
      await stale.setMode('pass');
      const fresh = await install(proxy);
      assert.equal(fresh.code, 0, fresh.output);
      assert.equal(fresh.value, 'two dep');
      // The first upstream now serves proxy-demo's page from before 2.0, correctly signed for its old serial.
      await stale.setMode('stale');
      const again = await install(proxy);
      assert.equal(again.code, 0, again.output + proxy.logs());
      assert.equal(again.value, 'two dep');
      const marked = (await statusOf(proxy)).upstreams.find((u) => u.url === stale.url)!;
      assert.equal(marked.state, 'degraded', JSON.stringify(marked));
      assert.ok((marked.failuresByKind.stale ?? 0) >= 1, JSON.stringify(marked));
    } finally {
      await proxy.stop();
      await stale.setMode('pass');
    }
  });

  test('all upstreams down: a warm cache still installs, a cold one fails fast and clearly', async () => {
    const a = await upstream('pass');
    const b = await upstream('pass');
    const args = ['--upstream', a.url, '--upstream', b.url, '--port', '0'];
    const warm = await startPyedge(['proxy', ...args, '--cache', join(work, 'warm-cache')]);
    try {
      const first = await install(warm);
      assert.equal(first.code, 0, first.output);
      await a.setMode('refuse');
      await b.setMode('refuse');
      const cached = await install(warm);
      assert.equal(cached.code, 0, cached.output + warm.logs());
      assert.equal(cached.value, 'two dep');
      const page = await fetch(`${warm.url}/simple/proxy-demo/`, { headers: { accept: 'text/html' } });
      assert.equal(page.status, 200);
      assert.equal(page.headers.get('x-pyedge-cache'), 'stale-if-error');
      assert.match(await page.text(), /proxy_demo-2\.0-py3-none-any\.whl/);
      assert.match(warm.logs(), /serving a cached page: every upstream failed/);
      assert.ok((await statusOf(warm)).pagesServedStale >= 1);
    } finally {
      await warm.stop();
    }

    const cold = await startPyedge(['proxy', ...args, '--cache', join(work, 'cold-cache')]);
    try {
      const r = await install(cold, ['-vv']);
      assert.notEqual(r.code, 0);
      assert.ok(r.seconds < 10, `pip gave up after ${r.seconds.toFixed(1)} s`);
      // pip names an index's failure only at debug level (-vv); the proxy's reason phrase is what it shows.
      assert.match(r.output, /502 Server Error: Bad Gateway: no upstream could answer and the cache has no copy/, r.output);
      assert.match(r.output, /No matching distribution found for proxy-demo/);
      assert.match(cold.logs(), /"status":502.*"msg":"no upstream could answer"/);
      const page = await fetch(`${cold.url}/simple/proxy-demo/`);
      assert.equal(page.status, 502);
      assert.match(await page.text(), /no upstream could serve the page of 'proxy-demo'[\s\S]*refused/);
    } finally {
      await cold.stop();
    }
  });
});
