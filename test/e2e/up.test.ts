/**
 * `pyedge up` as a newcomer runs it: start it, copy the printed twine line to
 * upload, pip install from the printed edge URL once the page is there (within
 * a second of twine's return), SIGTERM, start again on the same data: same
 * URLs, same token, everything still installable. A port taken since is
 * replaced by a free one.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, startPyedge, type Service } from './helpers/processes.js';
import { buildSampleProject, isolatedEnv, makeVenv, SYSTEM_PYTHON, type SampleProject } from './helpers/python.js';

const READY = /edge\s+(\S+?)\/simple\//;

interface Printed {
  readonly originUrl: string;
  readonly edgeUrl: string;
  readonly proxyUrl: string;
  /** The twine line's arguments after `twine upload`, without `dist/*`. */
  readonly twineArgs: string[];
  readonly pipIndexUrl: string;
  /** The pip line through the proxy. */
  readonly pipProxyIndexUrl: string;
  readonly firstRun: boolean;
}

function printed(stdout: string): Printed {
  const origin = /origin\s+(\S+?)\/\s/.exec(stdout);
  const edge = READY.exec(stdout);
  const proxy = /proxy\s+(\S+?)\/simple\//.exec(stdout);
  const twine = /^\s*twine upload (.+) dist\/\*$/m.exec(stdout);
  // Through the proxy first, then straight from the edge.
  const pip = [...stdout.matchAll(/^\s*pip install --index-url (\S+) PACKAGE$/gm)].map((m) => m[1]!);
  assert.ok(origin && edge && proxy && twine && pip.length === 2, `pyedge up printed the URLs, the twine line and two pip lines:\n${stdout}`);
  return {
    originUrl: origin[1]!,
    edgeUrl: edge[1]!,
    proxyUrl: proxy[1]!,
    twineArgs: twine[1]!.split(/\s+/),
    pipProxyIndexUrl: pip[0]!,
    pipIndexUrl: pip[1]!,
    firstRun: /Made user/.test(stdout),
  };
}

async function startUp(data: string): Promise<{ service: Service; out: Printed }> {
  const service = await startPyedge(['up', '--data', data], { ready: READY });
  // The banner is written in one go; wait for its last line.
  const started = Date.now();
  while (!/Ctrl-C stops everything/.test(service.output()) && Date.now() - started < 5000) await new Promise((r) => setTimeout(r, 20));
  return { service, out: printed(service.output()) };
}

async function pipInstall(indexUrl: string, project: SampleProject, module: string): Promise<string> {
  const venv = await makeVenv();
  try {
    const r = await venv.pip(['install', '--index-url', indexUrl, `${project.name}==${project.version}`]);
    assert.equal(r.code, 0, `pip install from ${indexUrl}:\n${r.stdout}\n${r.stderr}`);
    const value = await run(venv.python, ['-c', `import ${module}; print(${module}.VALUE)`], { env: isolatedEnv() });
    return value.stdout.trim();
  } finally {
    await rm(venv.dir, { recursive: true, force: true });
  }
}

