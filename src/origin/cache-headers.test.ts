import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { FolderBlobStore } from '../blobstore/folder/folder-blob-store.js';
import { upload } from '../db/contract-fixtures.js';
import { SqliteDatabase } from '../db/sqlite/sqlite-database.js';
import { resolveOriginConfig } from './origin-config.js';
import { startOrigin, type RunningOrigin } from './server.js';

describe('caching headers of Simple and JSON API pages', () => {
  let dir: string;
  let origin: RunningOrigin;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pyedge-cache-headers-'));
    const db = new SqliteDatabase(join(dir, 'index.db'));
    const blobs = new FolderBlobStore(join(dir, 'blobs'));
    try {
      await db.migrate();
      const input = upload(await db.ensureUser('alice'), 'Foo_Bar', '1.0', 'foo_bar-1.0-py3-none-any.whl');
      await db.addFile(input);
      await blobs.put(input.file.path, new TextEncoder().encode('foo_bar-1.0-py3-none-any.whl'));
    } finally {
      await db.close();
      await blobs.close();
    }
    origin = await startOrigin(resolveOriginConfig({ data: dir, port: 0, logLevel: 'silent', pageMaxAge: '42s' }), pino({ level: 'silent' }));
  });

  after(async () => {
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const headersOf = async (path: string, accept?: string): Promise<Headers> => {
    const res = await fetch(`${origin.listenUrl.replace(/\/$/, '')}${path}`, accept ? { headers: { accept } } : {});
    await res.arrayBuffer();
    assert.equal(res.status, 200, path);
    return res.headers;
  };

  it('tags project pages with project/<name> and the root with all-projects, with stale-if-error for a CDN', async () => {
    const cases: [string, string | undefined, string][] = [
      ['/simple/', undefined, 'all-projects'],
      ['/simple/', 'application/vnd.pypi.simple.v1+json', 'all-projects'],
      ['/simple/foo-bar/', undefined, 'project/foo-bar'],
      ['/simple/foo-bar/', 'application/vnd.pypi.simple.v1+json', 'project/foo-bar'],
      ['/pypi/foo-bar/json', undefined, 'project/foo-bar'],
      ['/pypi/foo-bar/1.0/json', undefined, 'project/foo-bar'],
    ];
    for (const [path, accept, key] of cases) {
      const h = await headersOf(path, accept);
      assert.equal(h.get('surrogate-key'), key, `${path} ${accept ?? ''}`);
      assert.equal(h.get('cache-control'), 'max-age=42, public', path);
      assert.equal(h.get('surrogate-control'), 'max-age=42, stale-while-revalidate=300, stale-if-error=86400', path);
    }
  });

  it('leaves files untagged: they are immutable', async () => {
    const page = (await (await fetch(`${origin.listenUrl.replace(/\/$/, '')}/simple/foo-bar/`, { headers: { accept: 'application/vnd.pypi.simple.v1+json' } })).json()) as { files: { url: string }[] };
    const h = await headersOf(new URL(page.files[0]!.url, `${origin.listenUrl.replace(/\/$/, '')}/simple/foo-bar/`).pathname);
    assert.equal(h.get('surrogate-key'), null);
    assert.match(h.get('cache-control')!, /immutable/);
  });
});
