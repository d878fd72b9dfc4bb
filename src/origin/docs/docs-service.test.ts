import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { startS3rver, type RunningS3rver } from '../../../test/helpers/s3rver.js';
import type { BlobStore } from '../../blobstore/blob-store.js';
import { FolderBlobStore } from '../../blobstore/folder/folder-blob-store.js';
import { S3BlobStore } from '../../blobstore/s3/s3-blob-store.js';
import { PyedgeError } from '../../core/errors.js';
import type { ApiToken, Project, Role } from '../../core/model.js';
import { DocsService, type DocsDatabase, type DocsServiceOptions } from './docs-service.js';
import type { DocsLimits } from './docs-limits.js';
import { buildZip, SYMLINK_ATTR, type ZipEntrySpec } from './test-zips.js';

const log = pino({ level: 'silent' });
const zipCache = join(tmpdir(), `pyedge-docs-zips-${process.pid}`);
const builtZips = new Map<string, Promise<string>>();
after(async () => {
  await rm(zipCache, { recursive: true, force: true });
});

function token(username: string, userId: number, projectScope: string | null = null): ApiToken {
  return { id: `t${userId}`, userId, username, projectScope, secretHash: '', createdAt: '' };
}
const alice = token('alice', 1);
const bob = token('bob', 2);

/** A database with one project, 'demo-docs', owned by alice; counts 'docs upload' changes. */
class FakeDatabase implements DocsDatabase {
  readonly recorded: { name: string; actor: string | null }[] = [];
  failNextRecord = false;
  private serial = 100;
  private readonly projects = new Map<string, Project>([
    [
      'demo-docs',
      { id: 1, name: 'Demo_Docs', normalizedName: 'demo-docs', status: 'active', statusReason: null, createdAt: '', lastSerial: 1 },
    ],
  ]);

  async getProject(name: string): Promise<Project | undefined> {
    return this.projects.get(name);
  }
  async getRole(userId: number, name: string): Promise<Role | null> {
    return userId === 1 && this.projects.has(name) ? 'Owner' : null;
  }
  async recordDocsUpload(name: string, actor: string | null): Promise<number> {
    if (this.failNextRecord) {
      this.failNextRecord = false;
      throw new Error('database went away');
    }
    this.recorded.push({ name, actor });
    return ++this.serial;
  }
}

