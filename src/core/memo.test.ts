import { test } from 'node:test';
import assert from 'node:assert/strict';
import { remembered } from './memo.js';

test('remembered answers from memory, null and undefined included, and stays within its limit', () => {
  const calls: string[] = [];
  const f = remembered(2, (key) => {
    calls.push(key);
    return key === 'none' ? undefined : key.length;
  });
  assert.equal(f('abc'), 3);
  assert.equal(f('abc'), 3);
  assert.equal(f('none'), undefined);
  assert.equal(f('none'), undefined);
  assert.deepEqual(calls, ['abc', 'none']);
  // Full: the next new key drops both.
  assert.equal(f('de'), 2);
  assert.equal(f('abc'), 3);
  assert.deepEqual(calls, ['abc', 'none', 'de', 'abc']);
});
