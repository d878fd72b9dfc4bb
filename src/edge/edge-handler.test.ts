/**
 * The edge's answers over real HTTP, for a tree written here by hand: once read
 * straight from the folder, once through a blob store (the path S3 takes).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { FolderBlobStore } from '../blobstore/folder/folder-blob-store.js';
import { strongEtag } from '../core/etags.js';
import { BlobTreeSource } from './blob-tree-source.js';
import { EdgeHandler, type RedirectRule } from './edge-handler.js';
import { serveEdge, type EdgeListener } from './edge-server.js';
import { FolderTreeSource } from './folder-tree-source.js';
import { rawRequest, type RawAnswer } from './raw-request.fixture.js';
import { PAGE_KEEP_BYTES, type TreeSource } from './tree-source.js';

const B2 = '0123456789abcdef'.repeat(4);
const FILE_KEY = `packages/${B2.slice(0, 2)}/${B2.slice(2, 4)}/${B2.slice(4)}/demo-1.0-py3-none-any.whl`;
const FILE_BYTES = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
const HTML = '<!DOCTYPE html>\n<html lang="en">\n  <body>\n    <a href="../../x">demo-1.0.whl</a><br />\n  </body>\n</html>\n<!--SERIAL 7-->\n';
const JSON_PAGE = '{"meta":{"_last-serial":7,"api-version":"1.4"},"name":"demo","files":[]}';
const ROOT_HTML = '<!DOCTYPE html>\n<html><body><a href="demo/">demo</a></body></html>\n';
const API = '{"info": {"name": "demo"}, "last_serial": 7, "releases": {"1.0": [], "2.0rc1": []}, "urls": []}';
const STATE = { format: 'pyedge-tree-v1', serial: 9, rootSerial: 9, newer: {}, time: new Date(Date.now() - 5000).toISOString(), source: 'http://o', key: 'k', rendering: '', projects: 1 };

type Answer = RawAnswer;

/** How long the folder source serves a kept page before checking its file again. */
const RECHECK_MS = 50;

function fetchRaw(base: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return rawRequest(base, path, options);
}

async function put(root: string, key: string, body: string | Buffer): Promise<void> {
  const file = join(root, key);
  await mkdir(dirname(file), { recursive: true });
  // As the publisher does: a whole new file renamed into place.
  await writeFile(`${file}.new`, body);
  await rename(`${file}.new`, file);
}

async function writeTree(root: string, withState: boolean): Promise<void> {
  await put(root, 'simple/index.html', ROOT_HTML);
  await put(root, 'simple/index.v1_html', ROOT_HTML);
  await put(root, 'simple/index.v1_json', '{"meta":{"_last-serial":9,"api-version":"1.4"},"projects":[{"_last-serial":7,"name":"demo"}]}');
  await put(root, 'simple/demo/index.html', HTML);
  await put(root, 'simple/demo/index.v1_html', HTML);
  await put(root, 'simple/demo/index.v1_json', JSON_PAGE);
  await put(root, 'simple/demo/serversig', '{"version":1,"name":"demo","serial":7,"key":"k"}');
  await put(root, 'pypi/demo/json', API);
  await put(root, 'pypi/demo/1.0/json', API.replace('"last_serial": 7', '"last_serial": 6'));
  await put(root, FILE_KEY, FILE_BYTES);
  await put(root, `${FILE_KEY}.metadata`, 'Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n');
  await put(root, 'last-modified', '20260101T00:00:00\n');
  await put(root, '.tmp/123-abcdef01-secret', 'temp');
  if (withState) await put(root, 'pyedge-state.json', JSON.stringify(STATE));
}

type Front = 'lean front' | 'node:http';

