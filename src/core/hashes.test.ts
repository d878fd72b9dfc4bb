import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MultiHasher, blake2b256Hex, packagePath } from './hashes.js';

test('BLAKE2b-256 is the real 256-bit variant, not a truncated BLAKE2b-512', () => {
  // Known answer: BLAKE2b-256 of the empty string.
  assert.equal(blake2b256Hex(new Uint8Array()), '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8');
});

test('one pass gives md5, sha256 and blake2b-256 of the whole stream', () => {
  const h = new MultiHasher();
  h.update(Buffer.from('ab'));
  h.update(Buffer.from('c'));
  const d = h.digest();
  assert.equal(h.size, 3);
  assert.equal(d.md5, '900150983cd24fb0d6963f7d28e17f72');
  assert.equal(d.sha256, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(d.blake2b_256, blake2b256Hex(Buffer.from('abc')));
});

test("Warehouse's path layout", () => {
  const b2 = '4f333d2570976cb1131332e9e9c77d2ef6f569b9d274a1bf040c1de0da003b4f';
  assert.equal(packagePath(b2, 'wheel-0.38.4-py3-none-any.whl'), `packages/4f/33/${b2.slice(4)}/wheel-0.38.4-py3-none-any.whl`);
});
