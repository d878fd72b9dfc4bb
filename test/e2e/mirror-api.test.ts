/**
 * The mirror-facing APIs of `./bin/pyedge serve`: Warehouse's JSON API over
 * HTTP, and the XML-RPC API as Python's own xmlrpc.client calls it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, run, startPyedge, type Service } from './helpers/processes.js';
import { buildSdist, buildWheel, formUpload } from './helpers/distributions.js';
import { SYSTEM_PYTHON, isolatedEnv } from './helpers/python.js';
import { WAREHOUSE_PROJECT_SHAPE, WAREHOUSE_RELEASE_SHAPE, shapeMismatches } from '../../src/render/json-api.fixture.js';

/** Evaluates a Python expression with `s` bound to a ServerProxy; prints its value as JSON, or the fault. */
const RPC_PY = `
import json, sys, xmlrpc.client
s = xmlrpc.client.ServerProxy(sys.argv[1])
try:
    print(json.dumps({"value": eval(sys.argv[2])}))
except xmlrpc.client.Fault as f:
    print(json.dumps({"fault": [f.faultCode, f.faultString]}))
`;

/** POSTs raw bytes (argv[2]) and reads the answer with xmlrpc.client.loads, as a client would. */
const RAW_PY = `
import json, sys, urllib.request, xmlrpc.client
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={"Content-Type": "text/xml"})
with urllib.request.urlopen(req) as r:
    status, ctype, body = r.status, r.headers["Content-Type"], r.read()
try:
    xmlrpc.client.loads(body)
    print(json.dumps({"status": status, "type": ctype, "fault": None}))
except xmlrpc.client.Fault as f:
    print(json.dumps({"status": status, "type": ctype, "fault": [f.faultCode, f.faultString]}))
`;

type Rpc = { value: unknown } | { fault: [number, string] };
type ChangeRow = [string, string | null, number, string, number];

interface FileJson {
  filename: string;
  url: string;
  digests: { sha256: string; md5: string; blake2b_256: string };
  size: number;
  upload_time: string;
  upload_time_iso_8601: string;
  requires_python: string | null;
}
interface ApiJson {
  info: Record<string, unknown> & { version: string; name: string };
  last_serial: number;
  releases?: Record<string, FileJson[]>;
  urls: FileJson[];
}

