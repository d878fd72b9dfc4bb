/**
 * Edge throughput: `pyedge edge` versus nginx serving the same static tree, in
 * the same run with the same wrk settings: a project page (`/simple/<name>/`),
 * a 1 MB file, and redirect mode versus nginx answering a static 302.
 * Run after a build: `node dist/bench/edge.js [--help]`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { processCpu } from './lib/cpu-usage.js';
import { runLoad } from './lib/load.js';
import { startNginx } from './lib/nginx.js';
import { createToken, freePort, PYEDGE_BIN, runCommand, startOrigin, startService, stopAll, type Service } from './lib/processes.js';
import { fixed, markdownTable, median } from './lib/stats.js';
import { buildBenchWheel, uploadRequest } from './lib/wheels.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

const { values: opts } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '1' },
    files: { type: 'string', default: '20' },
    'file-size': { type: 'string', default: '1048576' },
    'nginx-workers': { type: 'string', default: '1' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(
    'node dist/bench/edge.js [--threads 2] [--connections 64] [--duration 10] [--warmup 2] [--rounds 1] [--files 20] [--file-size 1048576] [--nginx-workers 1]\n' +
      '  --nginx-workers: nginx worker processes (1 = as many processes as the edge)\n',
  );
  process.exit(0);
}

const PROJECT = 'bench-edge';
const CDN = 'http://cdn.invalid';
const wrkOptions = { threads: Number(opts.threads), connections: Number(opts.connections), seconds: Number(opts.duration) };
const rounds = Number(opts.rounds);

type Case = 'page' | 'file' | 'redirect';
type Server = 'nginx' | 'edge';

async function upload(origin: Service, token: string): Promise<string> {
  const authorization = 'Basic ' + Buffer.from(`__token__:${token}`).toString('base64');
  const count = Number(opts.files);
  const wheels = Array.from({ length: count - 1 }, (_, i) => buildBenchWheel(PROJECT, `${Math.floor(i / 5)}.${i % 5}.0`, 4096));
  const big = buildBenchWheel(PROJECT, '9.0.0', Number(opts['file-size']));
  wheels.push(big);
  const requests = wheels.map((w) => {
    const u = uploadRequest(w);
    return { method: 'POST', path: '/legacy/', headers: { 'content-type': u.contentType, authorization }, body: u.body };
  });
  const r = await runLoad(origin.url, requests, 1);
  if (r.errors > 0) throw new Error(`uploading the project failed: ${r.firstError}`);
  return big.filename;
}

/** nginx serving `root` (bench/lib/nginx.ts), plus a server that answers every request with a static 302. */
async function startNginxPair(root: string, dir: string): Promise<{ service: Service; url: string; redirectUrl: string }> {
  const redirectPort = await freePort();
  const servers = `  server {\n    listen 127.0.0.1:${redirectPort};\n    location / { return 302 ${CDN}$request_uri; }\n  }`;
  const service = await startNginx(root, dir, '/simple/', { workers: Number(opts['nginx-workers']), servers });
  return { service, url: service.url, redirectUrl: `http://127.0.0.1:${redirectPort}` };
}

function startEdge(args: readonly string[]): Promise<Service> {
  return startService('pyedge edge', process.execPath, [PYEDGE_BIN, 'edge', '--port', '0', '--log-level', 'warn', ...args], {
    ready: /pyedge edge listening on (\S+)/,
  });
}

/** A service's process and its children (nginx's workers). */
async function pidsOf(service: Service): Promise<number[]> {
  const pid = service.child.pid;
  if (pid === undefined) return [];
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return [pid, ...children.split(' ').filter((x) => x !== '').map(Number)];
}

/** CPU milliseconds (user + system) the processes have used so far; NaN where /proc is not there. */
async function cpuMs(pids: readonly number[]): Promise<number> {
  let ms = 0;
  for (const pid of pids) {
    const c = await processCpu(pid);
    if (c === null) return NaN;
    ms += c.userMs + c.systemMs;
  }
  return ms;
}

