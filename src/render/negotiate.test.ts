import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentTypeOf, negotiateSimpleFormat, type SimpleFormat } from './negotiate.js';

const JSON_V1 = 'application/vnd.pypi.simple.v1+json';
const HTML_V1 = 'application/vnd.pypi.simple.v1+html';

const ACCEPT_TABLE: ReadonlyArray<readonly [string | undefined, SimpleFormat | null, string]> = [
  [undefined, 'legacy-html', 'no Accept header'],
  ['', 'legacy-html', 'empty Accept header'],
  ['   ', 'legacy-html', 'blank Accept header'],
  [`${JSON_V1}, ${HTML_V1}; q=0.1, text/html; q=0.01`, 'json', "pip's header"],
  [`${JSON_V1}, ${HTML_V1};q=0.2, text/html;q=0.01`, 'json', "uv's header"],
  ['text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8', 'legacy-html', 'Chrome'],
  ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'legacy-html', 'Firefox'],
  ['*/*', 'legacy-html', 'curl: ties go to text/html as on Warehouse'],
  [JSON_V1, 'json', 'JSON only'],
  [HTML_V1, 'html', 'v1 HTML only'],
  ['text/html', 'legacy-html', 'legacy HTML only'],
  [`${JSON_V1}, ${HTML_V1}`, 'html', 'equal q: server preference (v1 HTML before JSON)'],
  ['application/vnd.pypi.simple.latest+json', 'json', 'latest alias for JSON'],
  ['application/vnd.pypi.simple.latest+html', 'html', 'latest alias for HTML'],
  ['APPLICATION/VND.PYPI.SIMPLE.V1+JSON', 'json', 'media types are case-insensitive'],
  ['application/json', null, 'plain JSON is not PEP 691'],
  ['image/png, application/xml', null, 'nothing we serve'],
  ['text/html;q=0', null, 'q=0 refuses the only candidate'],
  ['*/*;q=0', null, 'q=0 wildcard refuses everything'],
  ['*/*;q=0.5, text/html;q=0', 'html', 'a specific q=0 excludes only that type'],
  [`*/*, ${JSON_V1};q=0`, 'legacy-html', 'JSON excluded, wildcard keeps the rest'],
  ['application/*', 'html', 'application/* matches both vnd types; HTML preferred on ties'],
  [`application/*;q=0.5, ${JSON_V1}`, 'json', 'specific beats wildcard'],
  ['text/*', 'legacy-html', 'text/* matches text/html'],
  ['text/*;q=0.3, application/*;q=0.4', 'html', 'higher q wins'],
  ['text/html;q=0.5, application/vnd.pypi.simple.v1+json;Q=0.500', 'legacy-html', 'q compared exactly; Q case-insensitive'],
  [`${JSON_V1};q=0.001, text/html;q=0`, 'json', 'tiny but positive q is acceptable'],
  ['garbage', 'legacy-html', 'unparseable header is ignored'],
  ['text/html;q=2', 'legacy-html', 'out-of-range q makes the element invalid, and the header says nothing'],
  [`garbage, ${JSON_V1}`, 'json', 'invalid elements are skipped'],
  [`,, ${JSON_V1} ,`, 'json', 'empty list elements are allowed'],
  [`text/html;charset=utf-8;q=0.1, ${JSON_V1};q=0.2`, 'json', 'media parameters before q are tolerated'],
  ['*/json', 'legacy-html', 'wildcard type with concrete subtype is invalid'],
];

test('Accept negotiation follows PEP 691 and Warehouse', () => {
  assert.ok(ACCEPT_TABLE.length >= 15);
  for (const [accept, expected, why] of ACCEPT_TABLE) {
    assert.equal(negotiateSimpleFormat(accept, undefined), expected, `${why}: ${String(accept)}`);
  }
});

test('?format= overrides Accept', () => {
  assert.equal(negotiateSimpleFormat('text/html', JSON_V1), 'json');
  assert.equal(negotiateSimpleFormat(JSON_V1, 'text/html'), 'legacy-html');
  assert.equal(negotiateSimpleFormat('application/json', HTML_V1), 'html');
  assert.equal(negotiateSimpleFormat(undefined, 'application/vnd.pypi.simple.latest+json'), 'json');
  assert.equal(negotiateSimpleFormat(undefined, ' Application/Vnd.Pypi.Simple.V1+Json '), 'json');
});

test('an unknown ?format= is refused; an empty one is ignored', () => {
  assert.equal(negotiateSimpleFormat(JSON_V1, 'json'), null);
  assert.equal(negotiateSimpleFormat(undefined, '*/*'), null);
  assert.equal(negotiateSimpleFormat(undefined, `${JSON_V1}, text/html`), null);
  assert.equal(negotiateSimpleFormat(JSON_V1, ''), 'json');
});

test('content types name the v1 serializations', () => {
  assert.equal(contentTypeOf('json'), JSON_V1);
  assert.equal(contentTypeOf('html'), HTML_V1);
  assert.equal(contentTypeOf('legacy-html'), 'text/html');
});
