/**
 * The fail-over proxy under pip: `pip install` of 20 packages, same run,
 * (a) straight to one healthy edge, (b) through `pyedge proxy` with three
 * healthy edges, (c) with one of the three hanging, (d) with one refusing,
 * and (e) as (c) without background probes, so live traffic (timeouts and
 * hedging) must find the hanging one.
 * Edges are nginx serving one static tree that `pyedge publish` built from an
 * origin, with the shipped config (PEP 691 negotiation, so pip reads JSON
 * from an edge as it does from the proxy). Every install goes into a fresh venv with an empty pip cache, and
 * every proxy run starts a fresh proxy (no warm cache). Prints the medians, the
 * ratios against the issue's targets and the share of hedged requests in (b).
 * `--contrast` also times pip pointed straight at the hanging server with its
 * defaults (about 98 s).
 * Run after a build: `node dist/bench/proxy.js [--rounds 3] [--packages 20] [--size 20000] [--contrast]`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoad } from './lib/load.js';
import { startNginx } from './lib/nginx.js';
import { createToken, freePort, PYEDGE_BIN, REPO_ROOT, runCommand, startOrigin, startService, stopAll } from './lib/processes.js';
import { fixed, markdownTable, median } from './lib/stats.js';
import { buildBenchWheel, uploadRequest } from './lib/wheels.js';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    packages: { type: 'string', default: '20' },
    size: { type: 'string', default: '20000' },
    contrast: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write('node dist/bench/proxy.js [--rounds 3] [--packages 20] [--size 20000] [--contrast]\n');
  process.exit(0);
}

const PYTHON = '/usr/bin/python3';
const rounds = Number(opts.rounds);
const names = Array.from({ length: Number(opts.packages) }, (_, i) => `bench-proxy-${String(i).padStart(2, '0')}`);

type Case = 'a: one edge, no proxy' | 'b: proxy, 3 healthy' | 'c: proxy, 1 of 3 hanging' | 'd: proxy, 1 of 3 refusing' | 'e: as c, no probes (traffic finds it)';
const CASES: readonly Case[] = ['a: one edge, no proxy', 'b: proxy, 3 healthy', 'c: proxy, 1 of 3 hanging', 'd: proxy, 1 of 3 refusing', 'e: as c, no probes (traffic finds it)'];

/** pip's environment: nothing of this machine's configuration. */
function pipEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PIP_') && !k.startsWith('PYTHON') && k !== 'VIRTUAL_ENV') env[k] = v;
  return { ...env, PIP_CONFIG_FILE: '/dev/null', PIP_NO_CACHE_DIR: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1', PYTHONNOUSERSITE: '1' };
}

