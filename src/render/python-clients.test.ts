/**
 * Feeds rendered pages to Python's own parsers: html.parser (what pip's
 * HTMLLinkParser builds on) and, when importable, pip's parse_links itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { renderProjectHtml, renderRootHtml } from './simple-html.js';
import { renderProjectJson } from './simple-json.js';
import { makeFile, makeProject, makeRelease, sampleState } from './test-fixtures.js';
import type { ProjectState } from '../core/model.js';

const ANCHORS_PY = `
import json, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.anchors, self.metas, self._a = [], [], None
    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._a = {"attrs": dict(attrs), "text": ""}
        elif tag == "meta":
            self.metas.append(dict(attrs))
    def handle_data(self, data):
        if self._a is not None:
            self._a["text"] += data
    def handle_endtag(self, tag):
        if tag == "a" and self._a is not None:
            self.anchors.append(self._a)
            self._a = None
p = P()
p.feed(sys.stdin.read())
p.close()
print(json.dumps({"anchors": p.anchors, "metas": p.metas}))
`;

const PIP_PY = `
import json, sys
from pip._internal.index.collector import IndexContent, parse_links
req = json.loads(sys.stdin.read())
page = IndexContent(req["body"].encode("utf-8"), req["contentType"], "utf-8", req["url"], cache_link_parsing=False)
out = []
for link in parse_links(page):
    md = link.metadata_file_data
    out.append({
        "url": link.url_without_fragment,
        "filename": link.filename,
        "hashes": link._hashes,
        "requiresPython": link.requires_python,
        "yankedReason": link.yanked_reason,
        "metadataHashes": None if md is None else md.hashes,
    })
print(json.dumps(out))
`;

interface PyResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

function runPython(script: string, input: string): PyResult | null {
  const r = spawnSync('python3', ['-c', script], { input, encoding: 'utf8', timeout: 30_000 });
  if (r.error !== undefined) return null; // no python3 on this machine
  return { ok: r.status === 0, stdout: r.stdout, stderr: r.stderr };
}

function hasPip(): boolean {
  const r = spawnSync('python3', ['-c', 'import pip._internal.index.collector'], { encoding: 'utf8', timeout: 30_000 });
  return r.error === undefined && r.status === 0;
}

const NASTY = `<script>"&'</script> ü`;

function nastyState(): ProjectState {
  const base = sampleState({ status: 'deprecated', statusReason: NASTY });
  return {
    ...base,
    releases: [...base.releases, makeRelease(9, '3.0', { yanked: true, yankedReason: NASTY })],
    files: [
      ...base.files,
      makeFile(9, '3.0', 'frob_nicate-3.0.tar.gz', '9', { yanked: true, yankedReason: NASTY, requiresPython: '>=3.8,<4,!="3.9"' }),
    ],
  };
}

test('html.parser decodes every attribute back exactly', (t) => {
  const state = nastyState();
  const r = runPython(ANCHORS_PY, renderProjectHtml(state));
  if (r === null) return t.skip('python3 not available');
  assert.ok(r.ok, r.stderr);
  const parsed = JSON.parse(r.stdout) as {
    anchors: { attrs: Record<string, string | null>; text: string }[];
    metas: Record<string, string>[];
  };
  assert.deepEqual(
    parsed.metas.map((m) => [m.name, m.content]),
    [
      ['pypi:repository-version', '1.4'],
      ['pypi:project-status', 'deprecated'],
      ['pypi:project-status-reason', NASTY],
    ],
  );
  const byName = new Map(state.files.map((f) => [f.filename, f]));
  assert.equal(parsed.anchors.length, state.files.length);
  for (const a of parsed.anchors) {
    const f = byName.get(a.text);
    assert.ok(f, `anchor text ${a.text} is a filename`);
    assert.equal(a.attrs.href, `../../${f.path}#sha256=${f.sha256}`);
    assert.equal(a.attrs['data-requires-python'], f.requiresPython ?? undefined);
    assert.equal(a.attrs['data-yanked'], f.yanked ? (f.yankedReason ?? '') : undefined);
    const md = f.metadataSha256 === null ? undefined : `sha256=${f.metadataSha256}`;
    assert.equal(a.attrs['data-core-metadata'], md);
    assert.equal(a.attrs['data-dist-info-metadata'], md);
  }
});

test('html.parser reads the root page links', (t) => {
  const listings = [
    { name: 'A&B "q"', normalizedName: 'a-b-q', lastSerial: 1 },
    { name: 'zeta', normalizedName: 'zeta', lastSerial: 2 },
  ];
  const r = runPython(ANCHORS_PY, renderRootHtml(listings));
  if (r === null) return t.skip('python3 not available');
  assert.ok(r.ok, r.stderr);
  const parsed = JSON.parse(r.stdout) as { anchors: { attrs: Record<string, string>; text: string }[] };
  assert.deepEqual(
    parsed.anchors.map((a) => [a.attrs.href, a.text]),
    [
      ['a-b-q/', 'A&B "q"'],
      ['zeta/', 'zeta'],
    ],
  );
});

test("pip's parser sees the same links in the HTML and the JSON page", (t) => {
  if (!hasPip()) return t.skip('pip is not importable by python3');
  const state = nastyState();
  const url = 'https://index.example/simple/frob-nicate/';
  const parse = (body: string, contentType: string): Record<string, unknown>[] => {
    const r = runPython(PIP_PY, JSON.stringify({ body, contentType, url }));
    assert.ok(r?.ok, r?.stderr);
    return JSON.parse(r.stdout) as Record<string, unknown>[];
  };
  const fromHtml = parse(renderProjectHtml(state), 'application/vnd.pypi.simple.v1+html');
  const fromJson = parse(renderProjectJson(state), 'application/vnd.pypi.simple.v1+json');
  assert.deepEqual(fromHtml, fromJson);

  const wheel = fromJson.find((l) => l.filename === 'frob_nicate-1.10-py3-none-any.whl');
  assert.deepEqual(wheel, {
    url: `https://index.example/${state.files.find((f) => f.filename === 'frob_nicate-1.10-py3-none-any.whl')?.path}`,
    filename: 'frob_nicate-1.10-py3-none-any.whl',
    hashes: { sha256: '4'.repeat(64) },
    requiresPython: null,
    yankedReason: null,
    metadataHashes: { sha256: 'd'.repeat(64) },
  });
  const yanked = fromJson.find((l) => l.filename === 'frob_nicate-3.0.tar.gz');
  assert.equal(yanked?.yankedReason, NASTY);
  assert.equal(yanked?.requiresPython, '>=3.8,<4,!="3.9"');
  assert.equal(fromJson.find((l) => l.filename === 'frob_nicate-1.0rc1.tar.gz')?.yankedReason, '');
});

test("pip reads a filename with + and ! back from the percent-encoded URL", (t) => {
  if (!hasPip()) return t.skip('pip is not importable by python3');
  const filename = 'frob_nicate-1!2.0+local.1-py3-none-any.whl';
  const state = { project: makeProject(), releases: [makeRelease(1, '1!2.0+local.1')], files: [makeFile(1, '1!2.0+local.1', filename, '7')] };
  const html = renderProjectHtml(state);
  assert.ok(html.includes('/frob_nicate-1!2.0%2Blocal.1-py3-none-any.whl#'), html);
  const r = runPython(PIP_PY, JSON.stringify({ body: html, contentType: 'text/html', url: 'https://index.example/simple/frob-nicate/' }));
  assert.ok(r?.ok, r?.stderr);
  const links = JSON.parse(r.stdout) as { filename: string }[];
  assert.deepEqual(links.map((l) => l.filename), [filename]);
});
