/**
 * A full build of a static tree: `pyedge publish` (one-shot) from an origin
 * holding the first N names of the PyPI names TSV (one release and one file
 * each) into an empty folder. Reports the time, files and pages written per
 * second, and the peak memory of publisher and origin. The references: the
 * same files copied by `cp -a` in the same run (how fast this disk creates
 * that many small files), and dumb-pypi's published figure. Run after a
 * build: `node dist/bench/publish-full.js [--help]`.
 */
import { mkdir, mkdtemp, rename, rm, statfs } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { nowMs } from './lib/http-timing.js';
import { machineCpu, processCpu } from './lib/cpu-usage.js';
import { RssWatcher } from './lib/memory.js';
import { runCommand, startOrigin, stopAll, type Service } from './lib/processes.js';
import { countTree, importHead, originSerial, PYPI_NAMES_TSV, timedPyedge, treeSerial } from './lib/publisher.js';
import { fixed, markdownTable } from './lib/stats.js';

const { values: opts } = parseArgs({
  options: {
    projects: { type: 'string', default: '10000' },
    keep: { type: 'string' },
    tsv: { type: 'string', default: PYPI_NAMES_TSV },
    'publisher-args': { type: 'string', default: '' },
    threadpool: { type: 'string' },
    reference: { type: 'boolean', default: true },
    'no-reference': { type: 'boolean', default: false },
    verify: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(
    'node dist/bench/publish-full.js [--projects 10000] [--keep DIR] [--tsv FILE] [--publisher-args="…"]\n' +
      '                                [--threadpool N] [--no-reference] [--verify] [--cpu-prof DIR]\n' +
      '  --projects N    the first N names of the TSV (886000 or more: all of them)\n' +
      '  --keep DIR      keep the origin data (DIR/data) and the tree (DIR/tree); the data is reused, the tree built anew\n' +
      '  --threadpool N  UV_THREADPOOL_SIZE of the publisher (node\'s default: 4)\n' +
      '  --no-reference  skip the cp -a copy of the tree (it needs as much disk again)\n' +
      '  --verify        run pyedge verify --no-hashes on the tree afterwards\n' +
      '  --cpu-prof DIR  CPU profiles of the publisher and the origin\n',
  );
  process.exit(0);
}

/** dumb-pypi on the same kind of 2-core machine: HTML pages only, 886k names (from the issue). */
const DUMB_PYPI = { files: 2_660_000, seconds: 9.6 * 60, memoryGB: 1.9 };
const DUMB_PYPI_FILES_PER_S = DUMB_PYPI.files / DUMB_PYPI.seconds;
/** Disk per project in the tree: ~7 files and ~4 folders of a 4 KiB block each, rounded up. */
const TREE_BYTES_PER_PROJECT = 48 * 1024;
/** Disk per project in the origin's data folder (bench/scale.ts measured 11.5 KiB). */
const DATA_BYTES_PER_PROJECT = 12 * 1024;

async function main(): Promise<void> {
  const projects = Number(opts.projects);
  const work = opts.keep ? resolve(opts.keep) : await mkdtemp(join(tmpdir(), 'pyedge-bench-publish-full-'));
  const data = join(work, 'data');
  const tree = join(work, 'tree');
  const copy = join(work, 'tree-copy');
  const keyFile = join(work, 'publisher-key.pem');
  await mkdir(data, { recursive: true });
  // The trees of an earlier run are moved aside and deleted only once this run is measured: ext4
  // without a journal skips inodes freed in the last 30 s when it allocates new ones, reading each
  // one's inode block, so files made right after a big delete cost several times the CPU.
  const old: string[] = [];
  for (const dir of [tree, copy]) {
    const aside = `${dir}.old-${process.pid}`;
    if (await rename(dir, aside).then(() => true, () => false)) old.push(aside);
  }
  const reference = opts.reference && !opts['no-reference'];
  const fs = await statfs(work);
  const free = fs.bavail * fs.bsize;
  const need = projects * (TREE_BYTES_PER_PROJECT * (reference ? 2 : 1) + DATA_BYTES_PER_PROJECT);
  process.stderr.write(`free disk ${fixed(free / 2 ** 30, 1)} GiB, free inodes ${fs.ffree}; this run needs about ${fixed(need / 2 ** 30, 1)} GiB\n`);
  if (free < need * 1.2) throw new Error(`not enough free disk in ${work}; give a smaller --projects or --no-reference`);
  const load0 = loadavg();
  let origin: Service | null = null;
  try {
    process.stderr.write(`importing the first ${projects} names of ${opts.tsv} into ${data}…\n`);
    const imp = await importHead(data, resolve(opts.tsv), projects);
    process.stderr.write(imp.reused ? '  reusing the index there\n' : `  imported ${imp.imported} projects in ${fixed(imp.wallS, 1)} s\n`);
    const prof = opts['cpu-prof'] ? resolve(opts['cpu-prof']) : null;
    origin = await startOrigin(data, { nodeArgs: prof ? ['--cpu-prof', '--cpu-prof-dir', join(prof, 'origin')] : [] });
    const serial = await originSerial(origin.url);
    // The origin renders its root on first use: warm it, so the build does not pay for start-up.
    await (await fetch(`${origin.url}/simple/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } })).arrayBuffer();
    const originRss = new RssWatcher(origin.child.pid, 250).start();
    const o0 = await processCpu(origin.child.pid);
    const m0 = await machineCpu();
    process.stderr.write(`publishing ${projects} projects (serial ${serial}) into ${tree}…\n`);
    const extraArgs = opts['publisher-args'].split(/\s+/).filter((a) => a !== '');
    const run = await timedPyedge(['publish', '--source', origin.url, '--target', tree, '--key-file', keyFile, '--log-level', 'warn', ...extraArgs], {
      timeoutMs: 3 * 60 * 60_000,
      nodeArgs: prof ? ['--cpu-prof', '--cpu-prof-dir', join(prof, 'publisher')] : [],
      ...(opts.threadpool ? { env: { UV_THREADPOOL_SIZE: opts.threadpool } } : {}),
      onStdout: (text) => process.stderr.write(`  ${text}`),
    });
    const o1 = await processCpu(origin.child.pid);
    const m1 = await machineCpu();
    const originPeak = await originRss.stop();
    if (run.code !== 0) throw new Error(`pyedge publish failed (${run.code}):\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-4000)}`);
    const recorded = await treeSerial(tree);
    await origin.stop();
    origin = null;

    const counted = await countTree(tree);
    const pages = (counted.filesUnder.get('simple') ?? 0) + (counted.filesUnder.get('pypi') ?? 0);
    const packageFiles = counted.filesUnder.get('packages') ?? 0;
    const filesPerS = counted.files / run.wallS;
    const rows = [
      [
        `pyedge publish (${projects} projects)`,
        fixed(run.wallS, 1),
        String(counted.files),
        fixed(filesPerS),
        fixed(pages / run.wallS),
        fixed(projects / run.wallS),
        fixed(run.maxRssMiB),
        fixed(originPeak),
        `${fixed(run.userS, 1)} + ${fixed(run.systemS, 1)}`,
        o0 && o1 ? `${fixed((o1.userMs - o0.userMs) / 1000, 1)} + ${fixed((o1.systemMs - o0.systemMs) / 1000, 1)}` : 'n/a',
        m0 && m1 ? `${fixed((100 * (m1.busy - m0.busy)) / (m1.total - m0.total))} %` : 'n/a',
        `${fixed(filesPerS / DUMB_PYPI_FILES_PER_S, 2)}×`,
      ],
    ];
    let copyLine = 'reference copy skipped (--no-reference)';
    if (reference) {
      // The same files and folders, copied by cp: the disk's rate of creating this many small files, in this run.
      const c0 = nowMs();
      const cp = await runCommand('cp', ['-a', tree, copy], 3 * 60 * 60_000);
      const cpS = (nowMs() - c0) / 1000;
      if (cp.code !== 0) throw new Error(`cp -a failed: ${cp.stderr}`);
      rows.push([`cp -a of the tree (same run)`, fixed(cpS, 1), String(counted.files), fixed(counted.files / cpS), fixed(pages / cpS), fixed(projects / cpS), '', '', '', '', '', `${fixed(counted.files / cpS / DUMB_PYPI_FILES_PER_S, 2)}×`]);
      copyLine = `publisher files/s against cp -a of the same tree: ${fixed(filesPerS / (counted.files / cpS), 2)}×`;
    }
    rows.push(['dumb-pypi, 886k names, HTML only (issue)', fixed(DUMB_PYPI.seconds, 1), String(DUMB_PYPI.files), fixed(DUMB_PYPI_FILES_PER_S), '', '', fixed(DUMB_PYPI.memoryGB * 1024), '', '', '', '', '1.00×']);
    const out = [
      markdownTable(
        ['build', 'wall s', 'files', 'files/s', 'pages/s', 'projects/s', 'publisher peak RSS MiB', 'origin peak RSS MiB', 'publisher CPU s (user + sys)', 'origin CPU s (user + sys)', 'machine busy (2 cores)', 'files/s vs dumb-pypi'],
        rows,
      ),
      '',
      `tree: ${counted.files} files (${pages} pages under simple/ and pypi/, ${packageFiles} under packages/, ${counted.filesUnder.get('') ?? 0} at the top), ${counted.dirs} folders, ${fixed(counted.bytes / 2 ** 20)} MiB of content; state serial ${recorded} (origin ${serial})`,
      copyLine,
      `CPU per project: publisher ${fixed((1000 * (run.userS + run.systemS)) / projects, 2)} ms (${fixed((1000 * run.systemS) / projects, 2)} of it kernel)` +
        (o0 && o1 ? `, origin ${fixed((o1.userMs - o0.userMs + o1.systemMs - o0.systemMs) / projects, 2)} ms` : ''),
      `publisher output: ${run.stdout.trim().split('\n').slice(-3).join(' | ')}`,
      `load average ${load0.map((l) => fixed(l, 1)).join(' ')} at start, ${loadavg().map((l) => fixed(l, 1)).join(' ')} at end`,
    ];
    if (opts.verify) {
      const v = await timedPyedge(['verify', '--target', tree, '--no-hashes'], { timeoutMs: 3 * 60 * 60_000 });
      out.push(`pyedge verify --no-hashes: exit ${v.code} in ${fixed(v.wallS, 1)} s${v.code === 0 ? '' : `: ${v.stdout.slice(0, 2000)}`}`);
    }
    if (recorded !== serial) out.push(`WARNING: the tree records serial ${recorded}, the origin was at ${serial}`);
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await origin?.stop();
    await stopAll();
    for (const dir of [...old, copy]) await rm(dir, { recursive: true, force: true });
    // With --keep the tree stays too: `publish-latency.js --keep DIR` starts from it.
    if (!opts.keep) await rm(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  void stopAll().finally(() => process.exit(1));
});