/** A server that accepts connections and never answers. */
async function startHanging(): Promise<{ url: string; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/simple/`,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

interface Run {
  readonly seconds: number;
  readonly hedged?: number;
  readonly requests?: number;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'pyedge-bench-proxy-'));
  const hanging = await startHanging();
  try {
    const data = join(work, 'data');
    const origin = await startOrigin(data);
    const token = await createToken(data, 'bench');
    const authorization = 'Basic ' + Buffer.from(`__token__:${token}`).toString('base64');
    const uploads = names.map((name) => {
      const u = uploadRequest(buildBenchWheel(name, '1.0.0', Number(opts.size)));
      return { method: 'POST', path: '/legacy/', headers: { 'content-type': u.contentType, authorization }, body: u.body };
    });
    const uploaded = await runLoad(origin.url, uploads, 4);
    if (uploaded.errors > 0) throw new Error(`uploading failed: ${uploaded.firstError}`);
    const tree = join(work, 'tree');
    const published = await runCommand(process.execPath, [PYEDGE_BIN, 'publish', '--source', origin.url, '--target', tree, '--key-file', join(work, 'key.pem')], 300_000);
    if (published.code !== 0) throw new Error(`publish failed:\n${published.stderr}`);
    await origin.stop();
    // Edges: nginx with the shipped config (deploy/nginx/pyedge-tree.conf), so pip gets PEP 691 JSON from them as from the proxy.
    const shipped = await readFile(join(REPO_ROOT, 'deploy', 'nginx', 'pyedge-tree.conf'), 'utf8');
    const edgeUrls: string[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const server = shipped.replace(/listen 8081;/, `listen 127.0.0.1:${port};`).replace(/root \/srv\/pyedge\/tree;/, `root ${tree};`);
      await startNginx(tree, join(work, `nginx-${i}`), '/simple/', { workers: 1, servers: server });
      edgeUrls.push(`http://127.0.0.1:${port}/simple/`);
    }
    const refusing = `http://127.0.0.1:${await freePort()}/simple/`;

    const pip = join(work, 'pip');
    const made = await runCommand(PYTHON, ['-m', 'venv', pip], 120_000, pipEnv());
    if (made.code !== 0) throw new Error(`venv: ${made.stderr}`);

    const install = async (indexUrl: string): Promise<number> => {
      const target = await mkdtemp(join(work, 'venv-'));
      const v = await runCommand(PYTHON, ['-m', 'venv', '--without-pip', target], 60_000, pipEnv());
      if (v.code !== 0) throw new Error(`venv: ${v.stderr}`);
      const started = performance.now();
      const r = await runCommand(join(pip, 'bin', 'python'), ['-m', 'pip', '--python', join(target, 'bin', 'python'), 'install', '--no-cache-dir', '--no-deps', '--index-url', indexUrl, ...names], 600_000, pipEnv());
      const seconds = (performance.now() - started) / 1000;
      if (r.code !== 0) throw new Error(`pip install from ${indexUrl} failed:\n${r.stdout}\n${r.stderr}`);
      await rm(target, { recursive: true, force: true });
      return seconds;
    };

    const throughProxy = async (upstreams: readonly string[], extra: readonly string[] = []): Promise<Run> => {
      const proxy = await startService('pyedge proxy', process.execPath, [PYEDGE_BIN, 'proxy', ...upstreams.flatMap((u) => ['--upstream', u]), '--port', '0', '--log-level', 'warn', ...extra], {
        ready: /pyedge proxy listening on (\S+?)\/?$/m,
      });
      try {
        const seconds = await install(`${proxy.url}/simple/`);
        const status = (await (await fetch(`${proxy.url}/_status`)).json()) as { hedging: { byKind: Record<string, { requests: number; hedged: number }> } };
        const kinds = Object.values(status.hedging.byKind);
        return { seconds, hedged: kinds.reduce((n, k) => n + k.hedged, 0), requests: kinds.reduce((n, k) => n + k.requests, 0) };
      } finally {
        await proxy.stop();
      }
    };

    const runs = new Map<Case, Run[]>(CASES.map((c) => [c, []]));
    // Warm the machine's file cache and Python's byte code once, unmeasured.
    await install(edgeUrls[0]!);
    for (let round = 0; round < rounds; round++) {
      // A different case first each round, so a burst of load elsewhere on the machine does not always hit the same one.
      for (const c of [...CASES.slice(round % CASES.length), ...CASES.slice(0, round % CASES.length)]) {
        let run: Run;
        if (c.startsWith('a')) run = { seconds: await install(edgeUrls[0]!) };
        else if (c.startsWith('b')) run = await throughProxy(edgeUrls);
        else if (c.startsWith('c')) run = await throughProxy([hanging.url, edgeUrls[1]!, edgeUrls[2]!]);
        else if (c.startsWith('d')) run = await throughProxy([refusing, edgeUrls[1]!, edgeUrls[2]!]);
        else run = await throughProxy([hanging.url, edgeUrls[1]!, edgeUrls[2]!], ['--probe-interval', '0']);
        runs.get(c)!.push(run);
        process.stderr.write(`round ${round + 1} ${c}: ${fixed(run.seconds, 2)} s${run.requests ? `, hedged ${run.hedged}/${run.requests}` : ''}\n`);
      }
    }

    const med = (c: Case): number => median(runs.get(c)!.map((r) => r.seconds));
    const best = (c: Case): number => Math.min(...runs.get(c)!.map((r) => r.seconds));
    const [a, b, cc, d, e] = CASES.map(med) as [number, number, number, number, number];
    const [ba, bb, bc, bd, be] = CASES.map(best) as [number, number, number, number, number];
    const bRuns = runs.get('b: proxy, 3 healthy')!;
    const hedged = bRuns.reduce((n, r) => n + (r.hedged ?? 0), 0);
    const requests = bRuns.reduce((n, r) => n + (r.requests ?? 0), 0);
    const report = [
      `pip install of ${names.length} packages (${opts.size}-byte wheels, --no-deps: their Requires-Dist names PyPI projects), fresh venv, --no-cache-dir; median of ${rounds} rounds`,
      '',
      markdownTable(
        ['case', 'median (s)', 'best (s)', 'runs (s)'],
        CASES.map((c) => [c, fixed(med(c), 2), fixed(best(c), 2), runs.get(c)!.map((r) => fixed(r.seconds, 2)).join(', ')]),
      ),
      '',
      markdownTable(
        ['ratio', 'of medians', 'of bests', 'target'],
        [
          ['(b)/(a) proxy overhead', fixed(b / a, 3), fixed(bb / ba, 3), '≤ 1.15'],
          ['(c)/(b) one hanging', fixed(cc / b, 3), fixed(bc / bb, 3), '≤ 1.3'],
          ['(d)/(b) one refusing', fixed(d / b, 3), fixed(bd / bb, 3), '≤ 1.1'],
          ['(e)/(b) one hanging, found by traffic alone', fixed(e / b, 3), fixed(be / bb, 3), '(≤ 1.3)'],
          ['hedged share in (b)', `${fixed((100 * hedged) / Math.max(1, requests), 1)}% (${hedged}/${requests})`, '', '≤ 10%'],
        ],
      ),
      '',
    ];
    if (opts.contrast) {
      const started = performance.now();
      const target = await mkdtemp(join(work, 'venv-'));
      await runCommand(PYTHON, ['-m', 'venv', '--without-pip', target], 60_000, pipEnv());
      const r = await runCommand(join(pip, 'bin', 'python'), ['-m', 'pip', '--python', join(target, 'bin', 'python'), 'install', '--no-cache-dir', '--no-deps', '--index-url', hanging.url, names[0]!], 600_000, pipEnv());
      report.push(`pip straight at the hanging server with its defaults: gave up after ${fixed((performance.now() - started) / 1000, 1)} s (exit ${r.code})`, '');
    }
    process.stdout.write(report.join('\n'));
  } finally {
    hanging.close();
    await stopAll();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
