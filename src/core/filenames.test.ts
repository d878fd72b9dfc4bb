import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertSafeFilename, parseFilename } from './filenames.js';
import { PyedgeError } from './errors.js';

test('wheel filenames give name, version, build and tags', () => {
  const w = parseFilename('foo_bar-1.0.post1-1abc-cp311-cp311-manylinux_2_17_x86_64.whl');
  assert.equal(w.kind, 'wheel');
  assert.equal(w.name, 'foo_bar');
  assert.equal(w.version, '1.0.post1');
  assert.equal(w.build, '1abc');
  assert.deepEqual(w.tags, { python: 'cp311', abi: 'cp311', platform: 'manylinux_2_17_x86_64' });
  assert.equal(parseFilename('pip-23.0.1-py3-none-any.whl').version, '23.0.1');
});

test('sdist filenames: PEP 625 and legacy', () => {
  assert.deepEqual(
    { ...parseFilename('foo_bar-1.0.tar.gz') },
    { filename: 'foo_bar-1.0.tar.gz', kind: 'sdist', name: 'foo_bar', version: '1.0', extension: '.tar.gz' },
  );
  const legacy = parseFilename('zope.interface-5.0-beta.zip');
  assert.equal(legacy.name, 'zope.interface-5.0');
  assert.equal(legacy.version, 'beta');
  assert.equal(parseFilename('my-legacy-pkg-2.1.tar.gz').name, 'my-legacy-pkg');
});

test('unsafe or unknown filenames are refused with a clear error', () => {
  for (const bad of ['../x-1.0.tar.gz', 'a/b-1.0.tar.gz', 'a\\b-1.0.tar.gz', 'x-1.0\u0000.tar.gz', 'x-1.0\n.tar.gz', '.x-1.0.tar.gz', '', 'x-1.0.exe', 'x.tar.gz', 'foo-1.0.whl', 'x y-1.0.tar.gz']) {
    assert.throws(() => parseFilename(bad), (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_INVALID_FILENAME', JSON.stringify(bad));
  }
  assert.doesNotThrow(() => assertSafeFilename('foo-1.0+local!x.tar.gz'));
});
