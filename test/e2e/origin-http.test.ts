/**
 * What the origin answers over HTTP: PEP 691 negotiation, redirects, 404/406,
 * serial headers, ETags, Range and HEAD on files. Drives `./bin/pyedge serve`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';

const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';
const PIP_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';

interface ProjectJson {
  meta: { 'api-version': string; '_last-serial': number };
  name: string;
  versions: string[];
  files: { filename: string; url: string; hashes: { sha256: string }; size: number; 'upload-time': string; yanked: boolean | string }[];
}

describe('origin HTTP behaviour', () => {
  let work: string;
  let origin: Service;
  let token: string;
  let wheel: string;
  let wheelBytes: Buffer;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-http-'));
    const data = join(work, 'data');
    origin = await startPyedge(['serve', '--data', data, '--port', '0', '--page-max-age', '5m']);
    token = (await pyedge(['token', 'create', '--data', data, '--user', 'carol'])).stdout.trim();
    wheel = await buildWheel(work, { name: 'Http_Demo', version: '1.0', headers: ['Requires-Python: >=3.8'] });
    wheelBytes = await readFile(wheel);
    const a = await formUpload(origin.url, wheel, { token });
    assert.equal(a.status, 200, a.body);
    const b = await formUpload(origin.url, await buildWheel(work, { name: 'Http_Demo', version: '1.10' }), { token });
    assert.equal(b.status, 200, b.body);
  });

  after(async () => {
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('pip\'s Accept header gets PEP 691 JSON with serials and PEP 700 fields', async () => {
    const res = await fetch(`${origin.url}/simple/http-demo/`, { headers: { accept: PIP_ACCEPT } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), JSON_TYPE);
    assert.equal(res.headers.get('vary'), 'Accept');
    assert.equal(res.headers.get('cache-control'), 'max-age=300, public');
    const serial = Number(res.headers.get('x-pypi-last-serial'));
    const body = (await res.json()) as ProjectJson;
    assert.equal(body.meta['_last-serial'], serial);
    assert.ok(serial >= 4, `project serial ${serial}`);
    assert.deepEqual(body.versions, ['1.0', '1.10']);
    const f = body.files.find((x) => x.filename === 'Http_Demo-1.0-py3-none-any.whl')!;
    assert.equal(f.size, wheelBytes.length);
    assert.equal(f.hashes.sha256, createHash('sha256').update(wheelBytes).digest('hex'));
    assert.match(f['upload-time'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(f.yanked, false);
  });

  test('no Accept header, */* and ?format= choose HTML or JSON', async () => {
    const plain = await fetch(`${origin.url}/simple/http-demo/`, { headers: { accept: '' } });
    assert.match(plain.headers.get('content-type')!, /^text\/html/);
    assert.match(await plain.text(), /<a href="\.\.\/\.\.\/packages\/[^"]+#sha256=[0-9a-f]{64}" data-requires-python="&gt;=3\.8"/);
    const any = await fetch(`${origin.url}/simple/http-demo/`, { headers: { accept: '*/*' } });
    assert.match(any.headers.get('content-type')!, /^text\/html/);
    const v1html = await fetch(`${origin.url}/simple/http-demo/`, { headers: { accept: 'application/vnd.pypi.simple.v1+html' } });
    assert.match(v1html.headers.get('content-type')!, /^application\/vnd\.pypi\.simple\.v1\+html/);
    const forced = await fetch(`${origin.url}/simple/http-demo/?format=${encodeURIComponent(JSON_TYPE)}`, { headers: { accept: 'text/html' } });
    assert.equal(forced.headers.get('content-type'), JSON_TYPE);
  });

  test('406 when nothing acceptable is offered', async () => {
    const res = await fetch(`${origin.url}/simple/http-demo/`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 406);
    assert.match(await res.text(), /application\/vnd\.pypi\.simple\.v1\+json/);
    const q0 = await fetch(`${origin.url}/simple/`, { headers: { accept: 'text/html;q=0, application/vnd.pypi.simple.v1+html;q=0, application/vnd.pypi.simple.v1+json;q=0' } });
    assert.equal(q0.status, 406);
  });

  test('non-normalized names redirect to the normalized URL, keeping the query', async () => {
    for (const [path, to] of [
      ['/simple/Http_Demo/', '/simple/http-demo/'],
      ['/simple/HTTP.demo', '/simple/http-demo/'],
      ['/simple/http-demo', '/simple/http-demo/'],
      ['/simple/Http_Demo/?format=text/html', '/simple/http-demo/?format=text/html'],
      ['/simple', '/simple/'],
    ]) {
      const res = await fetch(`${origin.url}${path}`, { redirect: 'manual' });
      assert.equal(res.status, 301, path);
      assert.equal(res.headers.get('location'), to, path);
    }
  });

  test('unknown projects are 404 with a clear message', async () => {
    const res = await fetch(`${origin.url}/simple/no-such-project/`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /no project named 'no-such-project'/);
  });

  test('the root index lists projects with their _last-serial, and carries the index serial', async () => {
    const res = await fetch(`${origin.url}/simple/`, { headers: { accept: JSON_TYPE } });
    const body = (await res.json()) as { meta: { '_last-serial': number }; projects: { name: string; '_last-serial': number }[] };
    const serial = Number(res.headers.get('x-pypi-last-serial'));
    assert.equal(body.meta['_last-serial'], serial);
    const demo = body.projects.find((p) => p.name === 'Http_Demo');
    assert.ok(demo, JSON.stringify(body.projects));
    assert.equal(demo['_last-serial'], serial, 'the only project carries the last serial');
  });

  test('ETag and 304 on pages; a new upload changes the ETag and the serial', async () => {
    const first = await fetch(`${origin.url}/simple/http-demo/`);
    const etag = first.headers.get('etag')!;
    assert.match(etag, /^"[^"]+"$/);
    const again = await fetch(`${origin.url}/simple/http-demo/`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get('x-pypi-last-serial'), first.headers.get('x-pypi-last-serial'));
    const up = await formUpload(origin.url, await buildWheel(work, { name: 'http-demo', version: '2.0' }), { token });
    assert.equal(up.status, 200);
    const after = await fetch(`${origin.url}/simple/http-demo/`, { headers: { 'if-none-match': etag } });
    assert.equal(after.status, 200, 'the page changed at once');
    assert.notEqual(after.headers.get('etag'), etag);
    assert.ok(Number(after.headers.get('x-pypi-last-serial')) > Number(first.headers.get('x-pypi-last-serial')));
    assert.match(await after.text(), /http_demo-2\.0-py3-none-any\.whl/);
  });

  test('files: bytes, Content-Type, Content-Length, ETag, 304, Range, 416 and HEAD', async () => {
    const page = (await (await fetch(`${origin.url}/simple/http-demo/`, { headers: { accept: JSON_TYPE } })).json()) as ProjectJson;
    const f = page.files.find((x) => x.filename === 'Http_Demo-1.0-py3-none-any.whl')!;
    const url = new URL(f.url, `${origin.url}/simple/http-demo/`).toString();
    assert.match(url, /\/packages\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{60}\/Http_Demo-1\.0-py3-none-any\.whl$/);

    const full = await fetch(url);
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('content-type'), 'application/octet-stream');
    assert.equal(full.headers.get('content-length'), String(wheelBytes.length));
    assert.equal(full.headers.get('accept-ranges'), 'bytes');
    assert.match(full.headers.get('cache-control')!, /immutable/);
    assert.deepEqual(Buffer.from(await full.arrayBuffer()), wheelBytes);
    const etag = full.headers.get('etag')!;

    assert.equal((await fetch(url, { headers: { 'if-none-match': etag } })).status, 304);

    const part = await fetch(url, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${wheelBytes.length}`);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), wheelBytes.subarray(10, 20));

    const tail = await fetch(url, { headers: { range: 'bytes=-4' } });
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), wheelBytes.subarray(wheelBytes.length - 4));

    const beyond = await fetch(url, { headers: { range: `bytes=${wheelBytes.length}-` } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), `bytes */${wheelBytes.length}`);

    const head = await fetch(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(wheelBytes.length));
    assert.equal((await head.arrayBuffer()).byteLength, 0);

    const md = await fetch(`${url}.metadata`);
    assert.equal(md.status, 200);
    assert.match(await md.text(), /^Name: Http_Demo$/m);
  });

  test('a blob no database row records (an upload that crashed before its commit) is not served', async () => {
    const key = `packages/ab/cd/${'e'.repeat(60)}/orphan-1.0-py3-none-any.whl`;
    await mkdir(join(work, 'data', 'blobs', key, '..'), { recursive: true });
    await writeFile(join(work, 'data', 'blobs', key), 'orphan bytes');
    const res = await fetch(`${origin.url}/${key}`);
    assert.equal(res.status, 404);
  });

  test('unknown and malformed file paths are 404, never a file outside the store', async () => {
    for (const path of [
      '/packages/00/00/' + '0'.repeat(60) + '/nope-1.0.tar.gz',
      '/packages/../../etc/passwd',
      '/packages/%2e%2e/%2e%2e/index.db',
      '/packages/aa/bb/..%2f..%2f..%2findex.db',
    ]) {
      const res = await fetch(`${origin.url}${path}`);
      assert.equal(res.status, 404, path);
    }
  });
});
