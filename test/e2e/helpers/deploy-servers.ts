/**
 * Debian's nginx, Varnish and HAProxy run with the configs shipped in deploy/,
 * only their listen address, tree folder and backends put in place: what a
 * user copying those files gets.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX_BIN, freePort, nginxConf } from './nginx.js';
import { REPO_ROOT } from './processes.js';

export const VARNISHD = '/usr/sbin/varnishd';
export const HAPROXY = '/usr/sbin/haproxy';

/** A server process a test owns, stopped with SIGTERM (SIGKILL after 5 s). */
export interface Running {
  readonly url: string;
  readonly port: number;
  /** What it wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

async function answering(url: string): Promise<boolean> {
  try {
    await (await fetch(url, { signal: AbortSignal.timeout(1000) })).arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/** Spawn `cmd` and wait until `GET <url>/<readyPath>` answers at all. */
export async function startProcess(what: string, cmd: string, args: readonly string[], port: number, dir: string, readyPath = 'last-modified'): Promise<Running> {
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const started = Date.now();
  while (!(await answering(`${url}/${readyPath}`))) {
    if (child.exitCode !== null || Date.now() - started > 30_000) {
      await stop();
      throw new Error(`${what} did not answer on ${url} (exit ${child.exitCode}):\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url, port, output: () => output, stop };
}

/** Debian's nginx with one of the configs in deploy/nginx/, edited by `edit` (listen, root, upstream, TTLs). */
export async function startShippedNginx(confFile: string, edit: (conf: string, port: number) => string): Promise<Running> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-deploy-nginx-'));
  const shipped = await readFile(join(REPO_ROOT, 'deploy', 'nginx', confFile), 'utf8');
  const site = edit(shipped, port).replaceAll('/var/cache/nginx/pyedge', join(dir, 'cache'));
  const conf = join(dir, 'nginx.conf');
  await writeFile(conf, await nginxConf(dir, site));
  return startProcess(`nginx (${confFile})`, NGINX_BIN, ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')], port, dir);
}

/** deploy/nginx/pyedge-tree.conf serving `tree`. */
export function startTreeNginx(tree: string): Promise<Running> {
  return startShippedNginx('pyedge-tree.conf', (conf, port) => {
    const edited = conf.replace(/listen 8081;/, `listen 127.0.0.1:${port};`).replace(/root \/srv\/pyedge\/tree;/, `root ${tree};`);
    assert.notEqual(edited, conf);
    return edited;
  });
}

/** varnishd with deploy/varnish/default.vcl, its backend on `backendPort`. */
export async function startShippedVarnish(backendPort: number): Promise<Running> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-varnish-'));
  const shipped = await readFile(join(REPO_ROOT, 'deploy', 'varnish', 'default.vcl'), 'utf8');
  const vcl = shipped.replace(/\.port = "8081";/, `.port = "${backendPort}";`);
  assert.notEqual(vcl, shipped, 'the shipped VCL names its backend port');
  await writeFile(join(dir, 'default.vcl'), vcl);
  // -j none: no privilege separation, so that it runs as whoever runs the tests.
  const args = ['-F', '-j', 'none', '-n', join(dir, 'work'), '-a', `127.0.0.1:${port}`, '-T', '127.0.0.1:0', '-f', join(dir, 'default.vcl'), '-s', 'malloc,64m'];
  return startProcess('varnishd', VARNISHD, args, port, dir);
}

/**
 * haproxy with deploy/haproxy/haproxy.cfg in front of `backendPorts` (the shipped file's two
 * `server` lines, repeated or cut to their number).
 */
export async function startShippedHaproxy(backendPorts: readonly number[]): Promise<Running> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-haproxy-'));
  const shipped = await readFile(join(REPO_ROOT, 'deploy', 'haproxy', 'haproxy.cfg'), 'utf8');
  const serverLine = /^(\s*)server edge-a 192\.0\.2\.10:8081 (.*)$/m.exec(shipped);
  assert.ok(serverLine, 'the shipped config has a server line for edge-a');
  const servers = backendPorts.map((p, i) => `${serverLine[1]}server edge-${i} 127.0.0.1:${p} ${serverLine[2]}`).join('\n');
  const cfg = shipped
    // In place of the first server line, after `default-server`, whose settings apply to the lines below it.
    .replace(serverLine[0], servers)
    .replace(/^\s*server edge-[a-z] .*$\n?/gm, '')
    .replace(/bind :80\b/, `bind 127.0.0.1:${port}`)
    // In the foreground as whoever runs the tests.
    .replace(/^\s*(user|group|chroot|daemon|stats socket)\b.*$\n?/gm, '');
  assert.notEqual(cfg, shipped);
  await writeFile(join(dir, 'haproxy.cfg'), cfg);
  return startProcess('haproxy', HAPROXY, ['-db', '-f', join(dir, 'haproxy.cfg')], port, dir, '_health');
}
