import { test } from 'node:test';
import assert from 'node:assert/strict';
import { responseHeaders } from './forwarder.js';

test('hop-by-hop fields are stripped, Via is added and upstream redirects stay on the proxy', () => {
  const out = responseHeaders(
    {
      'content-type': 'text/html',
      connection: 'keep-alive, x-private-hop',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'x-private-hop': '1',
      'x-pypi-last-serial': '12',
      location: 'http://up.example/mirror/simple/demo/',
      via: '1.1 varnish',
    },
    'http://up.example/mirror/',
  );
  assert.deepEqual(out, {
    'content-type': 'text/html',
    'x-pypi-last-serial': '12',
    location: '/simple/demo/',
    via: '1.1 varnish, 1.1 pyedge-proxy',
  });
});
