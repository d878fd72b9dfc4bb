/**
 * Where an upload's time goes: each phase of the origin's upload path, run
 * one at a time in this process on the product's own modules (no HTTP), with
 * wall time and process CPU time (user + system, libuv threads included) per
 * upload. The profile behind the upload benchmark's numbers:
 * `node dist/bench/upload-phases.js [--n 1000] [--warmup 300] [--backends sqlite,postgres]`.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import { blake2b } from '@noble/hashes/blake2.js';
import BetterSqlite3 from 'better-sqlite3';
import { pino } from 'pino';
import { FolderBlobStore } from '../src/blobstore/folder/folder-blob-store.js';
import { blake2b256 } from '../src/core/blake2b.js';
import { MultiHasher, packagePath, sha256Hex } from '../src/core/hashes.js';
import { parseFilename } from '../src/core/filenames.js';
import { toReleaseMetadata } from '../src/core/metadata.js';
import { canonicalVersion } from '../src/core/versions.js';
import { createDatabase } from '../src/db/create-database.js';
import type { AddFileInput, Database } from '../src/db/database.js';
import { authenticate, issueToken } from '../src/origin/tokens.js';
import { readDistMetadata, type DistMetadata } from '../src/origin/upload/dist-metadata.js';
import { readUploadForm, type UploadForm } from '../src/origin/upload/upload-form.js';
import { UploadService } from '../src/origin/upload/upload-service.js';
import { createTestPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { fixed, markdownTable } from './lib/stats.js';
import { buildBenchWheel, uploadRequest, type UploadRequest } from './lib/wheels.js';

const { values: opts } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '300' },
    size: { type: 'string', default: '10240' },
    backends: { type: 'string', default: 'sqlite,postgres' },
  },
});
let n = Number(opts.n);
const size = Number(opts.size);
const backends = opts.backends.split(',').filter(Boolean);

interface PhaseResult {
  readonly phase: string;
  readonly wallUs: number;
  readonly cpuUs: number;
}

const results: PhaseResult[] = [];

/** Run `fn(i)` for i in [0, count) one after another; record µs per upload (each call makes `uploadsPerCall`). */
async function phase(name: string, count: number, fn: (i: number) => Promise<void> | void, uploadsPerCall = 1): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await fn(i);
  const wall = Number(process.hrtime.bigint() - t0) / 1e3;
  const cpu = process.cpuUsage(cpu0);
  const uploads = count * uploadsPerCall;
  results.push({ phase: name, wallUs: wall / uploads, cpuUs: (cpu.user + cpu.system) / uploads });
}

function fakeRequest(u: UploadRequest): IncomingMessage {
  // readUploadForm reads only the headers and the body stream of the request.
  const stream = new PassThrough();
  stream.end(u.body);
  return Object.assign(stream, { headers: { 'content-type': u.contentType, 'content-length': String(u.body.length) } }) as unknown as IncomingMessage;
}

function makeUploads(prefix: string, count: number): UploadRequest[] {
  return Array.from({ length: count }, (_, i) => uploadRequest(buildBenchWheel(`${prefix}-${i % 50}`, `1.0.${Math.floor(i / 50)}`, size)));
}

async function openDb(backend: string, data: string): Promise<{ db: Database; pg: TestPostgres | null }> {
  const pg = backend === 'postgres' ? await createTestPostgres() : null;
  const db = createDatabase(pg ? pg.url : `sqlite:${join(data, 'pyedge.sqlite3')}`);
  await db.migrate();
  return { db, pg };
}

