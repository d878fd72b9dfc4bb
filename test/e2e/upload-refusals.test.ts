/**
 * Bad uploads: each gets the right status and a message a user can act on, and
 * leaves the database, the blob store and the spool folder exactly as they were.
 * Runs against `./bin/pyedge serve` on SQLite + folder and on PostgreSQL + S3.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { twineUpload } from './helpers/python.js';
import { buildSdist, buildWheel, formUpload, type FormUploadOptions, type UploadAnswer } from './helpers/distributions.js';
import { createTestPostgres } from '../helpers/postgres.js';
import { startS3rver } from '../helpers/s3rver.js';
import { createDatabase } from '../../src/db/create-database.js';
import { createBlobStore } from '../../src/blobstore/create-blob-store.js';
import type { Database, DatabaseStats } from '../../src/db/database.js';
import type { BlobStore } from '../../src/blobstore/blob-store.js';

interface Snapshot {
  readonly stats: DatabaseStats;
  readonly blobs: string[];
  readonly spool: string[];
}

interface Case {
  readonly title: string;
  /** Path of the file to send (built in `before`). */
  readonly file: () => string;
  readonly options: () => FormUploadOptions;
  readonly status: number;
  readonly message: RegExp;
}

const MAX_UPLOAD = 256 * 1024;

