/** PEP 381 pages of the origin: /serverkey, /serversig/<name>, /last-modified; `pyedge key`. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { verifyPage, type ServerSig } from '../../src/core/signing.js';

describe('PEP 381 pages', () => {
  let work: string;
  let data: string;
  let origin: Service;
  let token: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-pep381-'));
    data = join(work, 'data');
    origin = await startPyedge(['serve', '--data', data, '--port', '0']);
    token = (await pyedge(['token', 'create', '--data', data, '--user', 'fay'])).stdout.trim();
    const a = await formUpload(origin.url, await buildWheel(work, { name: 'signed-demo', version: '1.0' }), { token });
    assert.equal(a.status, 200, a.body);
  });

  after(async () => {
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('/serverkey is the key pyedge key show prints', async () => {
    const served = await (await fetch(`${origin.url}/serverkey`)).text();
    const shown = await pyedge(['key', 'show', '--data', data]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.ok(shown.stdout.endsWith(served), 'same PEM');
    assert.match(served, /^-----BEGIN PUBLIC KEY-----/);
  });

  test('/serversig signs the served HTML and JSON pages with name and serial', async () => {
    const key = createPublicKey(await (await fetch(`${origin.url}/serverkey`)).text());
    const sigRes = await fetch(`${origin.url}/serversig/signed-demo`);
    const sig = (await sigRes.json()) as ServerSig;
    const htmlRes = await fetch(`${origin.url}/simple/signed-demo/`, { headers: { accept: 'text/html' } });
    const html = Buffer.from(await htmlRes.arrayBuffer());
    const json = Buffer.from(await (await fetch(`${origin.url}/simple/signed-demo/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } })).arrayBuffer());
    assert.equal(sig.serial, Number(htmlRes.headers.get('x-pypi-last-serial')));
    assert.equal(verifyPage(key, sig, { name: 'signed-demo' }, 'html', html), null);
    assert.equal(verifyPage(key, sig, { name: 'signed-demo' }, 'json', json), null);
    assert.notEqual(verifyPage(key, sig, { name: 'signed-demo' }, 'html', Buffer.concat([html, Buffer.from(' ')])), null);

    // After a new upload the old signature no longer passes for a reader that saw the new serial.
    const a = await formUpload(origin.url, await buildWheel(work, { name: 'signed-demo', version: '2.0' }), { token });
    assert.equal(a.status, 200);
    const newer = (await (await fetch(`${origin.url}/serversig/signed-demo`)).json()) as ServerSig;
    assert.ok(newer.serial > sig.serial);
    assert.match(verifyPage(key, sig, { name: 'signed-demo', minSerial: newer.serial }, 'html', html)!, /older than/);
    assert.equal((await fetch(`${origin.url}/serversig/nope`)).status, 404);
  });

  test('/last-modified gives the time of the last change in PEP 381 form', async () => {
    const text = await (await fetch(`${origin.url}/last-modified`)).text();
    assert.match(text, /^\d{8}T\d\d:\d\d:\d\d\n$/);
    const now = new Date();
    assert.ok(text.startsWith(String(now.getUTCFullYear())));
  });

  test('/local-stats/days/ counts file downloads per day, file and client', async () => {
    const page = (await (await fetch(`${origin.url}/simple/signed-demo/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } })).json()) as {
      files: { filename: string; url: string }[];
    };
    const file = page.files[0]!;
    const url = new URL(file.url, `${origin.url}/simple/signed-demo/`);
    for (const ua of ['pip/24.0 {"installer":{"name":"pip"}}', 'pip/24.0 {"x":1}', 'uv/0.5.0']) {
      const r = await fetch(url, { headers: { 'user-agent': ua } });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
    await fetch(url, { method: 'HEAD', headers: { 'user-agent': 'curl/8' } });
    // Counts reach the database every few seconds.
    const day = new Date().toISOString().slice(0, 10);
    let csv = '';
    for (let i = 0; i < 40 && !csv.includes('uv/0.5.0'); i++) {
      await new Promise((r) => setTimeout(r, 250));
      const res = await fetch(`${origin.url}/local-stats/days/${day}.csv`);
      csv = res.status === 200 ? await res.text() : '';
    }
    assert.equal(csv, `signed-demo,${file.filename},pip/24.0,2\nsigned-demo,${file.filename},uv/0.5.0,1\n`);
    const index = await (await fetch(`${origin.url}/local-stats/days/`)).text();
    assert.match(index, new RegExp(`href="${day}\\.bz2"`));
    const bz = await fetch(`${origin.url}/local-stats/days/${day}.bz2`);
    assert.equal(bz.status, 200);
    assert.equal(Buffer.from(await bz.arrayBuffer()).subarray(0, 3).toString(), 'BZh');
    assert.equal((await fetch(`${origin.url}/local-stats/days/1999-01-01.bz2`)).status, 404);
  });

  test('pyedge key rotate makes a new key and keeps the old one', async () => {
    const before = await pyedge(['key', 'show', '--data', data]);
    const rotated = await pyedge(['key', 'rotate', '--data', data]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const oldId = /^key (\w+)/.exec(before.stdout)![1]!;
    assert.match(rotated.stdout, new RegExp(`^retired key ${oldId}\\nkey (?!${oldId})\\w+\\n`));
    const missing = await pyedge(['key', 'show', '--key-file', join(work, 'nope.pem')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Cannot read the signing key/);
  });
});