async function bytesOf(url: string): Promise<{ status: number; bytes: Buffer; location: string | null }> {
  const res = await fetch(url, { redirect: 'manual' });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), location: res.headers.get('location') };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'pyedge-bench-edge-'));
  const data = join(work, 'data');
  const tree = join(work, 'tree');
  try {
    const token = await createToken(data, 'bench');
    const origin = await startOrigin(data);
    const filename = await upload(origin, token);
    const published = await runCommand(process.execPath, [PYEDGE_BIN, 'publish', '--source', origin.url, '--target', tree, '--key-file', join(work, 'key.pem'), '--log-level', 'warn'], 300_000);
    if (published.code !== 0) throw new Error(`publish failed:\n${published.stdout}${published.stderr}`);
    await origin.stop();

    const nginx = await startNginxPair(tree, join(work, 'nginx'));
    const edge = await startEdge(['--root', tree]);
    const redirector = await startEdge(['--root', tree, '--redirect-to', CDN]);

    const pagePath = `/simple/${PROJECT}/`;
    const pageRes = await fetch(`${edge.url}${pagePath}`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
    const page = JSON.parse(await pageRes.text()) as { files: { filename: string; url: string }[] };
    const file = page.files.find((f) => f.filename === filename);
    if (!file) throw new Error(`${filename} is not on the page`);
    const filePath = new URL(file.url, `${edge.url}${pagePath}`).pathname;

    // Same bytes (and the same redirect) from both, or the comparison means nothing.
    for (const path of [pagePath, filePath]) {
      const [a, b] = [await bytesOf(nginx.url + path), await bytesOf(edge.url + path)];
      if (a.status !== 200 || b.status !== 200 || !a.bytes.equals(b.bytes)) throw new Error(`nginx and the edge differ on ${path} (${a.status}, ${b.status})`);
    }
    const [r1, r2] = [await bytesOf(nginx.redirectUrl + filePath), await bytesOf(redirector.url + filePath)];
    if (r1.status !== 302 || r2.status !== 302 || r1.location !== r2.location) throw new Error(`the redirects differ: ${r1.location} vs ${r2.location}`);
    const pageBytes = (await bytesOf(edge.url + pagePath)).bytes.length;
    process.stderr.write(`page ${pagePath}: ${pageBytes} B; file ${filePath}: ${Number(opts['file-size'])} B\n`);

    const targets: Record<Case, Record<Server, string>> = {
      page: { nginx: nginx.url + pagePath, edge: edge.url + pagePath },
      file: { nginx: nginx.url + filePath, edge: edge.url + filePath },
      redirect: { nginx: nginx.redirectUrl + filePath, edge: redirector.url + filePath },
    };
    const cases = Object.keys(targets) as Case[];
    const results = new Map<string, WrkResult[]>();
    // CPU per answer of the server alone: steadier than req/s on a shared machine, where wrk and other work take turns on the cores.
    const cpuPerRequest = new Map<string, number[]>();
    const pids: Record<Server, Record<Case, number[]>> = {
      nginx: { page: await pidsOf(nginx.service), file: await pidsOf(nginx.service), redirect: await pidsOf(nginx.service) },
      edge: { page: await pidsOf(edge), file: await pidsOf(edge), redirect: await pidsOf(redirector) },
    };
    for (let round = 1; round <= rounds; round++) {
      for (const c of cases) {
        for (const s of ['nginx', 'edge'] as const) {
          if (round === 1 && Number(opts.warmup) > 0) await runWrk(targets[c][s], { ...wrkOptions, seconds: Number(opts.warmup) });
          const cpu0 = await cpuMs(pids[s][c]);
          const r = await runWrk(targets[c][s], wrkOptions);
          const cpuUs = ((await cpuMs(pids[s][c])) - cpu0) * 1000 / r.requests;
          cpuPerRequest.set(`${c} ${s}`, [...(cpuPerRequest.get(`${c} ${s}`) ?? []), cpuUs]);
          process.stderr.write(`round ${round}: ${c} ${s}: ${fixed(r.perSecond)} req/s, p50 ${fixed(r.p50Ms, 2)} ms, p99 ${fixed(r.p99Ms, 2)} ms, CPU ${fixed(cpuUs, 1)} µs/request, errors ${r.errors}\n`);
          results.set(`${c} ${s}`, [...(results.get(`${c} ${s}`) ?? []), r]);
        }
      }
    }
    const rate = (c: Case, s: Server): number => median(results.get(`${c} ${s}`)!.map((r) => r.perSecond));
    const cpu = (c: Case, s: Server): number => median(cpuPerRequest.get(`${c} ${s}`)!);
    const targetRatio: Record<Case, number> = { page: 0.6, file: 0.6, redirect: 0.8 };
    const label: Record<Case, string> = {
      page: `project page (${pageBytes} B HTML)`,
      file: `file (${Number(opts['file-size'])} B)`,
      redirect: 'redirect (302) vs nginx static 302',
    };
    const rows = cases.flatMap((c) =>
      (['nginx', 'edge'] as const).map((s) => {
        const rs = results.get(`${c} ${s}`)!;
        return [
          label[c],
          s === 'nginx' ? `nginx (${opts['nginx-workers']} worker${opts['nginx-workers'] === '1' ? '' : 's'})` : 'pyedge edge',
          fixed(rate(c, s)),
          s === 'edge' ? `${fixed(rate(c, 'edge') / rate(c, 'nginx'), 2)}× (target ≥ ${targetRatio[c]}×)` : '1×',
          fixed(median(rs.map((r) => r.p50Ms)), 2),
          fixed(median(rs.map((r) => r.p99Ms)), 2),
          s === 'edge' ? `${fixed(cpu(c, s), 1)} (${fixed(cpu(c, s) / cpu(c, 'nginx'), 2)}× nginx's)` : fixed(cpu(c, s), 1),
          String(rs.reduce((n, r) => n + r.errors, 0)),
        ];
      }),
    );
    process.stdout.write(
      `\nedge benchmark, ${new Date().toISOString().slice(0, 10)}, node ${process.version}: ` +
        `wrk -t${wrkOptions.threads} -c${wrkOptions.connections} -d${wrkOptions.seconds}s --latency, ${rounds} round(s), median of rounds\n\n` +
        markdownTable(['request', 'server', 'req/s', 'vs. nginx', 'p50 ms', 'p99 ms', 'server CPU µs/request', 'errors'], rows) +
        '\n',
    );
    // wrk counts 3xx as fine; anything else (4xx, 5xx, socket errors) fails the run.
    if ([...results.values()].flat().some((r) => r.errors > 0)) process.exitCode = 1;
  } finally {
    await stopAll();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
