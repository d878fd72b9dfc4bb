/** Running pyedge and other programs from tests: spawn, wait for a line, stop. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** The repository root (tests run from dist/test/e2e/helpers). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
export const PYEDGE_BIN = join(REPO_ROOT, 'bin', 'pyedge');

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command to completion (bounded by `timeoutMs`). */
export async function run(cmd: string, args: readonly string[], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Run `./bin/pyedge ARGS` to completion. */
export function pyedge(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(process.execPath, [PYEDGE_BIN, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env } });
}

export interface Service {
  readonly url: string;
  readonly process: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  logs(): string;
  /** Everything the process wrote to stdout so far. */
  output(): string;
  /** SIGTERM and wait for exit (SIGKILL after `graceMs`); resolves to the exit code. */
  stop(graceMs?: number): Promise<number | null>;
  kill(): Promise<void>;
  /** Resolves to the exit code once the process has exited by itself. */
  exited(): Promise<number | null>;
}

/**
 * Start a long-running `pyedge` subcommand and wait until it prints a line
 * matching `ready` (whose first group is the URL).
 */
export async function startPyedge(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; ready?: RegExp; timeoutMs?: number } = {},
): Promise<Service> {
  const ready = options.ready ?? /listening on (\S+?)\/?$/m;
  const child = spawn(process.execPath, [PYEDGE_BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pyedge ${args.join(' ')} did not become ready:\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = ready.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!.replace(/\/$/, ''));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pyedge ${args.join(' ')} exited with ${code}:\n${stdout}\n${stderr}`));
    });
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    url,
    process: child,
    logs: () => stderr,
    output: () => stdout,
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    exited: () => exited,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
