/**
 * The projects a tree holds pages for, as the engine reads them on start and at
 * each reconcile: read folder by folder from a folder store, and key by key
 * from any other store, with the same answer.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FolderBlobStore } from '../blobstore/folder/folder-blob-store.js';
import { ForwardingStore } from './recording-store.js';
import { StaticTree } from './static-tree.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('StaticTree.projectNames', () => {
  it('gives the same names and complete projects from folder reads as from a listing of every key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pyedge-tree-names-'));
    dirs.push(dir);
    const store = new FolderBlobStore(dir);
    const put = (key: string): Promise<void> => store.put(key, Buffer.from(key));
    const pages = ['index.html', 'index.v1_html', 'index.v1_json', 'serversig'];
    for (const p of pages) await put(`simple/alpha/${p}`);
    await put('pypi/alpha/json');
    await put('pypi/alpha/1.0/json');
    // Cut short: one page of four.
    await put('simple/beta/index.html');
    // JSON API pages left without Simple pages.
    await put('pypi/gamma/1.0/json');
    for (const p of pages) await put(`simple/delta/${p}`);
    await put('simple/index.html');
    await put('simple/index.v1_json');

    const byFolder = await new StaticTree(store).projectNames();
    const byList = await new StaticTree(new ForwardingStore(store)).projectNames();
    const sorted = (r: { all: Set<string>; complete: Set<string> }): { all: string[]; complete: string[] } => ({ all: [...r.all].sort(), complete: [...r.complete].sort() });
    assert.deepEqual(sorted(byFolder), { all: ['alpha', 'beta', 'delta', 'gamma'], complete: ['alpha', 'delta'] });
    assert.deepEqual(sorted(byList), sorted(byFolder));
  });
});
