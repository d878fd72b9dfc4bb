/**
 * PyPI scale: import the ~886,000 real project names (one release and one file
 * each), then measure the origin on that index: start-up, the root `/simple/`
 * (tens of MB, streamed from disk), its memory, and project pages and uploads
 * against the same origin on an index holding one project (the in-run
 * reference). Run after a build: `node dist/bench/scale.js [--help]`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { parseArgs } from 'node:util';
import { runLoad, type LoadRequest, type LoadResult } from './lib/load.js';
import { nowMs, timedGet, timedRequest, type TimedResponse } from './lib/http-timing.js';
import { summarizeProfile } from './lib/cpu-profile.js';
import { machineCpu, processCpu } from './lib/cpu-usage.js';
import { processRss, RssWatcher, type Rss } from './lib/memory.js';
import { createToken, runCommand, startOrigin, stopAll, PYEDGE_BIN, REPO_ROOT, type Service } from './lib/processes.js';
import { fixed, markdownTable, median } from './lib/stats.js';
import { buildBenchWheel, uploadRequest } from './lib/wheels.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

const { values: opts } = parseArgs({
  options: {
    tsv: { type: 'string', default: '/work/shared/data/pypi-projects.tsv.gz' },
    limit: { type: 'string' },
    keep: { type: 'string' },
    project: { type: 'string' },
    'root-fetches': { type: 'string', default: '5' },
    'after-upload': { type: 'string', default: '4' },
    'steady-reads': { type: 'string', default: '6' },
    threads: { type: 'string', default: '2' },
    connections: { type: 'string', default: '64' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    uploads: { type: 'string', default: '400' },
    'upload-warmup': { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '16' },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(
    'node dist/bench/scale.js [--limit N] [--keep DIR] [--tsv FILE.tsv.gz] [--project NAME]\n' +
      '                         [--root-fetches 5] [--after-upload 4] [--steady-reads 6]\n' +
      '                         [--threads 2] [--connections 64] [--duration 10] [--warmup 3] [--rounds 2]\n' +
      '                         [--uploads 400] [--upload-warmup 50] [--concurrency 16] [--cpu-prof DIR]\n' +
      '  --limit N     import only the first N projects (default: all)\n' +
      '  --keep DIR    import into DIR and keep it; when DIR already holds an index, skip the import\n' +
      '  --project     the project whose pages wrk fetches (default: the best download rank imported)\n' +
      '  --steady-reads N  polls of /simple/, about one a second, while one client uploads without pause;\n' +
      '                    run with GET, with HEAD (rendered, not sent) and with no reader (same duration)\n',
  );
  process.exit(0);
}

const limit = opts.limit === undefined ? undefined : Number(opts.limit);
const rounds = Number(opts.rounds);
const wrkOptions = { threads: Number(opts.threads), connections: Number(opts.connections), seconds: Number(opts.duration) };
const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';
/** During the steady uploads, a read of `/simple/` starts at most this often. */
const STEADY_READ_INTERVAL_MS = 1000;
/** Import may take long on a loaded machine; past this, it is a failure. */
const IMPORT_TIMEOUT_MS = 60 * 60_000;
/** Disk per imported project: a 4 KiB block for the file, one for its own folder, ~1.5 KB of database (11.5 KiB measured at 20,000). */
const BYTES_PER_PROJECT = 12 * 1024;

interface TsvPick {
  readonly name: string;
  readonly version: string;
  readonly rank: number;
  /** Lines the import will take (valid or not, up to the limit's count of kept lines, roughly). */
  readonly lines: number;
}

/** The most downloaded project among the first `limit` lines that carry a version. */
async function pickProject(path: string, max: number | undefined, wanted: string | undefined): Promise<TsvPick> {
  const raw = createReadStream(path);
  const lines = createInterface({ input: path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw, crlfDelay: Infinity });
  let best: TsvPick | null = null;
  let taken = 0;
  let header = true;
  try {
    for await (const line of lines) {
      if (header) {
        header = false;
        if (/^name\t/i.test(line)) continue;
      }
      const [name, version, , rankText] = line.split('\t');
      if (!name || !version) continue;
      if (max !== undefined && taken >= max) break;
      taken++;
      const rank = rankText ? Number(rankText) : Infinity;
      if (wanted !== undefined ? name === wanted : !best || rank < best.rank) best = { name, version, rank, lines: taken };
    }
  } finally {
    lines.close();
    raw.destroy();
  }
  if (!best) throw new Error(wanted ? `project '${wanted}' is not among the imported lines of ${path}` : `no project with a version in ${path}`);
  return { ...best, lines: taken };
}