for (const backend of ['folder', 's3'] as const) describe(`DocsService (${backend} blob store)`, () => {
  let work: string;
  let spool: string;
  let store: BlobStore;
  let db: FakeDatabase;
  let zipCount = 0;
  let s3: RunningS3rver | undefined;
  let runs = 0;

  const service = (limits: Partial<DocsLimits> = {}, extra: Partial<DocsServiceOptions> = {}): DocsService =>
    new DocsService(db, store, log, { spoolDir: spool, limits, ...extra });
  /** A fresh copy (uploads consume it) of a zip built once per content, shared by both back-ends. */
  const zip = async (entries: readonly ZipEntrySpec[]): Promise<string> => {
    const key = JSON.stringify(entries);
    let built = builtZips.get(key);
    if (!built) {
      const out = join(zipCache, `z${builtZips.size}.zip`);
      built = mkdir(zipCache, { recursive: true }).then(() => buildZip(out, entries));
      builtZips.set(key, built);
    }
    const copy = join(work, `z${++zipCount}.zip`);
    await copyFile(await built, copy);
    return copy;
  };
  const keys = async (): Promise<string[]> => {
    const out: string[] = [];
    for await (const e of store.list('')) out.push(e.key);
    return out;
  };
  const text = async (svc: DocsService, path: string): Promise<string | null> => {
    const file = await svc.reader.open('demo-docs', path);
    if (!file?.body) return null;
    const chunks: Buffer[] = [];
    for await (const c of file.body as AsyncIterable<Buffer>) chunks.push(c);
    return Buffer.concat(chunks).toString('utf8');
  };
  const gen1 = (): ZipEntrySpec[] => [
    { name: 'index.html', text: '<h1>one</h1>' },
    { name: 'only-in-one.html', text: 'one' },
    { name: '_static/', externalAttr: (0o40755 * 0x10000) | 0x10 },
    { name: '_static/site.css', text: 'body{}' },
  ];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-docs-service-'));
    if (backend === 's3') {
      s3 = await startS3rver('docs');
      // The SDK's default chain reads credentials and region from here.
      Object.assign(process.env, s3.env);
    }
  });
  after(async () => {
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });
  beforeEach(async () => {
    const dir = await mkdtemp(join(work, 'case-'));
    spool = join(dir, 'spool');
    await mkdir(spool);
    // Each test gets its own store: a fresh folder, or a fresh prefix in the one bucket.
    store = s3
      ? new S3BlobStore({ bucket: s3.bucket, prefix: `run${++runs}/`, endpoint: s3.endpoint })
      : new FolderBlobStore(join(dir, 'blobs'));
    db = new FakeDatabase();
  });

  test('publishes a zip under a new generation, switches the pointer and records the change', async () => {
    const svc = service();
    const outcome = await svc.upload(await zip(gen1()), 'Demo.Docs', alice);
    assert.equal(outcome.serial, 101);
    assert.equal(outcome.files, 3);
    assert.deepEqual(db.recorded, [{ name: 'demo-docs', actor: 'alice' }]);
    const g = outcome.generation;
    assert.deepEqual(await keys(), [
      `docs/demo-docs/${g}/_static/site.css`,
      `docs/demo-docs/${g}/index.html`,
      `docs/demo-docs/${g}/only-in-one.html`,
      'docs/demo-docs/current',
    ]);
    assert.equal((await svc.reader.current('demo-docs'))?.generation, g);
    assert.equal(await text(svc, 'index.html'), '<h1>one</h1>');
    assert.equal(await text(svc, '_static/site.css'), 'body{}');
    // A fresh reader (another process) finds the same generation through the pointer blob.
    assert.equal(await text(service(), 'index.html'), '<h1>one</h1>');
  });

  test('a new upload replaces the old one whole and removes the old generation', async () => {
    const svc = service();
    const first = await svc.upload(await zip(gen1()), 'demo-docs', alice);
    const second = await svc.upload(await zip([{ name: 'index.html', text: '<h1>two</h1>' }, { name: 'new.html', text: 'two' }]), 'demo-docs', alice);
    assert.notEqual(first.generation, second.generation);
    assert.equal(await text(svc, 'index.html'), '<h1>two</h1>');
    assert.equal(await text(svc, 'new.html'), 'two');
    assert.equal(await text(svc, 'only-in-one.html'), null);
    assert.deepEqual(await keys(), [`docs/demo-docs/${second.generation}/index.html`, `docs/demo-docs/${second.generation}/new.html`, 'docs/demo-docs/current']);
    assert.equal(db.recorded.length, 2);
  });

  test('a reader whose cached pointer names a removed generation re-reads the pointer', async () => {
    const writer = service();
    const otherProcess = service({}, { pointerTtlMs: 60_000 });
    await writer.upload(await zip(gen1()), 'demo-docs', alice);
    assert.equal(await text(otherProcess, 'index.html'), '<h1>one</h1>');
    await writer.upload(await zip([{ name: 'index.html', text: '<h1>two</h1>' }]), 'demo-docs', alice);
    // The other process still caches the first generation, which is gone from the store.
    assert.equal(await text(otherProcess, 'index.html'), '<h1>two</h1>');
    assert.equal(await text(otherProcess, 'only-in-one.html'), null);
  });

  test('a large entry is spooled to disk and stored intact; the spool is left empty', async () => {
    const svc = service();
    const path = await zip([{ name: 'index.html', text: 'x' }, { name: 'big.bin', random: 3 * 1024 * 1024 }]);
    await svc.upload(path, 'demo-docs', alice);
    const file = await svc.reader.open('demo-docs', 'big.bin');
    assert.equal(file?.contentLength, 3 * 1024 * 1024);
    file?.body?.destroy();
    assert.deepEqual(await readdir(spool), []);
  });

  test('the uploaded zip is consumed, accepted or refused', async () => {
    const good = await zip(gen1());
    await service().upload(good, 'demo-docs', alice);
    const bad = await zip([{ name: '../evil.html', text: 'x' }]);
    await assert.rejects(service().upload(bad, 'demo-docs', alice));
    assert.equal(existsSync(good), false);
    assert.equal(existsSync(bad), false);
  });

  describe('refusals leave the published docs, the store and the changelog as they were', () => {
    interface Refusal {
      readonly title: string;
      readonly zip: () => Promise<string>;
      readonly limits?: Partial<DocsLimits>;
      readonly code: PyedgeError['code'];
      readonly message: RegExp;
    }
    const many = (n: number): ZipEntrySpec[] => Array.from({ length: n }, (_, i) => ({ name: `p/${i}.html`, text: `${i}` }));
    const refusals: Refusal[] = [
      { title: 'not a zip', zip: async () => { const p = join(work, `nz${++zipCount}.zip`); await writeFile(p, 'this is not a zip file '.repeat(20)); return p; }, code: 'PYEDGE_INVALID_DISTRIBUTION', message: /not a valid zip archive/ },
      { title: 'an empty file', zip: async () => { const p = join(work, `e${++zipCount}.zip`); await writeFile(p, ''); return p; }, code: 'PYEDGE_INVALID_DISTRIBUTION', message: /not a valid zip archive/ },
      { title: 'a zip without files', zip: () => zip([{ name: 'empty/', externalAttr: 0x10 }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /contains no files/ },
      { title: 'traversal ../evil.html', zip: () => zip([{ name: 'index.html', text: 'ok' }, { name: '../evil.html', text: 'x' }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /entry "\.\.\/evil\.html" climbs out of the documentation root/ },
      { title: 'traversal in the middle', zip: () => zip([{ name: 'a/../../evil.html', text: 'x' }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /"a\/\.\.\/\.\.\/evil\.html" climbs out/ },
      { title: 'absolute /etc/x', zip: () => zip([{ name: '/etc/x', text: 'x' }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /entry "\/etc\/x" is an absolute path/ },
      { title: 'drive letter C:/x', zip: () => zip([{ name: 'C:/x.html', text: 'x' }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /"C:\/x\.html" is an absolute path/ },
      { title: 'backslash C:\\x', zip: () => zip([{ name: 'C:\\x.html', text: 'x' }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /contains a backslash/ },
      { title: 'backslash traversal', zip: () => zip([{ name: '..\\evil.html', text: 'x' }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /contains a backslash/ },
      { title: 'control character', zip: () => zip([{ name: 'a\u0001.html', text: 'x' }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /NUL or control character/ },
      { title: 'empty segment', zip: () => zip([{ name: 'a//b.html', text: 'x' }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /empty or '\.' path segment/ },
      { title: 'symbolic link', zip: () => zip([{ name: 'index.html', text: 'ok' }, { name: 'passwd.html', text: '/etc/passwd', externalAttr: SYMLINK_ATTR }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /"passwd\.html" is a symbolic link/ },
      { title: 'duplicate names', zip: () => zip([{ name: 'index.html', text: 'a' }, { name: 'index.html', text: 'b' }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /"index\.html" appears twice/ },
      { title: 'a file that is also a folder', zip: () => zip([{ name: 'a', text: 'a' }, { name: 'a/b.html', text: 'b' }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /"a\/b\.html" lies inside "a", which is also a file/ },
      { title: 'too many entries (default 10,000)', zip: () => zip(many(10_001)), code: 'PYEDGE_TOO_LARGE', message: /10001 entries; the limit is 10000/ },
      { title: 'too many entries (configured)', zip: () => zip(many(6)), limits: { maxEntries: 5 }, code: 'PYEDGE_TOO_LARGE', message: /6 entries; the limit is 5/ },
      { title: 'zip bomb: 50 MB of zeros', zip: () => zip([{ name: 'index.html', text: 'ok' }, { name: 'bomb.html', zeros: 50 * 1024 * 1024 }]), code: 'PYEDGE_TOO_LARGE', message: /"bomb\.html" inflates to more than 200 times its compressed size.*zip bomb/ },
      { title: 'total compression ratio', zip: () => zip([{ name: 'bomb.html', zeros: 4 * 1024 * 1024 }]), limits: { maxEntryRatio: 1e9 }, code: 'PYEDGE_TOO_LARGE', message: /more than 100 times the zip's size/ },
      { title: 'expanded size', zip: () => zip([{ name: 'a.bin', random: 60_000 }, { name: 'b.bin', random: 60_000 }]), limits: { maxTotalBytes: 100 * 1024 }, code: 'PYEDGE_TOO_LARGE', message: /inflate to more than 100 KB \(the limit\), passed at the entry "b\.bin"/ },
      { title: 'headers that understate the size', zip: () => zip([{ name: 'a.html', text: 'a' }, { name: 'b.html', text: 'b' }, { name: 'liar.html', zeros: 2 * 1024 * 1024, declareSize: 10 }]), code: 'PYEDGE_INVALID_DISTRIBUTION', message: /"liar\.html" (could not be inflated|holds more data)/ },
    ];

    for (const r of refusals) {
      test(`refuses ${r.title}`, async () => {
        const svc = service(r.limits);
        await svc.upload(await zip(gen1()), 'demo-docs', alice);
        const before = await keys();
        const pointer = await svc.reader.current('demo-docs');
        await assert.rejects(svc.upload(await r.zip(), 'demo-docs', alice), (err: unknown) => {
          assert.ok(err instanceof PyedgeError, String(err));
          assert.equal(err.code, r.code, err.message);
          assert.match(err.message, r.message);
          return true;
        });
        assert.deepEqual(await keys(), before, 'the blob store is unchanged');
        assert.equal(db.recorded.length, 1, 'no changelog entry');
        assert.deepEqual(await svc.reader.current('demo-docs', { fresh: true }), pointer);
        assert.equal(await text(svc, 'index.html'), '<h1>one</h1>');
        assert.deepEqual(await readdir(spool), [], 'no spool files left');
      });
    }
  });

  test('an extraction that fails after storing files removes them', async () => {
    const svc = service();
    // The liar comes last, after 40 good files were stored.
    const entries: ZipEntrySpec[] = [...Array.from({ length: 40 }, (_, i) => ({ name: `f${i}.html`, text: 'x'.repeat(100) })), { name: 'z-liar.html', zeros: 3 * 1024 * 1024, declareSize: 100 }];
    await assert.rejects(svc.upload(await zip(entries), 'demo-docs', alice), /z-liar\.html/);
    assert.deepEqual(await keys(), []);
    assert.equal(await svc.reader.current('demo-docs'), null);
  });

  test('when the change cannot be recorded the previous docs are put back', async () => {
    const svc = service();
    await svc.upload(await zip(gen1()), 'demo-docs', alice);
    const before = await keys();
    db.failNextRecord = true;
    await assert.rejects(svc.upload(await zip([{ name: 'index.html', text: 'two' }]), 'demo-docs', alice), /database went away/);
    assert.deepEqual(await keys(), before);
    assert.equal(await text(svc, 'index.html'), '<h1>one</h1>');
    assert.equal(await text(service(), 'index.html'), '<h1>one</h1>');
  });

  test('permission and project checks come before any work', async () => {
    const svc = service();
    const cases: [string, ApiToken, PyedgeError['code'], RegExp][] = [
      ['demo-docs', bob, 'PYEDGE_FORBIDDEN', /user 'bob' isn't allowed to upload documentation for project 'Demo_Docs'/],
      ['demo-docs', token('alice', 1, 'other'), 'PYEDGE_FORBIDDEN', /scoped to project 'other'/],
      ['no-such-project', alice, 'PYEDGE_NOT_FOUND', /no project named 'no-such-project'.*upload a distribution/],
      ['-bad-', alice, 'PYEDGE_BAD_REQUEST', /Invalid value for name/],
    ];
    for (const [name, tok, code, message] of cases) {
      const path = await zip(gen1());
      await assert.rejects(svc.upload(path, name, tok), (err: unknown) => {
        assert.ok(err instanceof PyedgeError);
        assert.equal(err.code, code);
        assert.match(err.message, message);
        return true;
      });
    }
    assert.deepEqual(await keys(), []);
    assert.equal(db.recorded.length, 0);
  });

  test('uploads of one project are serialized: the last one wins and nothing is left over', async () => {
    const svc = service();
    const zips = await Promise.all([1, 2, 3].map((i) => zip([{ name: 'index.html', text: `v${i}` }])));
    const outcomes = await Promise.all(zips.map((p) => svc.upload(p, 'demo-docs', alice)));
    const last = outcomes.reduce((a, b) => (a.serial > b.serial ? a : b));
    assert.equal(await text(svc, 'index.html'), `v${outcomes.indexOf(last) + 1}`);
    assert.deepEqual(await keys(), [`docs/demo-docs/${last.generation}/index.html`, 'docs/demo-docs/current']);
  });
});
