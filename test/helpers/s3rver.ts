/**
 * Starts s3rver, an S3-compatible server, on loopback for tests.
 *
 * It runs in a child process started with `--openssl-legacy-provider`:
 * s3rver encrypts ListObjectsV2 continuation tokens with DES, which Node 17+
 * refuses otherwise, so listings of more than 1,000 keys would fail. Being a
 * separate process also keeps its synchronous folder walks off the tests'
 * event loop. This file is both the helper and the child's entry point.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RunningS3rver {
  /** e.g. `http://127.0.0.1:41234`. */
  readonly endpoint: string;
  readonly bucket: string;
  /** The AWS variables a child process (or the SDK's default chain) needs to reach this server. */
  readonly env: Record<string, string>;
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
}

const CHILD_ARG = '--pyedge-s3rver-child';
const STARTUP_TIMEOUT_MS = 15_000;

interface ReadyMessage {
  readonly port: number;
}

function isReadyMessage(message: unknown): message is ReadyMessage {
  return typeof message === 'object' && message !== null && 'port' in message && typeof message.port === 'number';
}

/** Starts s3rver on 127.0.0.1 (free port) with an empty `bucket`, storing data in a fresh temp folder. */
export async function startS3rver(bucket = 'test'): Promise<RunningS3rver> {
  const directory = await mkdtemp(path.join(tmpdir(), 'pyedge-s3rver-'));
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', fileURLToPath(import.meta.url), CHILD_ARG, directory, bucket],
    { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  );
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('s3rver did not start in time')), STARTUP_TIMEOUT_MS);
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`s3rver exited during startup (code ${code}, signal ${signal})`)));
      child.once('message', (message: unknown) => {
        clearTimeout(timer);
        if (isReadyMessage(message)) resolve(message.port);
        else reject(new Error(`unexpected message from s3rver: ${JSON.stringify(message)}`));
      });
    });
  } catch (err) {
    child.kill();
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  child.removeAllListeners('exit');
  child.removeAllListeners('error');
  // A test that forgets stop() must not keep its process alive; the child exits when we do.
  child.unref();
  child.channel?.unref();

  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    bucket,
    env: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        // Unref'd at start; without this the process could end before the exit event and skip the cleanup.
        child.ref();
        child.kill();
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** The child: runs s3rver until the parent goes away, and reports its port over IPC. */
async function runChild(directory: string, bucket: string): Promise<void> {
  const { default: S3rver } = await import('s3rver');
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  const address = await server.run();
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  const ready: ReadyMessage = { port: address.port };
  process.send?.(ready);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === CHILD_ARG) {
  const [directory, bucket] = process.argv.slice(3);
  if (directory === undefined || bucket === undefined) throw new Error('usage: s3rver.js --pyedge-s3rver-child DIRECTORY BUCKET');
  await runChild(directory, bucket);
}
