import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PyedgeError } from '../core/errors.js';
import { OriginSource, rewriteFileUrls } from './origin-source.js';
import { Backoff } from './retry.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let base: string;
let handler: Handler = (_req, res) => res.writeHead(404).end();

before(async () => {
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const fast = { http: { backoff: { initialMs: 1, maxMs: 5, factor: 2, jitter: 0 }, attempts: 4, timeoutMs: 2000 } };

function send(res: ServerResponse, serial: number, body: string, type = 'application/json'): void {
  res.writeHead(200, { 'content-type': type, 'x-pypi-last-serial': String(serial) }).end(body);
}

/** JSON API with one release and a file URL on `origin`. */
function api(serial: number, origin: string): string {
  const file = { digests: { sha256: 'ab' }, url: `${origin}/packages/aa/bb/${'c'.repeat(60)}/demo-1.0.tar.gz`, size: 3 };
  return JSON.stringify({ info: { version: '1.0' }, last_serial: serial, releases: { '1.0': [file] }, urls: [file] });
}

describe('OriginSource', () => {
  it('fetches a project again until every page carries the same serial', async () => {
    let jsonCalls = 0;
    handler = (req, res) => {
      if (req.url === '/simple/demo/' && req.headers.accept === 'text/html') return send(res, 6, '<html>6</html>', 'text/html');
      // The JSON page lags once, as when an upload lands between two fetches.
      if (req.url === '/simple/demo/') return send(res, ++jsonCalls === 1 ? 5 : 6, '{"v":6}');
      if (req.url === '/pypi/demo/json') return send(res, 6, api(6, base));
      if (req.url === '/pypi/demo/1.0/json') return send(res, 6, api(6, base));
      res.writeHead(404).end();
    };
    const source = new OriginSource(base, { ...fast, publicUrl: 'https://cdn.example/' });
    const snap = await source.project('demo');
    assert.ok(snap);
    assert.equal(snap.serial, 6);
    assert.equal(jsonCalls, 2);
    assert.equal(snap.html.toString(), '<html>6</html>');
    assert.match(snap.jsonApi!.toString(), /"url":"https:\/\/cdn\.example\/packages\/aa\/bb\//);
    assert.doesNotMatch(snap.jsonApi!.toString(), new RegExp(base));
    assert.match((await snap.releases())!.get('1.0')!.toString(), /https:\/\/cdn\.example\/packages\//);
    assert.equal(source.rendering, 'json-api-file-urls=https://cdn.example');
  });

  it('answers null for a project that is gone, and retries a 503', async () => {
    let unavailable = 2;
    handler = (req, res) => {
      if (unavailable > 0) {
        unavailable--;
        return res.writeHead(503).end('busy');
      }
      res.writeHead(404).end();
    };
    const source = new OriginSource(base, fast);
    assert.equal(await source.project('gone'), null);
    assert.equal(unavailable, 0);
  });

  it('reads the root listing with its serial and the time of the last change', async () => {
    handler = (req, res) => {
      if (req.url === '/simple/') {
        return send(res, 9, JSON.stringify({ meta: { '_last-serial': 9, 'api-version': '1.4' }, projects: [{ '_last-serial': 9, name: 'Demo_Pkg' }] }));
      }
      if (req.url?.startsWith('/changes?since=8')) {
        return send(res, 9, JSON.stringify({ since: 8, next: 9, last_serial: 9, changes: [{ serial: 9, project: 'demo-pkg', action: 'add file', time: '2026-02-03T04:05:06Z' }] }));
      }
      res.writeHead(404).end();
    };
    const listing = await new OriginSource(base, fast).listing();
    assert.deepEqual(listing, { serial: 9, projects: [{ name: 'Demo_Pkg', normalizedName: 'demo-pkg', lastSerial: 9 }], time: '2026-02-03T04:05:06Z' });
  });

  it('keeps the root listing up to date from the listing of changes, and reads the whole root when that cannot tell', async () => {
    let roots = 0;
    let delta: Record<string, unknown> = {};
    const asked: string[] = [];
    handler = (req, res) => {
      asked.push(req.url ?? '');
      if (req.url === '/simple/') {
        roots++;
        const projects = [
          { '_last-serial': 3, name: 'Alpha' },
          { '_last-serial': 5, name: 'Charlie' },
          { '_last-serial': 4, name: 'Delta' },
        ];
        return send(res, 5, JSON.stringify({ meta: { '_last-serial': 5, 'api-version': '1.4' }, projects }));
      }
      if (req.url === '/_sync/listing?since=5') return send(res, 8, JSON.stringify(delta));
      res.writeHead(404).end();
    };
    const source = new OriginSource(base, fast);
    assert.equal((await source.listing()).projects.length, 3);
    delta = {
      complete: true,
      serial: 8,
      time: '2026-02-03T04:05:06Z',
      projects: [
        { name: 'Bravo', normalized: 'bravo', last_serial: 6, listed: true },
        { name: 'Delta', normalized: 'delta', last_serial: 7, listed: false },
        { name: 'Echo', normalized: 'echo', last_serial: 8, listed: true },
      ],
    };
    const moved = await source.listing();
    assert.equal(roots, 1);
    assert.deepEqual(moved, {
      serial: 8,
      time: '2026-02-03T04:05:06Z',
      projects: [
        { name: 'Alpha', normalizedName: 'alpha', lastSerial: 3 },
        { name: 'Bravo', normalizedName: 'bravo', lastSerial: 6 },
        { name: 'Charlie', normalizedName: 'charlie', lastSerial: 5 },
        { name: 'Echo', normalizedName: 'echo', lastSerial: 8 },
      ],
    });
    // Too much changed to list: the whole root again (this fake origin is still at 5).
    const fresh = new OriginSource(base, fast);
    await fresh.listing();
    delta = { complete: false };
    assert.equal((await fresh.listing()).serial, 5);
    assert.equal(roots, 3);
    assert.ok(asked.includes('/_sync/listing?since=5'));
  });

  it('turns a refused connection into PYEDGE_UNAVAILABLE and a missing file into PYEDGE_NOT_FOUND', async () => {
    handler = (_req, res) => res.writeHead(404).end();
    const source = new OriginSource(base, fast);
    await assert.rejects(source.openFile(`packages/aa/bb/${'c'.repeat(60)}/x.tar.gz`), (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_NOT_FOUND');
    const dead = new OriginSource('http://127.0.0.1:1', fast);
    await assert.rejects(dead.listing(), (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_UNAVAILABLE' && /unreachable/.test(err.message));
  });
});

describe('rewriteFileUrls', () => {
  it('moves only file URLs to the public base', () => {
    const doc = Buffer.from(JSON.stringify({ info: { project_url: 'http://o:1/project/x/' }, urls: [{ url: 'http://o:1/packages/aa/bb/cc/x.whl' }] }));
    const out = rewriteFileUrls(doc, 'https://cdn.example/mirror').toString();
    assert.match(out, /"url":"https:\/\/cdn\.example\/mirror\/packages\/aa\/bb\/cc\/x\.whl"/);
    assert.match(out, /"project_url":"http:\/\/o:1\/project\/x\/"/);
  });
});

describe('Backoff', () => {
  it('grows exponentially, is capped, and jitters downwards', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 }, () => 1);
    assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [50, 100, 200, 400, 500]);
    const none = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 }, () => 0);
    assert.deepEqual([none.next(), none.next(), none.next(), none.next(), none.next()], [100, 200, 400, 800, 1000]);
  });
});
