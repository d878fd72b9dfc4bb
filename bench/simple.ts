/**
 * Simple API throughput: `/simple/<name>/` from the origin versus nginx serving
 * the same bytes from a file, in the same run, with the same wrk settings.
 * Run after a build: `node dist/bench/simple.js [--help]`.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { summarizeProfile } from './lib/cpu-profile.js';
import { runLoad } from './lib/load.js';
import { startNginx } from './lib/nginx.js';
import { createToken, startOrigin, stopAll, type Service } from './lib/processes.js';
import { fixed, markdownTable, median } from './lib/stats.js';
import { buildBenchWheel, uploadRequest } from './lib/wheels.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

const { values: opts } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '1' },
    files: { type: 'string', default: '20' },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(
    'node dist/bench/simple.js [--threads 2] [--connections 64] [--duration 10] [--warmup 3] [--rounds 1] [--files 20] [--cpu-prof DIR]\n',
  );
  process.exit(0);
}

const PROJECT = 'bench-simple';
const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';
const wrkOptions = { threads: Number(opts.threads), connections: Number(opts.connections), seconds: Number(opts.duration) };
const rounds = Number(opts.rounds);

type Case = 'nginx html' | 'origin html' | 'origin json' | 'nginx json';

async function uploadProject(origin: Service, token: string): Promise<void> {
  const authorization = 'Basic ' + Buffer.from(`__token__:${token}`).toString('base64');
  const count = Number(opts.files);
  const requests = Array.from({ length: count }, (_, i) => {
    const version = i === count - 1 ? `${Math.floor(i / 5) + 1}.0.0rc1` : `${Math.floor(i / 5)}.${i % 5}.0`;
    const u = uploadRequest(buildBenchWheel(PROJECT, version, 4096));
    return { method: 'POST', path: '/legacy/', headers: { 'content-type': u.contentType, authorization }, body: u.body };
  });
  const r = await runLoad(origin.url, requests, 1);
  if (r.errors > 0) throw new Error(`uploading the project failed: ${r.firstError}`);
}

async function fetchPage(url: string, accept: string | null): Promise<{ bytes: Buffer; type: string }> {
  const res = await fetch(url, accept ? { headers: { accept } } : {});
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`);
  return { bytes: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type') ?? '' };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'pyedge-bench-simple-'));
  const data = join(work, 'data');
  const www = join(work, 'www');
  const profDir = opts['cpu-prof'] ? join(opts['cpu-prof'], 'simple-origin') : null;
  let origin: Service | null = null;
  let nginx: Service | null = null;
  try {
    const token = await createToken(data, 'bench');
    origin = await startOrigin(data, { nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [] });
    await uploadProject(origin, token);
    const pagePath = `/simple/${PROJECT}/`;
    const html = await fetchPage(origin.url + pagePath, null);
    const json = await fetchPage(origin.url + pagePath, JSON_TYPE);
    if (!html.type.startsWith('text/html') && !html.type.includes('v1+html')) throw new Error(`no Accept gave ${html.type}, not HTML`);
    if (!json.type.startsWith(JSON_TYPE)) throw new Error(`Accept JSON gave ${json.type}`);
    await mkdir(join(www, 'simple', PROJECT), { recursive: true });
    await writeFile(join(www, 'simple', PROJECT, 'index.html'), html.bytes);
    await writeFile(join(www, 'simple', PROJECT, 'index.v1_json'), json.bytes);
    nginx = await startNginx(www, join(work, 'nginx'), pagePath);
    const same = [
      (await fetchPage(nginx.url + pagePath, null)).bytes.equals(html.bytes),
      (await fetchPage(`${nginx.url}${pagePath}index.v1_json`, null)).bytes.equals(json.bytes),
    ];
    if (!same.every(Boolean)) throw new Error('nginx does not serve the bytes the origin served');
    process.stderr.write(`page: HTML ${html.bytes.length} B, JSON ${json.bytes.length} B (${opts.files} files)\n`);

    const target: Record<Case, { url: string; headers?: Record<string, string> }> = {
      'nginx html': { url: nginx.url + pagePath },
      'origin html': { url: origin.url + pagePath },
      'origin json': { url: origin.url + pagePath, headers: { accept: JSON_TYPE } },
      'nginx json': { url: `${nginx.url}${pagePath}index.v1_json` },
    };
    const cases = Object.keys(target) as Case[];
    if (Number(opts.warmup) > 0) {
      for (const c of cases) await runWrk(target[c].url, { ...wrkOptions, seconds: Number(opts.warmup), headers: target[c].headers ?? {} });
    }
    const results = new Map<Case, WrkResult[]>(cases.map((c) => [c, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const c of cases) {
        const r = await runWrk(target[c].url, { ...wrkOptions, headers: target[c].headers ?? {} });
        process.stderr.write(`round ${round}: ${c}: ${fixed(r.perSecond)} req/s, p50 ${fixed(r.p50Ms, 2)} ms, p99 ${fixed(r.p99Ms, 2)} ms, errors ${r.errors}\n`);
        results.get(c)!.push(r);
      }
    }

    const rate = (c: Case): number => median(results.get(c)!.map((r) => r.perSecond));
    const rows = cases.map((c) => {
      const rs = results.get(c)!;
      const ref: Case = c.endsWith('json') ? 'nginx json' : 'nginx html';
      return [
        c.startsWith('origin') ? 'pyedge origin' : 'nginx (static file)',
        c.endsWith('json') ? 'PEP 691 JSON' : 'HTML',
        fixed(rate(c)),
        `${fixed(rate(c) / rate(ref), 3)}×`,
        fixed(median(rs.map((r) => r.p50Ms)), 2),
        fixed(median(rs.map((r) => r.p99Ms)), 2),
        String(rs.reduce((n, r) => n + r.errors, 0)),
      ];
    });
    process.stdout.write(
      `\nsimple benchmark, ${new Date().toISOString().slice(0, 10)}, node ${process.version}: ` +
        `GET /simple/${PROJECT}/ (${opts.files} files; HTML ${html.bytes.length} B, JSON ${json.bytes.length} B), ` +
        `wrk -t${wrkOptions.threads} -c${wrkOptions.connections} -d${wrkOptions.seconds}s --latency, ` +
        `${rounds} round(s), median of rounds\n\n` +
        markdownTable(['server', 'format', 'req/s', 'vs. nginx (same bytes)', 'p50 ms', 'p99 ms', 'errors'], rows) +
        '\n',
    );
    if ([...results.values()].flat().some((r) => r.errors > 0)) process.exitCode = 1;
  } finally {
    await nginx?.stop();
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
    if (profDir) {
      for (const f of await readdir(profDir).catch(() => [] as string[])) {
        if (f.endsWith('.cpuprofile')) process.stderr.write(`\norigin: ${await summarizeProfile(join(profDir, f))}\n`);
      }
    }
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`simple benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
