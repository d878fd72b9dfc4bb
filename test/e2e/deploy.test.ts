/**
 * Reads survive the origin. A tree is published, then the origin is killed
 * (SIGKILL). pip installs every published package through each way of serving
 * the tree that deploy/ ships: `pyedge edge`, nginx with
 * deploy/nginx/pyedge-tree.conf, Varnish with deploy/varnish/default.vcl in
 * front of an edge, and HAProxy with deploy/haproxy/haproxy.cfg in front of two
 * edges. Then one edge is killed: HAProxy sends pip to the other at once, and
 * Varnish, whose only backend that edge was, answers from its copy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, run, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { isolatedEnv, makeVenv, twineUpload, type Venv } from './helpers/python.js';
import { HAPROXY, VARNISHD, startShippedHaproxy, startShippedVarnish, startTreeNginx, type Running } from './helpers/deploy-servers.js';

const EDGE_READY = /listening on (\S+?)\/?$/m;
/** Each project: its module and the value the installed module holds. */
const PROJECTS = [
  { name: 'deploy-alpha', version: '1.0', module: 'deploy_alpha' },
  { name: 'deploy-beta', version: '2.1', module: 'deploy_beta' },
  { name: 'Deploy.Gamma', version: '0.3', module: 'deploy_gamma' },
] as const;

const missing = [VARNISHD, HAPROXY].filter((bin) => !existsSync(bin));

describe('reads survive the origin: pip through the shipped deploy configs', { skip: missing.length > 0 ? `not installed: ${missing.join(', ')}` : false }, () => {
  let work: string;
  let tree: string;
  let origin: Service;
  let edgeA: Service;
  let edgeB: Service;
  let nginx: Running;
  let varnish: Running;
  let haproxy: Running;
  let venv: Venv;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-deploy-'));
    const data = join(work, 'data');
    tree = join(work, 'tree');
    origin = await startPyedge(['serve', '--data', data, '--port', '0']);
    const token = (await pyedge(['token', 'create', '--data', data, '--user', 'dana'])).stdout.trim();
    // twine for the first (Debian's twine 4 reads metadata up to 2.2), a form shaped like a current twine's (metadata 2.4) for the others.
    const wheels = await Promise.all(
      PROJECTS.map((p, i) =>
        buildWheel(work, { name: p.name, version: p.version, module: p.module, value: `${p.name} ${p.version}`, metadataVersion: i === 0 ? '2.1' : '2.4' }),
      ),
    );
    const twine = await twineUpload(`${origin.url}/legacy/`, token, [wheels[0]!]);
    assert.equal(twine.code, 0, twine.stdout + twine.stderr);
    for (const wheel of wheels.slice(1)) {
      const answer = await formUpload(origin.url, wheel, { token });
      assert.equal(answer.status, 200, answer.body);
    }
    const published = await pyedge(['publish', '--source', origin.url, '--target', tree, '--key-file', join(work, 'publisher-key.pem')]);
    assert.equal(published.code, 0, published.stdout + published.stderr);
    [edgeA, edgeB, nginx, venv] = await Promise.all([
      startPyedge(['edge', '--root', tree, '--port', '0'], { ready: EDGE_READY }),
      startPyedge(['edge', '--root', tree, '--port', '0'], { ready: EDGE_READY }),
      startTreeNginx(tree),
      makeVenv(work),
    ]);
    [varnish, haproxy] = await Promise.all([
      startShippedVarnish(Number(new URL(edgeA.url).port)),
      startShippedHaproxy([Number(new URL(edgeA.url).port), Number(new URL(edgeB.url).port)]),
    ]);
    await origin.kill();
  });

  after(async () => {
    await Promise.allSettled([origin?.kill(), edgeA?.kill(), edgeB?.kill(), nginx?.stop(), varnish?.stop(), haproxy?.stop()]);
    await rm(work, { recursive: true, force: true });
  });

  /** pip installs every project from `base`/simple/ into the shared venv, afresh, and each module holds its value. */
  async function installAll(base: string): Promise<void> {
    const specs = PROJECTS.map((p) => `${p.name}==${p.version}`);
    const r = await venv.pip(['install', '--force-reinstall', '--no-deps', '--timeout', '5', '--retries', '0', '--index-url', `${base}/simple/`, ...specs]);
    assert.equal(r.code, 0, `pip install through ${base}:\n${r.stdout}\n${r.stderr}`);
    const check = PROJECTS.map((p) => `import ${p.module}; assert ${p.module}.VALUE == ${JSON.stringify(`${p.name} ${p.version}`)}, ${p.module}.VALUE`).join('\n');
    const imported = await run(venv.python, ['-c', check], { env: isolatedEnv() });
    assert.equal(imported.code, 0, imported.stderr);
  }

  test('the origin is gone', async () => {
    await assert.rejects(fetch(`${origin.url}/simple/`));
  });

  test('pip installs through pyedge edge', async () => {
    await installAll(edgeA.url);
  });

  test('pip installs through nginx with deploy/nginx/pyedge-tree.conf', async () => {
    await installAll(nginx.url);
  });

  test('pip installs through Varnish with deploy/varnish/default.vcl in front of an edge', async () => {
    await installAll(varnish.url);
    const res = await fetch(`${varnish.url}/simple/deploy-alpha/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
    assert.equal(res.headers.get('content-type'), 'application/vnd.pypi.simple.v1+json');
    await res.arrayBuffer();
  });

  test('pip installs through HAProxy with deploy/haproxy/haproxy.cfg in front of two edges', async () => {
    await installAll(haproxy.url);
  });

  test('with one edge killed, HAProxy sends pip to the other and Varnish answers from its copy', async () => {
    await edgeA.kill();
    await assert.rejects(fetch(`${edgeA.url}/_health`));
    // At once: requests that meet the dead edge before its health check fails are retried on the other.
    await installAll(haproxy.url);
    await installAll(varnish.url);
    // The representation pip asked for, which Varnish holds.
    const res = await fetch(`${varnish.url}/simple/deploy-beta/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('x-cache') ?? '', /^(HIT|STALE)$/, 'answered from its copy while its backend is down');
    await res.arrayBuffer();
  });
});