async function backendPhases(backend: string): Promise<void> {
  const data = await mkdtemp(join(tmpdir(), `pyedge-phases-${backend}-`));
  const { db, pg } = await openDb(backend, data);
  try {
    const blobs = new FolderBlobStore(join(data, 'blobs'));
    const spoolDir = join(data, 'tmp');
    await mkdir(spoolDir, { recursive: true });
    const issued = await issueToken(db, 'bench', null);
    const authorization = 'Basic ' + Buffer.from(`__token__:${issued.token}`).toString('base64');
    const token = await authenticate(db, authorization);
    const uploads = makeUploads(`phase-${backend}`, n);
    const forms: UploadForm[] = [];
    const metas: DistMetadata[] = [];
    const tag = backend === 'sqlite' ? 'SQLite' : 'PostgreSQL';

    if (backend === backends[0]) {
      const bodies = uploads.map((u) => u.body);
      await phase('hash md5 + sha256 + BLAKE2b-256 (MultiHasher) of the request body', n, (i) => {
        const h = new MultiHasher();
        h.update(bodies[i]!);
        h.digest();
      });
      await phase('  of which BLAKE2b-256 (WebAssembly, src/core/blake2b)', n, (i) => {
        blake2b256(bodies[i]!);
      });
      await phase('  for comparison: BLAKE2b-256 in JavaScript (@noble/hashes)', n, (i) => {
        blake2b(bodies[i]!, { dkLen: 32 });
      });
      await phase('  of which md5 + sha256 (node:crypto)', n, (i) => {
        createHash('md5').update(bodies[i]!).digest('hex');
        createHash('sha256').update(bodies[i]!).digest('hex');
      });
    }
    await phase(`multipart parse + spool file write + hashing (readUploadForm) [${tag}]`, n, async (i) => {
      forms.push(await readUploadForm(fakeRequest(uploads[i]!), { spoolDir, maxFileSize: 100 * 1024 * 1024 }));
    });
    await phase(`read METADATA from the wheel in memory (yauzl, readDistMetadata) [${tag}]`, n, async (i) => {
      const f = forms[i]!.file!;
      metas.push(await readDistMetadata(f.bytes ?? f.path, parseFilename(f.filename)));
    });
    await phase(`  for comparison: from the spool file [${tag}]`, n, async (i) => {
      const f = forms[i]!.file!;
      await readDistMetadata(f.path, parseFilename(f.filename));
    });
    await phase(`auth + permission + filename checks: getToken, getRole, getProject, isFilenameUsed ×2 [${tag}]`, n, async (i) => {
      await authenticate(db, authorization);
      const name = `phase-${backend}-${i % 50}`;
      await db.getProject(name);
      await db.getRole(token.userId, name);
      await db.isFilenameUsed(forms[i]!.file!.filename);
      await db.isFilenameUsed(forms[i]!.file!.filename);
    });
    await phase(`blob store: putFile (fdatasync, mkdir ×3 + parent fsync, rename, dir fsync) [${tag}]`, n, async (i) => {
      const f = forms[i]!.file!;
      const path = packagePath(f.digests.blake2b_256, f.filename);
      await blobs.putFile(path, f.path, { contentType: 'application/octet-stream' });
    });
    const addInput = (i: number): AddFileInput => {
      const f = forms[i]!.file!;
      const md = metas[i]!.metadata;
      const parsed = parseFilename(f.filename);
      return {
        projectName: md.name!,
        version: md.version!,
        canonicalVersion: canonicalVersion(md.version!) ?? md.version!,
        metadata: toReleaseMetadata(md),
        file: {
          filename: parsed.filename,
          packagetype: 'bdist_wheel',
          pythonVersion: 'py3',
          requiresPython: md.requiresPython ?? null,
          size: f.size,
          md5: f.digests.md5,
          sha256: f.digests.sha256,
          blake2b256: f.digests.blake2b_256,
          path: packagePath(f.digests.blake2b_256, f.filename),
          metadataSha256: sha256Hex(metas[i]!.raw),
        },
        coreMetadata: metas[i]!.raw.toString('utf8'),
        uploader: { userId: token.userId, username: token.username },
        tokenScope: null,
      };
    };
    const half = Math.floor(n / 2);
    await phase(`database: addFile, one at a time: one transaction with its commit each [${tag}]`, half, async (i) => {
      await db.addFile(addInput(i));
    });
    const group = 16;
    await phase(
      `database: addFile, ${group} at once (SQLite commits them in one transaction) [${tag}]`,
      Math.floor((n - half) / group),
      async (g) => {
        await Promise.all(Array.from({ length: group }, (_, k) => db.addFile(addInput(half + g * group + k))));
      },
      group,
    );

    // The whole path minus HTTP: parse, then UploadService.upload (checks, metadata, blobs, transaction).
    const service = new UploadService(db, blobs, pino({ level: 'silent' }));
    const whole = makeUploads(`whole-${backend}`, n);
    await phase(`whole upload without HTTP: readUploadForm + authenticate + UploadService.upload [${tag}]`, n, async (i) => {
      const t = await authenticate(db, authorization);
      const form = await readUploadForm(fakeRequest(whole[i]!), { spoolDir, maxFileSize: 100 * 1024 * 1024 });
      await service.upload(form, t);
    });
  } finally {
    await db.close();
    await pg?.drop();
    await rm(data, { recursive: true, force: true });
  }
}

/** What one WAL commit costs in better-sqlite3, with and without its fsync. */
async function bareSqliteCommits(): Promise<void> {
  const data = await mkdtemp(join(tmpdir(), 'pyedge-phases-bare-'));
  try {
    for (const sync of ['FULL', 'NORMAL'] as const) {
      const raw = new BetterSqlite3(join(data, `bare-${sync}.sqlite3`));
      raw.pragma('journal_mode = WAL');
      raw.pragma(`synchronous = ${sync}`);
      raw.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
      const insert = raw.prepare('INSERT INTO t (v) VALUES (?)');
      const begin = raw.prepare('BEGIN IMMEDIATE');
      const commit = raw.prepare('COMMIT');
      const value = 'x'.repeat(600);
      await phase(`bare better-sqlite3 WAL transaction (1 insert), synchronous=${sync}`, n, () => {
        begin.run();
        insert.run(value);
        commit.run();
      });
      raw.close();
    }
  } finally {
    await rm(data, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  // A first pass of every phase so that the measured one runs JIT-compiled code.
  const measured = n;
  n = Number(opts.warmup);
  for (const b of backends) await backendPhases(b);
  results.length = 0;
  n = measured;
  for (const b of backends) await backendPhases(b);
  if (backends.includes('sqlite')) await bareSqliteCommits();
  process.stdout.write(
    `\nupload phases, ${new Date().toISOString().slice(0, 10)}, node ${process.version}: ${n} uploads of ~${size} B wheels, ` +
      'one at a time, µs per upload (CPU = user + system of the whole process)\n\n' +
      markdownTable(
        ['phase', 'wall µs', 'CPU µs'],
        results.map((r) => [r.phase, fixed(r.wallUs), fixed(r.cpuUs)]),
      ) +
      '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`upload phases failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
