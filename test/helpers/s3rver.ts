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
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
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

export interface S3rverOptions {
  /**
   * Make each PUT whole, as S3 does: s3rver writes a body into the object as it
   * arrives, so a reader can see part of it, and a client that dies mid-PUT
   * leaves a torn object. With this, the body is read in full, written aside
   * and renamed into place, and reads and writes of one key take turns.
   */
  readonly atomicPuts?: boolean;
}

/** Starts s3rver on 127.0.0.1 (free port) with an empty `bucket`, storing data in a fresh temp folder. */
export async function startS3rver(bucket = 'test', options: S3rverOptions = {}): Promise<RunningS3rver> {
  const directory = await mkdtemp(path.join(tmpdir(), 'pyedge-s3rver-'));
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', fileURLToPath(import.meta.url), CHILD_ARG, directory, bucket, options.atomicPuts ? 'atomic' : 'plain'],
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

/** The parts of s3rver's filesystem store (lib/stores/filesystem.js) that atomic PUTs replace. */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: Record<string, unknown>, md5: string): Promise<void>;
  putObject(object: { bucket: string; key: string; content: Buffer | AsyncIterable<Buffer>; metadata: Record<string, unknown> }): Promise<{ size: number; md5: string }>;
  getObject(bucket: string, key: string, options?: unknown): Promise<unknown>;
  deleteObject(bucket: string, key: string): Promise<void>;
}

/** Replaces the store's object writes with whole ones; see S3rverOptions.atomicPuts. */
function makePutsAtomic(store: FilesystemStore): void {
  const turns = new Map<string, Promise<unknown>>();
  const inTurn = <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const run = (turns.get(id) ?? Promise.resolve()).catch(() => undefined).then(fn);
    const settled = run.catch(() => undefined);
    turns.set(id, settled);
    void settled.then(() => {
      if (turns.get(id) === settled) turns.delete(id);
    });
    return run;
  };
  const { getObject, deleteObject } = store;
  let tmpCount = 0;
  store.putObject = async (object) => {
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(object.content)) chunks.push(object.content);
    // A body cut short (the client died) rejects here, before anything is stored.
    else for await (const c of object.content) chunks.push(c);
    const content = Buffer.concat(chunks);
    const md5 = createHash('md5').update(content).digest('hex');
    const file = store.getResourcePath(object.bucket, object.key, 'object');
    await mkdir(path.dirname(file), { recursive: true });
    // Not ending in "._S3rver_object", so listings skip it.
    const tmp = `${file}.${process.pid}.${tmpCount++}.tmp`;
    await writeFile(tmp, content);
    await inTurn(`${object.bucket}/${object.key}`, async () => {
      await rename(tmp, file);
      await store.putMetadata(object.bucket, object.key, object.metadata, md5);
    });
    return { size: content.length, md5 };
  };
  // s3rver's read resolves once the object's file is open: a rename after that leaves the reader the old bytes.
  store.getObject = (bucket, key, options) => inTurn(`${bucket}/${key}`, () => getObject.call(store, bucket, key, options));
  store.deleteObject = (bucket, key) => inTurn(`${bucket}/${key}`, () => deleteObject.call(store, bucket, key));
}

/** The child: runs s3rver until the parent goes away, and reports its port over IPC. */
async function runChild(directory: string, bucket: string, atomic: boolean): Promise<void> {
  const { default: S3rver } = await import('s3rver');
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket }] });
  if (atomic) makePutsAtomic((server as unknown as { store: FilesystemStore }).store);
  const address = await server.run();
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  const ready: ReadyMessage = { port: address.port };
  process.send?.(ready);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === CHILD_ARG) {
  const [directory, bucket, mode] = process.argv.slice(3);
  if (directory === undefined || bucket === undefined) throw new Error('usage: s3rver.js --pyedge-s3rver-child DIRECTORY BUCKET [atomic|plain]');
  await runChild(directory, bucket, mode === 'atomic');
}
