/**
 * Publish latency: from the moment an upload's 200 arrives to the moment nginx
 * serves the new file's link from the static tree and then the file itself.
 * One origin (SQLite, folder blobs), `pyedge publish --watch` into a folder,
 * nginx serving that folder; uploads one after another, half of them new
 * projects and half new versions of projects this run created. Optionally on
 * an index that already holds many projects (`--projects N`), to show that the
 * latency does not grow with the index. Run after a build:
 * `node dist/bench/publish-latency.js [--help]`.
 */
import http from 'node:http';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { nowMs, timedGet, timedRequest } from './lib/http-timing.js';
import { machineCpu, processCpu } from './lib/cpu-usage.js';
import { RssWatcher } from './lib/memory.js';
import { startNginx } from './lib/nginx.js';
import { createToken, startOrigin, stopAll, type Service } from './lib/processes.js';
import { importHead, PYPI_NAMES_TSV, startPublisher, treeProjects, waitForTree, type WatchingPublisher } from './lib/publisher.js';
import { fixed, markdownTable, percentile } from './lib/stats.js';
import { buildBenchWheel, uploadRequest, type BenchWheel } from './lib/wheels.js';

const { values: opts } = parseArgs({
  options: {
    uploads: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '10' },
    projects: { type: 'string', default: '0' },
    keep: { type: 'string' },
    tsv: { type: 'string', default: PYPI_NAMES_TSV },
    'poll-ms': { type: 'string', default: '2' },
    'timeout-ms': { type: 'string', default: '30000' },
    'wheel-size': { type: 'string', default: '10240' },
    'existing-projects': { type: 'string', default: '20' },
    'publisher-args': { type: 'string', default: '' },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(
    'node dist/bench/publish-latency.js [--uploads 500] [--warmup 10] [--projects N] [--keep DIR] [--tsv FILE]\n' +
      '                                   [--poll-ms 2] [--timeout-ms 30000] [--wheel-size 10240] [--existing-projects 20]\n' +
      '                                   [--publisher-args="…"] [--cpu-prof DIR]\n' +
      '  --projects N  import the first N names of the TSV before starting (an index that is already large)\n' +
      '  --keep DIR    keep the origin data (DIR/data) and the tree (DIR/tree); reuse them when there\n' +
      '  --cpu-prof    write a CPU profile of the publisher into DIR\n',
  );
  process.exit(0);
}

const uploads = Number(opts.uploads);
const warmup = Number(opts.warmup);
const pollMs = Number(opts['poll-ms']);
const timeoutMs = Number(opts['timeout-ms']);

type Kind = 'new project' | 'new version';

/** One measured upload. */
interface Sample {
  readonly kind: Kind;
  readonly uploadMs: number;
  /** Upload 200 → nginx served a project page with the new link. */
  readonly linkMs: number;
  /** Upload 200 → the file itself came back whole from nginx. */
  readonly fileMs: number;
  /** Page GETs until the link showed. */
  readonly polls: number;
  /** Reference: one GET of the same page and one of the same file through nginx, now that both are there. */
  readonly floorMs: number;
}

function authorization(token: string): string {
  return 'Basic ' + Buffer.from(`__token__:${token}`).toString('base64');
}

/** The href of `filename` on a Simple HTML page, resolved against the page's path. */
function fileHref(html: string, filename: string, pagePath: string): string | null {
  const m = new RegExp(`href="([^"#]*/${filename.replace(/[.+]/g, '\\$&')})#sha256=([0-9a-f]{64})"`).exec(html);
  return m ? new URL(m[1]!, `http://x${pagePath}`).pathname : null;
}

/** Uploads `wheel`, then polls nginx for its link and fetches the file; times from the upload's 200. */
async function measure(origin: string, nginx: string, token: string, wheel: BenchWheel, kind: Kind, agents: { up: http.Agent; read: http.Agent }): Promise<Sample> {
  const u = uploadRequest(wheel);
  const up = await timedRequest(
    origin,
    { method: 'POST', path: '/legacy/', headers: { 'content-type': u.contentType, authorization: authorization(token) }, body: u.body },
    { agent: agents.up, keepBody: true },
  );
  if (up.status !== 200) throw new Error(`upload of ${wheel.filename} answered ${up.status}: ${up.body.toString().slice(0, 300)}`);
  const t0 = up.endMs;
  const pagePath = `/simple/${wheel.name}/`;
  let polls = 0;
  let href: string | null = null;
  let linkAt = NaN;
  while (href === null) {
    if (nowMs() - t0 > timeoutMs) throw new Error(`${wheel.filename}: no link on ${pagePath} after ${timeoutMs} ms`);
    const page = await timedGet(nginx, pagePath, undefined, { agent: agents.read, keepBody: true });
    polls++;
    if (page.status === 200) href = fileHref(page.body.toString('utf8'), wheel.filename, pagePath);
    if (href === null) await new Promise((r) => setTimeout(r, pollMs));
    else linkAt = page.endMs;
  }
  const file = await timedGet(nginx, href, undefined, { agent: agents.read, keepBody: true });
  if (file.status !== 200 || !file.body.equals(wheel.bytes)) throw new Error(`${href}: nginx answered ${file.status} with ${file.bytes} B, not the uploaded file`);
  const fileMs = file.endMs - t0;
  const f0 = nowMs();
  await timedGet(nginx, pagePath, undefined, { agent: agents.read });
  await timedGet(nginx, href, undefined, { agent: agents.read });
  return { kind, uploadMs: up.endMs - up.startMs, linkMs: linkAt - t0, fileMs, polls, floorMs: nowMs() - f0 };
}

function summary(label: string, samples: readonly Sample[], pick: (s: Sample) => number): string[] {
  const v = Float64Array.from(samples.map(pick)).sort();
  return [label, String(v.length), fixed(percentile(v, 0.5), 1), fixed(percentile(v, 0.9), 1), fixed(percentile(v, 0.99), 1), fixed(v[v.length - 1] ?? NaN, 1)];
}

async function main(): Promise<void> {
  const work = opts.keep ? resolve(opts.keep) : await mkdtemp(join(tmpdir(), 'pyedge-bench-publish-latency-'));
  const data = join(work, 'data');
  const tree = join(work, 'tree');
  const keyFile = join(work, 'publisher-key.pem');
  await mkdir(data, { recursive: true });
  const load0 = loadavg();
  let origin: Service | null = null;
  let publisher: WatchingPublisher | null = null;
  try {
    const projects = Number(opts.projects);
    if (projects > 0) {
      process.stderr.write(`importing the first ${projects} names of ${opts.tsv} into ${data}…\n`);
      const imp = await importHead(data, resolve(opts.tsv), projects);
      process.stderr.write(imp.reused ? '  reusing the index there\n' : `  imported ${imp.imported} projects in ${fixed(imp.wallS, 1)} s\n`);
    }
    const token = await createToken(data, 'bench');
    origin = await startOrigin(data);
    const t0 = nowMs();
    const profArgs = opts['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', resolve(opts['cpu-prof'])] : [];
    const extraArgs = opts['publisher-args'].split(/\s+/).filter((a) => a !== '');
    publisher = await startPublisher(origin.url, tree, keyFile, { nodeArgs: profArgs, extraArgs });
    await waitForTree(tree, origin.url, 60 * 60_000, 200);
    const rootProjects = await treeProjects(tree);
    process.stderr.write(`tree in step with the origin after ${fixed((nowMs() - t0) / 1000, 1)} s (${publisher.take().length} batch lines)\n`);
    const nginx = await startNginx(tree, join(work, 'nginx'), '/simple/', { openFileCache: false });

    const stamp = Date.now().toString(36);
    const existing = Array.from({ length: Number(opts['existing-projects']) }, (_, i) => `bench-lat-${stamp}-e${i}`);
    const size = Number(opts['wheel-size']);
    const agents = { up: new http.Agent({ keepAlive: true, maxSockets: 1 }), read: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
    let version = 0;
    // The projects that get new versions exist before the measured uploads start.
    for (const name of existing) await measure(origin.url, nginx.url, token, buildBenchWheel(name, `0.${version}`, size), 'new project', agents);
    const next = (i: number): { wheel: BenchWheel; kind: Kind } => {
      if (i % 2 === 0) return { wheel: buildBenchWheel(`bench-lat-${stamp}-n${i}`, '1.0', size), kind: 'new project' };
      return { wheel: buildBenchWheel(existing[(i >> 1) % existing.length]!, `1.${++version}`, size), kind: 'new version' };
    };
    for (let i = 0; i < warmup; i++) {
      const { wheel, kind } = next(i);
      await measure(origin.url, nginx.url, token, wheel, kind, agents);
    }
    publisher.take();
    const rss = new RssWatcher(publisher.child.pid).start();
    const originRss = new RssWatcher(origin.child.pid).start();
    const cpu0 = await processCpu(publisher.child.pid);
    const ocpu0 = await processCpu(origin.child.pid);
    const m0 = await machineCpu();
    const samples: Sample[] = [];
    const tm = nowMs();
    for (let i = 0; i < uploads; i++) {
      const { wheel, kind } = next(warmup + i);
      const s = await measure(origin.url, nginx.url, token, wheel, kind, agents);
      samples.push(s);
      if ((i + 1) % 100 === 0) process.stderr.write(`  ${i + 1} uploads; last: link ${fixed(s.linkMs, 1)} ms, file ${fixed(s.fileMs, 1)} ms\n`);
    }
    const wallS = (nowMs() - tm) / 1000;
    const cpu1 = await processCpu(publisher.child.pid);
    const ocpu1 = await processCpu(origin.child.pid);
    const m1 = await machineCpu();
    const lines = publisher.take();
    const msOf = (ls: readonly string[]): number[] => ls.map((l) => Number(/ in (\d+) ms/.exec(l)?.[1] ?? NaN)).filter(Number.isFinite).sort((a, b) => a - b);
    // A root written in the background reports on a line of its own: no projects, root written.
    const isBackgroundRoot = (l: string): boolean => l.includes(' 0 projects written') && l.includes('root written');
    const batchLines = lines.filter((l) => !isBackgroundRoot(l));
    const rootLines = lines.filter(isBackgroundRoot);
    const batchMs = msOf(batchLines);
    const rootMs = msOf(rootLines);
    const roots = lines.filter((l) => l.includes('root written')).length;
    const failed = lines.filter((l) => l.startsWith('sync failed'));
    agents.up.destroy();
    agents.read.destroy();

    const byKind = (k: Kind): Sample[] => samples.filter((s) => s.kind === k);
    const header = ['uploads', 'count', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'];
    const out: string[] = [];
    out.push(`index: ${rootProjects} projects in the tree's root when the uploads started; ${uploads} measured uploads after ${warmup} warm-up, ${size} B wheels, one at a time`);
    out.push('', '**Upload 200 → file served by nginx** (link seen on the page, then the file fetched whole):', '');
    out.push(markdownTable(header, [summary('all', samples, (s) => s.fileMs), summary('new version of an existing project', byKind('new version'), (s) => s.fileMs), summary('new project', byKind('new project'), (s) => s.fileMs)]));
    out.push('', '**Upload 200 → link on the project page served by nginx**:', '');
    out.push(markdownTable(header, [summary('all', samples, (s) => s.linkMs), summary('new version of an existing project', byKind('new version'), (s) => s.linkMs), summary('new project', byKind('new project'), (s) => s.linkMs)]));
    out.push('', '**Reference**: one GET of the same page and one of the same file through nginx once both are there (the floor of the measurement), and the upload itself:', '');
    out.push(markdownTable(header, [summary('page + file GET, nginx', samples, (s) => s.floorMs), summary('upload round trip', samples, (s) => s.uploadMs)]));
    const sorted = Float64Array.from(samples.map((s) => s.fileMs)).sort();
    const floor = Float64Array.from(samples.map((s) => s.floorMs)).sort();
    out.push('', `p50 against the floor: ${fixed(percentile(sorted, 0.5) / percentile(floor, 0.5), 1)}×; polls per upload: mean ${fixed(samples.reduce((n, s) => n + s.polls, 0) / samples.length, 1)}`);
    out.push(
      `publisher: ${batchLines.length} batch lines (${roots} roots written, ${rootLines.length} of them in the background, ${failed.length} failed), batch ms p50 ${fixed(percentile(batchMs, 0.5))} p99 ${fixed(percentile(batchMs, 0.99))} max ${fixed(batchMs[batchMs.length - 1] ?? NaN)}; ` +
        (rootLines.length > 0 ? `background root ms p50 ${fixed(percentile(rootMs, 0.5))} max ${fixed(rootMs[rootMs.length - 1] ?? NaN)}; ` : '') +
        `CPU ${cpu0 && cpu1 ? fixed((cpu1.userMs + cpu1.systemMs - cpu0.userMs - cpu0.systemMs) / uploads, 2) : 'n/a'} ms/upload, origin CPU ${ocpu0 && ocpu1 ? fixed((ocpu1.userMs + ocpu1.systemMs - ocpu0.userMs - ocpu0.systemMs) / uploads, 2) : 'n/a'} ms/upload; ` +
        `peak RSS publisher ${fixed(await rss.stop())} MiB, origin ${fixed(await originRss.stop())} MiB`,
    );
    out.push(`${fixed(uploads / wallS, 1)} uploads/s measured; machine busy ${m0 && m1 ? fixed((100 * (m1.busy - m0.busy)) / (m1.total - m0.total)) : 'n/a'} %; load average ${load0.map((l) => fixed(l, 1)).join(' ')} at start, ${loadavg().map((l) => fixed(l, 1)).join(' ')} at end`);
    if (failed.length > 0) out.push(`first failed batch: ${failed[0]}`);
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await publisher?.stop();
    await stopAll();
    if (!opts.keep) await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  void stopAll().finally(() => process.exit(1));
});
