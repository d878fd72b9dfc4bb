import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { blake2b } from '@noble/hashes/blake2.js';
import { Blake2b256, blake2b256 } from './blake2b.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Deterministic bytes, so a failure names an input that can be made again. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

test('BLAKE2b-256 known answers (RFC 7693 parameters, as Python hashlib.blake2b(digest_size=32) gives them)', () => {
  assert.equal(hex(blake2b256(new Uint8Array())), '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8');
  assert.equal(hex(blake2b256(Buffer.from('abc'))), 'bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319');
  // Not BLAKE2b-512 cut short: the digest length is part of the parameter block.
  assert.notEqual(hex(blake2b256(Buffer.from('abc'))), createHash('blake2b512').update('abc').digest('hex').slice(0, 64));
});

test('agrees with @noble/hashes on every length around the block size and on large inputs', () => {
  const lengths = [...Array.from({ length: 300 }, (_, i) => i), 383, 384, 385, 1023, 1024, 1025, 65_407, 65_408, 65_409, 65_536, 200_001];
  for (const n of lengths) {
    const data = bytes(n, n);
    assert.equal(hex(blake2b256(data)), hex(blake2b(data, { dkLen: 32 })), `length ${n}`);
  }
});

test('any cut of the input into updates gives the one-shot digest', () => {
  for (let seed = 1; seed <= 60; seed++) {
    const data = bytes(seed * 97, seed);
    const h = new Blake2b256();
    let offset = 0;
    let cut = seed;
    while (offset < data.length) {
      // Updates of 0 up to a few hundred bytes, some on block boundaries.
      cut = (cut * 31 + 7) % 300;
      const size = seed % 5 === 0 ? 128 : cut;
      h.update(data.subarray(offset, offset + size));
      offset += size;
    }
    h.update(new Uint8Array());
    assert.equal(hex(h.digest()), hex(blake2b(data, { dkLen: 32 })), `seed ${seed}`);
  }
});

test('hashes in progress do not disturb each other', () => {
  const a = new Blake2b256();
  const b = new Blake2b256();
  const da = bytes(5000, 1);
  const db = bytes(7000, 2);
  for (let i = 0; i < 7000; i += 1000) {
    if (i < 5000) a.update(da.subarray(i, i + 1000));
    b.update(db.subarray(i, i + 1000));
  }
  assert.equal(hex(a.digest()), hex(blake2b256(da)));
  assert.equal(hex(b.digest()), hex(blake2b256(db)));
  assert.throws(() => a.digest(), /twice/);
  assert.throws(() => a.update(da), /after digest/);
});
