import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalVersion, compareVersions, isPrerelease, isValidVersion, sameVersion } from './versions.js';

test('canonical versions key releases as PyPI does', () => {
  assert.equal(canonicalVersion('1.0'), '1');
  assert.equal(canonicalVersion('1.0.0'), '1');
  assert.equal(canonicalVersion('1.0.0-RC1'), '1rc1');
  assert.equal(canonicalVersion('1.10'), '1.10');
  assert.equal(canonicalVersion('2!1.0.post1.dev2+Local.1'), '2!1.post1.dev2+local.1');
  assert.equal(canonicalVersion('1.0a'), '1a0');
  assert.equal(canonicalVersion('v1.2'), '1.2');
  assert.equal(canonicalVersion('not a version'), null);
});

test('validity and ordering follow PEP 440', () => {
  assert.ok(isValidVersion('1.0.post1'));
  assert.ok(!isValidVersion('1.0-foo-bar'));
  assert.ok(!isValidVersion(' 1.0'));
  const sorted = ['1.10', '1.0rc1', '1.9', '1.0', '0.9.dev1'].sort(compareVersions);
  assert.deepEqual(sorted, ['0.9.dev1', '1.0rc1', '1.0', '1.9', '1.10']);
  assert.ok(sameVersion('1.0', '1.0.0'));
  assert.ok(!sameVersion('1.0', '1.0.1'));
  assert.ok(isPrerelease('1.0rc1'));
  assert.ok(!isPrerelease('1.0'));
});
