/**
 * Child processes for benchmarks: servers started and always stopped (also
 * when the benchmark fails or is interrupted), commands run with a time bound.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs from dist/bench/lib). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const PYEDGE_BIN = join(REPO_ROOT, 'bin', 'pyedge');

/** A long-running child this benchmark owns. */
export interface Service {
  readonly name: string;
  /** The URL it printed when ready (empty when `ready` had no group). */
  readonly url: string;
  readonly child: ChildProcess;
  /** Everything it wrote to stderr. */
  logs(): string;
  /** Ask it to stop with `signal`, SIGKILL after `graceMs`; resolves once it exited. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const running = new Set<Service>();
let handlersInstalled = false;

/** Stop every service still running. */
export async function stopAll(): Promise<void> {
  await Promise.allSettled([...running].map((s) => s.stop()));
}

function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void stopAll().finally(() => process.exit(130));
    });
  }
}

/** Start `cmd args` and wait (at most `timeoutMs`) for stdout or stderr to match `ready`. */
export async function startService(
  name: string,
  cmd: string,
  args: readonly string[],
  options: {
    /** Ready once stdout or stderr matches (first group: the URL)… */
    ready?: RegExp;
    /** …or once a GET of this URL answers (for servers that print nothing, like nginx). */
    probeUrl?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    stopSignal?: NodeJS.Signals;
  },
): Promise<Service> {
  installSignalHandlers();
  const child = spawn(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = once(child, 'exit').then(() => undefined);
  const service: Service = {
    name,
    url: '',
    child,
    logs: () => err,
    async stop(signal = options.stopSignal ?? 'SIGTERM', graceMs = 20_000) {
      running.delete(service);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(service);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not become ready in time:\n${out}\n${err}`));
    }, options.timeoutMs ?? 30_000);
    let settled = false;
    const ready = (url: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(url.replace(/\/$/, ''));
    };
    const check = (): void => {
      const m = options.ready ? (options.ready.exec(out) ?? options.ready.exec(err)) : null;
      if (m) ready(m[1] ?? '');
    };
    if (options.probeUrl) {
      const probeUrl = options.probeUrl;
      const probe = async (): Promise<void> => {
        while (!settled && child.exitCode === null) {
          const ok = await fetch(probeUrl).then(
            async (res) => {
              await res.arrayBuffer();
              return res.ok;
            },
            () => false,
          );
          if (ok) return ready(new URL(probeUrl).origin);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      void probe();
    }
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      check();
    });
    child.stderr!.on('data', (d: Buffer) => {
      // Keep the tail only: a long run must not grow memory without bound.
      err = (err + d.toString()).slice(-64 * 1024);
      check();
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      running.delete(service);
      reject(new Error(`${name} exited (${code ?? sig}) before it was ready:\n${out}\n${err}`));
    });
  });
  return { ...service, url };
}

/** Outcome of a finished command. */
export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command to completion, killing it after `timeoutMs`. */
export async function runCommand(cmd: string, args: readonly string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  const child = spawn(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A loopback port free right now (another process could take it before we bind; fine for a benchmark). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}

/** Start `pyedge serve` on a loopback port; `nodeArgs` go to node (e.g. --cpu-prof). */
export function startOrigin(
  dataDir: string,
  options: { db?: string; nodeArgs?: readonly string[]; logLevel?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Service> {
  const args = [
    ...(options.nodeArgs ?? []),
    PYEDGE_BIN,
    'serve',
    '--data',
    dataDir,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--log-level',
    options.logLevel ?? 'warn',
    ...(options.db ? ['--db', options.db] : []),
  ];
  return startService('pyedge origin', process.execPath, args, { ready: /pyedge origin listening on (\S+)/, env: options.env ?? {} });
}

/** `pyedge token create`: a token for an unscoped user. */
export async function createToken(dataDir: string, user: string, db?: string): Promise<string> {
  const r = await runCommand(process.execPath, [PYEDGE_BIN, 'token', 'create', '--data', dataDir, '--user', user, ...(db ? ['--db', db] : [])]);
  const token = /pyedge-[A-Za-z0-9]{16}-[A-Za-z0-9_-]{43}/.exec(r.stdout)?.[0];
  if (r.code !== 0 || !token) throw new Error(`pyedge token create failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return token;
}