describe('pyedge up', () => {
  let work: string;
  let data: string;
  let first: { service: Service; out: Printed };
  let alpha: SampleProject;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-up-'));
    data = join(work, 'data');
    alpha = await buildSampleProject(work, { name: 'up-alpha', version: '1.0', module: 'up_alpha', value: 'alpha one' });
    first = await startUp(data);
  });

  after(async () => {
    await first?.service.kill();
    await rm(work, { recursive: true, force: true });
  });

  test('prints the origin, the edge, the proxy, a twine line with a token and pip lines', async () => {
    const { out } = first;
    assert.equal(out.firstRun, true);
    assert.match(out.originUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(out.edgeUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(out.originUrl, out.edgeUrl);
    assert.deepEqual(out.twineArgs.slice(0, 5), ['--repository-url', `${out.originUrl}/legacy/`, '-u', '__token__', '-p']);
    assert.match(out.twineArgs[5]!, /^pyedge-/);
    assert.equal(out.pipIndexUrl, `${out.edgeUrl}/simple/`);
    assert.equal(out.pipProxyIndexUrl, `${out.proxyUrl}/simple/`);
    assert.equal(new Set([out.originUrl, out.edgeUrl, out.proxyUrl]).size, 3);
    const state = await stat(join(data, 'pyedge-up.json'));
    assert.equal(state.mode & 0o077, 0, 'the state file with the token is private');
    const health = await fetch(`${out.edgeUrl}/_health`);
    assert.equal(health.status, 200);
  });

  test('twine uploads with the printed line; the edge serves the project within a second; pip installs from it', async () => {
    const { out } = first;
    const twine = await run(
      SYSTEM_PYTHON,
      ['-m', 'twine', 'upload', '--non-interactive', '--disable-progress-bar', ...out.twineArgs, alpha.sdist, alpha.wheel],
      { env: isolatedEnv() },
    );
    assert.equal(twine.code, 0, twine.stdout + twine.stderr);
    const returned = Date.now();
    const wheelName = alpha.wheel.split('/').pop()!;
    let page = '';
    while (Date.now() - returned < 5000) {
      const res = await fetch(`${out.pipIndexUrl}up-alpha/`);
      page = res.status === 200 ? await res.text() : '';
      if (page.includes(wheelName)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const ms = Date.now() - returned;
    assert.ok(page.includes(wheelName), `the edge lists ${wheelName}`);
    assert.ok(ms < 1000, `the edge served the new file's link ${ms} ms after twine returned`);
    assert.equal(await pipInstall(out.pipIndexUrl, alpha, 'up_alpha'), 'alpha one');
  });

  test('SIGTERM stops everything; a restart on the same data keeps URLs, token and packages; pip installs through the proxy', async () => {
    assert.equal(await first.service.stop(), 0, first.service.logs());
    const again = await startUp(data);
    try {
      assert.equal(again.out.firstRun, false);
      assert.equal(again.out.originUrl, first.out.originUrl, 'the origin keeps its port');
      assert.equal(again.out.edgeUrl, first.out.edgeUrl, 'the edge keeps its port');
      assert.equal(again.out.proxyUrl, first.out.proxyUrl, 'the proxy keeps its port');
      assert.deepEqual(again.out.twineArgs, first.out.twineArgs, 'same token');
      assert.equal(await pipInstall(again.out.pipProxyIndexUrl, alpha, 'up_alpha'), 'alpha one');
      // The remembered token still uploads.
      const beta = await buildSampleProject(work, { name: 'up-alpha', version: '1.1', module: 'up_alpha', value: 'alpha two' });
      const twine = await run(SYSTEM_PYTHON, ['-m', 'twine', 'upload', '--non-interactive', '--disable-progress-bar', ...again.out.twineArgs, beta.wheel], {
        env: isolatedEnv(),
      });
      assert.equal(twine.code, 0, twine.stdout + twine.stderr);
      const started = Date.now();
      while (!(await (await fetch(`${again.out.pipIndexUrl}up-alpha/`)).text()).includes('1.1') && Date.now() - started < 5000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(await pipInstall(again.out.pipIndexUrl, beta, 'up_alpha'), 'alpha two');
    } finally {
      assert.equal(await again.service.stop(), 0, again.service.logs());
    }
  });

  test('a remembered port taken by something else is replaced by a free one', async () => {
    const edgePort = Number(new URL(first.out.edgeUrl).port);
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(edgePort, '127.0.0.1', resolve));
    try {
      const third = await startUp(data);
      try {
        assert.equal(third.out.originUrl, first.out.originUrl);
        assert.notEqual(third.out.edgeUrl, first.out.edgeUrl);
        assert.equal(await pipInstall(third.out.pipIndexUrl, alpha, 'up_alpha'), 'alpha one');
        const saved = JSON.parse(await readFile(join(data, 'pyedge-up.json'), 'utf8')) as { ports: { edge: number } };
        assert.equal(saved.ports.edge, Number(new URL(third.out.edgeUrl).port), 'the new port is remembered');
      } finally {
        await third.service.stop();
      }
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });
});