/** The handler served as an edge serves it (the lean front over node:http), or by node:http alone. */
async function listen(handler: EdgeHandler, front: Front): Promise<EdgeListener> {
  if (front === 'lean front') return serveEdge(handler, 0, '127.0.0.1');
  const server: Server = createServer(handler.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const logger = pino({ level: 'silent' });

for (const [backEnd, front] of [['folder', 'lean front'], ['folder', 'node:http'], ['blob store', 'lean front']] as const) {
  describe(`edge over a ${backEnd}, ${front}`, () => {
    let root: string;
    let source: TreeSource;
    let server: EdgeListener;
    let url: string;
    const get = (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> => fetchRaw(url, path, { headers, method });

    before(async () => {
      root = await mkdtemp(join(tmpdir(), 'pyedge-edge-'));
      await writeTree(root, true);
      source = backEnd === 'folder' ? new FolderTreeSource(root, { recheckMs: RECHECK_MS }) : new BlobTreeSource(new FolderBlobStore(root));
      server = await listen(new EdgeHandler({ source, redirect: null, logger, statusMaxAgeMs: 0 }), front);
      url = server.url;
    });

    after(async () => {
      await server.close();
      await source.close();
      await rm(root, { recursive: true, force: true });
    });

    test('PEP 691 negotiation picks one of the three pages, with its type and serial', async () => {
      const html = await get('/simple/demo/');
      assert.equal(html.status, 200);
      assert.equal(html.headers['content-type'], 'text/html');
      assert.equal(html.body.toString(), HTML);
      assert.equal(html.headers['x-pypi-last-serial'], '7');
      assert.equal(html.headers.vary, 'Accept');
      assert.equal(html.headers['surrogate-key'], 'project/demo');
      assert.match(String(html.headers['cache-control']), /^max-age=60, public/);
      const json = await get('/simple/demo/', { accept: 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01' });
      assert.equal(json.headers['content-type'], 'application/vnd.pypi.simple.v1+json');
      assert.equal(json.body.toString(), JSON_PAGE);
      assert.equal(json.headers.etag, strongEtag(Buffer.from(JSON_PAGE)));
      const v1 = await get('/simple/demo/', { accept: 'application/vnd.pypi.simple.v1+html' });
      assert.equal(v1.headers['content-type'], 'application/vnd.pypi.simple.v1+html');
      const byParam = await get('/simple/demo/?format=application/vnd.pypi.simple.v1%2Bjson', { accept: 'text/html' });
      assert.equal(byParam.body.toString(), JSON_PAGE);
      const refused = await get('/simple/demo/', { accept: 'application/xml' });
      assert.equal(refused.status, 406);
      assert.match(refused.body.toString(), /^406 Not Acceptable/);
      assert.equal((await get('/simple/demo/?format=bogus')).status, 406);
    });

    test('the root carries the state serial; project names are normalized with 301', async () => {
      const rootPage = await get('/simple/', { accept: 'application/vnd.pypi.simple.v1+json' });
      assert.equal(rootPage.status, 200);
      assert.equal(rootPage.headers['x-pypi-last-serial'], '9');
      assert.equal(rootPage.headers['surrogate-key'], 'all-projects');
      // The state moves on while the root page stays the same: the answer follows the state (read again on the next requests).
      const rootSerialBecomes = async (serial: string): Promise<void> => {
        let seen: unknown;
        for (let i = 0; i < 50 && seen !== serial; i++) {
          await sleep(RECHECK_MS);
          seen = (await get('/simple/', { accept: 'application/vnd.pypi.simple.v1+json' })).headers['x-pypi-last-serial'];
        }
        assert.equal(seen, serial);
      };
      await put(root, 'pyedge-state.json', JSON.stringify({ ...STATE, serial: 10 }));
      await rootSerialBecomes('10');
      await put(root, 'pyedge-state.json', JSON.stringify(STATE));
      await rootSerialBecomes('9');
      const moved = await get('/simple/Demo_/?format=text/html');
      assert.equal(moved.status, 404, 'not a valid name');
      const moved2 = await get('/simple/DEMO/?format=text/html');
      assert.equal(moved2.status, 301);
      assert.equal(moved2.headers.location, '/simple/demo/?format=text/html');
      assert.equal((await get('/simple')).headers.location, '/simple/');
    });

    test('strong ETags answer 304; HEAD sends the headers without the body', async () => {
      const first = await get('/pypi/demo/json');
      assert.equal(first.headers['access-control-allow-origin'], '*');
      assert.equal(first.headers['x-pypi-last-serial'], '7');
      const again = await get('/pypi/demo/json', { 'if-none-match': String(first.headers.etag) });
      assert.equal(again.status, 304);
      assert.equal(again.body.length, 0);
      assert.equal(again.headers['x-pypi-last-serial'], '7');
      const head = await get('/simple/demo/', {}, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.headers['content-length'], String(Buffer.byteLength(HTML)));
      assert.equal(head.body.length, 0);
      const fileHead = await get(`/${FILE_KEY}`, {}, 'HEAD');
      assert.equal(fileHead.headers['content-length'], String(FILE_BYTES.length));
      assert.equal(fileHead.body.length, 0);
    });

    test('files: whole, ranges, 416, If-Range and 304, immutable', async () => {
      const whole = await get(`/${FILE_KEY}`);
      assert.equal(whole.status, 200);
      assert.deepEqual(whole.body, FILE_BYTES);
      assert.equal(whole.headers['cache-control'], 'max-age=31536000, public, immutable');
      assert.equal(whole.headers['content-type'], 'application/octet-stream');
      assert.equal(whole.headers.etag, `"${B2}"`);
      const part = await get(`/${FILE_KEY}`, { range: 'bytes=10-19' });
      assert.equal(part.status, 206);
      assert.equal(part.headers['content-range'], `bytes 10-19/${FILE_BYTES.length}`);
      assert.deepEqual(part.body, FILE_BYTES.subarray(10, 20));
      const suffix = await get(`/${FILE_KEY}`, { range: 'bytes=-5' });
      assert.deepEqual(suffix.body, FILE_BYTES.subarray(-5));
      const beyond = await get(`/${FILE_KEY}`, { range: `bytes=${FILE_BYTES.length}-` });
      assert.equal(beyond.status, 416);
      assert.equal(beyond.headers['content-range'], `bytes */${FILE_BYTES.length}`);
      const stale = await get(`/${FILE_KEY}`, { range: 'bytes=0-1', 'if-range': '"other"' });
      assert.equal(stale.status, 200);
      assert.equal(stale.body.length, FILE_BYTES.length);
      assert.equal((await get(`/${FILE_KEY}`, { 'if-none-match': `"${B2}"` })).status, 304);
      const metadata = await get(`/${FILE_KEY}.metadata`);
      assert.equal(metadata.headers.etag, `"${B2}-metadata"`);
      assert.match(metadata.body.toString(), /^Metadata-Version/);
      const missing = await get(`/${FILE_KEY.replace('demo-1.0', 'demo-2.0')}`);
      assert.equal(missing.status, 404);
      assert.equal(missing.body.toString(), '404 Not Found: no such file on this index.\n');
    });

    test('a release version is resolved to its stored spelling', async () => {
      const exact = await get('/pypi/demo/1.0/json');
      assert.equal(exact.status, 200);
      assert.equal(exact.headers['x-pypi-last-serial'], '6');
      const equivalent = await get('/pypi/demo/1.0.0/json/');
      assert.equal(equivalent.status, 301);
      assert.equal(equivalent.headers.location, '/pypi/demo/1.0/json/');
      assert.equal((await get('/pypi/Demo/1.0/json')).headers.location, '/pypi/demo/1.0/json');
      assert.equal((await get('/pypi/demo/3.0/json')).status, 404);
      assert.equal((await get('/pypi/nothing/1.0/json')).status, 404);
    });

    test('bad requests get clear 4xx answers and nothing outside the layout', async () => {
      const post = await get('/simple/', {}, 'POST');
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
      assert.equal((await get(`/simple/${'a'.repeat(5000)}/`)).status, 414);
      for (const path of ['/simple/../pyedge-state.json', '/simple/%2e%2e/%2e%2e/etc/passwd', '/packages/..%2F..%2Fpyedge-state.json', '/simple\\..\\pyedge-state.json']) {
        const r = await get(path);
        assert.equal(r.status, 400, path);
        assert.match(r.body.toString(), /^400 Bad Request/);
      }
      assert.equal((await get('/.tmp/123-abcdef01-secret')).status, 404);
      assert.equal((await get('/pyedge-status.json')).status, 404);
      const nothing = await get('/simple/absent/');
      assert.equal(nothing.status, 404);
      assert.equal(nothing.headers['cache-control'], 'no-store');
      assert.equal(nothing.body.toString(), "404 Not Found: there is no project named 'absent' on this index.\n");
    });

    test('a page renamed into place is served whole, and new once the recheck time has passed', async () => {
      const before = await get('/simple/demo/');
      const changed = HTML.replace('SERIAL 7', 'SERIAL 8');
      await put(root, 'simple/demo/index.html', changed);
      assert.ok([HTML, changed].includes((await get('/simple/demo/')).body.toString()));
      await sleep(RECHECK_MS + 10);
      const afterChange = await get('/simple/demo/');
      assert.notEqual(afterChange.headers.etag, before.headers.etag);
      assert.equal(afterChange.headers['x-pypi-last-serial'], '8');
      assert.equal((await get('/simple/demo/', { 'if-none-match': String(before.headers.etag) })).status, 200);
      await put(root, 'simple/demo/index.html', HTML);
    });

    test('a page too large to keep streams, with the same ETag as its bytes', async () => {
      const big = Buffer.from(`{"meta":{"_last-serial":9,"api-version":"1.4"},"projects":[${'{"_last-serial":1,"name":"p"},'.repeat(Math.ceil((PAGE_KEEP_BYTES + 1000) / 30))}{"_last-serial":1,"name":"q"}]}`);
      await put(root, 'simple/index.v1_json', big);
      await sleep(RECHECK_MS + 10);
      for (let i = 0; i < 2; i++) {
        const r = await get('/simple/', { accept: 'application/vnd.pypi.simple.v1+json' });
        assert.equal(r.status, 200);
        assert.equal(r.body.length, big.length);
        assert.ok(r.body.equals(big));
        assert.equal(r.headers.etag, strongEtag(big));
        assert.equal((await get('/simple/', { accept: 'application/vnd.pypi.simple.v1+json', 'if-none-match': strongEtag(big) })).status, 304);
      }
    });

    test('health and readiness', async () => {
      const health = await get('/_health');
      assert.equal(health.status, 200);
      assert.deepEqual(JSON.parse(health.body.toString()), { status: 'ok' });
      const ready = await get('/_ready');
      assert.equal(ready.status, 200);
      const doc = JSON.parse(ready.body.toString()) as { status: string; serial: number; ageSeconds: number };
      assert.equal(doc.status, 'ready');
      assert.equal(doc.serial, 9);
      assert.ok(doc.ageSeconds >= 4 && doc.ageSeconds < 600, String(doc.ageSeconds));
    });
  });
}

describe('edge states and redirect mode', () => {
  let root: string;
  const servers: EdgeListener[] = [];
  after(async () => {
    for (const s of servers) await s.close();
    await rm(root, { recursive: true, force: true });
  });

  const start = async (source: TreeSource | null, redirect: RedirectRule | null): Promise<string> => {
    const server = await listen(new EdgeHandler({ source, redirect, logger, statusMaxAgeMs: 0 }), 'lean front');
    servers.push(server);
    return server.url;
  };

  test('a tree without a state object serves nothing and is not ready, until it has one', async () => {
    root = await mkdtemp(join(tmpdir(), 'pyedge-edge-'));
    await writeTree(root, false);
    const url = await start(new FolderTreeSource(root), null);
    assert.equal((await fetchRaw(url, '/simple/demo/')).status, 503);
    assert.equal((await fetchRaw(url, `/${FILE_KEY}`)).status, 503);
    const notReady = await fetchRaw(url, '/_ready');
    assert.equal(notReady.status, 503);
    assert.match(JSON.parse(notReady.body.toString()).reason as string, /no state object/);
    assert.equal((await fetchRaw(url, '/_health')).status, 200);
    await put(root, 'pyedge-state.json', JSON.stringify(STATE));
    assert.equal((await fetchRaw(url, '/_ready')).status, 200);
    assert.equal((await fetchRaw(url, '/simple/demo/')).status, 200);
  });

  test('redirect mode sends files to the CDN and answers pages itself', async () => {
    const url = await start(new FolderTreeSource(root), { base: 'https://cdn.example/tree', prefixes: ['packages/'] });
    const file = await fetchRaw(url, `/${FILE_KEY}?x=1`);
    assert.equal(file.status, 302);
    assert.equal(file.headers.location, `https://cdn.example/tree/${FILE_KEY}?x=1`);
    assert.equal((await fetchRaw(url, '/simple/demo/')).status, 200);
    assert.equal((await fetchRaw(url, '/packages/%2e%2e/x')).status, 400);
    assert.equal((await fetchRaw(url, '/packages/zz/x')).status, 404);
    const everything = await start(new FolderTreeSource(root), { base: 'https://cdn.example', prefixes: ['packages/', 'simple/'] });
    assert.equal((await fetchRaw(everything, '/simple/demo/')).headers.location, 'https://cdn.example/simple/demo/');
    // Normalizing happens here first, then the normalized URL redirects.
    assert.equal((await fetchRaw(everything, '/simple/Demo/')).headers.location, '/simple/demo/');
  });

  test('a redirector without a tree redirects every tree path', async () => {
    const url = await start(null, { base: 'https://cdn.example', prefixes: [''] });
    assert.equal((await fetchRaw(url, '/simple/demo/')).headers.location, 'https://cdn.example/simple/demo/');
    assert.equal((await fetchRaw(url, `/${FILE_KEY}`)).status, 302);
    assert.equal((await fetchRaw(url, '/_ready')).status, 200);
    assert.equal((await fetchRaw(url, '/nothing')).status, 404);
  });
});
