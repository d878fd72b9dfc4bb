/**
 * The publisher and its inputs for benchmarks: an origin's data folder filled
 * from the head of the PyPI names TSV (`pyedge import-names`), `pyedge publish
 * --watch` as a service whose batch lines are kept, and a one-shot publish
 * timed under /usr/bin/time for its peak memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { nowMs } from './http-timing.js';
import { PYEDGE_BIN, REPO_ROOT, startService, type Service } from './processes.js';

export const PYPI_NAMES_TSV = '/work/shared/data/pypi-projects.tsv.gz';

/** What `/usr/bin/time -v` says about a finished command. */
export interface TimedCommand {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly wallS: number;
  readonly maxRssMiB: number;
  readonly userS: number;
  readonly systemS: number;
}

/** Children started here that must not outlive an interrupted benchmark (an import or publish writes GBs). */
const children = new Set<ChildProcess>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of children) c.kill('SIGKILL');
    if (process.listenerCount(sig) === 0) process.exit(130);
  });
}

/**
 * Runs `node bin/pyedge ARGS` under /usr/bin/time -v, killing it after
 * `timeoutMs`; `onStderr` sees its own stderr (the time report comes last).
 */
export async function timedPyedge(
  args: readonly string[],
  options: { timeoutMs: number; nodeArgs?: readonly string[]; env?: NodeJS.ProcessEnv; onStdout?: (text: string) => void; onPid?: (pid: number) => void },
): Promise<TimedCommand> {
  const t0 = nowMs();
  const child = spawn('/usr/bin/time', ['-v', process.execPath, ...(options.nodeArgs ?? []), PYEDGE_BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    options.onStdout?.(d.toString());
    stdout = (stdout + d.toString()).slice(-256 * 1024);
  });
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-256 * 1024)));
  if (options.onPid) {
    // time(1) forks the node process: find it among its children once it exists.
    void (async () => {
      for (let i = 0; i < 200 && child.exitCode === null; i++) {
        const kids = await readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').catch(() => '');
        const pid = Number(kids.trim().split(/\s+/)[0]);
        if (pid > 0) return options.onPid!(pid);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  children.delete(child);
  const num = (re: RegExp): number => Number(re.exec(stderr)?.[1] ?? NaN);
  return {
    code,
    stdout,
    stderr,
    wallS: (nowMs() - t0) / 1000,
    maxRssMiB: num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024,
    userS: num(/User time \(seconds\): ([\d.]+)/),
    systemS: num(/System time \(seconds\): ([\d.]+)/),
  };
}

/** `pyedge import-names` of the first `limit` projects of `tsv` into `data`; skipped when `data` already holds an index. */
export async function importHead(data: string, tsv: string, limit: number): Promise<{ reused: boolean; imported: number; wallS: number }> {
  if (await stat(join(data, 'index.db')).then(() => true, () => false)) return { reused: true, imported: NaN, wallS: 0 };
  const r = await timedPyedge(['import-names', '--data', data, tsv, '--limit', String(limit)], { timeoutMs: 60 * 60_000 });
  const done = /imported (\d+) projects/.exec(r.stdout);
  if (r.code !== 0 || !done) throw new Error(`pyedge import-names failed (${r.code}):\n${r.stdout}\n${r.stderr.slice(-4000)}`);
  return { reused: false, imported: Number(done[1]), wallS: r.wallS };
}

/** A `pyedge publish --watch` that keeps every line it printed (one per batch that did something). */
export interface WatchingPublisher extends Service {
  /** Lines printed so far; `take()` returns them and starts a new list. */
  take(): string[];
}

/** Starts `pyedge publish --watch`; ready once it says it follows the origin (its first batch then runs). */
export async function startPublisher(
  source: string,
  target: string,
  keyFile: string,
  options: { nodeArgs?: readonly string[]; extraArgs?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<WatchingPublisher> {
  const args = [
    ...(options.nodeArgs ?? []),
    PYEDGE_BIN,
    'publish',
    '--source',
    source,
    '--target',
    target,
    '--watch',
    '--key-file',
    keyFile,
    '--log-level',
    'warn',
    ...(options.extraArgs ?? []),
  ];
  const service = await startService('pyedge publish', process.execPath, args, {
    ready: /pyedge publisher following ()/,
    env: options.env ?? {},
    timeoutMs: 10 * 60_000,
  });
  let lines: string[] = [];
  let partial = '';
  service.child.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l !== ''));
    if (lines.length > 10_000) lines = lines.slice(-5000);
  });
  return {
    ...service,
    take() {
      const out = lines;
      lines = [];
      return out;
    },
  };
}

/** The serial a tree's state object records, or -1. */
export async function treeSerial(tree: string): Promise<number> {
  const text = await readFile(join(tree, 'pyedge-state.json'), 'utf8').catch(() => null);
  if (text === null) return -1;
  try {
    return Number((JSON.parse(text) as { serial?: unknown }).serial ?? -1);
  } catch {
    return -1;
  }
}

/** How many projects a tree's state object says its root lists (NaN without one). */
export async function treeProjects(tree: string): Promise<number> {
  const text = await readFile(join(tree, 'pyedge-state.json'), 'utf8').catch(() => null);
  try {
    return text === null ? NaN : Number((JSON.parse(text) as { projects?: unknown }).projects);
  } catch {
    return NaN;
  }
}

/** The origin's newest serial, from its change feed. */
export async function originSerial(origin: string): Promise<number> {
  const res = await fetch(`${origin}/changes?since=0&limit=1`);
  return ((await res.json()) as { last_serial: number }).last_serial;
}

/** Waits until the tree records the origin's serial (checked every `everyMs`), at most `timeoutMs`. */
export async function waitForTree(tree: string, origin: string, timeoutMs: number, everyMs = 100): Promise<number> {
  const want = await originSerial(origin);
  const deadline = nowMs() + timeoutMs;
  for (;;) {
    const have = await treeSerial(tree);
    if (have >= want) return have;
    if (nowMs() > deadline) throw new Error(`the tree is at serial ${have}, not ${want}, after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** What a tree holds: files, folders and bytes (apparent sizes), and files per top-level folder. */
export interface TreeCount {
  readonly files: number;
  readonly dirs: number;
  readonly bytes: number;
  /** Files under `simple/`, `pypi/`, `packages/`, … (top-level files under ''). */
  readonly filesUnder: ReadonlyMap<string, number>;
}

/** Counts a tree by find(1); `.tmp` is left out. */
export async function countTree(dir: string): Promise<TreeCount> {
  const child = spawn('find', ['.', '-path', './.tmp', '-prune', '-o', '-printf', '%y %s %P\n'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  let files = 0;
  let dirs = 0;
  let bytes = 0;
  const filesUnder = new Map<string, number>();
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      const [type, size, path] = [l[0], l.slice(2, l.indexOf(' ', 2)), l.slice(l.indexOf(' ', 2) + 1)];
      if (type === 'f') {
        files++;
        bytes += Number(size);
        const slash = path.indexOf('/');
        const top = slash < 0 ? '' : path.slice(0, slash);
        filesUnder.set(top, (filesUnder.get(top) ?? 0) + 1);
      } else if (type === 'd') dirs++;
    }
  });
  await once(child, 'close');
  return { files, dirs, bytes, filesUnder };
}