for (const backendLabel of ['SQLite + folder', 'PostgreSQL + S3'] as const) {
  describe(`refused uploads change nothing (${backendLabel})`, () => {
    let work: string;
    let origin: Service;
    let db: Database;
    let blobs: BlobStore;
    let cleanup: () => Promise<void> = async () => {};
    const tokens: Record<string, string> = {};
    const files: Record<string, string> = {};
    let twineArgsEnv: NodeJS.ProcessEnv = {};

    const snapshot = async (): Promise<Snapshot> => {
      const keys: string[] = [];
      for await (const e of blobs.list('')) keys.push(e.key);
      return { stats: await db.stats(), blobs: keys, spool: await readdir(join(work, 'data', 'tmp')) };
    };

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'pyedge-refusals-'));
      const data = join(work, 'data');
      let args: string[] = [];
      let dbUrl = `sqlite:${join(data, 'index.db')}`;
      let blobUrl = join(data, 'blobs');
      if (backendLabel === 'PostgreSQL + S3') {
        const pg = await createTestPostgres();
        const s3 = await startS3rver('refusals');
        dbUrl = pg.url;
        blobUrl = `s3://${s3.bucket}/idx`;
        args = ['--db', dbUrl, '--blobs', blobUrl];
        twineArgsEnv = s3.env;
        cleanup = async () => {
          await s3.stop();
          await pg.drop();
        };
        blobs = createBlobStore(blobUrl, {
          endpoint: s3.endpoint,
          region: 'us-east-1',
          credentials: { accessKeyId: s3.env.AWS_ACCESS_KEY_ID!, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY! },
        });
      } else {
        blobs = createBlobStore(blobUrl);
      }
      origin = await startPyedge(['serve', '--data', data, '--port', '0', '--max-upload-size', String(MAX_UPLOAD), ...args], {
        env: twineArgsEnv,
      });
      const dbArgs = args.slice(0, 2);
      for (const [key, user, project] of [
        ['alice', 'alice', null],
        ['aliceOther', 'alice', 'other-project'],
        ['bob', 'bob', null],
      ] as const) {
        const r = await pyedge(['token', 'create', '--data', data, '--user', user, ...(project ? ['--project', project] : []), ...dbArgs]);
        assert.equal(r.code, 0, r.stderr);
        tokens[key] = r.stdout.trim();
      }
      db = createDatabase(dbUrl);

      // What already exists: alice owns foo-bar 1.0 (wheel and sdist).
      files.wheel = await buildWheel(work, { name: 'foo-bar', version: '1.0', module: 'foo_bar', value: 'x' });
      files.sdist = await buildSdist(work, 'foo_bar-1.0.tar.gz', {
        'foo_bar-1.0/PKG-INFO': 'Metadata-Version: 2.1\nName: foo-bar\nVersion: 1.0\n',
        'foo_bar-1.0/setup.py': 'print(1)\n',
      });
      for (const f of [files.wheel, files.sdist]) {
        const a = await formUpload(origin.url, f, { token: tokens.alice! });
        assert.equal(a.status, 200, a.body);
      }

      // Files for the refusals.
      const other = join(work, 'other');
      await mkdir(other, { recursive: true });
      files.wheel11 = await buildWheel(other, { name: 'foo-bar', version: '1.1', module: 'foo_bar', value: 'y' });
      // Debian's twine 4 reads metadata up to 2.2 only.
      const forTwine = join(work, 'twine');
      await mkdir(forTwine);
      files.twineDuplicate = await buildWheel(forTwine, { name: 'foo-bar', version: '1.0', metadataVersion: '2.1' });
      files.twineNew = await buildWheel(forTwine, { name: 'foo-bar', version: '1.2', metadataVersion: '2.1' });
      files.newProject = await buildWheel(other, { name: 'brand-new', version: '1.0' });
      files.conflicting = await buildWheel(other, { name: 'Foo_Bar', version: '9.0' });
      files.noMetadata = await buildWheel(other, { name: 'no-meta', version: '1.0', omitMetadata: true });
      files.otherMetaName = await buildWheel(other, {
        name: 'meta-name',
        version: '1.0',
        metadataText: 'Metadata-Version: 2.1\nName: something-else\nVersion: 1.0\n',
      });
      files.otherMetaVersion = await buildWheel(other, {
        name: 'meta-version',
        version: '1.0',
        metadataText: 'Metadata-Version: 2.1\nName: meta-version\nVersion: 2.0\n',
      });
      files.badMetaVersion = await buildWheel(other, {
        name: 'bad-meta',
        version: '1.0',
        metadataText: 'Metadata-Version: 9.9\nName: bad-meta\nVersion: 1.0\n',
      });
      files.sdistNoPkgInfo = await buildSdist(other, 'no_pkg_info-1.0.tar.gz', { 'no_pkg_info-1.0/setup.py': 'print(1)\n' });
      files.secondSdistReal = await buildSdist(other, 'foo-bar-1.0.tar.gz', {
        'foo-bar-1.0/PKG-INFO': 'Metadata-Version: 2.1\nName: foo-bar\nVersion: 1.0\n',
      });
      const big = await readFile(files.wheel11);
      files.big = join(other, 'big_pkg-1.0-py3-none-any.whl');
      await writeFile(files.big, Buffer.concat([big, Buffer.alloc(MAX_UPLOAD + 1024, 7)]));
    });

    after(async () => {
      await origin?.stop();
      await db?.close();
      await blobs?.close();
      await cleanup();
      await rm(work, { recursive: true, force: true });
    });

    const alice = (extra: Partial<FormUploadOptions> = {}): FormUploadOptions => ({ token: tokens.alice!, ...extra });
    const cases: Case[] = [
      { title: 'wrong sha256 digest', file: () => files.wheel11!, options: () => alice({ fields: { sha256_digest: 'ab'.repeat(32) } }), status: 400, message: /digest supplied \(sha256_digest\) does not match/ },
      { title: 'wrong md5 digest', file: () => files.wheel11!, options: () => alice({ fields: { md5_digest: '0'.repeat(32) } }), status: 400, message: /digest supplied \(md5_digest\) does not match/ },
      { title: 'wrong blake2 digest', file: () => files.wheel11!, options: () => alice({ fields: { blake2_256_digest: 'f'.repeat(64) } }), status: 400, message: /blake2_256_digest\) does not match/ },
      { title: 'no digest at all', file: () => files.wheel11!, options: () => alice({ fields: { md5_digest: null, sha256_digest: null, blake2_256_digest: null } }), status: 400, message: /Include at least one message digest/ },
      { title: 'name in form differs from filename', file: () => files.wheel11!, options: () => alice({ fields: { name: 'other-name' } }), status: 400, message: /Start filename for project 'other-name'/ },
      { title: 'version in form differs from filename', file: () => files.wheel11!, options: () => alice({ fields: { version: '1.2' } }), status: 400, message: /Version in filename should be '1\.2' not '1\.1'/ },
      { title: 'invalid version', file: () => files.wheel11!, options: () => alice({ fields: { version: '1.1-not!valid' } }), status: 400, message: /not a valid PEP 440 version/ },
      { title: 'invalid project name', file: () => files.wheel11!, options: () => alice({ fields: { name: '-foo-bar-' } }), status: 400, message: /Invalid value for name/ },
      { title: 'truncated wheel', file: () => files.wheel11!, options: () => alice({ content: new Uint8Array(0) }), status: 400, message: /is empty/ },
      { title: 'wheel cut in half', file: () => files.wheel11!, options: () => ({ ...alice(), content: halfOf(files.wheel11!) }), status: 400, message: /not a valid zip archive|Invalid distribution/ },
      { title: 'wheel that is not a zip', file: () => files.wheel11!, options: () => alice({ content: Buffer.from('this is not a zip file at all'.repeat(10)) }), status: 400, message: /not a valid zip archive|Invalid distribution/ },
      { title: 'wheel without METADATA', file: () => files.noMetadata!, options: () => alice(), status: 400, message: /METADATA/ },
      { title: 'sdist without PKG-INFO', file: () => files.sdistNoPkgInfo!, options: () => alice(), status: 400, message: /PKG-INFO/ },
      { title: 'metadata names another project', file: () => files.otherMetaName!, options: () => alice(), status: 400, message: /Name in the file's metadata \('something-else'\) does not match/ },
      { title: 'metadata gives another version', file: () => files.otherMetaVersion!, options: () => alice(), status: 400, message: /Version in the file's metadata \('2\.0'\) does not match/ },
      { title: 'unknown Metadata-Version', file: () => files.badMetaVersion!, options: () => alice(), status: 400, message: /Metadata-Version/ },
      { title: 'missing name field', file: () => files.wheel11!, options: () => alice({ fields: { name: null } }), status: 400, message: /Invalid value for name. Error: This field is required/ },
      { title: 'missing version field', file: () => files.wheel11!, options: () => alice({ fields: { version: null } }), status: 400, message: /Invalid value for version. Error: This field is required/ },
      { title: 'missing filetype', file: () => files.wheel11!, options: () => alice({ fields: { filetype: null } }), status: 400, message: /Invalid value for filetype/ },
      { title: 'unknown filetype', file: () => files.wheel11!, options: () => alice({ fields: { filetype: 'bdist_egg' } }), status: 400, message: /Use a known file type/ },
      { title: 'filetype does not match the file', file: () => files.wheel11!, options: () => alice({ fields: { filetype: 'sdist' } }), status: 400, message: /is a wheel/ },
      { title: 'unknown action', file: () => files.wheel11!, options: () => alice({ fields: { ':action': 'submit' } }), status: 400, message: /Unsupported action: 'submit'/ },
      { title: 'unknown protocol version', file: () => files.wheel11!, options: () => alice({ fields: { protocol_version: '2' } }), status: 400, message: /Unknown protocol version/ },
      { title: 'no Authorization header', file: () => files.wheel11!, options: () => ({ token: null }), status: 403, message: /Invalid or non-existent authentication/ },
      { title: 'wrong password', file: () => files.wheel11!, options: () => ({ token: 'pyedge-AAAAAAAAAAAAAAAA-' + 'A'.repeat(43) }), status: 403, message: /Invalid or non-existent authentication/ },
      { title: 'username and password instead of a token', file: () => files.wheel11!, options: () => ({ token: 'secret', username: 'alice' }), status: 403, message: /Username\/password authentication is not supported/ },
      { title: 'token of another project', file: () => files.wheel11!, options: () => ({ token: tokens.aliceOther! }), status: 403, message: /scoped to project 'other-project'/ },
      { title: 'scoped token creating a new project', file: () => files.newProject!, options: () => ({ token: tokens.aliceOther! }), status: 403, message: /scoped to project 'other-project'/ },
      { title: 'another user uploads to foo-bar', file: () => files.wheel11!, options: () => ({ token: tokens.bob! }), status: 403, message: /The user 'bob' isn't allowed to upload to project 'foo-bar'/ },
      { title: 'a name that normalizes onto foo-bar, by another owner', file: () => files.conflicting!, options: () => ({ token: tokens.bob! }), status: 403, message: /isn't allowed to upload to project 'foo-bar'/ },
      { title: 'duplicate filename', file: () => files.wheel!, options: () => alice(), status: 400, message: /File already exists \('foo_bar-1\.0-py3-none-any\.whl'\)/ },
      { title: 'second sdist of a release', file: () => files.secondSdistReal!, options: () => alice({ fields: { name: 'foo-bar', version: '1.0' } }), status: 400, message: /Only one sdist may be uploaded per release/ },
      { title: 'file larger than the limit', file: () => files.big!, options: () => alice(), status: 413, message: /File too large. Limit for uploads is 256 KB/ },
      { title: '../ in the filename', file: () => files.wheel11!, options: () => alice({ filename: '../foo_bar-1.1-py3-none-any.whl', fields: { name: 'foo-bar', version: '1.1' } }), status: 400, message: /Invalid filename/ },
      { title: 'NUL in the filename', file: () => files.wheel11!, options: () => alice({ filename: 'foo_bar-1.1-py3-none-any\u0000.whl', fields: { name: 'foo-bar', version: '1.1' } }), status: 400, message: /Invalid filename/ },
      { title: 'unknown file extension', file: () => files.wheel11!, options: () => alice({ filename: 'foo_bar-1.1.exe', fields: { filetype: 'sdist' } }), status: 400, message: /Invalid file extension/ },
      { title: 'no file part', file: () => files.wheel11!, options: () => alice({ filename: '' }), status: 400, message: /does not have a file|Invalid filename/ },
    ];

    test(`at least 25 refusals are covered`, () => {
      assert.ok(cases.length >= 25, `${cases.length} cases`);
    });

    for (const c of cases) {
      test(`refuses: ${c.title}`, async () => {
        const before = await snapshot();
        const answer: UploadAnswer = await formUpload(origin.url, c.file(), c.options());
        assert.equal(answer.status, c.status, `status for "${c.title}": ${answer.status} ${answer.body}`);
        assert.match(answer.body, c.message);
        assert.match(answer.statusText, c.message, 'the reason phrase carries the message (twine shows it)');
        assert.deepEqual(await snapshot(), before, 'database, blobs and spool folder unchanged');
      });
    }

    test('twine shows the reason of a refusal', async () => {
      const before = await snapshot();
      const dup = await twineUpload(`${origin.url}/legacy/`, tokens.alice!, [files.twineDuplicate!]);
      assert.notEqual(dup.code, 0);
      assert.match(dup.stdout + dup.stderr, /400 Bad Request/);
      assert.match(dup.stdout + dup.stderr, /File already exists/);
      const denied = await twineUpload(`${origin.url}/legacy/`, tokens.bob!, [files.twineNew!]);
      assert.notEqual(denied.code, 0);
      assert.match(denied.stdout + denied.stderr, /403 Forbidden/);
      assert.match(denied.stdout + denied.stderr, /isn't allowed to upload to project 'foo-bar'/);
      assert.deepEqual(await snapshot(), before);
    });

    test('a client that disconnects mid-upload leaves nothing behind', async () => {
      const before = await snapshot();
      const { request } = await import('node:http');
      const url = new URL(`${origin.url}/legacy/`);
      await new Promise<void>((resolve) => {
        const req = request({
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            'content-type': 'multipart/form-data; boundary=XyZ',
            'content-length': '100000',
            authorization: 'Basic ' + Buffer.from(`__token__:${tokens.alice}`).toString('base64'),
          },
        });
        req.on('error', () => resolve());
        req.write(
          '--XyZ\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n' +
            '--XyZ\r\nContent-Disposition: form-data; name="content"; filename="foo_bar-1.1-py3-none-any.whl"\r\n\r\n' +
            'x'.repeat(5000),
        );
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 300);
      });
      // Give the server a moment to notice and clean up.
      for (let i = 0; i < 50; i++) {
        const now = await snapshot();
        if (now.spool.length === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(await snapshot(), before);
      const ok = await formUpload(origin.url, files.wheel11!, alice());
      assert.equal(ok.status, 200, 'the server still takes uploads');
    });
  });
}

function halfOf(path: string): Buffer {
  const b = readFileSync(path);
  return b.subarray(0, Math.floor(b.length / 2));
}
