/**
 * Origin down never corrupts the tree: while the origin is stopped the
 * publisher keeps retrying and the tree still verifies; once the origin is back
 * (same data, same port) the publisher catches up with a new upload by itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { freePort } from './helpers/nginx.js';

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('pyedge publish --watch while the origin goes down and comes back', () => {
  let work: string;
  let data: string;
  let tree: string;
  let port: number;
  let origin: Service;
  let publisher: Service;
  let token: string;

  const serve = (): Promise<Service> => startPyedge(['serve', '--data', data, '--port', String(port)]);
  const page = (name: string): Promise<string> => readFile(join(tree, 'simple', name, 'index.html'), 'utf8').catch(() => '');
  const upload = async (version: string): Promise<string> => {
    const wheel = await buildWheel(work, { name: 'steady', version, module: 'steady', value: version });
    const a = await formUpload(origin.url, wheel, { token });
    assert.equal(a.status, 200, a.body);
    return basename(wheel);
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-publish-down-'));
    data = join(work, 'data');
    tree = join(work, 'tree');
    port = await freePort();
    origin = await serve();
    token = (await pyedge(['token', 'create', '--data', data, '--user', 'olga'])).stdout.trim();
    publisher = await startPyedge(
      ['publish', '--source', origin.url, '--target', tree, '--watch', '--key-file', join(work, 'key.pem'), '--log-level', 'warn'],
      { ready: /following (\S+?)\/? into/ },
    );
  });

  after(async () => {
    await publisher?.kill();
    await origin?.kill();
    await rm(work, { recursive: true, force: true });
  });

  test('the tree keeps its last state while the origin is down, and catches up after', async () => {
    const first = await upload('1.0');
    await waitFor('the first upload in the tree', async () => (await page('steady')).includes(first), 5000);
    const serial = ((await (await fetch(`${origin.url}/changes?since=0&limit=1`)).json()) as { last_serial: number }).last_serial;
    const recorded = async (): Promise<number> => (JSON.parse(await readFile(join(tree, 'pyedge-state.json'), 'utf8')) as { serial: number }).serial;
    await waitFor(`the state to record serial ${serial}`, async () => (await recorded()) === serial, 5000);
    const state = await readFile(join(tree, 'pyedge-state.json'), 'utf8');

    assert.equal(await origin.stop(), 0);
    // Long enough for the publisher to notice and go through a few retries.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(publisher.process.exitCode, null, 'the publisher keeps running');
    const v = await pyedge(['verify', '--target', tree]);
    assert.equal(v.code, 0, `verify while the origin is down:\n${v.stdout}`);
    assert.equal(await readFile(join(tree, 'pyedge-state.json'), 'utf8'), state, 'nothing was recorded meanwhile');
    assert.match(publisher.logs(), /source unreachable; the tree keeps its last state; retrying/);

    origin = await serve();
    const second = await upload('1.1');
    await waitFor('the upload after the restart in the tree', async () => (await page('steady')).includes(second), 15_000);
    assert.ok((await page('steady')).includes(first));
    await waitFor('the state to move on', async () => (await recorded()) > serial, 5000);
    const after = await pyedge(['verify', '--target', tree]);
    assert.equal(after.code, 0, `verify after catching up:\n${after.stdout}`);
    assert.equal(await publisher.stop(), 0);
  });
});
