/**
 * Project management end to end: `pyedge serve`, the HTTP API and `pyedge project`
 * change what pip sees, and every change lands in the changelog with gapless serials.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase } from '../../src/db/create-database.js';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { makeVenv, type Venv } from './helpers/python.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';
const NAME = 'mgmt-demo';

interface SimpleFile {
  readonly filename: string;
  readonly url: string;
  readonly yanked: boolean | string;
}

describe('project management', () => {
  let work: string;
  let data: string;
  let origin: Service;
  let alice: string;
  let bob: string;
  let venv: Venv;
  const wheels: Record<string, string> = {};

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-manage-e2e-'));
    data = join(work, 'data');
    origin = await startPyedge(['serve', '--data', data, '--port', '0']);
    const [a, b, v] = await Promise.all([
      pyedge(['token', 'create', '--data', data, '--user', 'alice']),
      pyedge(['token', 'create', '--data', data, '--user', 'bob']),
      makeVenv(work),
    ]);
    alice = a.stdout.trim();
    bob = b.stdout.trim();
    venv = v;
    const values: Record<string, string> = { '1.0': 'one', '2.0': 'two', '3.0': 'three', '4.0': 'four' };
    for (const [version, value] of Object.entries(values)) {
      wheels[version] = await buildWheel(work, { name: NAME, version, module: 'mgmt_demo', value });
    }
    wheels.quarantine = await buildWheel(work, { name: 'quarantine-me', version: '1.0', module: 'quarantine_me', value: 'q' });
  });

  after(async () => {
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const api = async (method: string, path: string, token: string | null, body?: unknown): Promise<{ status: number; text: string }> => {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Basic ${Buffer.from(`__token__:${token}`).toString('base64')}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${origin.url}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    return { status: res.status, text: await res.text() };
  };
  const simpleJson = async (name: string): Promise<{ status: number; files: SimpleFile[]; 'project-status'?: { status: string } }> => {
    const res = await fetch(`${origin.url}/simple/${name}/`, { headers: { accept: SIMPLE_JSON } });
    return res.status === 200 ? { status: 200, ...((await res.json()) as { files: SimpleFile[] }) } : { status: res.status, files: [] };
  };
  const simpleHtml = async (name: string): Promise<string> => (await fetch(`${origin.url}/simple/${name}/`, { headers: { accept: 'text/html' } })).text();
  const installed = async (): Promise<string> => {
    const r = await venv.pip(['show', NAME]);
    return /^Version: (.+)$/m.exec(r.stdout)?.[1] ?? '(not installed)';
  };
  const install = async (spec: string): Promise<{ version: string; log: string }> => {
    const r = await venv.pip(['install', '--index-url', `${origin.url}/simple/`, spec]);
    assert.equal(r.code, 0, r.stderr);
    return { version: await installed(), log: r.stdout + r.stderr };
  };
  /** Polls until `check` holds, and returns how long it took. */
  const within = async (ms: number, what: string, check: () => Promise<boolean>): Promise<number> => {
    const start = Date.now();
    while (!(await check())) {
      if (Date.now() - start > ms) assert.fail(`${what}: not seen within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return Date.now() - start;
  };

  test('yank, un-yank, roles, file removal, archive, removals and quarantine, each seen by pip and in the changelog', async () => {
    for (const v of ['1.0', '2.0']) assert.equal((await formUpload(origin.url, wheels[v]!, { token: alice })).status, 200);

    // Yank 2.0 over HTTP: pip skips it unless pinned with ==.
    const yank = await api('POST', `/api/projects/Mgmt_Demo/releases/2.0/yank`, alice, { reason: 'broken build' });
    assert.equal(yank.status, 200, yank.text);
    assert.match(await simpleHtml(NAME), /mgmt_demo-2\.0-py3-none-any\.whl[^>]*data-yanked="broken build"/);
    assert.equal((await simpleJson(NAME)).files.find((f) => f.filename.includes('2.0'))?.yanked, 'broken build');
    assert.equal((await install(NAME)).version, '1.0');
    const pinned = await install(`${NAME}==2.0`);
    assert.equal(pinned.version, '2.0');
    assert.match(pinned.log, /yanked.*broken build/is, 'pip warns with the reason');

    // Un-yank: pip picks 2.0 again.
    assert.equal((await api('POST', `/api/projects/mgmt-demo/releases/2.0/unyank`, alice)).status, 200);
    assert.equal((await simpleJson(NAME)).files.find((f) => f.filename.includes('2.0'))?.yanked, false);
    assert.equal((await venv.pip(['uninstall', '-y', NAME])).code, 0);
    assert.equal((await install(NAME)).version, '2.0');

    // Roles: the Owner adds a Maintainer, who may upload but not manage.
    assert.equal((await api('PUT', '/api/projects/mgmt-demo/roles/bob', alice, { role: 'Maintainer' })).status, 200);
    assert.equal((await formUpload(origin.url, wheels['3.0']!, { token: bob })).status, 200);
    const bobYank = await api('POST', '/api/projects/mgmt-demo/releases/3.0/yank', bob, {});
    assert.equal(bobYank.status, 403);
    assert.match(bobYank.text, /Only an Owner of project 'mgmt-demo' can yank releases; 'bob' is a Maintainer/);
    const bobRemovesAlice = await api('DELETE', '/api/projects/mgmt-demo/roles/alice', bob);
    assert.equal(bobRemovesAlice.status, 403);
    const lastOwner = await api('DELETE', '/api/projects/mgmt-demo/roles/alice', alice);
    assert.equal(lastOwner.status, 403);
    assert.match(lastOwner.text, /last Owner of project 'mgmt-demo'/);
    const roles = await api('GET', '/api/projects/mgmt-demo/roles', bob);
    assert.deepEqual(JSON.parse(roles.text).roles, [{ username: 'alice', role: 'Owner' }, { username: 'bob', role: 'Maintainer' }]);

    // Remove a file: the link and the file are gone, and the filename can never come back.
    const three = (await simpleJson(NAME)).files.find((f) => f.filename === 'mgmt_demo-3.0-py3-none-any.whl');
    assert.ok(three);
    const fileUrl = new URL(three.url, `${origin.url}/simple/${NAME}/`).toString();
    assert.equal((await fetch(fileUrl)).status, 200);
    assert.equal((await api('DELETE', '/api/projects/mgmt-demo/files/mgmt_demo-3.0-py3-none-any.whl', alice)).status, 200);
    assert.doesNotMatch(await simpleHtml(NAME), /mgmt_demo-3\.0/);
    assert.equal((await fetch(fileUrl)).status, 404);
    const again = await formUpload(origin.url, wheels['3.0']!, { token: alice });
    assert.equal(again.status, 400);
    assert.match(again.body, /already been used/);

    // Archived: uploads refused, and the page says so.
    assert.equal((await api('PUT', '/api/projects/mgmt-demo/status', alice, { status: 'archived', reason: 'moved elsewhere' })).status, 200);
    const archivedUpload = await formUpload(origin.url, wheels['4.0']!, { token: alice });
    assert.equal(archivedUpload.status, 403);
    assert.match(archivedUpload.body, /archived \(moved elsewhere\): uploads are not allowed/);
    assert.match(await simpleHtml(NAME), /<meta name="pypi:project-status" content="archived">/);

    // The CLI, as administrator: the running origin sees each change within a second.
    const removeRelease = await pyedge(['project', 'remove-release', NAME, '1.0', '--data', data]);
    assert.equal(removeRelease.code, 0, removeRelease.stderr);
    assert.match(removeRelease.stdout, /^Removed release 1\.0 of mgmt-demo \(1 file\); serial \d+\.$/m);
    await within(1000, 'release removed by the CLI', async () => !(await simpleHtml(NAME)).includes('mgmt_demo-1.0'));

    const unconfirmed = await pyedge(['project', 'remove', NAME, '--data', data]);
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /Run again with --yes to confirm/);
    assert.equal((await simpleJson(NAME)).status, 200);
    const remove = await pyedge(['project', 'remove', NAME, '--yes', '--data', data]);
    assert.equal(remove.code, 0, remove.stderr);
    assert.match(remove.stdout, /^Removed project mgmt-demo \(1 file\); serial \d+\.$/m);
    await within(1000, 'project removed by the CLI', async () => (await simpleJson(NAME)).status === 404);
    const missing = await pyedge(['project', 'yank', NAME, '2.0', '--data', data]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /No project named 'mgmt-demo'/);

    // Quarantine (administrator only): the project leaves the root index.
    assert.equal((await formUpload(origin.url, wheels.quarantine!, { token: alice })).status, 200);
    assert.match(await (await fetch(`${origin.url}/simple/`)).text(), /quarantine-me/);
    const ownerQuarantine = await api('PUT', '/api/projects/quarantine-me/status', alice, { status: 'quarantined' });
    assert.equal(ownerQuarantine.status, 403);
    const quarantine = await pyedge(['project', 'status', 'quarantine-me', 'quarantined', '--reason', 'malware report', '--data', data]);
    assert.equal(quarantine.code, 0, quarantine.stderr);
    assert.match(quarantine.stdout, /^Project quarantine-me is now quarantined \(malware report\); serial \d+\.$/m);
    await within(1000, 'quarantine set by the CLI', async () => !(await (await fetch(`${origin.url}/simple/`)).text()).includes('quarantine-me'));
    const page = await simpleJson('quarantine-me');
    assert.deepEqual([page['project-status']?.status, page.files.length], ['quarantined', 0]);

    // Every action is in the changelog, by the right actor, with serials 1..N.
    const db = createDatabase(`sqlite:${join(data, 'index.db')}`);
    try {
      const changes = await db.changesSince(0, 1000);
      assert.deepEqual(changes.map((c) => c.serial), Array.from({ length: changes.length }, (_, i) => i + 1));
      assert.equal(await db.lastSerial(), changes.length);
      const of = (name: string): [string, string | null][] =>
        changes.filter((c) => c.normalizedName === name).map((c) => [c.action, c.submittedBy]);
      assert.deepEqual(of(NAME), [
        ['create', 'alice'],
        ['new release', 'alice'],
        ['add file', 'alice'],
        ['new release', 'alice'],
        ['add file', 'alice'],
        ['yank release', 'alice'],
        ['unyank release', 'alice'],
        ['add owner', 'alice'],
        ['new release', 'bob'],
        ['add file', 'bob'],
        ['remove file', 'alice'],
        ['set status', 'alice'],
        ['remove release', null],
        ['remove project', null],
      ]);
      assert.deepEqual(of('quarantine-me'), [
        ['create', 'alice'],
        ['new release', 'alice'],
        ['add file', 'alice'],
        ['set status', null],
      ]);
      const yanked = changes.find((c) => c.action === 'yank release');
      assert.deepEqual([yanked?.version, yanked?.detail], ['2.0', 'broken build']);
      assert.equal(changes.find((c) => c.action === 'remove file')?.filename, 'mgmt_demo-3.0-py3-none-any.whl');
      assert.equal(changes.find((c) => c.action === 'add owner')?.detail, 'Maintainer');
      assert.deepEqual(changes.filter((c) => c.action === 'set status').map((c) => c.detail), ['archived', 'quarantined']);
    } finally {
      await db.close();
    }
  });

  test('the CLI lists and changes roles and yanks, refusing unknown users and the last Owner with exit 2', async () => {
    const wheel = await buildWheel(work, { name: 'cli-roles', version: '1.0', module: 'cli_roles', value: 'c' });
    assert.equal((await formUpload(origin.url, wheel, { token: alice })).status, 200);
    const add = await pyedge(['project', 'add-role', 'cli-roles', 'bob', '--role', 'Owner', '--data', data]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /^bob is now an Owner of cli-roles; serial \d+\.$/m);
    const list = await pyedge(['project', 'roles', 'CLI_Roles', '--data', data]);
    assert.equal(list.stdout, 'alice\tOwner\nbob\tOwner\n');
    const noUser = await pyedge(['project', 'add-role', 'cli-roles', 'zed', '--role', 'Maintainer', '--data', data]);
    assert.equal(noUser.code, 2);
    assert.match(noUser.stderr, /No user named 'zed'/);
    assert.equal((await pyedge(['project', 'remove-role', 'cli-roles', 'alice', '--data', data])).code, 0);
    const last = await pyedge(['project', 'remove-role', 'cli-roles', 'bob', '--data', data]);
    assert.equal(last.code, 2);
    assert.match(last.stderr, /last Owner/);

    const yank = await pyedge(['project', 'yank', 'cli-roles', '1.0', '--reason', 'oops', '--data', data]);
    assert.equal(yank.code, 0, yank.stderr);
    assert.match(yank.stdout, /^Yanked release 1\.0 of cli-roles \(oops\); serial \d+\.$/m);
    await within(1000, 'yank by the CLI', async () => (await simpleJson('cli-roles')).files[0]?.yanked === 'oops');
    const unyank = await pyedge(['project', 'unyank', 'cli-roles', '1.0', '--data', data]);
    assert.equal(unyank.code, 0, unyank.stderr);
    await within(1000, 'unyank by the CLI', async () => (await simpleJson('cli-roles')).files[0]?.yanked === false);
    const file = await pyedge(['project', 'remove-file', 'cli-roles', 'cli_roles-1.0-py3-none-any.whl', '--data', data]);
    assert.equal(file.code, 0, file.stderr);
    assert.match(file.stdout, /^Removed cli_roles-1\.0-py3-none-any\.whl from cli-roles; serial \d+\.$/m);
    await within(1000, 'file removal by the CLI', async () => (await simpleJson('cli-roles')).files.length === 0);
  });
});
