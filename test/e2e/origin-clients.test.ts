/**
 * The origin with real clients: twine uploads real wheels and packages built
 * offline; pip installs and builds them from the Simple API. Once on SQLite and
 * a folder, once on PostgreSQL and S3 (s3rver).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pyedge, run, startPyedge, type Service } from './helpers/processes.js';
import { buildSampleProject, debianWheels, makeVenv, twineUpload, type SampleProject } from './helpers/python.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { createTestPostgres } from '../helpers/postgres.js';
import { startS3rver } from '../helpers/s3rver.js';

interface Backend {
  readonly label: string;
  setup(): Promise<{ args: string[]; env: NodeJS.ProcessEnv; cleanup(): Promise<void> }>;
}

const BACKENDS: Backend[] = [
  {
    label: 'SQLite + folder',
    async setup() {
      return { args: [], env: {}, cleanup: async () => {} };
    },
  },
  {
    label: 'PostgreSQL + S3',
    async setup() {
      const pg = await createTestPostgres();
      const s3 = await startS3rver('pyedge-e2e');
      return {
        args: ['--db', pg.url, '--blobs', `s3://${s3.bucket}/index`],
        env: s3.env,
        cleanup: async () => {
          await s3.stop();
          await pg.drop();
        },
      };
    },
  },
];

for (const backend of BACKENDS) {
  describe(`origin with twine and pip (${backend.label})`, () => {
    let work: string;
    let origin: Service;
    let token: string;
    let cleanup: () => Promise<void>;
    let sample: SampleProject;
    let dependency: SampleProject;
    let env: NodeJS.ProcessEnv;
    let args: string[];

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'pyedge-e2e-'));
      const b = await backend.setup();
      cleanup = b.cleanup;
      env = b.env;
      args = b.args;
      const data = join(work, 'data');
      origin = await startPyedge(['serve', '--data', data, '--port', '0', ...args], { env });
      const t = await pyedge(['token', 'create', '--data', data, '--user', 'alice', ...args.slice(0, 2)], env);
      assert.equal(t.code, 0, t.stderr);
      token = t.stdout.trim();
      assert.match(token, /^pyedge-/);
      dependency = await buildSampleProject(work, { name: 'pyedge-dep', version: '2.0', module: 'pyedge_dep', value: 'dep' });
      sample = await buildSampleProject(work, {
        name: 'pyedge-sample',
        version: '1.0.1',
        module: 'pyedge_sample',
        value: 'sample-1.0.1',
        requiresPython: '>=3.8',
        dependencies: ['pyedge-dep>=2'],
      });
    });

    after(async () => {
      if (origin) assert.equal(await origin.stop(), 0, 'origin exits 0 on SIGTERM');
      await cleanup?.();
      await rm(work, { recursive: true, force: true });
    });

    test('twine uploads the real wheels and the sample project', async () => {
      const files = [...(await debianWheels()), dependency.sdist, dependency.wheel, sample.sdist, sample.wheel];
      const r = await twineUpload(`${origin.url}/legacy/`, token, files);
      assert.equal(r.code, 0, `twine failed:\n${r.stdout}\n${r.stderr}`);
      const index = await fetch(`${origin.url}/simple/`).then((res) => res.text());
      for (const name of ['pip', 'setuptools', 'wheel', 'pyedge-dep', 'pyedge-sample']) {
        assert.match(index, new RegExp(`href="${name}/"`), `root index lists ${name}`);
      }
      const page = await fetch(`${origin.url}/simple/pyedge-sample/`).then((res) => res.text());
      assert.match(page, /data-requires-python="&gt;=3\.8"/);
      assert.match(page, new RegExp(`>${basename(sample.wheel).replace(/\./g, '\\.')}</a>`));
    });

    test('pip installs the sample project and its dependency into a fresh venv', async () => {
      const venv = await makeVenv(work);
      const r = await venv.pip(['install', '--index-url', `${origin.url}/simple/`, 'pyedge-sample']);
      assert.equal(r.code, 0, `pip install failed:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /Successfully installed .*pyedge-dep-2\.0.*pyedge-sample-1\.0\.1|Successfully installed .*pyedge-sample-1\.0\.1.*pyedge-dep-2\.0/);
      const imp = await run(venv.python, ['-c', 'import pyedge_sample, pyedge_dep; print(pyedge_sample.VALUE, pyedge_dep.VALUE)']);
      assert.equal(imp.stdout.trim(), 'sample-1.0.1 dep');
    });

    test('pip download --no-binary builds the sdist with setuptools and wheel from the index', async () => {
      const venv = await makeVenv(work);
      const dest = join(work, `download-${backend.label.replace(/\W+/g, '-')}`);
      const r = await venv.pip(['download', '--no-binary', 'pyedge-sample', '--no-deps', '-d', dest, '--index-url', `${origin.url}/simple/`, 'pyedge-sample']);
      assert.equal(r.code, 0, `pip download failed:\n${r.stdout}\n${r.stderr}`);
      assert.deepEqual(await readdir(dest), [basename(sample.sdist)]);
      // Building the sdist's metadata needs setuptools and wheel, which came from this index.
      assert.match(r.stdout + r.stderr, /Installing build dependencies/);
    });

    test('Metadata-Version 2.4 and 2.5 wheels uploaded like a current twine install with pip', async () => {
      const wheel = await buildWheel(work, {
        name: 'modern-meta',
        version: '0.3',
        module: 'modern_meta',
        value: 'modern',
        headers: ['License-Expression: MIT OR Apache-2.0', 'License-File: LICENSE', 'Requires-Python: >=3.9', 'Requires-Dist: pyedge-dep'],
      });
      const answer = await formUpload(origin.url, wheel, {
        token,
        fields: { license_expression: 'MIT OR Apache-2.0', license_file: 'LICENSE', requires_python: '>=3.9', requires_dist: 'pyedge-dep' },
      });
      assert.equal(answer.status, 200, answer.body);
      const venv = await makeVenv(work);
      const r = await venv.pip(['install', '--index-url', `${origin.url}/simple/`, 'modern-meta']);
      assert.equal(r.code, 0, `pip install failed:\n${r.stdout}\n${r.stderr}`);
      const imp = await run(venv.python, ['-c', 'import modern_meta; print(modern_meta.VALUE)']);
      assert.equal(imp.stdout.trim(), 'modern');
      // PEP 658: pip can read the metadata without the wheel.
      const json = (await fetch(`${origin.url}/simple/modern-meta/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } }).then((res) =>
        res.json(),
      )) as { files: { url: string; 'core-metadata': { sha256: string } | false }[] };
      const file = json.files[0]!;
      assert.ok(file['core-metadata']);
      const md = await fetch(new URL(`${file.url}.metadata`, `${origin.url}/simple/modern-meta/`)).then((res) => res.text());
      assert.match(md, /^Metadata-Version: 2\.4$/m);
      assert.match(md, /^License-Expression: MIT OR Apache-2\.0$/m);

      // Metadata-Version 2.5 (Import-Name) is taken too, and pip installs it.
      const v25 = await buildWheel(work, {
        name: 'modern-meta',
        version: '0.4',
        module: 'modern_meta',
        value: 'modern-2.5',
        metadataVersion: '2.5',
        headers: ['License-Expression: MIT', 'Import-Name: modern_meta'],
      });
      const answer25 = await formUpload(origin.url, v25, { token, fields: { metadata_version: '2.5' } });
      assert.equal(answer25.status, 200, answer25.body);
      const venv25 = await makeVenv(work);
      const r25 = await venv25.pip(['install', '--index-url', `${origin.url}/simple/`, 'modern-meta==0.4']);
      assert.equal(r25.code, 0, `pip install failed:\n${r25.stdout}\n${r25.stderr}`);
      const imp25 = await run(venv25.python, ['-c', 'import modern_meta; print(modern_meta.VALUE)']);
      assert.equal(imp25.stdout.trim(), 'modern-2.5');
    });
  });
}
