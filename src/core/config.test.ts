import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseHttpUrl, parsePort, parseSize } from './config.js';
import { PyedgeError } from './errors.js';

test('durations and sizes with units', () => {
  assert.equal(parseDuration('x', '250ms'), 250);
  assert.equal(parseDuration('x', '30s'), 30_000);
  assert.equal(parseDuration('x', '5m'), 300_000);
  assert.equal(parseDuration('x', '2'), 2000);
  assert.equal(parseSize('x', '100MB'), 100 * 1024 * 1024);
  assert.equal(parseSize('x', '512k'), 512 * 1024);
  assert.equal(parseSize('x', '1024'), 1024);
  assert.equal(parsePort('x', '0'), 0);
  assert.equal(parseHttpUrl('x', 'http://127.0.0.1:8080/'), 'http://127.0.0.1:8080');
});

test('bad values name the option', () => {
  for (const f of [() => parseDuration('--interval', 'soon'), () => parseSize('--max-upload-size', '10 apples'), () => parsePort('--port', '70000'), () => parseHttpUrl('--public-url', 'ftp://x')]) {
    assert.throws(f, (err: unknown) => err instanceof PyedgeError && err.code === 'PYEDGE_CONFIG' && /Invalid value for --/.test(err.message));
  }
});
