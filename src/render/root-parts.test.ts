import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHtml } from './escape-html.js';
import { rootHtml, rootJson } from './root-parts.js';
import { projectHref } from './simple-page.js';

const NAMES: [string, string][] = [
  ['requests', 'requests'],
  ['Zope.Interface', 'zope-interface'],
  ['a_b-C.9', 'a-b-c-9'],
  ['A&B', 'a-b'],
  ['say "hi"', 'say-hi'],
  ["o'reilly", "o'reilly"],
  ['<script>', '<script>'],
  ['żółw', 'żółw'],
  ['tab\there', 'tab-here'],
  ['back\\slash', 'back-slash'],
  ['sp ace', 'sp ace'],
  ['', ''],
];

test('root entries are the escaped forms for every name, plain or not', () => {
  for (const [name, normalizedName] of NAMES) {
    const p = { name, normalizedName, lastSerial: 7 };
    assert.equal(rootHtml.entry(p), `    <a href="${escapeHtml(projectHref(normalizedName))}">${escapeHtml(name)}</a>\n`, name);
    assert.equal(rootJson.entry(p, true), `{"_last-serial":7,"name":${JSON.stringify(name)}}`, name);
    assert.equal(rootJson.entry(p, false), `,{"_last-serial":7,"name":${JSON.stringify(name)}}`, name);
    assert.deepEqual(JSON.parse(`[${rootJson.entry(p, true)}]`), [{ '_last-serial': 7, name }]);
  }
});
