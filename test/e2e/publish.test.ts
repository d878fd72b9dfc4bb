/**
 * The publisher end to end: `pyedge serve` + `pyedge publish --watch` into a
 * folder that Debian's nginx serves. twine and plain form uploads reach the
 * tree within seconds and pip installs from nginx; yanks and removals flow
 * through; every page of the tree equals the origin's bytes at the same serial;
 * `pyedge verify` passes, catches a modified or replayed page, and `--repair`
 * fixes it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pyedge, run, startPyedge, type Service } from './helpers/processes.js';
import { makeVenv, twineUpload } from './helpers/python.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { freePort, startNginx, type RunningNginx } from './helpers/nginx.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';
const SIMPLE_HTML = 'application/vnd.pypi.simple.v1+html';

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

async function fileText(path: string): Promise<string | null> {
  return readFile(path, 'utf8').catch(() => null);
}

async function originBytes(url: string, accept?: string): Promise<Buffer> {
  const res = await fetch(url, accept ? { headers: { accept } } : {});
  assert.equal(res.status, 200, url);
  return Buffer.from(await res.arrayBuffer());
}

describe('pyedge publish to a folder served by nginx', () => {
  let work: string;
  let data: string;
  let tree: string;
  let keyFile: string;
  let origin: Service;
  let publisher: Service;
  let nginx: RunningNginx;
  let token: string;
  let publicUrl: string;
  /** The pages of pub-demo right after its first upload, for the replay check. */
  let firstPages: Map<string, Buffer>;

  const treeState = async (): Promise<{ serial: number; rootSerial: number } | null> => {
    const text = await fileText(join(tree, 'pyedge-state.json'));
    return text === null ? null : (JSON.parse(text) as { serial: number; rootSerial: number });
  };
  const originSerial = async (): Promise<number> =>
    ((await (await fetch(`${origin.url}/changes?since=0&limit=1`)).json()) as { last_serial: number }).last_serial;
  const caughtUp = async (): Promise<void> => {
    const serial = await originSerial();
    // The root's per-project serials follow within --root-interval (1 s here; publish-status.test.ts shows the lag).
    await waitFor(`the tree to reach serial ${serial}`, async () => {
      const state = await treeState();
      return state?.serial === serial && state.rootSerial === serial;
    });
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-publish-'));
    data = join(work, 'data');
    tree = join(work, 'tree');
    keyFile = join(work, 'publisher-key.pem');
    const nginxPort = await freePort();
    publicUrl = `http://127.0.0.1:${nginxPort}`;
    origin = await startPyedge(['serve', '--data', data, '--port', '0']);
    token = (await pyedge(['token', 'create', '--data', data, '--user', 'pat'])).stdout.trim();
    publisher = await startPyedge(
      ['publish', '--source', origin.url, '--target', tree, '--watch', '--public-url', publicUrl, '--key-file', keyFile, '--interval', '300', '--root-interval', '1s'],
      { ready: /following (\S+?)\/? into/ },
    );
    nginx = await startNginx(tree, { port: nginxPort });
  });

  after(async () => {
    await publisher?.kill();
    await nginx?.stop();
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('twine and form uploads reach the tree within seconds, and pip installs from nginx', async () => {
    const twineWheel = await buildWheel(work, { name: 'pub-demo', version: '1.0', module: 'pub_demo', value: 'demo-1.0', metadataVersion: '2.1' });
    const t = await twineUpload(`${origin.url}/legacy/`, token, [twineWheel]);
    assert.equal(t.code, 0, `twine failed:\n${t.stdout}\n${t.stderr}`);
    const ms = await waitFor('the twine upload in the tree', async () => (await fileText(join(tree, 'simple/pub-demo/index.html')))?.includes(basename(twineWheel)) ?? false);
    assert.ok(ms < 3000, `visible after ${ms} ms`);
    await caughtUp();
    firstPages = new Map();
    for (const f of ['index.html', 'index.v1_html', 'index.v1_json', 'serversig']) firstPages.set(f, await readFile(join(tree, 'simple/pub-demo', f)));

    const formWheel = await buildWheel(work, { name: 'pub-other', version: '0.5', module: 'pub_other', value: 'other-0.5' });
    const answer = await formUpload(origin.url, formWheel, { token });
    assert.equal(answer.status, 200, answer.body);
    await waitFor('the form upload in the tree', async () => (await fileText(join(tree, 'simple/pub-other/index.html')))?.includes(basename(formWheel)) ?? false);
    await waitFor('the root to list pub-other', async () => (await fileText(join(tree, 'simple/index.html')))?.includes('href="pub-other/"') ?? false);

    const venv = await makeVenv(work);
    const r = await venv.pip(['install', '--index-url', `${nginx.url}/simple/`, 'pub-demo', 'pub-other']);
    assert.equal(r.code, 0, `pip install from nginx failed:\n${r.stdout}\n${r.stderr}`);
    const imp = await run(venv.python, ['-c', 'import pub_demo, pub_other; print(pub_demo.VALUE, pub_other.VALUE)']);
    assert.equal(imp.stdout.trim(), 'demo-1.0 other-0.5');
    // nginx serves the JSON API with file URLs on the tree, not on the origin.
    const api = (await (await fetch(`${nginx.url}/pypi/pub-demo/json`)).json()) as { urls: { url: string }[] };
    assert.ok(api.urls[0]!.url.startsWith(`${publicUrl}/packages/`), api.urls[0]!.url);
    assert.equal((await fetch(api.urls[0]!.url)).status, 200);
  });

  test('a yank and a removed file show up in the tree', async () => {
    const y = await pyedge(['project', 'yank', 'pub-demo', '1.0', '--data', data, '--reason', 'broken build']);
    assert.equal(y.code, 0, y.stderr);
    await waitFor('the yank in the tree', async () => (await fileText(join(tree, 'simple/pub-demo/index.html')))?.includes('data-yanked="broken build"') ?? false);

    const wheel = await buildWheel(work, { name: 'pub-demo', version: '1.1', module: 'pub_demo', value: 'demo-1.1', metadataVersion: '2.1' });
    assert.equal((await formUpload(origin.url, wheel, { token })).status, 200);
    // The three encodings of a page are written one after the other: wait for the last one.
    await waitFor('pub-demo 1.1 in the tree', async () => (await fileText(join(tree, 'simple/pub-demo/index.v1_json')))?.includes(basename(wheel)) ?? false);
    const page = JSON.parse((await fileText(join(tree, 'simple/pub-demo/index.v1_json')))!) as { files: { filename: string; url: string }[] };
    const filePath = join(tree, 'simple/pub-demo', page.files.find((f) => f.filename === basename(wheel))!.url);
    assert.notEqual(await fileText(filePath), null, 'the file was copied');

    const rm1 = await pyedge(['project', 'remove-file', 'pub-demo', basename(wheel), '--data', data]);
    assert.equal(rm1.code, 0, rm1.stderr);
    await waitFor('the removal in the tree', async () => !((await fileText(join(tree, 'simple/pub-demo/index.html')))?.includes(basename(wheel)) ?? true));
    await waitFor('the removed file deleted', async () => (await fileText(filePath)) === null);
    await waitFor('its metadata deleted', async () => (await fileText(`${filePath}.metadata`)) === null);
  });

  test('every page equals the origin bytes at the same serial, and pyedge verify passes', async () => {
    await caughtUp();
    const serial = await originSerial();
    const pages: [string, string, string | undefined][] = [
      ['simple/index.html', '/simple/', 'text/html'],
      ['simple/index.v1_html', '/simple/', SIMPLE_HTML],
      ['simple/index.v1_json', '/simple/', SIMPLE_JSON],
      ['last-modified', '/last-modified', undefined],
    ];
    const root = JSON.parse((await fileText(join(tree, 'simple/index.v1_json')))!) as { projects: { name: string }[] };
    assert.deepEqual(root.projects.map((p) => p.name).sort(), ['pub-demo', 'pub-other']);
    for (const { name } of root.projects) {
      pages.push([`simple/${name}/index.html`, `/simple/${name}/`, 'text/html']);
      pages.push([`simple/${name}/index.v1_html`, `/simple/${name}/`, SIMPLE_HTML]);
      pages.push([`simple/${name}/index.v1_json`, `/simple/${name}/`, SIMPLE_JSON]);
    }
    for (const [key, path, accept] of pages) {
      assert.deepEqual(await readFile(join(tree, key)), await originBytes(`${origin.url}${path}`, accept), `${key} equals the origin's ${path}`);
    }
    // JSON API pages: the origin's bytes with file URLs moved from the origin to the tree.
    let apiPages = 0;
    for (const { name } of root.projects) {
      const api = JSON.parse((await fileText(join(tree, `pypi/${name}/json`)))!) as { releases: Record<string, unknown> };
      for (const path of [`pypi/${name}/json`, ...Object.keys(api.releases).map((v) => `pypi/${name}/${v}/json`)]) {
        const mine = (await readFile(join(tree, path))).toString().split(`"url":"${publicUrl}/packages/`).join(`"url":"${origin.url}/packages/`);
        assert.equal(mine, (await originBytes(`${origin.url}/${path}`)).toString(), `${path} equals the origin's modulo file URLs`);
        apiPages++;
      }
    }
    assert.ok(apiPages >= 4, `compared ${apiPages} JSON API pages`);
    assert.equal(await originSerial(), serial, 'nothing changed while comparing');
    // nginx serves the tree's bytes.
    assert.deepEqual(await originBytes(`${nginx.url}/simple/`), await readFile(join(tree, 'simple/index.html')));

    const v = await pyedge(['verify', '--target', tree]);
    assert.equal(v.code, 0, `verify failed:\n${v.stdout}\n${v.stderr}`);
    assert.match(v.stdout, /^tree OK: 2 projects, \d+ files, serial \d+$/m);
  });

  test('SIGTERM stops the publisher with exit 0', async () => {
    assert.equal(await publisher.stop(), 0, publisher.logs());
  });

  test('verify catches a modified page and one replayed from an older serial; --repair fixes both', async () => {
    const repair = ['verify', '--target', tree, '--repair', '--source', origin.url, '--public-url', publicUrl, '--key-file', keyFile];
    const page = join(tree, 'simple/pub-demo/index.html');
    const good = await readFile(page);
    await writeFile(page, good.toString().replace('</body>', '<a href="../../packages/evil.tar.gz#sha256=00">evil</a></body>'));
    const modified = await pyedge(['verify', '--target', tree]);
    assert.equal(modified.code, 1, modified.stdout);
    assert.match(modified.stdout, /problem: simple\/pub-demo\/serversig: page bytes do not match the signed hash/);
    const fixed = await pyedge(repair);
    assert.equal(fixed.code, 0, `repair failed:\n${fixed.stdout}\n${fixed.stderr}`);
    assert.deepEqual(await readFile(page), good);

    for (const [f, bytes] of firstPages) await writeFile(join(tree, 'simple/pub-demo', f), bytes);
    const replayed = await pyedge(['verify', '--target', tree]);
    assert.equal(replayed.code, 1, replayed.stdout);
    assert.match(replayed.stdout, /problem: simple\/pub-demo\/index\.v1_json: page is at serial \d+, older than the root's \d+ \(replayed\?\)/);
    assert.match(replayed.stdout, /problem: simple\/pub-demo\/serversig: signature is for serial \d+, older than \d+/);
    const again = await pyedge(repair);
    assert.equal(again.code, 0, `repair failed:\n${again.stdout}\n${again.stderr}`);
    assert.deepEqual(await readFile(page), good);
    assert.deepEqual(await readFile(join(tree, 'simple/pub-demo/index.v1_json')), await originBytes(`${origin.url}/simple/pub-demo/`, SIMPLE_JSON));
    assert.equal((await pyedge(['verify', '--target', tree])).code, 0);
  });
});
