/**
 * Upload throughput of the origin: ~10 KB wheels sent as twine sends them, by
 * 16 keep-alive clients, against SQLite and PostgreSQL (each on a fresh data
 * folder), and against a trivial node http server that only drains the body
 * (the in-run reference). Run after a build: `node dist/bench/upload.js [--help]`.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createTestPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { summarizeProfile } from './lib/cpu-profile.js';
import { UPLOAD_PHASES } from './lib/upload-profile-phases.js';
import { machineCpu, processCpu } from './lib/cpu-usage.js';
import { runLoad, type LoadRequest, type LoadResult } from './lib/load.js';
import { createToken, startOrigin, startService, stopAll, REPO_ROOT, type Service } from './lib/processes.js';
import { countSyscalls } from './lib/strace.js';
import { fixed, markdownTable, median } from './lib/stats.js';
import { buildBenchWheel, uploadRequest, type UploadRequest } from './lib/wheels.js';

const { values: opts } = parseArgs({
  options: {
    count: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '16' },
    size: { type: 'string', default: '10240' },
    projects: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '1' },
    backends: { type: 'string', default: 'sqlite,postgres' },
    'cpu-prof': { type: 'string' },
    threadpool: { type: 'string' },
    strace: { type: 'string' },
    'no-reference': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (opts.help) {
  process.stdout.write(
    'node dist/bench/upload.js [--count 3000] [--warmup 200] [--concurrency 16] [--size 10240] [--projects 50]\n' +
      '                          [--rounds 1] [--backends sqlite,postgres] [--cpu-prof DIR] [--threadpool N] [--strace DIR] [--no-reference]\n' +
      '  --threadpool N   start the origin with UV_THREADPOOL_SIZE=N (node default: 4)\n' +
      '  --no-reference   skip the drain + 200 reference server (for quick comparisons between builds)\n' +
      '  --strace DIR     count the origin\'s system calls per measured upload (strace -f -c; slows the origin down)\n',
  );
  process.exit(0);
}

const count = Number(opts.count);
const warmup = Number(opts.warmup);
const concurrency = Number(opts.concurrency);
const size = Number(opts.size);
const projects = Number(opts.projects);
const rounds = Number(opts.rounds);
const backends = opts.backends.split(',').filter(Boolean);
for (const b of backends) if (b !== 'sqlite' && b !== 'postgres') throw new Error(`unknown backend '${b}' (sqlite, postgres)`);

type Target = 'sink' | 'sqlite' | 'postgres';
const targets: Target[] = [...(opts['no-reference'] ? [] : (['sink'] as const)), ...(backends as Target[])];

interface Run {
  readonly target: Target;
  readonly result: LoadResult;
  readonly stored: number | null;
  /** CPU ms per upload of the server process (user, system) and of this client process, while measured. */
  readonly serverUserMs: number;
  readonly serverSystemMs: number;
  readonly clientMs: number;
  /** Share of the wall time the server's main thread was on a CPU (1 = saturated). */
  readonly serverMainBusy: number;
  /** Share of both cores busy (any process, kernel included) while measured. */
  readonly machineBusy: number;
}

/** The system calls worth reporting per upload (the durability work and the writes). */
const REPORTED_SYSCALLS = ['fsync', 'fdatasync', 'mkdir', 'mkdirat', 'rename', 'renameat', 'renameat2', 'openat', 'close', 'pwrite64', 'write', 'writev', 'read', 'pread64', 'futex'];

/** Run the measured part, also recording CPU used by the server, this client and the machine. */
async function measured(target: Target, server: Service, requests: readonly LoadRequest[], stored: () => Promise<number | null>, straceFile?: string): Promise<Run> {
  const strace = straceFile && server.child.pid ? await countSyscalls(server.child.pid, straceFile) : null;
  const s0 = await processCpu(server.child.pid);
  const m0 = await machineCpu();
  const c0 = process.cpuUsage();
  const result = await runLoad(server.url, requests, concurrency);
  const c1 = process.cpuUsage(c0);
  const s1 = await processCpu(server.child.pid);
  const m1 = await machineCpu();
  const n = requests.length;
  if (strace) {
    const counts = await strace.stop();
    const per = REPORTED_SYSCALLS.filter((c) => counts.has(c)).map((c) => `${c} ${fixed(counts.get(c)! / n, 2)}`);
    process.stderr.write(`  ${target}: system calls per upload (strace -f -c, all threads): ${per.join(', ')}\n`);
  }
  return {
    target,
    result,
    stored: await stored(),
    serverUserMs: s0 && s1 ? (s1.userMs - s0.userMs) / n : NaN,
    serverSystemMs: s0 && s1 ? (s1.systemMs - s0.systemMs) / n : NaN,
    clientMs: (c1.user + c1.system) / 1000 / n,
    serverMainBusy: s0 && s1 ? (s1.mainMs - s0.mainMs) / (result.seconds * 1000) : NaN,
    machineBusy: m0 && m1 ? (m1.busy - m0.busy) / (m1.total - m0.total) : NaN,
  };
}

