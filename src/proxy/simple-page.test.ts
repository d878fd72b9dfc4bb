import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderProjectHtml, renderProjectJson } from '../render/index.js';
import type { ProjectState } from '../core/model.js';
import { fileHash, parseHashSegment, parseHtmlPage, parseJsonPage, proxyFileUrl, renderHtml, renderJson } from './simple-page.js';

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const SHA_M = 'c'.repeat(64);

const state = {
  project: { name: 'Demo_Pkg', normalizedName: 'demo-pkg', lastSerial: 42, status: 'active', statusReason: null },
  releases: [
    { version: '1.0', yanked: false, yankedReason: null },
    { version: '2.0', yanked: false, yankedReason: null },
  ],
  files: [
    { filename: 'demo_pkg-1.0-py3-none-any.whl', version: '1.0', path: 'packages/aa/bb/cc/demo_pkg-1.0-py3-none-any.whl', sha256: SHA_A, requiresPython: '>=3.8', metadataSha256: SHA_M, size: 10, uploadTime: '2024-01-02T03:04:05Z', yanked: true, yankedReason: 'broken <build>' },
    { filename: 'demo_pkg-2.0.tar.gz', version: '2.0', path: 'packages/dd/ee/ff/demo_pkg-2.0.tar.gz', sha256: SHA_B, requiresPython: null, metadataSha256: null, size: 20, uploadTime: '2024-02-02T03:04:05Z', yanked: false, yankedReason: null },
  ],
} as unknown as ProjectState;

const PAGE_URL = 'http://up.example/simple/demo-pkg/';

test('an HTML page keeps every attribute and gets proxy links', () => {
  const page = parseHtmlPage('demo-pkg', renderProjectHtml(state), PAGE_URL, null);
  assert.equal(page.serial, 42);
  assert.equal(page.files.length, 2);
  const [a, b] = page.files;
  assert.equal(a!.url, 'http://up.example/packages/aa/bb/cc/demo_pkg-1.0-py3-none-any.whl');
  assert.deepEqual(a!.hashes, { sha256: SHA_A });
  assert.equal(a!.requiresPython, '>=3.8');
  assert.equal(a!.yanked, 'broken <build>');
  assert.deepEqual(a!.coreMetadata, { sha256: SHA_M });
  assert.equal(b!.yanked, false);
  assert.equal(b!.coreMetadata, false);

  const html = renderHtml(page);
  assert.match(html, new RegExp(`href="/_files/demo-pkg/${SHA_A}/demo_pkg-1.0-py3-none-any.whl#sha256=${SHA_A}"`));
  assert.match(html, /data-requires-python="&gt;=3.8"/);
  assert.match(html, /data-yanked="broken &lt;build&gt;"/);
  assert.match(html, new RegExp(`data-core-metadata="sha256=${SHA_M}"`));
  assert.match(html, new RegExp(`data-dist-info-metadata="sha256=${SHA_M}"`));
  assert.match(html, /<!--SERIAL 42-->/);
  // Round trip: what the proxy renders parses to the same facts.
  const again = parseHtmlPage('demo-pkg', html, 'http://proxy/simple/demo-pkg/', null);
  assert.deepEqual(again.files.map((f) => [f.filename, f.hashes, f.requiresPython, f.yanked, f.coreMetadata]), page.files.map((f) => [f.filename, f.hashes, f.requiresPython, f.yanked, f.coreMetadata]));
});

test('a JSON page keeps unknown keys and converts to HTML and back', () => {
  const page = parseJsonPage('demo-pkg', renderProjectJson(state), PAGE_URL, 7);
  assert.equal(page.serial, 42, 'the body serial wins over the header');
  const json = JSON.parse(renderJson(page)) as { meta: Record<string, unknown>; versions: string[]; files: Record<string, unknown>[]; 'project-status': unknown };
  assert.equal(json.meta['_last-serial'], 42);
  assert.equal(json.meta['api-version'], '1.4');
  assert.deepEqual(json.versions, ['1.0', '2.0']);
  assert.deepEqual(json['project-status'], { status: 'active' });
  assert.equal(json.files[0]!.url, proxyFileUrl('demo-pkg', { name: 'sha256', hex: SHA_A }, 'demo_pkg-1.0-py3-none-any.whl'));
  assert.equal(json.files[0]!.size, 10);
  assert.equal(json.files[0]!['upload-time'], '2024-01-02T03:04:05Z');
  assert.equal(json.files[0]!.yanked, 'broken <build>');
  assert.deepEqual(json.files[0]!['core-metadata'], { sha256: SHA_M });

  const html = renderHtml(page);
  assert.match(html, /<meta name="pypi:project-status" content="active">/);
  assert.match(html, new RegExp(`data-core-metadata="sha256=${SHA_M}"`));
  assert.match(html, /data-yanked="broken &lt;build&gt;"/);
  const fromHtml = parseHtmlPage('demo-pkg', renderProjectHtml(state), PAGE_URL, null);
  const converted = JSON.parse(renderJson(fromHtml)) as { files: Record<string, unknown>[]; meta: Record<string, unknown>; 'project-status': unknown };
  assert.equal(converted.meta['_last-serial'], 42);
  assert.deepEqual(converted['project-status'], { status: 'active' });
  assert.equal(converted.files[0]!['requires-python'], '>=3.8');
  assert.deepEqual(converted.files[1]!.hashes, { sha256: SHA_B });
});

test('relative and absolute links resolve against the page', () => {
  const html = `<!DOCTYPE html><html><body>
<a href="https://files.example/x/demo-1.0.tar.gz#sha256=${SHA_A}">demo-1.0.tar.gz</a>
<a href='/packages/demo-2.0.tar.gz#sha256=${SHA_B}' data-requires-python='&lt;4'>demo-2.0.tar.gz</a>
<a href="nohash-3.0.tar.gz">nohash-3.0.tar.gz</a>
</body></html>`;
  const page = parseHtmlPage('demo', html, 'http://mirror.example/pypi/simple/demo/', 5);
  assert.equal(page.serial, 5);
  assert.deepEqual(page.files.map((f) => f.url), ['https://files.example/x/demo-1.0.tar.gz', 'http://mirror.example/packages/demo-2.0.tar.gz', 'http://mirror.example/pypi/simple/demo/nohash-3.0.tar.gz']);
  assert.equal(page.files[1]!.requiresPython, '<4');
  assert.equal(fileHash(page.files[2]!), null);
  // A link without a usable hash stays pointed at its upstream.
  assert.match(renderHtml(page), /href="http:\/\/mirror.example\/pypi\/simple\/demo\/nohash-3.0.tar.gz"/);
});

test('garbage is not a page', () => {
  assert.throws(() => parseJsonPage('demo', '\u0000\u0001garbage', PAGE_URL, null), /not a JSON page/);
  assert.throws(() => parseJsonPage('demo', '{"files": 3}', PAGE_URL, null), /not a PEP 691 page/);
  assert.throws(() => parseHtmlPage('demo', 'just words', PAGE_URL, null), /not an HTML page/);
});

test('hash segments', () => {
  assert.deepEqual(parseHashSegment(SHA_A), { name: 'sha256', hex: SHA_A });
  assert.deepEqual(parseHashSegment(`md5-${'0'.repeat(32)}`), { name: 'md5', hex: '0'.repeat(32) });
  assert.equal(parseHashSegment('abc'), null);
  assert.equal(parseHashSegment('0'.repeat(40)), null);
});