interface ImportRun {
  readonly wallS: number;
  readonly imported: number;
  readonly reportedS: number;
  readonly lastSerial: number;
  readonly maxRssMiB: number;
  readonly userS: number;
  readonly systemS: number;
  readonly machineBusy: number;
  readonly stdout: string;
}

/** The running import, killed if the benchmark is interrupted (it would otherwise run on, writing GBs). */
let importChild: ChildProcess | null = null;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    importChild?.kill('SIGKILL');
    // processes.ts stops the servers and exits once it has a handler of its own.
    if (process.listenerCount(sig) === 0) process.exit(130);
  });
}

/** `pyedge import-names` under /usr/bin/time -v, for its wall time and peak RSS. */
async function importNames(data: string, tsv: string, max: number | undefined): Promise<ImportRun> {
  const m0 = await machineCpu();
  const t0 = nowMs();
  const args = ['-v', process.execPath, PYEDGE_BIN, 'import-names', '--data', data, tsv, ...(max !== undefined ? ['--limit', String(max)] : [])];
  const child = spawn('/usr/bin/time', args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  importChild = child;
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    // The import's progress lines, shown as they come.
    if (/^imported \d+ projects/.test(d.toString())) process.stderr.write(`  ${d.toString()}`);
    stderr = (stderr + d.toString()).slice(-64 * 1024);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), IMPORT_TIMEOUT_MS);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  importChild = null;
  const wallS = (nowMs() - t0) / 1000;
  const m1 = await machineCpu();
  const done = /imported (\d+) projects .* in ([\d.]+) s; last serial (\d+)/.exec(stdout);
  if (code !== 0 || !done) throw new Error(`pyedge import-names failed (${code}):\n${stdout}\n${stderr.slice(-4000)}`);
  const num = (re: RegExp): number => Number(re.exec(stderr)?.[1] ?? NaN);
  return {
    wallS,
    imported: Number(done[1]),
    reportedS: Number(done[2]),
    lastSerial: Number(done[3]),
    maxRssMiB: num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024,
    userS: num(/User time \(seconds\): ([\d.]+)/),
    systemS: num(/System time \(seconds\): ([\d.]+)/),
    machineBusy: m0 && m1 ? (m1.busy - m0.busy) / (m1.total - m0.total) : NaN,
    stdout: stdout.trim(),
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function duMiB(path: string): Promise<number> {
  const r = await runCommand('du', ['-sk', path], 30 * 60_000);
  return Number(/^(\d+)/.exec(r.stdout)?.[1] ?? NaN) / 1024;
}

async function fileMiB(...paths: string[]): Promise<number> {
  let total = 0;
  for (const p of paths) total += await stat(p).then((s) => s.size, () => 0);
  return total / 1024 / 1024;
}

function authorization(token: string): string {
  return 'Basic ' + Buffer.from(`__token__:${token}`).toString('base64');
}

function uploadOf(token: string, name: string, version: string): LoadRequest {
  const u = uploadRequest(buildBenchWheel(name, version, 4096));
  return { method: 'POST', path: '/legacy/', headers: { 'content-type': u.contentType, authorization: authorization(token) }, body: u.body };
}

const ms = (r: TimedResponse, to: 'first' | 'end'): number => (to === 'first' ? r.firstByteMs : r.endMs) - r.startMs;

/** A root fetch as measured. */
interface RootFetch {
  readonly format: 'HTML' | 'JSON';
  readonly ttfbMs: number;
  readonly totalMs: number;
  readonly bytes: number;
  readonly serial: number;
  readonly contentLength: boolean;
}

async function fetchRoot(url: string, format: 'HTML' | 'JSON'): Promise<RootFetch> {
  const r = await timedGet(url, '/simple/', format === 'JSON' ? SIMPLE_JSON : undefined);
  if (r.status !== 200) throw new Error(`GET /simple/ (${format}) answered ${r.status}`);
  return {
    format,
    ttfbMs: ms(r, 'first'),
    totalMs: ms(r, 'end'),
    bytes: r.bytes,
    serial: Number(r.headers['x-pypi-last-serial']),
    contentLength: r.headers['content-length'] === String(r.bytes),
  };
}

/** A HEAD of `/simple/`: it waits for a rendering like a GET, and sends no body. */
async function headRoot(url: string): Promise<RootFetch> {
  const r = await timedRequest(url, { method: 'HEAD', path: '/simple/', headers: {} });
  if (r.status !== 200) throw new Error(`HEAD /simple/ answered ${r.status}`);
  return { format: 'HTML', ttfbMs: r.headersMs - r.startMs, totalMs: r.endMs - r.startMs, bytes: 0, serial: Number(r.headers['x-pypi-last-serial']), contentLength: true };
}

/** What a reader right after an upload got, and when the new rendering appeared. */
interface AfterUpload {
  readonly format: 'HTML' | 'JSON';
  readonly uploadMs: number;
  readonly ttfbMs: number;
  readonly totalMs: number;
  /** The reader got the rendering that includes the upload. */
  readonly fresh: boolean;
  /** From the upload's 200 until `/simple/` first showed its serial. */
  readonly freshAfterMs: number;
}

async function rootAfterUpload(url: string, request: LoadRequest, format: 'HTML' | 'JSON'): Promise<AfterUpload> {
  const up = await timedRequest(url, request);
  if (up.status !== 200) throw new Error(`upload answered ${up.status}`);
  const serial = Number(up.headers['x-pypi-last-serial']);
  // While the reader downloads, HEADs (same rendering logic, no body) watch for the new rendering.
  let freshAt = NaN;
  const watch = (async () => {
    while (Number.isNaN(freshAt)) {
      const h = await timedRequest(url, { method: 'HEAD', path: '/simple/', headers: {} });
      if (Number(h.headers['x-pypi-last-serial']) >= serial) freshAt = h.headersMs;
      else await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const first = await fetchRoot(url, format);
  await watch;
  return {
    format,
    uploadMs: up.endMs - up.startMs,
    ttfbMs: first.ttfbMs,
    totalMs: first.totalMs,
    fresh: first.serial >= serial,
    freshAfterMs: freshAt - up.endMs,
  };
}

type Index = 'full' | 'empty';

/** One wrk run, with the origin's CPU per request and the machine's load while it ran. */
interface PageRun extends WrkResult {
  readonly serverUsPerRequest: number;
  readonly machineBusy: number;
}
type PageCase = 'simple html' | 'simple json' | 'json api';

/** What the root phase measured on one origin. */
interface RootPhase {
  readonly service: Service;
  readonly listenMs: number;
  readonly firstServedMs: number;
  readonly firstRoot: RootFetch;
  readonly rssAfterFirst: Rss;
  readonly fetches: RootFetch[];
  readonly parallelMs: number;
  readonly parallelMB: number;
  readonly rssBeforeParallel: Rss;
  readonly rssAfterParallel: Rss;
  readonly after: AfterUpload[];
  /** Reads of `/simple/` while one client uploads without pause. */
  readonly steady: SteadyRun;
  /** The same with HEAD requests: the root is rendered again and again, but not sent. */
  readonly steadyHead: SteadyRun;
  /** The same uploads with no reader. */
  readonly steadyAlone: SteadyRun;
  readonly rssAfterRoot: Rss;
}

/** Start an origin on `data`, then time `/simple/`: first answer, repeated reads, 8 readers at once, reads right after uploads. */
async function rootPhase(data: string, token: string, label: Index, stamp: string): Promise<RootPhase> {
  const t0 = nowMs();
  const profDir = opts['cpu-prof'] ? join(resolve(opts['cpu-prof']), `scale-${label}`) : null;
  const service = await startOrigin(data, { nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [] });
  const listenMs = nowMs() - t0;
  const firstRoot = await fetchRoot(service.url, 'HTML');
  const firstServedMs = nowMs() - t0;
  const rssAfterFirst = await processRss(service.child.pid);
  process.stderr.write(
    `${label}: origin listening after ${fixed(listenMs)} ms; /simple/ first served ${fixed(firstServedMs)} ms after spawn ` +
      `(that request: first byte ${fixed(firstRoot.ttfbMs)} ms, all ${fixed(firstRoot.totalMs)} ms, ${firstRoot.bytes} B); ` +
      `RSS ${fixed(rssAfterFirst.rssMiB)} MiB, peak ${fixed(rssAfterFirst.peakMiB)} MiB\n`,
  );
  const fetches: RootFetch[] = [];
  for (let i = 0; i < Number(opts['root-fetches']); i++) {
    for (const format of ['HTML', 'JSON'] as const) {
      const f = await fetchRoot(service.url, format);
      process.stderr.write(`  ${label}: /simple/ ${format}: first byte ${fixed(f.ttfbMs, 1)} ms, all ${fixed(f.totalMs)} ms, ${f.bytes} B\n`);
      fetches.push(f);
    }
  }
  // Eight readers at once: memory must not grow with the number of readers if the root is streamed from disk.
  const rssBeforeParallel = await processRss(service.child.pid);
  const tp = nowMs();
  const parallel = await Promise.all(Array.from({ length: 8 }, (_, i) => fetchRoot(service.url, i % 2 ? 'JSON' : 'HTML')));
  const parallelMs = nowMs() - tp;
  const parallelMB = parallel.reduce((n, f) => n + f.bytes, 0) / 1e6;
  const rssAfterParallel = await processRss(service.child.pid);
  process.stderr.write(
    `  ${label}: 8 readers at once: ${fixed(parallelMB, 1)} MB in ${fixed(parallelMs)} ms; RSS ${fixed(rssBeforeParallel.rssMiB)} → ${fixed(rssAfterParallel.rssMiB)} MiB, ` +
      `peak ${fixed(rssAfterParallel.peakMiB)} MiB\n`,
  );
  const after: AfterUpload[] = [];
  for (let i = 0; i < Number(opts['after-upload']); i++) {
    const a = await rootAfterUpload(service.url, uploadOf(token, `bench-scale-root-${stamp}-${i}`, '1.0'), i % 2 ? 'JSON' : 'HTML');
    process.stderr.write(
      `  ${label}: after an upload: /simple/ ${a.format} first byte ${fixed(a.ttfbMs)} ms, all ${fixed(a.totalMs)} ms, ` +
        `${a.fresh ? 'new' : 'previous'} rendering; new rendering served ${fixed(a.freshAfterMs)} ms after the upload's 200\n`,
    );
    after.push(a);
  }
  // Readers while uploads never stop: each new serial makes the root stale again.
  const steady = await steadyUploads(service.url, token, label, `bench-scale-steady-${stamp}`, 'GET');
  // The same with HEAD: every poll starts a rendering, but no bytes go out.
  const steadyHead = await steadyUploads(service.url, token, label, `bench-scale-steady-head-${stamp}`, 'HEAD');
  // And with no reader: nothing is rendered, the reference for the two above.
  const steadyAlone = await steadyUploads(service.url, token, label, `bench-scale-steady-alone-${stamp}`, null);
  const rssAfterRoot = await processRss(service.child.pid);
  return {
    service,
    listenMs,
    firstServedMs,
    firstRoot,
    rssAfterFirst,
    fetches,
    parallelMs,
    parallelMB,
    rssBeforeParallel,
    rssAfterParallel,
    after,
    steady,
    steadyHead,
    steadyAlone,
    rssAfterRoot,
  };
}

/** Uploads from one client without pause while one reader polls `/simple/`, and what the reader got. */
interface SteadyRun {
  /** The reads (for HEAD: no bytes). */
  readonly reads: RootFetch[];
  /** How many reads got a rendering as new as the last upload answered before the read began. */
  readonly fresh: number;
  readonly uploadsPerS: number;
}

async function steadyUploads(url: string, token: string, label: Index, project: string, method: 'GET' | 'HEAD' | null): Promise<SteadyRun> {
  let uploading = true;
  let uploaded = 0;
  let lastAnswered = 0;
  const tu = nowMs();
  const uploader = (async () => {
    for (let i = 0; uploading; i++) {
      const r = await timedRequest(url, uploadOf(token, project, `1.0.${i}`));
      if (r.status !== 200) throw new Error(`steady upload answered ${r.status}`);
      uploaded++;
      lastAnswered = Number(r.headers['x-pypi-last-serial']);
    }
  })();
  const reads: RootFetch[] = [];
  let fresh = 0;
  try {
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < Number(opts['steady-reads']); i++) {
      // One reader polling about once a second, so both indexes upload for a comparable time.
      const due = tu + 200 + i * STEADY_READ_INTERVAL_MS;
      if (nowMs() < due) await new Promise((r) => setTimeout(r, due - nowMs()));
      if (method === null) continue;
      const known = lastAnswered;
      const f = method === 'GET' ? await fetchRoot(url, i % 2 ? 'JSON' : 'HTML') : await headRoot(url);
      if (f.serial >= known) fresh++;
      reads.push(f);
      process.stderr.write(
        `  ${label}: during uploads: ${method} /simple/ ${f.format} first byte ${fixed(f.ttfbMs)} ms, all ${fixed(f.totalMs)} ms, ` +
          `serial ${f.serial} (last upload answered: ${known})\n`,
      );
    }
    // Without a reader, upload for as long as the last poll would have begun.
    if (method === null) await new Promise((r) => setTimeout(r, STEADY_READ_INTERVAL_MS));
  } finally {
    uploading = false;
    await uploader;
  }
  const uploadsPerS = uploaded / ((nowMs() - tu) / 1000);
  process.stderr.write(`  ${label}: ${fixed(uploadsPerS, 1)} uploads/s ${method ? `while polling with ${method}` : 'with no reader'}\n`);
  return { reads, fresh, uploadsPerS };
}

async function main(): Promise<void> {
  const tsv = resolve(opts.tsv);
  const work = await mkdtemp(join(tmpdir(), 'pyedge-bench-scale-'));
  const fullDir = opts.keep ? resolve(opts.keep) : join(work, 'full');
  const emptyDir = join(work, 'empty');
  const load0 = loadavg();
  let full: Service | null = null;
  let empty: Service | null = null;
  try {
    const pick = await pickProject(tsv, limit, opts.project);
    const reuse = opts.keep !== undefined && (await exists(join(fullDir, 'index.db')));
    process.stderr.write(`project for page benchmarks: ${pick.name} ${pick.version} (download rank ${pick.rank})\n`);

    let imp: ImportRun | null = null;
    if (!reuse) {
      const fs = await statfs(work);
      const free = fs.bavail * fs.bsize;
      const need = pick.lines * BYTES_PER_PROJECT * 1.5;
      if (free < need) {
        throw new Error(
          `only ${fixed(free / 2 ** 30, 1)} GiB free in ${work}; importing ${pick.lines} projects needs about ${fixed(need / 2 ** 30, 1)} GiB. ` +
            'Free some space or give a smaller --limit.',
        );
      }
      process.stderr.write(`free disk ${fixed(free / 2 ** 30, 1)} GiB; importing ${limit ?? 'all'} projects into ${fullDir}…\n`);
      imp = await importNames(fullDir, tsv, limit);
      process.stderr.write(
        `  ${imp.stdout}\n  wall ${fixed(imp.wallS, 1)} s, peak RSS ${fixed(imp.maxRssMiB)} MiB, CPU ${fixed(imp.userS, 1)} + ${fixed(imp.systemS, 1)} s, machine busy ${fixed(100 * imp.machineBusy)} %\n`,
      );
    } else {
      process.stderr.write(`reusing the index in ${fullDir} (no import)\n`);
    }
    const dbMiB = await fileMiB(join(fullDir, 'index.db'), join(fullDir, 'index.db-wal'));
    const blobsMiB = await duMiB(join(fullDir, 'blobs'));
    process.stderr.write(`  database ${fixed(dbMiB)} MiB, blobs on disk ${fixed(blobsMiB)} MiB\n`);

    // The reference index: the same project, imported alone, so its pages hold the same bytes.
    const one = join(work, 'one.tsv');
    await writeFile(one, `name\tlatest_version\n${pick.name}\t${pick.version}\n`);
    await importNames(emptyDir, one, undefined);
    const fullToken = await createToken(fullDir, 'bench');
    const emptyToken = await createToken(emptyDir, 'bench');

    // (b) start-up and the root index, on both indexes: the one-project index is the reference, and
    // both origins then have run the same code paths before their pages are compared.
    const stamp = Date.now().toString(36);
    const fullRoot = await rootPhase(fullDir, fullToken, 'full', stamp);
    full = fullRoot.service;
    const emptyRoot = await rootPhase(emptyDir, emptyToken, 'empty', stamp);
    empty = emptyRoot.service;
    const fullRss = new RssWatcher(full.child.pid).start();
    const emptyRss = new RssWatcher(empty.child.pid).start();

    // (d) project pages: full index against the one-project index, both running, same wrk settings.
    const pagePaths: Record<PageCase, { path: string; headers?: Record<string, string> }> = {
      'simple html': { path: `/simple/${pick.name}/` },
      'simple json': { path: `/simple/${pick.name}/`, headers: { accept: SIMPLE_JSON } },
      'json api': { path: `/pypi/${pick.name}/json` },
    };
    const urlOf = (ix: Index): string => (ix === 'full' ? full!.url : empty!.url);
    const pageSizes = new Map<string, number>();
    for (const [c, p] of Object.entries(pagePaths)) {
      for (const ix of ['full', 'empty'] as Index[]) {
        const r = await timedGet(urlOf(ix), p.path, p.headers?.accept);
        if (r.status !== 200) throw new Error(`${ix}: GET ${p.path} answered ${r.status}`);
        pageSizes.set(`${c} ${ix}`, r.bytes);
      }
    }
    const pageCases = Object.keys(pagePaths) as PageCase[];
    if (Number(opts.warmup) > 0) {
      for (const c of pageCases) {
        for (const ix of ['full', 'empty'] as Index[]) {
          await runWrk(urlOf(ix) + pagePaths[c].path, { ...wrkOptions, seconds: Number(opts.warmup), headers: pagePaths[c].headers ?? {} });
        }
      }
    }
    const wrk = new Map<string, PageRun[]>();
    const pidOf = (ix: Index): number | undefined => (ix === 'full' ? full!.child.pid : empty!.child.pid);
    for (let round = 1; round <= rounds; round++) {
      for (const c of pageCases) {
        // Alternate which index goes first, so a drift in machine load hits both alike.
        const order: Index[] = round % 2 ? ['full', 'empty'] : ['empty', 'full'];
        for (const ix of order) {
          const s0 = await processCpu(pidOf(ix));
          const m0 = await machineCpu();
          const r = await runWrk(urlOf(ix) + pagePaths[c].path, { ...wrkOptions, headers: pagePaths[c].headers ?? {} });
          const s1 = await processCpu(pidOf(ix));
          const m1 = await machineCpu();
          const run: PageRun = {
            ...r,
            serverUsPerRequest: s0 && s1 ? ((s1.userMs + s1.systemMs - s0.userMs - s0.systemMs) * 1000) / r.requests : NaN,
            machineBusy: m0 && m1 ? (m1.busy - m0.busy) / (m1.total - m0.total) : NaN,
          };
          process.stderr.write(
            `round ${round}: ${c} ${ix}: ${fixed(r.perSecond)} req/s, p50 ${fixed(r.p50Ms, 2)} ms, p99 ${fixed(r.p99Ms, 2)} ms, errors ${r.errors}, ` +
              `origin CPU ${fixed(run.serverUsPerRequest, 1)} µs/request, machine busy ${fixed(100 * run.machineBusy)} %\n`,
          );
          wrk.set(`${c} ${ix}`, [...(wrk.get(`${c} ${ix}`) ?? []), run]);
        }
      }
    }

    // (e) uploads of small wheels, full against empty, same bodies.
    const uploadCount = Number(opts.uploads);
    const uploadWarmup = Number(opts['upload-warmup']);
    const concurrency = Number(opts.concurrency);
    const uploads = new Map<Index, LoadResult[]>([
      ['full', []],
      ['empty', []],
    ]);
    for (let round = 1; round <= rounds; round++) {
      const wheels = Array.from({ length: uploadWarmup + uploadCount }, (_, i) =>
        uploadRequest(buildBenchWheel(`bench-scale-${stamp}-${i % 50}`, `1.${round}.${Math.floor(i / 50)}`, 4096)),
      );
      const order: Index[] = round % 2 ? ['full', 'empty'] : ['empty', 'full'];
      for (const ix of order) {
        const auth = authorization(ix === 'full' ? fullToken : emptyToken);
        const requests: LoadRequest[] = wheels.map((u) => ({
          method: 'POST',
          path: '/legacy/',
          headers: { 'content-type': u.contentType, authorization: auth },
          body: u.body,
        }));
        const warm = await runLoad(urlOf(ix), requests.slice(0, uploadWarmup), concurrency);
        if (warm.errors > 0) throw new Error(`${ix}: ${warm.errors} warm-up uploads failed; first: ${warm.firstError}`);
        const r = await runLoad(urlOf(ix), requests.slice(uploadWarmup), concurrency);
        process.stderr.write(
          `round ${round}: uploads ${ix}: ${fixed(r.perSecond)}/s, p50 ${fixed(r.p50Ms, 1)} ms, p99 ${fixed(r.p99Ms, 1)} ms, errors ${r.errors}` +
            (r.firstError ? ` (first: ${r.firstError})` : '') +
            '\n',
        );
        uploads.get(ix)!.push(r);
      }
    }

    const fullPeak = await fullRss.stop();
    const emptyPeak = await emptyRss.stop();
    const load1 = loadavg();

    // Report.
    const date = new Date().toISOString().slice(0, 10);
    const out: string[] = [];
    out.push(
      `scale benchmark, ${date}, node ${process.version}: ${imp ? imp.imported : 'kept'} projects` +
        (limit !== undefined ? ` (--limit ${limit})` : '') +
        `, load average ${load0.map((l) => fixed(l, 2)).join(' ')} at start, ${load1.map((l) => fixed(l, 2)).join(' ')} at end\n`,
    );
    if (imp) {
      out.push(
        markdownTable(
          ['projects imported', 'wall s', 'projects/s', 'peak RSS MiB', 'CPU s (user + sys)', 'machine busy (2 cores)', 'database MiB', 'blobs on disk MiB', 'target'],
          [
            [
              String(imp.imported),
              fixed(imp.wallS, 1),
              fixed(imp.imported / imp.wallS),
              fixed(imp.maxRssMiB),
              `${fixed(imp.userS, 1)} + ${fixed(imp.systemS, 1)}`,
              `${fixed(100 * imp.machineBusy)} %`,
              fixed(dbMiB),
              fixed(blobsMiB),
              '< 300 s',
            ],
          ],
        ),
      );
    } else {
      out.push(`import skipped (--keep ${fullDir}); database ${fixed(dbMiB)} MiB, blobs on disk ${fixed(blobsMiB)} MiB`);
    }

    const label = (ix: Index): string => (ix === 'full' ? 'full' : 'one project');
    const phases: [Index, RootPhase][] = [
      ['full', fullRoot],
      ['empty', emptyRoot],
    ];
    out.push('\nstart-up (from spawn):\n');
    out.push(
      markdownTable(
        ['index', 'listening ms', '`/simple/` first served ms', 'that request: first byte ms', 'complete ms', 'bytes', 'origin RSS then MiB'],
        phases.map(([ix, r]) => [
          label(ix),
          fixed(r.listenMs),
          fixed(r.firstServedMs),
          fixed(r.firstRoot.ttfbMs),
          fixed(r.firstRoot.totalMs),
          String(r.firstRoot.bytes),
          fixed(r.rssAfterFirst.rssMiB),
        ]),
      ),
    );
    const rootRows = phases.flatMap(([ix, r]) =>
      (['HTML', 'JSON'] as const).map((format) => {
        const fs = r.fetches.filter((f) => f.format === format);
        return [
          label(ix),
          format,
          String(fs.length),
          fixed(median(fs.map((f) => f.ttfbMs)), 1),
          fixed(Math.max(...fs.map((f) => f.ttfbMs)), 1),
          fixed(median(fs.map((f) => f.totalMs)), 1),
          fixed(Math.max(...fs.map((f) => f.totalMs)), 1),
          String(fs[0]?.bytes ?? NaN),
          fs.every((f) => f.contentLength) ? 'yes' : 'no',
        ];
      }),
    );
    out.push('\n`/simple/`, one reader at a time, fresh connection each:\n');
    out.push(
      markdownTable(
        ['index', 'format', 'fetches', 'first byte p50 ms', 'first byte max ms', 'complete p50 ms', 'complete max ms', 'bytes', 'Content-Length from file'],
        rootRows,
      ),
    );
    out.push('\n8 readers at once (4 HTML, 4 JSON):\n');
    out.push(
      markdownTable(
        ['index', 'MB in all', 'until the last finished ms', 'origin RSS before → after MiB'],
        phases.map(([ix, r]) => [label(ix), fixed(r.parallelMB, 1), fixed(r.parallelMs), `${fixed(r.rssBeforeParallel.rssMiB)} → ${fixed(r.rssAfterParallel.rssMiB)}`]),
      ),
    );
    out.push('\n`/simple/` right after an upload (the root must be rendered again):\n');
    out.push(
      markdownTable(
        ['index', 'format', 'upload ms', 'first byte ms', 'complete ms', 'rendering served', 'new rendering served after the 200, ms'],
        phases.flatMap(([ix, r]) =>
          r.after.map((a) => [label(ix), a.format, fixed(a.uploadMs, 1), fixed(a.ttfbMs), fixed(a.totalMs), a.fresh ? 'new' : 'previous', fixed(a.freshAfterMs)]),
        ),
      ),
    );
    out.push('\n`/simple/` polled about once a second by one reader while one client uploads without pause:\n');
    const readers = [
      ['GET (the root is sent)', (r: RootPhase) => r.steady],
      ['HEAD (rendered, not sent)', (r: RootPhase) => r.steadyHead],
      ['none (nothing rendered)', (r: RootPhase) => r.steadyAlone],
    ] as const;
    const steadyRows = phases.flatMap(([ix, r]) =>
      readers.map(([reader, of]) => {
        const run = of(r);
        const none = run.reads.length === 0;
        return [
          label(ix),
          reader,
          fixed(run.uploadsPerS),
          fixed(run.uploadsPerS / of(emptyRoot).uploadsPerS, 3),
          fixed(run.uploadsPerS / r.steadyAlone.uploadsPerS, 3),
          String(run.reads.length),
          none ? '–' : fixed(median(run.reads.map((f) => f.ttfbMs))),
          none ? '–' : fixed(Math.max(...run.reads.map((f) => f.ttfbMs))),
          none ? '–' : fixed(median(run.reads.map((f) => f.totalMs))),
          none ? '–' : fixed(Math.max(...run.reads.map((f) => f.totalMs))),
          none ? '–' : `${run.fresh} of ${run.reads.length}`,
        ];
      }),
    );
    out.push(
      markdownTable(
        [
          'index',
          'reader',
          'uploads/s meanwhile',
          'vs one-project',
          'vs no reader',
          'reads',
          'first byte p50 ms',
          'first byte max ms',
          'complete p50 ms',
          'complete max ms',
          'reads given the newest rendering',
        ],
        steadyRows,
      ),
    );
    out.push(
      `\norigin memory (VmHWM): full index ${fixed(fullRoot.rssAfterRoot.peakMiB)} MiB after the root phase, ${fixed(fullPeak)} MiB over the whole run; ` +
        `one-project index ${fixed(emptyRoot.rssAfterRoot.peakMiB)} and ${fixed(emptyPeak)} MiB. Target < 400 MB.\n`,
    );
    const rate = (k: string): number => median((wrk.get(k) ?? []).map((r) => r.perSecond));
    out.push(
      markdownTable(
        [
          'page',
          'bytes (full / one-project)',
          'full index req/s',
          'one-project index req/s',
          'full / one-project',
          'per round (full / one)',
          'origin CPU µs/request (full / one)',
          'p50 ms full / one',
          'p99 ms full / one',
          'errors',
        ],
        pageCases.map((c) => {
          const f = wrk.get(`${c} full`)!;
          const e = wrk.get(`${c} empty`)!;
          return [
            c === 'json api' ? `\`/pypi/${pick.name}/json\`` : `\`/simple/${pick.name}/\` ${c === 'simple json' ? 'PEP 691 JSON' : 'HTML'}`,
            `${pageSizes.get(`${c} full`)} / ${pageSizes.get(`${c} empty`)}`,
            fixed(rate(`${c} full`)),
            fixed(rate(`${c} empty`)),
            `${fixed(rate(`${c} full`) / rate(`${c} empty`), 3)}`,
            f.map((r, i) => `${fixed(r.perSecond)} / ${fixed(e[i]?.perSecond ?? NaN)}`).join(', '),
            `${fixed(median(f.map((r) => r.serverUsPerRequest)), 1)} / ${fixed(median(e.map((r) => r.serverUsPerRequest)), 1)}`,
            `${fixed(median(f.map((r) => r.p50Ms)), 2)} / ${fixed(median(e.map((r) => r.p50Ms)), 2)}`,
            `${fixed(median(f.map((r) => r.p99Ms)), 2)} / ${fixed(median(e.map((r) => r.p99Ms)), 2)}`,
            String([...f, ...e].reduce((n, r) => n + r.errors, 0)),
          ];
        }),
      ),
    );
    const upRate = (ix: Index): number => median(uploads.get(ix)!.map((r) => r.perSecond));
    out.push(
      `\nuploads: ${uploadCount} measured after ${uploadWarmup} warm-up per round, ${concurrency} clients, 4 KiB wheels, ${rounds} round(s), median\n`,
    );
    out.push(
      markdownTable(
        ['index', 'uploads/s', 'per round', 'p50 ms', 'p99 ms', 'errors', 'full / one-project'],
        (['full', 'empty'] as Index[]).map((ix) => {
          const rs = uploads.get(ix)!;
          return [
            ix === 'full' ? 'full' : 'one project',
            fixed(upRate(ix)),
            rs.map((r) => fixed(r.perSecond)).join(', '),
            fixed(median(rs.map((r) => r.p50Ms)), 1),
            fixed(median(rs.map((r) => r.p99Ms)), 1),
            String(rs.reduce((n, r) => n + r.errors, 0)),
            ix === 'full' ? fixed(upRate('full') / upRate('empty'), 3) : '1.000',
          ];
        }),
      ),
    );
    process.stdout.write('\n' + out.join('\n') + '\n');
    const errors = [...wrk.values()].flat().some((r) => r.errors > 0) || [...uploads.values()].flat().some((r) => r.errors > 0);
    if (errors) process.exitCode = 1;
  } finally {
    await empty?.stop();
    await full?.stop();
    await rm(work, { recursive: true, force: true });
    if (opts['cpu-prof']) {
      for (const label of ['full', 'empty']) {
        const dir = join(resolve(opts['cpu-prof']), `scale-${label}`);
        for (const f of await readdir(dir).catch(() => [] as string[])) {
          if (f.endsWith('.cpuprofile')) process.stderr.write(`\n${label} index origin: ${await summarizeProfile(join(dir, f), 25)}\n`);
        }
      }
    }
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`scale benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
