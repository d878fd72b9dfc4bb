/**
 * The behaviour every BlobStore back-end must have, as one suite that each
 * back-end's test file runs with its own factory.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobNotFoundError, PyedgeError } from '../core/errors.js';
import type { BlobStore } from './blob-store.js';

/** A fresh, empty store and a way to remove it. */
export interface ContractSubject {
  readonly store: BlobStore;
  cleanup(): Promise<void>;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function getBytes(store: BlobStore, key: string): Promise<Buffer> {
  const blob = await store.get(key);
  const bytes = await readAll(blob.body);
  assert.equal(bytes.length, blob.contentLength, 'contentLength matches the bytes read');
  return bytes;
}

async function listKeys(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of store.list(prefix)) keys.push(entry.key);
  return keys;
}

/** A stream that yields `data` in `chunkSize` pieces, pausing now and then so readers can run meanwhile. */
function slowStream(data: Buffer, chunkSize: number, pauseEvery = Infinity): Readable {
  return Readable.from(
    (async function* () {
      let n = 0;
      for (let offset = 0; offset < data.length; offset += chunkSize) {
        yield data.subarray(offset, offset + chunkSize);
        if (++n % pauseEvery === 0) await sleep(1);
      }
    })(),
  );
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Where a test server falls short of the real service it stands in for. */
export interface ContractOptions {
  /** Why the server behind the store lets readers see half-written blobs (the test is skipped), if it does. */
  readonly nonAtomicServer?: string;
}

/** Runs the shared BlobStore tests against the stores `make` returns (one fresh store per test). */
export function runBlobStoreContract(label: string, make: () => Promise<ContractSubject>, options: ContractOptions = {}): void {
  describe(`BlobStore contract: ${label}`, () => {
    async function withStore(fn: (store: BlobStore) => Promise<void>): Promise<void> {
      const subject = await make();
      try {
        await fn(subject.store);
      } finally {
        await subject.store.close();
        await subject.cleanup();
      }
    }

    it('round-trips a Buffer and reports its size', () =>
      withStore(async (store) => {
        const data = Buffer.from('hello, blobs\n');
        await store.put('a/b/hello.txt', data, { contentType: 'text/plain' });
        assert.deepEqual(await getBytes(store, 'a/b/hello.txt'), data);
        const info = await store.head('a/b/hello.txt');
        assert.equal(info.size, data.length);
        assert.ok(info.lastModified instanceof Date && !Number.isNaN(info.lastModified.getTime()));
        const blob = await store.get('a/b/hello.txt');
        assert.equal(blob.size, data.length);
        blob.body.destroy();
      }));

    it('stores an empty blob', () =>
      withStore(async (store) => {
        await store.put('empty', new Uint8Array(0));
        assert.equal((await store.head('empty')).size, 0);
        assert.equal((await getBytes(store, 'empty')).length, 0);
      }));

    it('round-trips a small Readable and a stream larger than 5 MB', () =>
      withStore(async (store) => {
        await store.put('small', Readable.from([Buffer.from('ab'), Buffer.from('cd')]));
        assert.equal((await getBytes(store, 'small')).toString(), 'abcd');

        const big = randomBytes(5 * 1024 * 1024 + 12_345);
        await store.put('big/blob.bin', slowStream(big, 64 * 1024));
        assert.equal((await store.head('big/blob.bin')).size, big.length);
        assert.equal(sha256(await getBytes(store, 'big/blob.bin')), sha256(big));
      }));

    it('stores a local file with putFile', () =>
      withStore(async (store) => {
        const dir = await mkdtemp(path.join(tmpdir(), 'pyedge-contract-'));
        try {
          const local = path.join(dir, 'upload.whl');
          const data = randomBytes(10_000);
          await writeFile(local, data);
          await store.putFile('packages/aa/bb/upload.whl', local);
          await assert.rejects(stat(local), { code: 'ENOENT' }, 'the store took the local file');
          assert.deepEqual(await getBytes(store, 'packages/aa/bb/upload.whl'), data);
          assert.equal((await store.head('packages/aa/bb/upload.whl')).size, data.length);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }));

    it('returns exactly the requested byte ranges', () =>
      withStore(async (store) => {
        const data = Buffer.from('0123456789abcdefghij');
        await store.put('r', data);
        const cases: [number, number, string][] = [
          [0, 0, '0'],
          [5, 9, '56789'],
          [19, 19, 'j'],
          [15, 100, 'fghij'], // an end past the blob means "to the end", as in HTTP
        ];
        for (const [start, end, expected] of cases) {
          const blob = await store.get('r', { range: { start, end } });
          assert.equal(blob.size, data.length, `size for ${start}-${end}`);
          assert.equal(blob.contentLength, expected.length, `contentLength for ${start}-${end}`);
          assert.equal((await readAll(blob.body)).toString(), expected, `bytes ${start}-${end}`);
        }
        await assert.rejects(store.get('r', { range: { start: 20, end: 25 } }), (err: unknown) => {
          return err instanceof PyedgeError && err.code === 'PYEDGE_RANGE_NOT_SATISFIABLE';
        });
        await assert.rejects(store.get('r', { range: { start: 5, end: 4 } }), (err: unknown) => {
          return err instanceof PyedgeError && err.code === 'PYEDGE_RANGE_NOT_SATISFIABLE';
        });
      }));

    it('throws BlobNotFoundError for a missing key on get and head', () =>
      withStore(async (store) => {
        await store.put('present/x', Buffer.from('x'));
        for (const key of ['missing', 'present/y', 'present/x/deeper', 'nowhere/at/all']) {
          await assert.rejects(store.get(key), BlobNotFoundError, `get ${key}`);
          await assert.rejects(store.head(key), BlobNotFoundError, `head ${key}`);
          await assert.rejects(store.get(key, { range: { start: 0, end: 0 } }), BlobNotFoundError, `ranged get ${key}`);
        }
        // A "folder" that holds blobs is not itself a blob.
        await assert.rejects(store.head('present'), BlobNotFoundError);
      }));

    it('deletes idempotently', () =>
      withStore(async (store) => {
        await store.put('d/one', Buffer.from('1'));
        await store.put('d/two', Buffer.from('2'));
        await store.delete('d/one');
        await assert.rejects(store.head('d/one'), BlobNotFoundError);
        await store.delete('d/one');
        await store.delete('never/existed');
        assert.equal((await getBytes(store, 'd/two')).toString(), '2');
        assert.deepEqual(await listKeys(store, ''), ['d/two']);
        // A deleted blob's folder can be written again.
        await store.delete('d/two');
        await store.put('d/three', Buffer.from('3'));
        assert.deepEqual(await listKeys(store, ''), ['d/three']);
      }));

    it('replaces a blob on overwrite', () =>
      withStore(async (store) => {
        await store.put('o', Buffer.from('first version, longer'));
        await store.put('o', Buffer.from('second'));
        assert.equal((await getBytes(store, 'o')).toString(), 'second');
        assert.equal((await store.head('o')).size, 6);
        await store.put('o', Readable.from([Buffer.from('third')]));
        assert.equal((await getBytes(store, 'o')).toString(), 'third');
      }));

    it('lists by prefix in key order with sizes', () =>
      withStore(async (store) => {
        const keys = ['simple/b/index.html', 'simple/a-b/index.html', 'simple/a/x', 'simple/a/index.html', 'simple/ab', 'simplex', 'packages/p/f.whl', 'top'];
        for (const [i, key] of keys.entries()) await store.put(key, Buffer.alloc(i + 1, 120));
        const sorted = [...keys].sort();
        assert.deepEqual(await listKeys(store, ''), sorted);
        assert.deepEqual(await listKeys(store, 'simple/'), ['simple/a-b/index.html', 'simple/a/index.html', 'simple/a/x', 'simple/ab', 'simple/b/index.html']);
        assert.deepEqual(await listKeys(store, 'simple/a'), ['simple/a-b/index.html', 'simple/a/index.html', 'simple/a/x', 'simple/ab']);
        assert.deepEqual(await listKeys(store, 'simple/a/'), ['simple/a/index.html', 'simple/a/x']);
        assert.deepEqual(await listKeys(store, 'simple'), ['simple/a-b/index.html', 'simple/a/index.html', 'simple/a/x', 'simple/ab', 'simple/b/index.html', 'simplex']);
        assert.deepEqual(await listKeys(store, 'nothing/'), []);
        assert.deepEqual(await listKeys(store, 'simple/a/x/'), []);
        const entries = [];
        for await (const entry of store.list('packages/')) entries.push(entry);
        assert.deepEqual(entries, [{ key: 'packages/p/f.whl', size: keys.indexOf('packages/p/f.whl') + 1 }]);
      }));

    it('refuses invalid keys everywhere', () =>
      withStore(async (store) => {
        const bad = ['', '/abs', 'a//b', 'a/', './a', 'a/./b', '../escape', 'a/../../escape', 'a\\b', 'nul\u0000byte', 'new\nline', 'x'.repeat(1100)];
        for (const key of bad) {
          const refused = (err: unknown): boolean => err instanceof PyedgeError && err.code === 'PYEDGE_BAD_REQUEST';
          await assert.rejects(store.put(key, Buffer.from('x')), refused, `put ${JSON.stringify(key)}`);
          await assert.rejects(store.get(key), refused, `get ${JSON.stringify(key)}`);
          await assert.rejects(store.head(key), refused, `head ${JSON.stringify(key)}`);
          await assert.rejects(store.delete(key), refused, `delete ${JSON.stringify(key)}`);
        }
        await assert.rejects(listKeys(store, '../'), (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_BAD_REQUEST');
        assert.deepEqual(await listKeys(store, ''), []);
      }));

    it('shows a concurrent reader either nothing or the whole blob during a large put', { skip: options.nonAtomicServer ?? false }, () =>
      withStore(async (store) => {
        const big = randomBytes(6 * 1024 * 1024);
        const expected = sha256(big);
        let done = false;
        let misses = 0;
        const reader = (async () => {
          while (!done) {
            try {
              const bytes = await getBytes(store, 'race/big.bin');
              assert.equal(bytes.length, big.length, 'a reader saw part of a blob');
              assert.equal(sha256(bytes), expected);
            } catch (err) {
              if (!(err instanceof BlobNotFoundError)) throw err;
              misses++;
            }
            await sleep(1);
          }
        })();
        // Its failure is reported below, after the put; until then it must not count as unhandled.
        reader.catch(() => undefined);
        try {
          await store.put('race/big.bin', slowStream(big, 16 * 1024, 8));
        } finally {
          done = true;
          await reader;
        }
        assert.ok(misses > 0, 'the reader ran while the put was in progress');
        assert.equal(sha256(await getBytes(store, 'race/big.bin')), expected);
      }));

    it('honours an abort signal', () =>
      withStore(async (store) => {
        const controller = new AbortController();
        controller.abort();
        await assert.rejects(store.put('aborted', Buffer.from('x'), { signal: controller.signal }));
        await assert.rejects(store.get('aborted', { signal: controller.signal }));
        await assert.rejects(store.head('aborted'), BlobNotFoundError);

        // An upload that stalls halfway is cut off by its signal and leaves no blob.
        const stalled = new AbortController();
        const endless = Readable.from(
          (async function* () {
            yield randomBytes(64 * 1024);
            // Deaf to the abort, like a stuck client; unref'd so it cannot hold the test process open.
            await sleep(60_000, undefined, { ref: false });
          })(),
        );
        setTimeout(() => stalled.abort(), 100);
        const started = Date.now();
        await assert.rejects(store.put('stalled', endless, { signal: stalled.signal }));
        assert.ok(Date.now() - started < 10_000, 'the abort ended the put promptly');
        await assert.rejects(store.head('stalled'), BlobNotFoundError);
      }));
  });
}
