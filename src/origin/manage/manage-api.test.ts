import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { FolderBlobStore } from '../../blobstore/folder/folder-blob-store.js';
import { upload } from '../../db/contract-fixtures.js';
import type { Database } from '../../db/database.js';
import { SqliteDatabase } from '../../db/sqlite/sqlite-database.js';
import { resolveOriginConfig } from '../origin-config.js';
import { startOrigin, type RunningOrigin } from '../server.js';
import { issueToken } from '../tokens.js';

const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';

describe('the project management HTTP API', () => {
  let dir: string;
  let db: Database;
  let blobs: FolderBlobStore;
  let origin: RunningOrigin;
  let owner: string;
  let maintainer: string;
  let stranger: string;
  let wheelPath: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pyedge-manage-api-'));
    // A second connection to the origin's own database file, to seed it and check what it recorded.
    db = new SqliteDatabase(join(dir, 'index.db'));
    await db.migrate();
    blobs = new FolderBlobStore(join(dir, 'blobs'));
    origin = await startOrigin(resolveOriginConfig({ data: dir, port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
    owner = (await issueToken(db, 'alice', null)).token;
    maintainer = (await issueToken(db, 'bob', null)).token;
    stranger = (await issueToken(db, 'eve', null)).token;
    const alice = await db.ensureUser('alice');
    for (const [version, filename] of [
      ['1.0', 'foo_bar-1.0-py3-none-any.whl'],
      ['2.0', 'foo_bar-2.0-py3-none-any.whl'],
    ] as const) {
      const input = upload(alice, 'Foo_Bar', version, filename);
      await db.addFile(input);
      await blobs.put(input.file.path, new TextEncoder().encode(filename));
      if (version === '1.0') wheelPath = input.file.path;
    }
    await db.setRole('foo-bar', 'bob', 'Maintainer', null);
  });

  after(async () => {
    await origin.close();
    await db.close();
    await blobs.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** One request to the running origin, shaped like fastify's inject answer. */
  const app = {
    async inject(req: { method?: string; url: string; headers?: Record<string, string>; payload?: unknown }) {
      const headers: Record<string, string> = { ...req.headers };
      if (req.payload !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${origin.listenUrl.replace(/\/$/, '')}${req.url}`, {
        method: req.method ?? 'GET',
        headers,
        ...(req.payload !== undefined ? { body: JSON.stringify(req.payload) } : {}),
      });
      const body = await res.text();
      return { statusCode: res.status, body, headers: Object.fromEntries(res.headers), json: () => JSON.parse(body) };
    },
  };
  const basic = (token: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`__token__:${token}`).toString('base64')}` });
  const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
  const page = async (): Promise<{ files: { filename: string; yanked: boolean | string }[]; 'project-status'?: { status: string } }> => {
    const res = await app.inject({ url: '/simple/foo-bar/', headers: { accept: JSON_TYPE } });
    assert.equal(res.statusCode, 200);
    return res.json();
  };

  it('yank and unyank change the Simple page at once and answer with the serial', async () => {
    assert.equal((await page()).files.find((f) => f.filename === 'foo_bar-2.0-py3-none-any.whl')?.yanked, false); // now cached
    const serial = await db.lastSerial();
    const res = await app.inject({
      method: 'POST',
      url: '/api/projects/Foo.Bar/releases/2.0/yank',
      headers: basic(owner),
      payload: { reason: 'broken' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { serial: serial + 1, project: 'foo-bar', version: '2.0', yanked: true, reason: 'broken' });
    assert.equal(res.headers['x-pypi-last-serial'], String(serial + 1));
    assert.equal((await page()).files.find((f) => f.filename === 'foo_bar-2.0-py3-none-any.whl')?.yanked, 'broken');

    // No body at all is fine for both, and a bearer token works like a basic one.
    const un = await app.inject({ method: 'POST', url: '/api/projects/foo-bar/releases/2.0/unyank', headers: bearer(owner) });
    assert.equal(un.statusCode, 200, un.body);
    assert.deepEqual(un.json(), { serial: serial + 2, project: 'foo-bar', version: '2.0', yanked: false });
    assert.equal((await page()).files.find((f) => f.filename === 'foo_bar-2.0-py3-none-any.whl')?.yanked, false);
    const bare = await app.inject({ method: 'POST', url: '/api/projects/foo-bar/releases/2.0/yank', headers: bearer(owner) });
    assert.deepEqual([bare.statusCode, bare.json().reason], [200, null]);
    await app.inject({ method: 'POST', url: '/api/projects/foo-bar/releases/2.0/unyank', headers: bearer(owner) });
  });

  it('refuses bad bodies with 400 and a message naming the field', async () => {
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/api/projects/foo-bar/releases/2.0/yank', { reason: 'x', bogus: 1 }, /Unknown field 'bogus' in the request body: this endpoint accepts 'reason'/],
      ['POST', '/api/projects/foo-bar/releases/2.0/yank', ['reason'], /must be a JSON object/],
      ['POST', '/api/projects/foo-bar/releases/2.0/yank', { reason: 'x'.repeat(1001) }, /Invalid value for 'reason': at most 1000 characters/],
      ['POST', '/api/projects/foo-bar/releases/2.0/unyank', { reason: 'x' }, /Unknown field 'reason'.*accepts no fields/],
      ['PUT', '/api/projects/foo-bar/roles/bob', { role: 'Admin' }, /Invalid value for 'role': expected one of Owner, Maintainer/],
      ['PUT', '/api/projects/foo-bar/roles/bob', {}, /Missing field 'role'/],
      ['PUT', '/api/projects/foo-bar/status', { status: 'gone' }, /Invalid value for 'status': expected one of active, archived, quarantined, deprecated/],
      ['PUT', '/api/projects/foo-bar/status', { reason: 'x' }, /Missing field 'status'/],
    ];
    const serial = await db.lastSerial();
    for (const [method, url, payload, message] of cases) {
      const res = await app.inject({ method: method as 'POST' | 'PUT', url, headers: basic(owner), payload: payload as object });
      assert.equal(res.statusCode, 400, `${url} ${JSON.stringify(payload)}: ${res.body}`);
      assert.match(res.body, message);
    }
    assert.equal(await db.lastSerial(), serial);
  });

  it('refuses missing or bad credentials, Maintainers and strangers with 403', async () => {
    const url = '/api/projects/foo-bar/releases/1.0/yank';
    const none = await app.inject({ method: 'POST', url });
    assert.equal(none.statusCode, 403);
    assert.match(none.body, /Invalid or non-existent authentication information/);
    const wrong = await app.inject({ method: 'POST', url, headers: bearer(`${owner.slice(0, -4)}AAAA`) });
    assert.equal(wrong.statusCode, 403);
    const bob = await app.inject({ method: 'POST', url, headers: basic(maintainer) });
    assert.equal(bob.statusCode, 403);
    assert.match(bob.body, /Only an Owner of project 'Foo_Bar' can yank releases; 'bob' is a Maintainer/);
    const eve = await app.inject({ method: 'DELETE', url: '/api/projects/foo-bar', headers: basic(stranger) });
    assert.equal(eve.statusCode, 403);
    assert.match(eve.body, /'eve' has no role/);
    const missing = await app.inject({ method: 'POST', url: '/api/projects/foo-bar/releases/7.0/yank', headers: basic(owner) });
    assert.equal(missing.statusCode, 404);
    assert.match(missing.body, /No release '7\.0' of project 'Foo_Bar'\./);
  });

  it('manages roles: list, add, refuse to remove the last Owner, remove', async () => {
    const list = await app.inject({ url: '/api/projects/FOO_BAR/roles', headers: basic(maintainer) });
    assert.equal(list.statusCode, 200);
    assert.deepEqual(list.json(), { project: 'foo-bar', roles: [{ username: 'alice', role: 'Owner' }, { username: 'bob', role: 'Maintainer' }] });
    const add = await app.inject({ method: 'PUT', url: '/api/projects/foo-bar/roles/eve', headers: basic(owner), payload: { role: 'Maintainer' } });
    assert.equal(add.statusCode, 200, add.body);
    assert.deepEqual(add.json(), { serial: await db.lastSerial(), project: 'foo-bar', username: 'eve', role: 'Maintainer' });
    const nobody = await app.inject({ method: 'PUT', url: '/api/projects/foo-bar/roles/zed', headers: basic(owner), payload: { role: 'Owner' } });
    assert.equal(nobody.statusCode, 404);
    assert.match(nobody.body, /No user named 'zed'/);
    const last = await app.inject({ method: 'DELETE', url: '/api/projects/foo-bar/roles/alice', headers: basic(owner) });
    assert.equal(last.statusCode, 403);
    assert.match(last.body, /last Owner/);
    const gone = await app.inject({ method: 'DELETE', url: '/api/projects/foo-bar/roles/eve', headers: basic(owner) });
    assert.equal(gone.statusCode, 200);
    assert.equal(await db.getRole((await db.ensureUser('eve')).id, 'foo-bar'), null);
  });

  it('sets the status, shown on the page; Owners cannot quarantine', async () => {
    const res = await app.inject({ method: 'PUT', url: '/api/projects/foo-bar/status', headers: basic(owner), payload: { status: 'archived', reason: 'done' } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { serial: await db.lastSerial(), project: 'foo-bar', status: 'archived', reason: 'done' });
    assert.deepEqual((await page())['project-status'], { status: 'archived', reason: 'done' });
    const q = await app.inject({ method: 'PUT', url: '/api/projects/foo-bar/status', headers: basic(owner), payload: { status: 'quarantined' } });
    assert.equal(q.statusCode, 403);
    assert.match(q.body, /Only an administrator can quarantine/);
    const back = await app.inject({ method: 'PUT', url: '/api/projects/foo-bar/status', headers: basic(owner), payload: { status: 'active' } });
    assert.equal(back.statusCode, 200);
  });

  it('removes a file (its URL then answers 404), a release and the project', async () => {
    const fileUrl = `/${wheelPath}`;
    assert.equal((await app.inject({ url: fileUrl })).statusCode, 200);
    const res = await app.inject({ method: 'DELETE', url: '/api/projects/foo-bar/files/foo_bar-1.0-py3-none-any.whl', headers: basic(owner) });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { serial: await db.lastSerial(), project: 'foo-bar', filename: 'foo_bar-1.0-py3-none-any.whl', removedFiles: 1 });
    assert.equal((await app.inject({ url: fileUrl })).statusCode, 404);
    assert.deepEqual((await page()).files.map((f) => f.filename), ['foo_bar-2.0-py3-none-any.whl']);

    const rel = await app.inject({ method: 'DELETE', url: '/api/projects/foo-bar/releases/2.0', headers: basic(owner) });
    assert.deepEqual([rel.statusCode, rel.json().removedFiles], [200, 1]);
    const proj = await app.inject({ method: 'DELETE', url: '/api/projects/foo-bar', headers: basic(owner) });
    assert.equal(proj.statusCode, 200);
    assert.equal((await app.inject({ url: '/simple/foo-bar/' })).statusCode, 404);
    const again = await app.inject({ method: 'DELETE', url: '/api/projects/foo-bar', headers: basic(owner) });
    assert.equal(again.statusCode, 404);
  });
});
