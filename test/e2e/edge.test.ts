/**
 * `pyedge edge` end to end: an origin, its tree published into a folder and
 * into an S3 bucket (s3rver), an edge on each. Every URL (the three Simple
 * formats, the JSON API, files, metadata, ranges, HEAD) answers the same bytes
 * from both edges and from nginx with the shipped config as from the origin; pip installs through an edge and through
 * a redirect-mode edge that sends downloads to the other edge (standing in for
 * a CDN); bad requests get clear 4xx answers and never a file outside the tree.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, run, startPyedge, type Service } from './helpers/processes.js';
import { makeVenv, twineUpload } from './helpers/python.js';
import { buildWheel } from './helpers/distributions.js';
import { startS3rver, type RunningS3rver } from '../helpers/s3rver.js';
import { startTreeNginx, type Running } from './helpers/deploy-servers.js';
import { rawRequest } from '../../src/edge/raw-request.fixture.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';
const SIMPLE_HTML = 'application/vnd.pypi.simple.v1+html';
const SECRET = 'edge-test-secret-outside-the-tree';

/** node:http sends the path as given (fetch would resolve `..` first). */
const raw = rawRequest;

interface Probe {
  readonly path: string;
  readonly method?: 'GET' | 'HEAD';
  readonly headers?: Record<string, string>;
}

function describeProbe(p: Probe): string {
  return `${p.method ?? 'GET'} ${p.path}${p.headers ? ` ${JSON.stringify(p.headers)}` : ''}`;
}

/** Headers that must be equal wherever a URL is served. */
const SAME_HEADERS = ['content-type', 'content-length', 'content-range', 'etag', 'x-pypi-last-serial', 'vary', 'surrogate-key', 'accept-ranges', 'access-control-allow-origin'] as const;

