import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderProjectHtml, renderRootHtml } from './simple-html.js';
import { hex, makeFile, makeProject, makeRelease, sampleState } from './test-fixtures.js';

const Z = '0'.repeat(60);

test('project page matches the golden bytes', () => {
  const expected =
    '<!DOCTYPE html>\n' +
    '<html lang="en">\n' +
    '  <head>\n' +
    '    <meta name="pypi:repository-version" content="1.4">\n' +
    '    <meta name="pypi:project-status" content="archived">\n' +
    '    <meta name="pypi:project-status-reason" content="moved to &#34;frob2&#34; &amp; friends">\n' +
    '    <title>Links for frob-nicate</title>\n' +
    '  </head>\n' +
    '  <body>\n' +
    '    <h1>Links for frob-nicate</h1>\n' +
    `    <a href="../../packages/10/00/${Z}/frob_nicate-1.0rc1.tar.gz#sha256=${hex('1')}" data-yanked="">frob_nicate-1.0rc1.tar.gz</a><br />\n` +
    `    <a href="../../packages/20/00/${Z}/frob_nicate-1.0.tar.gz#sha256=${hex('2')}" data-yanked="Use &#34;1.9&#34; instead">frob_nicate-1.0.tar.gz</a><br />\n` +
    `    <a href="../../packages/30/00/${Z}/frob_nicate-1.9.tar.gz#sha256=${hex('3')}" data-requires-python="&gt;=3.8,&lt;4">frob_nicate-1.9.tar.gz</a><br />\n` +
    `    <a href="../../packages/40/00/${Z}/frob_nicate-1.10-py3-none-any.whl#sha256=${hex('4')}" data-dist-info-metadata="sha256=${hex('d')}" data-core-metadata="sha256=${hex('d')}">frob_nicate-1.10-py3-none-any.whl</a><br />\n` +
    '  </body>\n' +
    '</html>\n' +
    '<!--SERIAL 42-->\n';
  assert.equal(renderProjectHtml(sampleState()), expected);
});

test('the same state in another order renders the same bytes', () => {
  const state = sampleState();
  const shuffled = { ...state, releases: [...state.releases].reverse(), files: [...state.files].reverse() };
  assert.equal(renderProjectHtml(shuffled), renderProjectHtml(state));
});

test('a malicious yank reason is escaped, never markup', () => {
  const reason = `<script>"&'</script>`;
  const state = {
    project: makeProject(),
    releases: [makeRelease(1, '1.0', { yanked: true, yankedReason: reason })],
    files: [makeFile(1, '1.0', 'frob_nicate-1.0.tar.gz', '1', { yanked: true, yankedReason: reason })],
  };
  const html = renderProjectHtml(state);
  assert.ok(html.includes('data-yanked="&lt;script&gt;&#34;&amp;&#39;&lt;/script&gt;"'), html);
  assert.ok(!html.includes('<script'));
});

test('names, filenames and status reasons are escaped too', () => {
  const state = {
    project: makeProject({ normalizedName: 'x<y', status: 'deprecated', statusReason: `a'b"<c>` }),
    releases: [makeRelease(1, '1.0')],
    files: [makeFile(1, '1.0', 'x&y-1.0.tar.gz', '1')],
  };
  const html = renderProjectHtml(state);
  assert.ok(html.includes('<title>Links for x&lt;y</title>'));
  assert.ok(html.includes('<meta name="pypi:project-status-reason" content="a&#39;b&#34;&lt;c&gt;">'));
  assert.ok(html.includes('>x&amp;y-1.0.tar.gz</a>'));
  assert.ok(html.includes('/x%26y-1.0.tar.gz#sha256='), 'the href percent-encodes the filename');
});

test('an active project shows its status but no stale reason', () => {
  const html = renderProjectHtml(sampleState({ status: 'active', statusReason: 'was archived once' }));
  assert.ok(html.includes('<meta name="pypi:project-status" content="active">'));
  assert.ok(!html.includes('project-status-reason'));
});

test('a quarantined project offers no files (PEP 792)', () => {
  const html = renderProjectHtml(sampleState({ status: 'quarantined', statusReason: 'malware' }));
  assert.ok(html.includes('<meta name="pypi:project-status" content="quarantined">'));
  assert.ok(html.includes('<meta name="pypi:project-status-reason" content="malware">'));
  assert.ok(!html.includes('<a '));
});

test('a file without extras carries only the href', () => {
  const state = { project: makeProject(), releases: [makeRelease(1, '1.0')], files: [makeFile(1, '1.0', 'frob_nicate-1.0.tar.gz', '1')] };
  assert.ok(renderProjectHtml(state).includes(`#sha256=${hex('1')}">frob_nicate-1.0.tar.gz</a><br />\n`));
});

test('root page lists projects by normalized name with relative links', () => {
  const html = renderRootHtml([
    { name: 'Zeta', normalizedName: 'zeta', lastSerial: 3 },
    { name: 'Frob_Nicate', normalizedName: 'frob-nicate', lastSerial: 42 },
    { name: 'A&B', normalizedName: 'a-b', lastSerial: 1 },
  ]);
  const expected =
    '<!DOCTYPE html>\n' +
    '<html lang="en">\n' +
    '  <head>\n' +
    '    <meta name="pypi:repository-version" content="1.4">\n' +
    '    <title>Simple index</title>\n' +
    '  </head>\n' +
    '  <body>\n' +
    '    <a href="a-b/">A&amp;B</a>\n' +
    '    <a href="frob-nicate/">Frob_Nicate</a>\n' +
    '    <a href="zeta/">Zeta</a>\n' +
    '  </body>\n' +
    '</html>\n';
  assert.equal(html, expected);
});

test('an empty root page is still a valid page', () => {
  assert.ok(renderRootHtml([]).includes('  <body>\n  </body>\n'));
});
