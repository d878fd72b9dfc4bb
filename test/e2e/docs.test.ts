/**
 * Documentation hosting through `./bin/pyedge serve`: `:action=doc_upload` with a
 * zip of HTML, served under /docs/<name>/; a re-upload replaces the docs whole
 * (readers never see a mix); bad zips and other users are refused with nothing changed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload, type UploadAnswer } from './helpers/distributions.js';
import { buildZip, SYMLINK_ATTR, type ZipEntrySpec } from '../../src/origin/docs/test-zips.js';
import { createDatabase } from '../../src/db/create-database.js';
import { createBlobStore } from '../../src/blobstore/create-blob-store.js';
import type { Database } from '../../src/db/database.js';
import type { BlobStore } from '../../src/blobstore/blob-store.js';

/** GET a path exactly as written (fetch would resolve `..` before sending). */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('documentation hosting', () => {
  let work: string;
  let data: string;
  let origin: Service;
  let db: Database;
  let blobs: BlobStore;
  const tokens: Record<'alice' | 'bob' | 'aliceOther', string> = { alice: '', bob: '', aliceOther: '' };
  let zips = 0;

  const zip = (entries: readonly ZipEntrySpec[]): Promise<string> => buildZip(join(work, `docs-${++zips}.zip`), entries);
  const uploadDocs = (path: string, token: string, name = 'docs-demo'): Promise<UploadAnswer> =>
    formUpload(origin.url, path, { token, fields: { ':action': 'doc_upload', name } });
  const docKeys = async (): Promise<string[]> => {
    const keys: string[] = [];
    for await (const e of blobs.list('docs/')) keys.push(e.key);
    return keys;
  };
  const get = (path: string, init: RequestInit = {}): Promise<Response> => fetch(`${origin.url}${path}`, { redirect: 'manual', ...init });
  /**
   * A documentation set whose two pages both name `label`, stored first and last in
   * the zip so that an extraction that wrote over the live docs would show a mix for long.
   */
  const generation = (label: string, extra = 0): ZipEntrySpec[] => [
    { name: 'a.html', text: label },
    { name: 'index.html', text: `<h1>${label}</h1>` },
    ...Array.from({ length: extra }, (_, i) => ({ name: `pad/${i}.html`, text: `${label} ${i} `.repeat(50) })),
    { name: 'b.html', text: label },
  ];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-docs-'));
    data = join(work, 'data');
    origin = await startPyedge(['serve', '--data', data, '--port', '0']);
    for (const [key, user, project] of [
      ['alice', 'alice', null],
      ['bob', 'bob', null],
      ['aliceOther', 'alice', 'other-project'],
    ] as const) {
      const r = await pyedge(['token', 'create', '--data', data, '--user', user, ...(project ? ['--project', project] : [])]);
      assert.equal(r.code, 0, r.stderr);
      tokens[key] = r.stdout.trim();
    }
    db = createDatabase(`sqlite:${join(data, 'index.db')}`);
    blobs = createBlobStore(join(data, 'blobs'));
    const wheel = await buildWheel(work, { name: 'Docs_Demo', version: '1.0' });
    const a = await formUpload(origin.url, wheel, { token: tokens.alice });
    assert.equal(a.status, 200, a.body);
  });

  after(async () => {
    await origin?.stop();
    await db?.close();
    await blobs?.close();
    await rm(work, { recursive: true, force: true });
  });

  test('uploaded docs are served under /docs/<name>/ with content types, ETag and nosniff', async () => {
    const path = await zip([
      { name: 'index.html', text: '<h1>Docs demo</h1>' },
      { name: '_static/site.css', text: 'body { color: black }' },
      { name: '_static/app.js', text: 'console.log(1)' },
      { name: '_static/logo.svg', text: '<svg xmlns="http://www.w3.org/2000/svg"/>' },
      { name: '_static/logo.png', random: 64 },
      { name: 'searchindex.json', text: '{}' },
      { name: 'guide/index.html', text: '<h1>Guide</h1>' },
      { name: 'notes.txt', text: 'plain' },
    ]);
    const before = await db.lastSerial();
    const up = await uploadDocs(path, tokens.alice);
    assert.equal(up.status, 200, up.body);
    assert.ok((await db.lastSerial()) > before, 'a docs upload change was recorded');
    const changes = await db.changesSince(before, 10);
    assert.ok(changes.some((c) => c.action === 'docs upload' && c.normalizedName === 'docs-demo' && c.submittedBy === 'alice'), JSON.stringify(changes));

    const index = await get('/docs/docs-demo/');
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
    assert.match(index.headers.get('cache-control')!, /max-age=\d+/);
    assert.equal(await index.text(), '<h1>Docs demo</h1>');
    const etag = index.headers.get('etag')!;
    assert.ok(etag);
    assert.equal((await get('/docs/docs-demo/', { headers: { 'if-none-match': etag } })).status, 304);

    const expected: [string, string][] = [
      ['/docs/docs-demo/index.html', 'text/html; charset=utf-8'],
      ['/docs/docs-demo/_static/site.css', 'text/css; charset=utf-8'],
      ['/docs/docs-demo/_static/app.js', 'text/javascript; charset=utf-8'],
      ['/docs/docs-demo/_static/logo.svg', 'image/svg+xml'],
      ['/docs/docs-demo/searchindex.json', 'application/json'],
      ['/docs/docs-demo/notes.txt', 'text/plain; charset=utf-8'],
      ['/docs/docs-demo/guide/', 'text/html; charset=utf-8'],
    ];
    for (const [p, type] of expected) {
      const res = await get(p);
      assert.equal(res.status, 200, p);
      assert.equal(res.headers.get('content-type'), type, p);
      await res.arrayBuffer();
    }
    const png = await get('/docs/docs-demo/_static/logo.png');
    assert.equal(png.headers.get('content-type'), 'image/png');
    assert.equal((await png.arrayBuffer()).byteLength, 64);
    const head = await get('/docs/docs-demo/notes.txt', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '5');
  });

  test('redirects: non-normalized names, the bare project URL, folders without their slash', async () => {
    const cases: [string, string][] = [
      ['/docs/Docs_Demo/guide/', '/docs/docs-demo/guide/'],
      ['/docs/Docs.Demo/', '/docs/docs-demo/'],
      ['/docs/docs-demo', '/docs/docs-demo/'],
      ['/docs/docs-demo/guide', '/docs/docs-demo/guide/'],
    ];
    for (const [from, to] of cases) {
      const res = await get(from);
      assert.equal(res.status, 301, from);
      assert.equal(res.headers.get('location'), to, from);
    }
  });

  test('missing files and projects without docs are 404 with a clear message', async () => {
    const missing = await get('/docs/docs-demo/nope.html');
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /documentation of 'docs-demo' has no file 'nope\.html'/);
    const none = await get('/docs/no-such-project/');
    assert.equal(none.status, 404);
    assert.match(await none.text(), /no documentation/);
  });

  test('paths that try to leave the documentation are refused', async () => {
    const pointer = (await docKeys()).find((k) => k.endsWith('/current'))!;
    assert.ok(pointer);
    for (const p of [
      '/docs/docs-demo/../../index.db',
      '/docs/docs-demo/%2e%2e/current',
      '/docs/docs-demo/%2E%2E/%2E%2E/%2E%2E/index.db',
      '/docs/docs-demo/guide/%2e%2e%2f%2e%2e%2fcurrent',
      '/docs/docs-demo/..%5c..%5ccurrent',
      '/docs/docs-demo/guide\\..\\..\\current',
      '/docs/docs-demo/./index.html',
      '/docs/docs-demo//index.html',
      '/docs/docs-demo/%00.html',
    ]) {
      const res = await rawGet(origin.url, p);
      assert.ok(res.status === 400 || res.status === 404, `${p}: ${res.status} ${res.body}`);
      assert.doesNotMatch(res.body, /generation/, p);
    }
  });

  test('a re-upload replaces the docs: old-only files are gone, new ones are there', async () => {
    const first = await uploadDocs(await zip([...generation('first'), { name: 'old-only.html', text: 'old' }]), tokens.alice);
    assert.equal(first.status, 200, first.body);
    assert.equal(await (await get('/docs/docs-demo/old-only.html')).text(), 'old');
    const second = await uploadDocs(await zip([...generation('second'), { name: 'new-only.html', text: 'new' }]), tokens.alice);
    assert.equal(second.status, 200, second.body);
    assert.equal((await get('/docs/docs-demo/old-only.html')).status, 404);
    assert.equal(await (await get('/docs/docs-demo/new-only.html')).text(), 'new');
    assert.equal(await (await get('/docs/docs-demo/a.html')).text(), 'second');
    // Only one generation is left in the store.
    const generations = new Set((await docKeys()).map((k) => k.split('/')[2]).filter((g) => g !== 'current'));
    assert.equal(generations.size, 1, [...generations].join(', '));
  });

  test('a reader polling during re-uploads never sees a mix of two uploads', async () => {
    const labels = ['g0', 'g1', 'g2', 'g3', 'g4'];
    const sets = await Promise.all(labels.map((l) => zip(generation(l, 150))));
    assert.equal((await uploadDocs(sets[0]!, tokens.alice)).status, 200);
    let stop = false;
    let consistent = 0;
    const seen = new Set<string>();
    const problems: string[] = [];
    const text = async (p: string): Promise<string> => {
      const res = await get(p);
      const body = await res.text();
      if (res.status !== 200) problems.push(`${p}: ${res.status} ${body}`);
      return body;
    };
    const reader = async (): Promise<void> => {
      while (!stop) {
        // Generations only move forward, so when a reads the same before and after b, b was read
        // while that generation was current and must name it too.
        const a1 = await text('/docs/docs-demo/a.html');
        const b = await text('/docs/docs-demo/b.html');
        const a2 = await text('/docs/docs-demo/a.html');
        seen.add(a1);
        if (a1 === a2) {
          consistent++;
          if (b !== a1) problems.push(`a.html said ${a1} before and after b.html said ${b}`);
        }
      }
    };
    const readers = [reader(), reader(), reader()];
    try {
      for (const set of sets.slice(1)) {
        const up = await uploadDocs(set, tokens.alice);
        assert.equal(up.status, 200, up.body);
      }
    } finally {
      stop = true;
      await Promise.all(readers);
    }
    assert.deepEqual(problems, []);
    assert.ok(consistent > 10, `${consistent} consistent reads`);
    assert.ok(seen.size >= 2, `readers saw ${[...seen].join(', ')}`);
    assert.equal(await (await get('/docs/docs-demo/a.html')).text(), 'g4');
  });

  describe('refused uploads change nothing', () => {
    const notAZip = async (): Promise<string> => {
      const p = join(work, 'not-a-zip.zip');
      await writeFile(p, 'definitely not a zip archive\n'.repeat(10));
      return p;
    };
    const cases: { title: string; zip: () => Promise<string>; token: () => string; name?: string; status: number; message: RegExp }[] = [
      { title: 'path traversal', zip: () => zip([...generation('evil'), { name: '../evil.html', text: 'x' }]), token: () => tokens.alice, status: 400, message: /entry "\.\.\/evil\.html" climbs out/ },
      { title: 'absolute path', zip: () => zip([{ name: '/etc/evil.html', text: 'x' }]), token: () => tokens.alice, status: 400, message: /"\/etc\/evil\.html" is an absolute path/ },
      { title: 'symbolic link', zip: () => zip([...generation('evil'), { name: 'link.html', text: '/etc/passwd', externalAttr: SYMLINK_ATTR }]), token: () => tokens.alice, status: 400, message: /"link\.html" is a symbolic link/ },
      { title: 'zip bomb', zip: () => zip([{ name: 'index.html', text: 'x' }, { name: 'bomb.html', zeros: 50 * 1024 * 1024 }]), token: () => tokens.alice, status: 413, message: /"bomb\.html" inflates to more than 200 times/ },
      { title: 'not a zip', zip: notAZip, token: () => tokens.alice, status: 400, message: /not a valid zip archive/ },
      { title: 'duplicate names', zip: () => zip([{ name: 'a.html', text: '1' }, { name: 'a.html', text: '2' }]), token: () => tokens.alice, status: 400, message: /"a\.html" appears twice/ },
      { title: "another user's token", zip: () => zip(generation('bob')), token: () => tokens.bob, status: 403, message: /The user 'bob' isn't allowed to upload documentation for project 'Docs_Demo'/ },
      { title: 'a token scoped to another project', zip: () => zip(generation('scoped')), token: () => tokens.aliceOther, status: 403, message: /scoped to project 'other-project'/ },
      { title: 'a project that does not exist', zip: () => zip(generation('ghost')), token: () => tokens.alice, name: 'ghost-project', status: 404, message: /no project named 'ghost-project'/ },
    ];
    for (const c of cases) {
      test(`refuses ${c.title}`, async () => {
        const keys = await docKeys();
        const stats = await db.stats();
        const page = await (await get('/docs/docs-demo/a.html')).text();
        const answer = await uploadDocs(await c.zip(), c.token(), c.name);
        assert.equal(answer.status, c.status, answer.body);
        assert.match(answer.body, c.message);
        assert.deepEqual(await docKeys(), keys);
        assert.deepEqual(await db.stats(), stats);
        assert.equal(await (await get('/docs/docs-demo/a.html')).text(), page);
        assert.deepEqual((await readdir(join(data, 'tmp'))).filter((f) => f.endsWith('.part')), []);
      });
    }
  });

  test('file uploads are dispatched as before: an unknown action is still refused', async () => {
    const answer = await formUpload(origin.url, await zip(generation('x')), { token: tokens.alice, fields: { ':action': 'submit', name: 'docs-demo' } });
    assert.equal(answer.status, 400);
    assert.match(answer.body, /Unsupported action: 'submit'/);
  });
});
