import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRedirectPaths, resolveEdgeConfig } from './edge-config.js';

test('defaults, and a tree or a redirect target is required', () => {
  const c = resolveEdgeConfig({ root: './tree' });
  assert.equal(c.root, './tree');
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8081);
  assert.equal(c.redirectTo, null);
  assert.deepEqual(c.redirectPaths, ['packages/']);
  assert.ok(Object.isFrozen(c));
  assert.throws(() => resolveEdgeConfig({}), /Missing --root/);
  assert.throws(() => resolveEdgeConfig({ root: 't', port: 'x' }), /--port/);
  assert.throws(() => resolveEdgeConfig({ root: 't', redirectTo: 'ftp://cdn' }), /--redirect-to/);
});

test('redirect mode: the CDN base without its trailing slash, and the prefixes', () => {
  const c = resolveEdgeConfig({ root: 't', redirectTo: 'https://cdn.example/tree/', redirectPaths: '/packages/, simple/' });
  assert.equal(c.redirectTo, 'https://cdn.example/tree');
  assert.deepEqual(c.redirectPaths, ['packages/', 'simple/']);
  // Without a tree, every path redirects.
  assert.deepEqual(resolveEdgeConfig({ redirectTo: 'https://cdn.example' }).redirectPaths, ['']);
  assert.throws(() => resolveEdgeConfig({ redirectTo: 'https://cdn.example', redirectPaths: 'simple/' }), /without --root/);
  assert.deepEqual(parseRedirectPaths(['/', 'packages/']), ['', 'packages/']);
  assert.throws(() => parseRedirectPaths('../x'), /--redirect-paths/);
  assert.throws(() => parseRedirectPaths(' , '), /names no path/);
});
