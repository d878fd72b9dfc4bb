/** Debian's nginx serving a static tree on loopback, as a child process the test owns. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NGINX_BIN = '/usr/sbin/nginx';

export interface RunningNginx {
  /** e.g. `http://127.0.0.1:41234` (no trailing slash). */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** A port that was free a moment ago (for servers that cannot report the one they got). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * A whole nginx.conf that runs in the foreground with its pid, logs and temp
 * files in `dir` (a folder the caller made), around `http`: the body of the
 * `http` block (servers, types, caches).
 */
export async function nginxConf(dir: string, http: string): Promise<string> {
  const temp = join(dir, 'temp');
  await mkdir(temp, { recursive: true });
  // As root, workers would drop to nobody, who cannot read a tree under a 0700 temp folder.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 128; }
http {
  access_log off;
  client_body_temp_path ${temp}/body;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
${http}
}
`;
}

/**
 * Serves `root` like a plain static mirror: files as octet-stream, `.html` as
 * text/html, `index.html` for a folder. `port` defaults to a free one.
 */
export async function startNginx(root: string, options: { port?: number } = {}): Promise<RunningNginx> {
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'pyedge-nginx-'));
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    await nginxConf(
      dir,
      `  default_type application/octet-stream;
  types { text/html html; }
  server {
    listen 127.0.0.1:${port};
    root ${root};
    index index.html;
  }`,
    ),
  );
  const child = spawn(NGINX_BIN, ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  const deadline = Date.now() + 10_000;
  while (!(await accepting(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`nginx did not start on port ${port}:\n${stderr}\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
