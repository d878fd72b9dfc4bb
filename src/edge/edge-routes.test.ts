import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathSegments, routeOf, type EdgeRoute } from './edge-routes.js';

const B2 = 'ab'.repeat(32);
const FILE = `/packages/${B2.slice(0, 2)}/${B2.slice(2, 4)}/${B2.slice(4)}/demo-1.0-py3-none-any.whl`;

function kind(target: string): EdgeRoute['kind'] {
  return routeOf(target).kind;
}

test('the origin URLs map to layout keys', () => {
  assert.deepEqual(routeOf('/simple/'), {
    kind: 'simple',
    keys: { html: 'simple/index.html', v1Html: 'simple/index.v1_html', v1Json: 'simple/index.v1_json' },
    serial: 'state',
  });
  assert.deepEqual(routeOf('/simple/demo-pkg/?format=x'), {
    kind: 'simple',
    keys: { html: 'simple/demo-pkg/index.html', v1Html: 'simple/demo-pkg/index.v1_html', v1Json: 'simple/demo-pkg/index.v1_json' },
    serial: 'body',
  });
  assert.deepEqual(routeOf('/pypi/demo/json'), { kind: 'page', key: 'pypi/demo/json', contentType: 'application/json', serial: 'body', cors: true });
  assert.deepEqual(routeOf('/pypi/demo/json/'), { kind: 'page', key: 'pypi/demo/json', contentType: 'application/json', serial: 'body', cors: true });
  assert.deepEqual(routeOf('/pypi/demo/1.0/json'), { kind: 'release', name: 'demo', version: '1.0', nameMoved: false, slash: false, query: '' });
  assert.deepEqual(routeOf(FILE), { kind: 'file', key: FILE.slice(1), metadata: false });
  assert.deepEqual(routeOf(`${FILE}.metadata`), { kind: 'file', key: `${FILE.slice(1)}.metadata`, metadata: true });
  assert.equal((routeOf('/serversig/demo') as { key: string }).key, 'simple/demo/serversig');
  assert.equal((routeOf('/simple/demo/index.v1_json') as { key: string }).key, 'simple/demo/index.v1_json');
  assert.equal((routeOf('/simple/index.html') as { key: string }).key, 'simple/index.html');
  assert.equal((routeOf('/last-modified') as { serial: string }).serial, 'state');
  assert.equal(kind('/serverkey'), 'page');
  assert.equal(kind('/pyedge-state.json'), 'page');
  assert.equal(kind('/_health'), 'health');
  assert.equal(kind('/_ready'), 'ready');
  assert.equal(kind('/'), 'home');
});

test('names are normalized with a 301 that keeps the query', () => {
  assert.deepEqual(routeOf('/simple'), { kind: 'moved', location: '/simple/' });
  assert.deepEqual(routeOf('/simple?format=text/html'), { kind: 'moved', location: '/simple/?format=text/html' });
  assert.deepEqual(routeOf('/simple/Demo_Pkg'), { kind: 'moved', location: '/simple/demo-pkg/' });
  assert.deepEqual(routeOf('/simple/demo'), { kind: 'moved', location: '/simple/demo/' });
  assert.deepEqual(routeOf('/simple/Demo.Pkg/?x=1'), { kind: 'moved', location: '/simple/demo-pkg/?x=1' });
  assert.deepEqual(routeOf('/pypi/Demo_Pkg/json/'), { kind: 'moved', location: '/pypi/demo-pkg/json/' });
  assert.deepEqual(routeOf('/serversig/Demo'), { kind: 'moved', location: '/serversig/demo' });
  assert.deepEqual(routeOf('/pypi/Demo/1.0/json'), { kind: 'release', name: 'demo', version: '1.0', nameMoved: true, slash: false, query: '' });
});

test('traversal, backslashes, encoded slashes and bad escapes are bad requests', () => {
  for (const target of [
    '/simple/../pyedge-state.json',
    '/simple/%2e%2e/x/',
    '/simple/%2E%2E/',
    '/packages/%2e%2e/%2e%2e/etc/passwd',
    '/packages/..%2f..%2fetc/passwd',
    '/simple/a%2Fb/',
    '/simple\\..\\x',
    '/simple/%5c../',
    '/simple/%zz/',
    '/simple/a%00b/',
    '/./simple/',
    'http://example.com/simple/',
    '*',
  ]) {
    assert.equal(kind(target), 'bad-request', target);
  }
  assert.deepEqual(pathSegments('/simple/a%20b/'), ['simple', 'a b', '']);
});

test('anything outside the layout is not found, never a key', () => {
  for (const target of [
    '/.tmp/1234-abcd',
    '/pyedge-status.json',
    '/simple/.tmp/',
    '/simple/not a name/',
    '/simple/-x-/',
    '/simple/demo/other',
    '/simple/Demo/index.html',
    '/packages/ab/cd/short/file.whl',
    '/packages/AB/ab/' + 'ab'.repeat(30) + '/x.whl',
    FILE + '/more',
    '/pypi/demo/.hidden/json',
    '/pypi/demo/1.0/2.0/json',
    '/pypi/demo',
    '/local-stats/days/',
    '/_health/x',
  ]) {
    assert.equal(kind(target), 'not-found', target);
  }
});
