import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Database } from '../db/database.js';
import type { User } from '../core/model.js';
import { createDatabase } from '../db/create-database.js';
import { upload } from '../db/contract-fixtures.js';
import { createTestPostgres } from '../../test/helpers/postgres.js';
import { renderRootHtml, renderRootJson } from '../render/index.js';
import { RootIndex, type RootFiles } from './root-index.js';
import type { RootRenderer } from './root-renderer.js';
import type { RootRendering } from './root-render.js';

const silent = pino({ level: 'silent' });

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

/** The root as the pure renderers give it for the database's current state. */
async function expected(db: Database): Promise<{ html: Buffer; json: Buffer; serial: number }> {
  const serial = await db.lastSerial();
  const projects = await db.listProjects();
  return { html: Buffer.from(renderRootHtml(projects)), json: Buffer.from(renderRootJson(projects, serial)), serial };
}

async function assertFilesMatch(db: Database, files: RootFiles): Promise<void> {
  const want = await expected(db);
  const html = await readFile(files.htmlPath);
  const json = await readFile(files.jsonPath);
  assert.equal(files.serial, want.serial);
  assert.ok(html.equals(want.html), 'HTML differs from renderRootHtml');
  assert.ok(json.equals(want.json), 'JSON differs from renderRootJson');
  assert.equal(files.htmlSize, html.length);
  assert.equal(files.jsonSize, json.length);
  assert.equal(files.htmlEtag, etagOf(html));
  assert.equal(files.jsonEtag, etagOf(json));
}

/** Counts the listing queries made through this connection. */
function countingListings(db: Database): { db: Database; listings: () => number } {
  let n = 0;
  const wrapped = new Proxy(db, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (key === 'listProjectsAfter' || key === 'listProjects') n++;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db: wrapped, listings: () => n };
}

/** A database the worker thread can open a second connection to, by URL. */
type OpenDatabase = (dir: string) => Promise<{ url: string; cleanup: () => Promise<void> }>;

