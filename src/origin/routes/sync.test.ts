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
import { readBundle } from '../../sync/bundle-reader.js';
import { resolveOriginConfig } from '../origin-config.js';
import { startOrigin, type RunningOrigin } from '../server.js';

const JSON_TYPE = 'application/vnd.pypi.simple.v1+json';

describe('the publisher routes /_sync/projects and /_sync/listing', () => {
  let dir: string;
  let db: Database;
  let blobs: FolderBlobStore;
  let origin: RunningOrigin;
  let base: string;
  const paths = new Map<string, string>();

  const get = async (path: string, accept?: string): Promise<{ status: number; body: Buffer; serial: string | null }> => {
    const res = await fetch(base + path, accept ? { headers: { accept } } : {});
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()), serial: res.headers.get('x-pypi-last-serial') };
  };
  const bundle = async (names: unknown, fileBytes = 0): Promise<Response> =>
    fetch(`${base}/_sync/projects`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ names, fileBytes }) });
  const addFile = async (project: string, version: string, filename: string): Promise<number> => {
    const user = await db.ensureUser('alice');
    const bytes = Buffer.from(`bytes of ${filename}`);
    const input = upload(user, project, version, filename);
    const result = await db.addFile({ ...input, file: { ...input.file, size: bytes.length } });
    await blobs.put(input.file.path, bytes);
    paths.set(filename, input.file.path);
    return result.serial;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pyedge-sync-routes-'));
    // A second connection to the origin's own database file, to seed it.
    db = new SqliteDatabase(join(dir, 'index.db'));
    await db.migrate();
    blobs = new FolderBlobStore(join(dir, 'blobs'));
    origin = await startOrigin(resolveOriginConfig({ data: dir, port: 0, logLevel: 'silent' }), pino({ level: 'silent' }));
    base = origin.listenUrl.replace(/\/$/, '');
    await addFile('Foo_Bar', '1.0', 'foo_bar-1.0-py3-none-any.whl');
    await addFile('Foo_Bar', '2.0', 'foo_bar-2.0.tar.gz');
  });

  after(async () => {
    await origin.close();
    await db.close();
    await blobs.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives each project the bytes its page routes serve, at one serial, with its small files', async () => {
    const res = await bundle(['foo-bar', 'no-such-project'], 1024);
    assert.equal(res.status, 200);
    const projects = readBundle(Buffer.from(await res.arrayBuffer()));
    assert.equal(projects.get('no-such-project'), null);
    const p = projects.get('foo-bar');
    assert.ok(p);
    const html = await get('/simple/foo-bar/', 'text/html');
    assert.equal(p.serial, Number(html.serial));
    assert.ok(p.html.equals(html.body));
    assert.ok(p.json.equals((await get('/simple/foo-bar/', JSON_TYPE)).body));
    assert.ok(p.api?.equals((await get('/pypi/foo-bar/json')).body));
    assert.deepEqual([...p.releases.keys()].sort(), ['1.0', '2.0']);
    for (const [version, doc] of p.releases) assert.ok(doc.equals((await get(`/pypi/foo-bar/${version}/json`)).body), version);
    const wheel = paths.get('foo_bar-1.0-py3-none-any.whl')!;
    assert.equal(p.files.get(wheel)?.toString(), 'bytes of foo_bar-1.0-py3-none-any.whl');
    assert.ok(p.files.get(`${wheel}.metadata`)?.equals((await get(`/${wheel}.metadata`)).body));
    assert.equal(p.files.get(paths.get('foo_bar-2.0.tar.gz')!)?.toString(), 'bytes of foo_bar-2.0.tar.gz');
    // Without fileBytes, the pages only.
    const bare = readBundle(Buffer.from(await (await bundle(['foo-bar'])).arrayBuffer()));
    assert.equal(bare.get('foo-bar')?.files.size, 0);
  });

  it('carries the files of many projects, in order, leaving out those over fileBytes and those whose bytes are not there', async () => {
    const names: string[] = [];
    for (let i = 0; i < 120; i++) {
      await addFile(`Many-${i}`, '1.0', `many_${i}-1.0.tar.gz`);
      names.push(`many-${i}`);
    }
    // Its blob went missing: the client GETs it (and fails there), the bundle just leaves it out.
    await blobs.delete(paths.get('many_7-1.0.tar.gz')!);
    const res = await bundle([...names, 'foo-bar'], 'bytes of many_10-1.0.tar.gz'.length);
    const projects = readBundle(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual([...projects.keys()], [...names, 'foo-bar']);
    for (let i = 0; i < 120; i++) {
      const files = projects.get(`many-${i}`)!.files;
      const path = paths.get(`many_${i}-1.0.tar.gz`)!;
      // Names of 1 and 2 digits fit; 3 digits make the file one byte too big.
      if (i === 7 || i >= 100) assert.equal(files.size, 0, `many-${i}`);
      else assert.equal(files.get(path)?.toString(), `bytes of many_${i}-1.0.tar.gz`, `many-${i}`);
    }
    const fooBar = projects.get('foo-bar')!.files;
    assert.equal(fooBar.has(paths.get('foo_bar-1.0-py3-none-any.whl')!), false, 'a file bigger than fileBytes stays out');
    assert.equal(fooBar.get(paths.get('foo_bar-2.0.tar.gz')!)?.toString(), 'bytes of foo_bar-2.0.tar.gz');
  });

  it('refuses names that are not normalized', async () => {
    assert.equal((await bundle(['Foo_Bar'])).status, 400);
    assert.equal((await bundle('foo-bar')).status, 400);
  });

  it('lists the root entries that changed since a serial, as the root index shows them', async () => {
    const since = await db.lastSerial();
    const empty = (await (await fetch(`${base}/_sync/listing?since=${since}`)).json()) as Record<string, unknown>;
    assert.deepEqual(empty, { complete: true, serial: since, time: null, projects: [] });

    await addFile('Baz', '0.1', 'baz-0.1.tar.gz');
    const added = (await (await fetch(`${base}/_sync/listing?since=${since}`)).json()) as {
      complete: boolean;
      serial: number;
      projects: { name: string; normalized: string; last_serial: number; listed: boolean }[];
    };
    assert.equal(added.complete, true);
    assert.equal(added.serial, await db.lastSerial());
    const root = JSON.parse((await get('/simple/', JSON_TYPE)).body.toString()) as { projects: { name: string; '_last-serial': number }[] };
    const entry = root.projects.find((p) => p.name === 'Baz');
    assert.deepEqual(added.projects, [{ name: 'Baz', normalized: 'baz', last_serial: entry?.['_last-serial'], listed: true }]);

    await db.removeProject('baz', null);
    const removed = (await (await fetch(`${base}/_sync/listing?since=${added.serial}`)).json()) as { projects: { normalized: string; listed: boolean }[] };
    assert.deepEqual(
      removed.projects.map((p) => [p.normalized, p.listed]),
      [['baz', false]],
    );
  });
});