describe('pyedge edge', () => {
  let work: string;
  let data: string;
  let tree: string;
  let keyFile: string;
  let origin: Service;
  let s3: RunningS3rver;
  let folderEdge: Service;
  let s3Edge: Service;
  let redirectEdge: Service;
  let nginx: Running;
  let token: string;
  const projects = ['edge-demo', 'edge-other', 'edge-big'];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-edge-e2e-'));
    data = join(work, 'data');
    tree = join(work, 'tree');
    keyFile = join(work, 'publisher-key.pem');
    await writeFile(join(work, 'secret.txt'), SECRET);
    [origin, s3] = await Promise.all([startPyedge(['serve', '--data', data, '--port', '0']), startS3rver('pyedge-edge')]);
    token = (await pyedge(['token', 'create', '--data', data, '--user', 'eddie'])).stdout.trim();
    const wheels = [
      await buildWheel(work, { name: 'edge-demo', version: '1.0', module: 'edge_demo', value: 'demo-1.0', metadataVersion: '2.1' }),
      await buildWheel(work, { name: 'edge-demo', version: '1.1', module: 'edge_demo', value: 'demo-1.1', metadataVersion: '2.1' }),
      await buildWheel(work, { name: 'Edge_Other', version: '0.1', module: 'edge_other', value: 'other-0.1', metadataVersion: '2.1', headers: ['Requires-Dist: edge-demo>=1.1'] }),
      // Large and incompressible, so that it streams in many chunks.
      await buildWheel(work, { name: 'edge-big', version: '2.0', module: 'edge_big', value: 'big-2.0', metadataVersion: '2.1', padding: 1_500_000, paddingSeed: 7 }),
    ];
    const up = await twineUpload(`${origin.url}/legacy/`, token, wheels);
    assert.equal(up.code, 0, `twine failed:\n${up.stdout}\n${up.stderr}`);
    const publishArgs = ['publish', '--source', origin.url, '--key-file', keyFile];
    // One after the other: the first creates the signing key, the second signs with the same one.
    const toFolder = await pyedge([...publishArgs, '--target', tree]);
    const toS3 = await pyedge([...publishArgs, '--target', `s3://${s3.bucket}/tree`], s3.env);
    assert.equal(toFolder.code, 0, `publish to the folder failed:\n${toFolder.stdout}\n${toFolder.stderr}`);
    assert.equal(toS3.code, 0, `publish to S3 failed:\n${toS3.stdout}\n${toS3.stderr}`);
    // What a publisher under way leaves there: never to be served.
    await mkdir(join(tree, '.tmp'), { recursive: true });
    await writeFile(join(tree, '.tmp', `${process.pid}-00000000-half-written`), 'half a page');
    [folderEdge, s3Edge] = await Promise.all([
      startPyedge(['edge', '--root', tree, '--port', '0']),
      startPyedge(['edge', '--root', `s3://${s3.bucket}/tree`, '--port', '0'], { env: s3.env }),
    ]);
    // The redirector answers pages from the folder and sends downloads to the S3 edge, as to a CDN.
    redirectEdge = await startPyedge(['edge', '--root', tree, '--port', '0', '--redirect-to', s3Edge.url]);
    nginx = await startTreeNginx(tree);
  });

  after(async () => {
    await Promise.all([folderEdge?.stop(), s3Edge?.stop(), redirectEdge?.stop(), origin?.stop(), nginx?.stop()]);
    await s3?.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** Every URL of the index, from the origin's own pages. */
  async function probes(): Promise<Probe[]> {
    const list: Probe[] = [];
    const pageVariants = (path: string): void => {
      list.push({ path }, { path, headers: { accept: SIMPLE_JSON } }, { path, headers: { accept: SIMPLE_HTML } });
      list.push({ path: `${path}?format=${encodeURIComponent(SIMPLE_JSON)}` }, { path, method: 'HEAD', headers: { accept: SIMPLE_JSON } });
      list.push({ path, headers: { accept: `${SIMPLE_JSON};q=0.9, ${SIMPLE_HTML};q=1, text/html;q=0.1` } });
    };
    pageVariants('/simple/');
    for (const name of projects) {
      pageVariants(`/simple/${name}/`);
      list.push({ path: `/pypi/${name}/json` }, { path: `/pypi/${name}/json`, method: 'HEAD' });
      const api = JSON.parse((await raw(origin.url, `/pypi/${name}/json`)).body.toString()) as { releases: Record<string, unknown> };
      for (const version of Object.keys(api.releases)) list.push({ path: `/pypi/${name}/${version}/json` });
      const page = JSON.parse((await raw(origin.url, `/simple/${name}/`, { headers: { accept: SIMPLE_JSON } })).body.toString()) as {
        files: { url: string; 'core-metadata'?: unknown }[];
      };
      for (const file of page.files) {
        const path = new URL(file.url, `${origin.url}/simple/${name}/`).pathname;
        list.push({ path }, { path, method: 'HEAD' });
        list.push({ path, headers: { range: 'bytes=0-99' } }, { path, headers: { range: 'bytes=-100' } }, { path, headers: { range: 'bytes=100-' } });
        list.push({ path, headers: { range: 'bytes=0-0' } });
        if (file['core-metadata']) list.push({ path: `${path}.metadata` }, { path: `${path}.metadata`, headers: { range: 'bytes=5-20' } });
      }
    }
    list.push({ path: '/last-modified' });
    return list;
  }

  test('every URL answers the same bytes from both edges as from the origin', async () => {
    const all = await probes();
    assert.ok(all.length > 60, `${all.length} probes`);
    let files = 0;
    for (const probe of all) {
      const what = describeProbe(probe);
      const [o, f, s] = await Promise.all([origin.url, folderEdge.url, s3Edge.url].map((base) => raw(base, probe.path, probe)));
      assert.equal(o!.status >= 200 && o!.status < 300, true, `${what}: origin answered ${o!.status}`);
      for (const [edge, answer] of [
        ['folder edge', f!],
        ['S3 edge', s!],
      ] as const) {
        assert.equal(answer.status, o!.status, `${what} from the ${edge}`);
        assert.ok(answer.body.equals(o!.body), `${what}: the ${edge} sent other bytes (${answer.body.length} vs ${o!.body.length})`);
        // The origin computes /last-modified (uncached, untagged); the tree's is a page like the others.
        const headers = probe.path === '/last-modified' ? (['content-type', 'x-pypi-last-serial'] as const) : SAME_HEADERS;
        for (const h of headers) {
          // The origin's HEAD answers to pages leave out the length it would send (fastify); the edges send it.
          if (h === 'content-length' && probe.method === 'HEAD' && o!.headers[h] === undefined) continue;
          assert.equal(answer.headers[h], o!.headers[h], `${what}: ${h} from the ${edge}`);
        }
        // Where they legitimately differ: the tree's caching headers (longer CDN time, stale-while-revalidate,
        // as the bucket and the nginx config send them) and a file's Last-Modified (when it was copied).
        if (probe.path.startsWith('/packages/')) assert.equal(answer.headers['cache-control'], 'max-age=31536000, public, immutable', what);
        else assert.match(String(answer.headers['cache-control']), /^max-age=60, public/, what);
      }
      if (probe.path.startsWith('/packages/')) files++;
    }
    assert.ok(files >= 20, `${files} file probes`);
    // The publisher's signatures and key are its own (not the origin's), and the same from both trees.
    for (const path of ['/serverkey', ...projects.map((n) => `/serversig/${n}`), ...projects.map((n) => `/simple/${n}/serversig`)]) {
      const [f, s] = await Promise.all([raw(folderEdge.url, path), raw(s3Edge.url, path)]);
      assert.equal(f.status, 200, path);
      assert.ok(f.body.equals(s.body), path);
      assert.equal(f.headers['x-pypi-last-serial'], s.headers['x-pypi-last-serial'], path);
    }
  });

  test('nginx with deploy/nginx/pyedge-tree.conf answers the same bytes as the origin', async () => {
    let compared = 0;
    for (const probe of await probes()) {
      // The shipped nginx config takes the first Simple type an Accept header names; it does not weigh q-values.
      if (/;q=/.test(probe.headers?.accept ?? '')) continue;
      const what = describeProbe(probe);
      const [o, n] = await Promise.all([raw(origin.url, probe.path, probe), raw(nginx.url, probe.path, probe)]);
      assert.equal(n.status, o.status, `${what} from nginx`);
      assert.ok(n.body.equals(o.body), `${what}: nginx sent other bytes (${n.body.length} vs ${o.body.length})`);
      for (const h of ['content-type', 'content-range', 'vary', 'surrogate-key'] as const) {
        if (probe.path === '/last-modified' && h !== 'content-type') continue;
        // nginx adds `; charset=utf-8` to text/html (the `charset` directive): the same media type, said more fully.
        const value = (v: unknown): string => String(v ?? '').toLowerCase().replace(/^(text\/html); charset=utf-8$/, '$1');
        assert.equal(value(n.headers[h]), value(o.headers[h]), `${what}: ${h} from nginx`);
      }
      compared++;
    }
    assert.ok(compared > 60, `${compared} probes`);
  });

  test('conditional requests, normalization and readiness', async () => {
    for (const edge of [folderEdge, s3Edge]) {
      const page = await raw(edge.url, '/simple/edge-demo/', { headers: { accept: SIMPLE_JSON } });
      const again = await raw(edge.url, '/simple/edge-demo/', { headers: { accept: SIMPLE_JSON, 'if-none-match': String(page.headers.etag) } });
      assert.equal(again.status, 304);
      assert.equal(again.headers['x-pypi-last-serial'], page.headers['x-pypi-last-serial']);
      const moved = await raw(edge.url, '/simple/Edge_Other?format=text/html');
      assert.equal(moved.status, 301);
      assert.equal(moved.headers.location, '/simple/edge-other/?format=text/html');
      const release = await raw(edge.url, '/pypi/Edge.Demo/1.1.0/json');
      assert.equal(release.status, 301);
      assert.equal(release.headers.location, '/pypi/edge-demo/1.1/json');
      const ready = await raw(edge.url, '/_ready');
      assert.equal(ready.status, 200);
      const doc = JSON.parse(ready.body.toString()) as { serial: number; ageSeconds: number };
      const originSerial = Number((await raw(origin.url, '/simple/')).headers['x-pypi-last-serial']);
      assert.equal(doc.serial, originSerial);
      assert.ok(doc.ageSeconds >= 0 && doc.ageSeconds < 600);
      assert.equal((await raw(edge.url, '/_health')).status, 200);
    }
  });

  test('pip installs through the edge, and through redirect mode', async () => {
    const file = JSON.parse((await raw(redirectEdge.url, '/simple/edge-demo/', { headers: { accept: SIMPLE_JSON } })).body.toString()) as { files: { url: string }[] };
    const path = new URL(file.files[0]!.url, `${redirectEdge.url}/simple/edge-demo/`).pathname;
    const redirected = await raw(redirectEdge.url, path);
    assert.equal(redirected.status, 302);
    assert.equal(redirected.headers.location, `${s3Edge.url}${path}`);

    for (const edge of [folderEdge, redirectEdge]) {
      const venv = await makeVenv(work);
      const r = await venv.pip(['install', '--index-url', `${edge.url}/simple/`, 'edge-other']);
      assert.equal(r.code, 0, `pip through ${edge.url} failed:\n${r.stdout}\n${r.stderr}`);
      const check = await run(venv.python, ['-c', 'import edge_demo, edge_other; print(edge_demo.VALUE, edge_other.VALUE)']);
      assert.equal(check.stdout.trim(), 'demo-1.1 other-0.1');
      await rm(venv.dir, { recursive: true, force: true });
    }
  });

  test('bad requests get clear 4xx answers and never a file outside the tree', async () => {
    const traversals = [
      '/../secret.txt',
      '/simple/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/simple/%2E%2E/%2e%2e/secret.txt',
      '/packages/..%2f..%2fsecret.txt',
      '/packages/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/simple\\..\\..\\secret.txt',
      '/simple/%5c..%5c..%5csecret.txt',
      '/simple/.%2e/.%2e/secret.txt',
    ];
    for (const edge of [folderEdge, s3Edge, redirectEdge]) {
      for (const path of traversals) {
        const r = await raw(edge.url, path);
        assert.equal(r.status, 400, `${path} on ${edge.url}`);
        assert.match(r.body.toString(), /^400 Bad Request: /);
        assert.ok(!r.body.includes(SECRET));
      }
      for (const path of ['/.tmp/', `/.tmp/${process.pid}-00000000-half-written`, `/%2etmp/${process.pid}-00000000-half-written`, '/pyedge-status.json', '/secret.txt']) {
        const r = await raw(edge.url, path);
        assert.equal(r.status, 404, `${path} on ${edge.url}`);
        assert.ok(!r.body.includes('half a page'));
      }
      const long = await raw(edge.url, `/simple/${'x'.repeat(6000)}/`);
      assert.equal(long.status, 414);
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        const r = await raw(edge.url, '/simple/', { method });
        assert.equal(r.status, 405, method);
        assert.equal(r.headers.allow, 'GET, HEAD');
      }
    }
    for (const edge of [folderEdge, s3Edge]) {
      const page = JSON.parse((await raw(edge.url, '/simple/edge-big/', { headers: { accept: SIMPLE_JSON } })).body.toString()) as { files: { url: string; size: number }[] };
      const path = new URL(page.files[0]!.url, `${edge.url}/simple/edge-big/`).pathname;
      const size = page.files[0]!.size;
      const beyond = await raw(edge.url, path, { headers: { range: `bytes=${size}-` } });
      assert.equal(beyond.status, 416);
      assert.equal(beyond.headers['content-range'], `bytes */${size}`);
      assert.equal((await raw(edge.url, path, { headers: { range: 'bytes=-0' } })).status, 416);
      // Malformed or multiple ranges are ignored, as RFC 9110 allows: the whole file.
      const multi = await raw(edge.url, path, { headers: { range: 'bytes=0-1,5-6' } });
      assert.equal(multi.status, 200);
      assert.equal(multi.body.length, size);
      const missing = await raw(edge.url, '/simple/no-such-project/');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.toString(), "404 Not Found: there is no project named 'no-such-project' on this index.\n");
    }
  });
});