describe('mirror APIs: JSON and XML-RPC', () => {
  let work: string;
  let origin: Service;
  let token: string;
  let startedAt: number;
  const sha256 = new Map<string, string>();

  const upload = async (path: string): Promise<void> => {
    sha256.set(path.slice(path.lastIndexOf('/') + 1), createHash('sha256').update(await readFile(path)).digest('hex'));
    const a = await formUpload(origin.url, path, { token });
    assert.equal(a.status, 200, a.body);
  };

  const rpc = async (expression: string, endpoint = '/pypi'): Promise<Rpc> => {
    const r = await run(SYSTEM_PYTHON, ['-c', RPC_PY, `${origin.url}${endpoint}`, expression], { env: isolatedEnv() });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Rpc;
  };
  const value = async <T>(expression: string, endpoint?: string): Promise<T> => {
    const r = await rpc(expression, endpoint);
    assert.ok('value' in r, `${expression} faulted: ${JSON.stringify(r)}`);
    return r.value as T;
  };
  const fault = async (expression: string): Promise<[number, string]> => {
    const r = await rpc(expression);
    assert.ok('fault' in r, `${expression} did not fault: ${JSON.stringify(r)}`);
    return r.fault;
  };

  before(async () => {
    startedAt = Math.floor(Date.now() / 1000);
    work = await mkdtemp(join(tmpdir(), 'pyedge-mirror-api-'));
    const data = join(work, 'data');
    origin = await startPyedge(['serve', '--data', data, '--port', '0', '--page-max-age', '2m']);
    token = (await pyedge(['token', 'create', '--data', data, '--user', 'mira'])).stdout.trim();
    await upload(
      await buildWheel(work, {
        name: 'Mirror_Demo',
        version: '1.0',
        headers: [
          'Summary: Mirrors things',
          'Requires-Python: >=3.8',
          'Requires-Dist: requests>=2',
          'Home-page: https://mirror.example',
          'Project-URL: Source, https://git.example/mirror',
          'Classifier: Programming Language :: Python :: 3',
          'License-Expression: MIT',
        ],
      }),
    );
    await upload(
      await buildSdist(work, 'mirror_demo-1.0.tar.gz', {
        'mirror_demo-1.0/PKG-INFO': 'Metadata-Version: 2.1\nName: Mirror_Demo\nVersion: 1.0\n',
        'mirror_demo-1.0/setup.py': 'print(1)\n',
      }),
    );
    await upload(await buildWheel(work, { name: 'Mirror_Demo', version: '2.0b1' }));
    await upload(await buildWheel(work, { name: 'Mirror_Demo', version: '1.5' }));
    await upload(await buildWheel(work, { name: 'other.proj', version: '0.1' }));
  });

  after(async () => {
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
  });

  describe('XML-RPC with Python\'s xmlrpc.client', () => {
    test('changelog_last_serial and changelog_since_serial agree, with Warehouse\'s row shape', async () => {
      const last = await value<number>('s.changelog_last_serial()');
      const rows = await value<ChangeRow[]>('s.changelog_since_serial(0)');
      assert.equal(last, 11, 'create, 3 new releases and 4 files; create, 1 release and 1 file');
      assert.deepEqual(rows.map((r) => r[4]), Array.from({ length: last }, (_, i) => i + 1), 'every serial, in order, no gaps');
      const now = Math.floor(Date.now() / 1000);
      for (const [name, version, ts, action, serial] of rows) {
        assert.equal(typeof name, 'string');
        assert.ok(version === null || typeof version === 'string', `serial ${serial}`);
        assert.ok(Number.isInteger(ts) && ts >= startedAt - 1 && ts <= now + 1, `timestamp ${ts}`);
        assert.equal(typeof action, 'string');
      }
      assert.deepEqual(rows[0]!.slice(0, 2), ['Mirror_Demo', null]);
      assert.equal(rows[0]![3], 'create');
      assert.ok(rows.some((r) => r[0] === 'Mirror_Demo' && r[1] === '2.0b1' && r[3] === 'new release'));
      assert.ok(rows.some((r) => r[3] === 'add py3 file Mirror_Demo-1.0-py3-none-any.whl'), JSON.stringify(rows));
      assert.ok(rows.some((r) => r[0] === 'other.proj' && r[3] === 'create'));
    });

    test('changelog_since_serial: a negative serial gives everything, the last or a later one nothing', async () => {
      const last = await value<number>('s.changelog_last_serial()');
      const all = await value<ChangeRow[]>('s.changelog_since_serial(0)');
      assert.deepEqual(await value<ChangeRow[]>('s.changelog_since_serial(-100)'), all);
      assert.deepEqual(await value<ChangeRow[]>(`s.changelog_since_serial(${last})`), []);
      assert.deepEqual(await value<ChangeRow[]>(`s.changelog_since_serial(${last + 1000})`), []);
      const tail = await value<ChangeRow[]>(`s.changelog_since_serial(${last - 3})`);
      assert.deepEqual(tail, all.slice(-3));
    });

    test('changelog by time, with and without ids', async () => {
      const all = await value<ChangeRow[]>('s.changelog_since_serial(0)');
      const withIds = await value<ChangeRow[]>(`s.changelog(${startedAt - 60}, True)`);
      assert.deepEqual(withIds, all);
      const plain = await value<unknown[][]>(`s.changelog(${startedAt - 60})`);
      assert.deepEqual(plain, all.map((r) => r.slice(0, 4)));
      assert.deepEqual(await value<unknown[]>(`s.changelog(${Math.floor(Date.now() / 1000) + 3600})`), []);
    });

    test('list_packages and list_packages_with_serial give display names and project serials', async () => {
      assert.deepEqual((await value<string[]>('s.list_packages()')).sort(), ['Mirror_Demo', 'other.proj']);
      const serials = await value<Record<string, number>>('s.list_packages_with_serial()');
      assert.deepEqual(Object.keys(serials).sort(), ['Mirror_Demo', 'other.proj']);
      for (const [name, normalized] of [['Mirror_Demo', 'mirror-demo'], ['other.proj', 'other-proj']] as const) {
        const page = await fetch(`${origin.url}/simple/${normalized}/`);
        assert.equal(serials[name], Number(page.headers.get('x-pypi-last-serial')), name);
      }
      assert.equal(serials['other.proj'], await value<number>('s.changelog_last_serial()'), 'the last upload took the last serial');
    });

    test('package_releases: the latest final release, or every version with show_hidden', async () => {
      assert.deepEqual(await value<string[]>("s.package_releases('mirror-demo')"), ['1.5']);
      assert.deepEqual(await value<string[]>("s.package_releases('MIRROR_demo', True)"), ['2.0b1', '1.5', '1.0']);
      assert.deepEqual(await value<string[]>("s.package_releases('no-such-project')"), []);
    });

    test('release_urls lists the files with Warehouse\'s keys and working URLs', async () => {
      const files = await value<Record<string, unknown>[]>("s.release_urls('Mirror_Demo', '1.0')");
      assert.deepEqual(files.map((f) => f.filename), ['Mirror_Demo-1.0-py3-none-any.whl', 'mirror_demo-1.0.tar.gz']);
      for (const f of files) {
        assert.deepEqual(Object.keys(f).sort(), [
          'comment_text', 'digests', 'downloads', 'filename', 'has_sig', 'md5_digest', 'packagetype', 'path',
          'python_version', 'sha256_digest', 'size', 'upload_time', 'upload_time_iso_8601', 'url',
        ]);
        const name = f.filename as string;
        assert.equal(f.sha256_digest, sha256.get(name));
        assert.deepEqual(Object.keys(f.digests as object).sort(), ['md5', 'sha256']);
        assert.match(f.upload_time_iso_8601 as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/);
        assert.equal(f.downloads, -1);
        assert.equal(f.has_sig, false);
        assert.equal(f.url, `${origin.url}/${f.path as string}`);
        const res = await fetch(f.url as string);
        assert.equal(res.status, 200);
        assert.equal(createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex'), sha256.get(name));
      }
      assert.equal(files.find((f) => f.filename === 'mirror_demo-1.0.tar.gz')?.packagetype, 'sdist');
      assert.deepEqual(await value<unknown[]>("s.release_urls('Mirror_Demo', '9.9')"), []);
      assert.deepEqual(await value<unknown[]>("s.release_urls('nope', '1.0')"), []);
    });

    test('release_data gives the release metadata in Warehouse\'s struct', async () => {
      const d = await value<Record<string, unknown>>("s.release_data('mirror.demo', '1.0')");
      assert.deepEqual(Object.keys(d).sort(), [
        '_pypi_ordering', 'author', 'author_email', 'bugtrack_url', 'cheesecake_code_kwalitee_id', 'cheesecake_documentation_id',
        'cheesecake_installability_id', 'classifiers', 'description', 'docs_url', 'download_url', 'downloads', 'home_page', 'keywords',
        'license', 'maintainer', 'maintainer_email', 'name', 'obsoletes', 'obsoletes_dist', 'package_url', 'platform', 'project_url',
        'provides', 'provides_dist', 'release_url', 'requires', 'requires_dist', 'requires_external', 'requires_python', 'stable_version',
        'summary', 'version',
      ]);
      assert.equal(d.name, 'Mirror_Demo');
      assert.equal(d.version, '1.0');
      assert.equal(d.summary, 'Mirrors things');
      assert.equal(d.requires_python, '>=3.8');
      assert.deepEqual(d.requires_dist, ['requests>=2']);
      assert.deepEqual(d.classifiers, ['Programming Language :: Python :: 3']);
      assert.deepEqual(d.project_url, ['Source, https://git.example/mirror']);
      assert.equal(d.home_page, 'https://mirror.example');
      assert.equal(d.stable_version, null, 'nil reaches Python as None');
      assert.equal(d._pypi_ordering, 0);
      assert.equal(d.release_url, `${origin.url}/project/Mirror_Demo/1.0/`);
      assert.deepEqual(d.downloads, { last_day: -1, last_week: -1, last_month: -1 });
      assert.deepEqual(await value<object>("s.release_data('Mirror_Demo', '9.9')"), {});
    });

    test('/RPC2 answers the same calls', async () => {
      assert.equal(await value<number>('s.changelog_last_serial()', '/RPC2'), await value<number>('s.changelog_last_serial()'));
    });

    test('unknown methods and wrong parameters are Faults, not errors', async () => {
      const [code, message] = await fault('s.search({"name": "x"})');
      assert.equal(code, -32601);
      assert.match(message, /requested method not found: search/);
      const [typeCode, typeMessage] = await fault("s.changelog_since_serial('5')");
      assert.equal(typeCode, -32602);
      assert.match(typeMessage, /serial must be an int, not a string/);
      assert.equal((await fault('s.changelog_since_serial(True)'))[0], -32602, 'a boolean is not an int');
      assert.equal((await fault('s.changelog_since_serial()'))[0], -32602);
      assert.equal((await fault('s.package_releases("x", 1)'))[0], -32602, 'an int is not a boolean');
    });

    test('a malformed body gets a Fault with HTTP 200 and text/xml', async () => {
      for (const body of ['garbage', '<methodCall><methodName>x</methodName>', '<methodCall><params/></methodCall>']) {
        const r = await run(SYSTEM_PYTHON, ['-c', RAW_PY, `${origin.url}/pypi`, body], { env: isolatedEnv() });
        assert.equal(r.code, 0, r.stderr);
        const out = JSON.parse(r.stdout) as { status: number; type: string; fault: [number, string] | null };
        assert.equal(out.status, 200);
        assert.match(out.type, /^text\/xml/);
        assert.ok(out.fault, `${body}: ${r.stdout}`);
        assert.ok([-32700, -32600].includes(out.fault[0]), `${body}: ${out.fault.join(' ')}`);
      }
      // The server is unharmed.
      assert.ok((await value<number>('s.changelog_last_serial()')) > 0);
    });
  });

  describe('JSON API over HTTP', () => {
    const getJson = async (path: string): Promise<{ res: Response; body: ApiJson }> => {
      const res = await fetch(`${origin.url}${path}`, { redirect: 'manual' });
      assert.equal(res.status, 200, path);
      return { res, body: (await res.json()) as ApiJson };
    };

    test('/pypi/<name>/json: Warehouse\'s shape, headers, the latest final release, every release', async () => {
      const { res, body } = await getJson('/pypi/mirror-demo/json');
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.equal(res.headers.get('cache-control'), 'max-age=120, public');
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.match(res.headers.get('etag')!, /^"[^"]+"$/);
      assert.equal(Number(res.headers.get('x-pypi-last-serial')), body.last_serial);
      assert.deepEqual(shapeMismatches(body, WAREHOUSE_PROJECT_SHAPE), []);
      assert.equal(body.info.name, 'Mirror_Demo');
      assert.equal(body.info.version, '1.5', 'the prerelease 2.0b1 is newer but not chosen');
      assert.deepEqual(Object.keys(body.releases!).sort(), ['1.0', '1.5', '2.0b1']);
      assert.deepEqual(body.urls.map((f) => f.filename), ['Mirror_Demo-1.5-py3-none-any.whl']);
      assert.deepEqual(body.releases!['1.0']!.map((f) => f.filename), ['Mirror_Demo-1.0-py3-none-any.whl', 'mirror_demo-1.0.tar.gz']);
      const wheel = body.releases!['1.0']![0]!;
      assert.equal(wheel.digests.sha256, sha256.get(wheel.filename));
      assert.equal(wheel.requires_python, '>=3.8');
      assert.equal(wheel.upload_time, wheel.upload_time_iso_8601.slice(0, 19));
      assert.ok(wheel.url.startsWith(`${origin.url}/packages/`), wheel.url);
      const file = await fetch(wheel.url);
      assert.equal(createHash('sha256').update(Buffer.from(await file.arrayBuffer())).digest('hex'), wheel.digests.sha256);
    });

    test('/pypi/<name>/<version>/json: one release, no `releases` key', async () => {
      const { body } = await getJson('/pypi/mirror-demo/1.0/json');
      assert.deepEqual(shapeMismatches(body, WAREHOUSE_RELEASE_SHAPE), []);
      assert.ok(!('releases' in body));
      assert.equal(body.info.version, '1.0');
      assert.equal(body.info.summary, 'Mirrors things');
      assert.deepEqual(body.info.requires_dist, ['requests>=2']);
      assert.equal(body.info.license_expression, 'MIT');
      assert.deepEqual(body.info.project_urls, { Homepage: 'https://mirror.example', Source: 'https://git.example/mirror' });
      assert.equal(body.urls.length, 2);
      const pre = await getJson('/pypi/mirror-demo/2.0b1/json');
      assert.equal(pre.body.info.version, '2.0b1');
      assert.equal((await getJson('/pypi/mirror-demo/1.0/json/')).body.info.version, '1.0');
    });

    test('non-normalized names and non-canonical versions redirect permanently', async () => {
      for (const [path, to] of [
        ['/pypi/Mirror_Demo/json', '/pypi/mirror-demo/json'],
        ['/pypi/Mirror.Demo/json/', '/pypi/mirror-demo/json/'],
        ['/pypi/MIRROR-DEMO/json?x=1', '/pypi/mirror-demo/json?x=1'],
        ['/pypi/Mirror_Demo/1.0/json', '/pypi/mirror-demo/1.0/json'],
        ['/pypi/mirror-demo/2.0.0b1/json', '/pypi/mirror-demo/2.0b1/json'],
        ['/pypi/mirror_demo/1.0.0/json', '/pypi/mirror-demo/1.0/json'],
      ]) {
        const res = await fetch(`${origin.url}${path}`, { redirect: 'manual' });
        assert.equal(res.status, 301, path);
        assert.equal(res.headers.get('location'), to, path);
      }
    });

    test('unknown projects and versions are 404 with a clear message and CORS headers', async () => {
      const none = await fetch(`${origin.url}/pypi/no-such-project/json`);
      assert.equal(none.status, 404);
      assert.equal(none.headers.get('access-control-allow-origin'), '*');
      assert.match(await none.text(), /no project named 'no-such-project'/);
      const version = await fetch(`${origin.url}/pypi/mirror-demo/9.9/json`);
      assert.equal(version.status, 404);
      assert.match(await version.text(), /'Mirror_Demo' has no release '9\.9'/);
      assert.equal((await fetch(`${origin.url}/pypi/nope/1.0/json`)).status, 404);
    });

    test('ETag and 304; a new upload changes the document, its ETag and its serial at once', async () => {
      const first = await fetch(`${origin.url}/pypi/mirror-demo/json`);
      const etag = first.headers.get('etag')!;
      const again = await fetch(`${origin.url}/pypi/mirror-demo/json`, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304);
      assert.equal(again.headers.get('x-pypi-last-serial'), first.headers.get('x-pypi-last-serial'));
      const releaseEtag = (await fetch(`${origin.url}/pypi/mirror-demo/1.0/json`)).headers.get('etag')!;
      assert.equal((await fetch(`${origin.url}/pypi/mirror-demo/1.0/json`, { headers: { 'if-none-match': releaseEtag } })).status, 304);

      await upload(await buildWheel(work, { name: 'Mirror_Demo', version: '1.6' }));
      const after = await fetch(`${origin.url}/pypi/mirror-demo/json`, { headers: { 'if-none-match': etag } });
      assert.equal(after.status, 200);
      assert.notEqual(after.headers.get('etag'), etag);
      assert.ok(Number(after.headers.get('x-pypi-last-serial')) > Number(first.headers.get('x-pypi-last-serial')));
      assert.equal(((await after.json()) as ApiJson).info.version, '1.6');
      assert.deepEqual(await value<string[]>("s.package_releases('mirror-demo')"), ['1.6']);
    });
  });
});
