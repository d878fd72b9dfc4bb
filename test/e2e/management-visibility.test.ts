/**
 * Every management action shows everywhere a client or mirror looks: the Simple
 * API, the JSON API, the XML-RPC mirror API (read with Python's xmlrpc.client)
 * and the change feed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, run, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { SYSTEM_PYTHON, isolatedEnv } from './helpers/python.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';

interface Views {
  simple: { status: number; body: { files: { filename: string; yanked: boolean | string }[]; 'project-status': { status: string } } | null };
  json: { status: number; body: { releases: Record<string, { filename: string; yanked: boolean; yanked_reason: string | null }[]> } | null };
  xmlrpc: [string, string | null, number, string, number][];
  feed: { serial: number; action: string; project: string; version: string | null; filename: string | null }[];
}

describe('management actions are visible in every API', () => {
  let work: string;
  let data: string;
  let origin: Service;
  let token: string;
  let serial = 0;

  const views = async (name: string, since: number): Promise<Views> => {
    const s = await fetch(`${origin.url}/simple/${name}/`, { headers: { accept: SIMPLE_JSON } });
    const j = await fetch(`${origin.url}/pypi/${name}/json`);
    const x = await run(
      SYSTEM_PYTHON,
      ['-c', 'import json, sys, xmlrpc.client as x; print(json.dumps(x.ServerProxy(sys.argv[1]).changelog_since_serial(int(sys.argv[2]))))', `${origin.url}/pypi`, String(since)],
      { env: isolatedEnv() },
    );
    assert.equal(x.code, 0, x.stderr);
    const f = (await (await fetch(`${origin.url}/changes?since=${since}`)).json()) as { changes: Views['feed'] };
    return {
      simple: { status: s.status, body: s.status === 200 ? ((await s.json()) as Views['simple']['body']) : null },
      json: { status: j.status, body: j.status === 200 ? ((await j.json()) as Views['json']['body']) : null },
      xmlrpc: JSON.parse(x.stdout) as Views['xmlrpc'],
      feed: f.changes,
    };
  };

  /** Run a CLI action; return what every API shows afterwards, from the serial before it. */
  const act = async (args: string[], name: string): Promise<Views> => {
    const before = serial;
    const r = await pyedge(['project', ...args, '--data', data]);
    assert.equal(r.code, 0, r.stderr);
    // The running origin notices writes by the CLI within about half a second.
    for (let i = 0; i < 50; i++) {
      const f = (await (await fetch(`${origin.url}/changes?since=${before}`)).json()) as { changes: unknown[]; next: number };
      if (f.changes.length > 0) {
        serial = f.next;
        break;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(serial > before, 'the action took a serial');
    await new Promise((res) => setTimeout(res, 600));
    return views(name, before);
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-visibility-'));
    data = join(work, 'data');
    origin = await startPyedge(['serve', '--data', data, '--port', '0']);
    token = (await pyedge(['token', 'create', '--data', data, '--user', 'gus'])).stdout.trim();
    await pyedge(['token', 'create', '--data', data, '--user', 'hana']);
    for (const v of ['1.0', '2.0', '3.0']) {
      const a = await formUpload(origin.url, await buildWheel(work, { name: 'seen', version: v }), { token });
      assert.equal(a.status, 200, a.body);
    }
    serial = ((await (await fetch(`${origin.url}/changes?since=0`)).json()) as { next: number }).next;
  });

  after(async () => {
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('yank with a reason', async () => {
    const v = await act(['yank', 'seen', '3.0', '--reason', 'broken build'], 'seen');
    assert.equal(v.simple.body!.files.find((f) => f.filename.includes('-3.0-'))!.yanked, 'broken build');
    assert.equal(v.json.body!.releases['3.0']![0]!.yanked, true);
    assert.equal(v.json.body!.releases['3.0']![0]!.yanked_reason, 'broken build');
    assert.deepEqual(v.xmlrpc.map((e) => [e[0], e[1], e[4]]), [['seen', '3.0', serial]]);
    assert.match(v.xmlrpc[0]![3], /yank/);
    assert.deepEqual(v.feed.map((c) => [c.action, c.version]), [['yank release', '3.0']]);
  });

  test('unyank', async () => {
    const v = await act(['unyank', 'seen', '3.0'], 'seen');
    assert.equal(v.simple.body!.files.find((f) => f.filename.includes('-3.0-'))!.yanked, false);
    assert.equal(v.json.body!.releases['3.0']![0]!.yanked, false);
    assert.deepEqual(v.feed.map((c) => c.action), ['unyank release']);
    assert.equal(v.xmlrpc.length, 1);
  });

  test('remove a file', async () => {
    const v = await act(['remove-file', 'seen', 'seen-2.0-py3-none-any.whl'], 'seen');
    assert.ok(!v.simple.body!.files.some((f) => f.filename === 'seen-2.0-py3-none-any.whl'));
    assert.deepEqual(v.json.body!.releases['2.0'], []);
    assert.deepEqual(v.feed.map((c) => [c.action, c.filename]), [['remove file', 'seen-2.0-py3-none-any.whl']]);
    assert.equal(v.xmlrpc[0]![0], 'seen');
    assert.match(v.xmlrpc[0]![3], /remove/);
  });

  test('remove a release', async () => {
    const v = await act(['remove-release', 'seen', '2.0'], 'seen');
    assert.ok(!('2.0' in v.json.body!.releases));
    assert.deepEqual(v.feed.map((c) => [c.action, c.version]), [['remove release', '2.0']]);
    assert.equal(v.xmlrpc.length, 1);
  });

  test('roles', async () => {
    const v = await act(['add-role', 'seen', 'hana', '--role', 'Maintainer'], 'seen');
    assert.deepEqual(v.feed.map((c) => c.action), ['add owner']);
    assert.equal(v.xmlrpc.length, 1);
    const w = await act(['remove-role', 'seen', 'hana'], 'seen');
    assert.deepEqual(w.feed.map((c) => c.action), ['remove owner']);
  });

  test('archive', async () => {
    const v = await act(['status', 'seen', 'archived', '--reason', 'done'], 'seen');
    assert.equal(v.simple.body!['project-status'].status, 'archived');
    assert.deepEqual(v.feed.map((c) => [c.action]), [['set status']]);
    assert.equal(v.xmlrpc.length, 1);
  });

  test('remove the project', async () => {
    const v = await act(['remove', 'seen', '--yes'], 'seen');
    assert.equal(v.simple.status, 404);
    assert.equal(v.json.status, 404);
    assert.deepEqual(v.feed.map((c) => [c.action, c.project]), [['remove project', 'seen']]);
    assert.equal(v.xmlrpc.length, 1);
    const root = await (await fetch(`${origin.url}/simple/`)).text();
    assert.doesNotMatch(root, /href="seen\/"/);
  });
});