function requestsFor(uploads: readonly UploadRequest[], token: string): LoadRequest[] {
  const authorization = 'Basic ' + Buffer.from(`__token__:${token}`).toString('base64');
  return uploads.map((u) => ({
    method: 'POST',
    path: '/legacy/',
    headers: { 'content-type': u.contentType, authorization, 'user-agent': 'pyedge-bench (twine-shaped)' },
    body: u.body,
  }));
}

/** How many files the origin lists across the benchmark's projects (checks that every 200 really stored one). */
async function countStoredFiles(url: string): Promise<number> {
  let files = 0;
  for (let p = 0; p < projects; p++) {
    const res = await fetch(`${url}/simple/bench-pkg-${p}/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } });
    if (res.status === 404) continue;
    const page = (await res.json()) as { files: unknown[] };
    files += page.files.length;
  }
  return files;
}

/** The server settings that make a PostgreSQL commit durable before it returns. */
async function postgresDurability(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const out: string[] = [];
    for (const setting of ['synchronous_commit', 'fsync', 'wal_sync_method']) {
      const r = await client.query<Record<string, string>>(`SHOW ${setting}`);
      out.push(`${setting}=${Object.values(r.rows[0] ?? {})[0]}`);
    }
    return out.join(', ');
  } finally {
    await client.end();
  }
}

let postgresSettings: string | null = null;

async function runSink(uploads: readonly UploadRequest[]): Promise<Run> {
  const sink = await startService('sink', process.execPath, [join(REPO_ROOT, 'dist', 'bench', 'lib', 'sink-server.js')], {
    ready: /sink listening on (\S+)/,
  });
  try {
    const requests = requestsFor(uploads, 'pyedge-aaaaaaaaaaaaaaaa-' + 'a'.repeat(43));
    await runLoad(sink.url, requests.slice(0, warmup), concurrency);
    return await measured('sink', sink, requests.slice(warmup), async () => null);
  } finally {
    await sink.stop();
  }
}

async function runOrigin(target: 'sqlite' | 'postgres', uploads: readonly UploadRequest[], round: number): Promise<Run> {
  const data = await mkdtemp(join(tmpdir(), `pyedge-bench-${target}-`));
  let pgDb: TestPostgres | null = null;
  let origin: Service | null = null;
  const profDir = opts['cpu-prof'] ? join(opts['cpu-prof'], `upload-${target}-round${round}`) : null;
  try {
    if (target === 'postgres') {
      pgDb = await createTestPostgres();
      postgresSettings ??= await postgresDurability(pgDb.url);
    }
    const db = pgDb?.url;
    const token = await createToken(data, 'bench', db);
    origin = await startOrigin(data, {
      db,
      nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
      env: opts.threadpool ? { UV_THREADPOOL_SIZE: opts.threadpool } : {},
    });
    const requests = requestsFor(uploads, token);
    const warm = await runLoad(origin.url, requests.slice(0, warmup), concurrency);
    if (warm.errors > 0) throw new Error(`${target}: ${warm.errors} warm-up uploads failed; first: ${warm.firstError}`);
    const url = origin.url;
    const straceFile = opts.strace ? join(opts.strace, `strace-${target}-round${round}.txt`) : undefined;
    if (opts.strace) await mkdir(opts.strace, { recursive: true });
    return await measured(target, origin, requests.slice(warmup), () => countStoredFiles(url), straceFile);
  } finally {
    await origin?.stop();
    await pgDb?.drop();
    await rm(data, { recursive: true, force: true });
    if (profDir) {
      for (const f of await readdir(profDir).catch(() => [] as string[])) {
        if (f.endsWith('.cpuprofile')) process.stderr.write(`\n${target} round ${round}: ${await summarizeProfile(join(profDir, f), 15, UPLOAD_PHASES)}\n`);
      }
    }
  }
}

async function main(): Promise<void> {
  const total = warmup + count;
  process.stderr.write(`building ${total} wheels of ~${size} bytes over ${projects} projects…\n`);
  const uploads: UploadRequest[] = [];
  let wheelBytes = 0;
  for (let i = 0; i < total; i++) {
    const wheel = buildBenchWheel(`bench-pkg-${i % projects}`, `1.0.${Math.floor(i / projects)}`, size);
    wheelBytes += wheel.bytes.length;
    uploads.push(uploadRequest(wheel));
  }
  const bodyBytes = uploads.reduce((n, u) => n + u.body.length, 0);

  const runs: Run[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const target of targets) {
      process.stderr.write(`round ${round}: ${target}…\n`);
      const run = target === 'sink' ? await runSink(uploads) : await runOrigin(target, uploads, round);
      const r = run.result;
      process.stderr.write(
        `  ${fixed(r.perSecond)} uploads/s, p50 ${fixed(r.p50Ms, 1)} ms, p99 ${fixed(r.p99Ms, 1)} ms, errors ${r.errors}` +
          (run.stored !== null ? `, files listed ${run.stored}/${total}` : '') +
          `, server CPU ${fixed(run.serverUserMs, 2)} + ${fixed(run.serverSystemMs, 2)} ms/upload (user + sys), ` +
          `server main thread busy ${fixed(100 * run.serverMainBusy)} %, ` +
          `client CPU ${fixed(run.clientMs, 2)} ms/upload, machine busy ${fixed(100 * run.machineBusy)} %` +
          (r.firstError ? ` (first error: ${r.firstError})` : '') +
          '\n',
      );
      runs.push(run);
    }
  }

  const of = (t: Target): Run[] => runs.filter((r) => r.target === t);
  const sinkRate = median(of('sink').map((r) => r.result.perSecond));
  const rows = targets.map((t) => {
    const rs = of(t);
    const rate = median(rs.map((r) => r.result.perSecond));
    const label = t === 'sink' ? 'node http, drain + 200 (reference)' : `pyedge origin, ${t === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`;
    return [
      label,
      fixed(rate),
      `${fixed(rate / sinkRate, 3)}×`,
      fixed(median(rs.map((r) => r.result.p50Ms)), 1),
      fixed(median(rs.map((r) => r.result.p99Ms)), 1),
      String(rs.reduce((n, r) => n + r.result.errors, 0)),
      `${fixed(median(rs.map((r) => r.serverUserMs)), 2)} + ${fixed(median(rs.map((r) => r.serverSystemMs)), 2)}`,
      `${fixed(100 * median(rs.map((r) => r.serverMainBusy)))} %`,
      fixed(median(rs.map((r) => r.clientMs)), 2),
      `${fixed(100 * median(rs.map((r) => r.machineBusy)))} %`,
      t === 'sink' ? '–' : rs.map((r) => `${r.stored}/${total}`).join(', '),
    ];
  });
  process.stdout.write(
    `\nupload benchmark, ${new Date().toISOString().slice(0, 10)}, node ${process.version}: ` +
      `${count} measured uploads after ${warmup} warm-up, ${concurrency} keep-alive clients, ` +
      `wheels ${fixed(wheelBytes / total)} B (request body ${fixed(bodyBytes / total)} B), ${projects} projects, ` +
      `${rounds} round(s), median of rounds` +
      (postgresSettings ? `; PostgreSQL ${postgresSettings}` : '') +
      (opts.threadpool ? `; origin UV_THREADPOOL_SIZE=${opts.threadpool}` : '') +
      '\n\n' +
      markdownTable(
        [
          'server',
          'uploads/s',
          'vs. reference',
          'p50 ms',
          'p99 ms',
          'errors',
          'server CPU ms/upload (user + sys)',
          'server main thread busy',
          'client CPU ms/upload',
          'machine busy (2 cores)',
          'files listed after',
        ],
        rows,
      ) +
      '\n',
  );
  const failed = runs.some((r) => r.result.errors > 0 || (r.stored !== null && r.stored !== total));
  if (failed) process.exitCode = 1;
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`upload benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
