import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isNormalized, isValidName, normalizeName } from './names.js';

test('PEP 503 normalization folds case and runs of -_.', () => {
  assert.equal(normalizeName('Foo_Bar'), 'foo-bar');
  assert.equal(normalizeName('foo.__-bar'), 'foo-bar');
  assert.equal(normalizeName('Django'), 'django');
  assert.ok(isNormalized('zope-interface'));
  assert.ok(!isNormalized('zope.interface'));
});

test('project names must start and end with a letter or digit', () => {
  for (const ok of ['a', 'A1', 'foo-bar', 'foo.bar_baz', 'x9']) assert.ok(isValidName(ok), ok);
  for (const bad of ['', '-foo', 'foo-', 'foo bar', 'foo/bar', 'föö', 'a'.repeat(201)]) assert.ok(!isValidName(bad), bad);
});