function rootIndexSuite(backend: string, open: OpenDatabase): void {
  describe(`root index (${backend})`, () => {
    let dir: string;
    let dbUrl: string;
    let cleanup: () => Promise<void>;
    let db: Database;
    let user: User;
    let uploads = 0;

    const addProject = async (name: string): Promise<void> => {
      uploads++;
      await db.addFile(upload(user, name, '1.0', `${name.replace(/[-.]/g, '_')}-1.0-${uploads}.tar.gz`));
    };

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'pyedge-root-index-'));
      ({ url: dbUrl, cleanup } = await open(dir));
      db = createDatabase(dbUrl);
      await db.migrate();
      user = await db.ensureUser('alice');
      for (const name of ['Zope.Interface', 'a_b', 'requests', 'Django', 'x', 'numpy', 'foo-bar']) await addProject(name);
    });

    after(async () => {
      await db.close();
      await cleanup();
      await rm(dir, { recursive: true, force: true });
    });

    test('a worker thread renders with its own connection the same bytes as the pure renderers, across pages', async () => {
      const cache = join(dir, 'cache-worker');
      const spy = countingListings(db);
      const root = new RootIndex(spy.db, cache, silent, { dbUrl, pageSize: 2 });
      try {
        await root.init();
        const files = await root.files();
        await assertFilesMatch(db, files);
        assert.equal(spy.listings(), 0, 'the origin connection listed projects');
      } finally {
        await root.close();
      }
    });

    test('without a second connection it renders on the calling thread, byte for byte the same', async () => {
      const cache = join(dir, 'cache-inline');
      const spy = countingListings(db);
      const root = new RootIndex(spy.db, cache, silent, { dbUrl: undefined, pageSize: 3 });
      try {
        await root.init();
        await assertFilesMatch(db, await root.files());
        assert.ok(spy.listings() > 0);
      } finally {
        await root.close();
      }
    });

    test('a write makes the next reader get a new rendering, and the old files go', async () => {
      const cache = join(dir, 'cache-update');
      const root = new RootIndex(db, cache, silent, { dbUrl, maxWaitMs: 60_000 });
      try {
        await root.init();
        const first = await root.files();
        assert.equal(await root.files(), first, 'an unchanged index is not rendered again');
        await addProject('newcomer');
        const second = await root.files();
        assert.ok(second.serial > first.serial);
        assert.match(await readFile(second.htmlPath, 'utf8'), />newcomer</);
        await assertFilesMatch(db, second);
        const names = await readdir(cache);
        assert.deepEqual(names.sort(), [second.htmlPath, second.jsonPath].map((p) => p.slice(cache.length + 1)).sort());
      } finally {
        await root.close();
      }
    });

    test('a failed rendering fails a reader with nothing older, gives the others the previous one, and the next one renders again', async () => {
      const cache = join(dir, 'cache-fail');
      const root = new RootIndex(db, cache, silent, { dbUrl, maxWaitMs: 60_000 });
      try {
        await root.init();
        await rm(cache, { recursive: true });
        await assert.rejects(root.files(), /ENOENT/);
        await root.init();
        const first = await root.files();
        await assertFilesMatch(db, first);
        await rm(cache, { recursive: true });
        await addProject('after-failure');
        const t0 = Date.now();
        assert.equal(await root.files(), first);
        assert.ok(Date.now() - t0 < 30_000, 'the reader waited for maxWaitMs instead of falling back at once');
        await root.init();
        const next = await root.files();
        assert.ok(next.serial > first.serial);
        await assertFilesMatch(db, next);
      } finally {
        await root.close();
      }
    });

    test('readers wait at most maxWaitMs, then get the previous rendering; concurrent renderings are coalesced', async () => {
      const cache = join(dir, 'cache-slow');
      const real = new RootIndex(db, cache, silent, { dbUrl: undefined });
      await real.init();
      const previous = await real.files();
      // A renderer that answers only when told to.
      const calls: number[] = [];
      let finish: (r: RootRendering) => void = () => undefined;
      const renderer: RootRenderer = {
        render(minSerial) {
          calls.push(minSerial);
          return new Promise((resolve) => (finish = resolve));
        },
        close: async () => undefined,
      };
      const root = new RootIndex(db, cache, silent, { renderer, maxWaitMs: 50, restFactor: 0 });
      // The first reader has nothing older to fall back on: it waits for the rendering.
      const firstRead = root.files();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(calls.length, 1);
      finish({ files: previous, projects: 0, ms: 0 });
      assert.equal(await firstRead, previous);

      await addProject('later');
      const t0 = Date.now();
      const readers = await Promise.all([root.files(), root.files(), root.files()]);
      const waited = Date.now() - t0;
      assert.ok(readers.every((f) => f === previous), 'readers got the previous rendering');
      assert.ok(waited >= 45 && waited < 5000, `waited ${waited} ms`);
      assert.equal(calls.length, 2, 'three readers started one rendering');
      assert.equal(calls[1], await db.lastSerial());

      const fresh: RootFiles = { ...previous, serial: calls[1]! };
      finish({ files: fresh, projects: 0, ms: 0 });
      await new Promise((r) => setTimeout(r, 10));
      assert.equal(await root.files(), fresh);
      assert.equal(calls.length, 2);
      await real.close();
    });

    test('after a rendering the next one waits for a rest as long as the last one took', async () => {
      const cache = join(dir, 'cache-rest');
      const real = new RootIndex(db, cache, silent, { dbUrl: undefined });
      await real.init();
      const previous = await real.files();
      const started: number[] = [];
      let finish: (r: RootRendering) => void = () => undefined;
      const renderer: RootRenderer = {
        render() {
          started.push(Date.now());
          return new Promise((resolve) => (finish = resolve));
        },
        close: async () => undefined,
      };
      const root = new RootIndex(db, cache, silent, { renderer, maxWaitMs: 20, restFactor: 1 });
      const firstRead = root.files();
      await new Promise((r) => setTimeout(r, 50));
      // The rest follows the rendering's own account of its time: long enough to outlast a slow write below.
      const took = 1500;
      finish({ files: previous, projects: 0, ms: took });
      await firstRead;
      const firstEnded = Date.now();

      await addProject('resting');
      assert.equal(await root.files(), previous, 'a reader during the rest gets the previous rendering');
      assert.equal(started.length, 1, 'no rendering started during the rest');
      const next = root.files();
      for (let i = 0; i < 500 && started.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(started.length, 2, 'the rendering started once the rest was over');
      assert.ok(started[1]! - firstEnded >= took - 20, `rested ${started[1]! - firstEnded} ms after a ${took} ms rendering`);
      finish({ files: { ...previous, serial: await db.lastSerial() }, projects: 0, ms: 0 });
      await next;
      await root.close();
      await real.close();
    });
  });
}

rootIndexSuite('sqlite', async (dir) => ({ url: `sqlite:${join(dir, 'index.db')}`, cleanup: async () => undefined }));
rootIndexSuite('postgres', async () => {
  const pg = await createTestPostgres();
  return { url: pg.url, cleanup: pg.drop };
});
