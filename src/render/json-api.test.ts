import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProjectState, ReleaseMetadata } from '../core/model.js';
import { renderJsonApiPages, renderProjectJsonApi, renderReleaseJsonApi } from './json-api.js';
import { dumpJson } from './json-api-dump.js';
import { latestRelease, uploadTimes } from './json-api-release.js';
import { WAREHOUSE_PROJECT_SHAPE, WAREHOUSE_RELEASE_SHAPE, shapeMismatches } from './json-api.fixture.js';
import { hex, makeFile, makeProject, makeRelease, sampleState } from './test-fixtures.js';

const BASE = 'https://index.example';

interface FileOut {
  filename: string;
  url: string;
  digests: { md5: string; sha256: string; blake2b_256: string };
  md5_digest: string;
  requires_python: string | null;
  size: number;
  upload_time: string;
  upload_time_iso_8601: string;
  yanked: boolean;
  yanked_reason: string | null;
  packagetype: string;
  python_version: string;
}
interface ApiOut {
  info: Record<string, unknown> & { version: string; name: string };
  last_serial: number;
  releases?: Record<string, FileOut[]>;
  urls: FileOut[];
  vulnerabilities: unknown[];
}

function project(state: ProjectState): ApiOut {
  const body = renderProjectJsonApi(state, BASE);
  assert.ok(body !== null, 'a project with releases renders');
  return JSON.parse(body) as ApiOut;
}

const RICH: ReleaseMetadata = {
  metadataVersion: '2.4',
  summary: 'Frobs — nicely',
  description: '# Frob\n',
  descriptionContentType: 'text/markdown',
  requiresPython: '>=3.9',
  requiresDist: ['requests>=2', "pytest; extra == 'test'"],
  providesExtra: ['test'],
  license: null,
  licenseExpression: 'MIT OR Apache-2.0',
  licenseFiles: ['LICENSE'],
  classifiers: ['Programming Language :: Python :: 3'],
  keywords: 'frob,nicate',
  author: 'Ann',
  authorEmail: 'ann@example.org',
  maintainer: null,
  maintainerEmail: null,
  homePage: 'https://frob.example',
  projectUrls: ['Source, https://git.example/frob', 'Homepage, https://frob.example', 'Broken entry', ' , https://x', '__proto__, https://p.example'],
  dynamic: ['Classifier'],
};

function richState(): ProjectState {
  return {
    project: makeProject(),
    releases: [makeRelease(1, '1.0', { metadata: RICH })],
    files: [makeFile(1, '1.0', 'frob_nicate-1.0-py3-none-any.whl', 'a'), makeFile(2, '1.0', 'frob_nicate-1.0.tar.gz', 'b', { releaseId: 1 })],
  };
}

test('the project response has exactly Warehouse\'s keys with Warehouse\'s value types', () => {
  for (const state of [sampleState({ status: 'active' }), richState()]) {
    const out = JSON.parse(renderProjectJsonApi(state, BASE)!) as unknown;
    assert.deepEqual(shapeMismatches(out, WAREHOUSE_PROJECT_SHAPE), []);
  }
});

test('the release response has Warehouse\'s keys and no `releases`', () => {
  for (const [state, version] of [[sampleState(), '1.9'], [richState(), '1.0']] as const) {
    const out = JSON.parse(renderReleaseJsonApi(state, version, BASE)!) as Record<string, unknown>;
    assert.deepEqual(shapeMismatches(out, WAREHOUSE_RELEASE_SHAPE), []);
    assert.ok(!('releases' in out));
  }
});

test('the shape check catches a missing key, an extra key and a wrong type', () => {
  const out = JSON.parse(renderProjectJsonApi(richState(), BASE)!) as { info: Record<string, unknown>; urls: Record<string, unknown>[] };
  delete out.info.license_expression;
  out.info.stable_version = null;
  out.urls[0]!.size = '12';
  assert.deepEqual(shapeMismatches(out, WAREHOUSE_PROJECT_SHAPE).sort(), [
    '$.info.license_expression: missing',
    '$.info.stable_version: not in Warehouse\'s response',
    '$.urls[0].size: expected int, got string',
  ]);
});

test('info carries the release metadata with Warehouse\'s nulls and derived fields', () => {
  const { info } = project(richState());
  assert.equal(info.name, 'Frob_Nicate');
  assert.equal(info.version, '1.0');
  assert.equal(info.summary, 'Frobs — nicely');
  assert.equal(info.description, '# Frob\n');
  assert.equal(info.description_content_type, 'text/markdown');
  assert.deepEqual(info.requires_dist, ['requests>=2', "pytest; extra == 'test'"]);
  assert.deepEqual(info.provides_extra, ['test']);
  assert.deepEqual(info.license_files, ['LICENSE']);
  assert.equal(info.license_expression, 'MIT OR Apache-2.0');
  assert.equal(info.license, null);
  assert.deepEqual(info.dynamic, ['Classifier']);
  assert.equal(info.requires_python, '>=3.9');
  assert.deepEqual(info.downloads, { last_day: -1, last_month: -1, last_week: -1 });
  assert.equal(info.package_url, `${BASE}/project/Frob_Nicate/`);
  assert.equal(info.project_url, `${BASE}/project/Frob_Nicate/`);
  assert.equal(info.release_url, `${BASE}/project/Frob_Nicate/1.0/`);
  // Homepage from Home-page, not repeated by the equal Project-URL; malformed entries skipped.
  assert.deepEqual(Object.entries(info.project_urls as object).sort(), [
    ['Homepage', 'https://frob.example'],
    ['Source', 'https://git.example/frob'],
    ['__proto__', 'https://p.example'],
  ]);
  for (const k of ['bugtrack_url', 'docs_url', 'download_url', 'platform', 'maintainer', 'yanked_reason']) assert.equal(info[k], null, k);
  assert.equal(info.yanked, false);

  const bare = project(sampleState());
  for (const k of ['requires_dist', 'provides_extra', 'license_files', 'dynamic', 'project_urls', 'requires_python', 'summary']) {
    assert.equal(bare.info[k], null, k);
  }
  assert.equal(bare.info.description, '', 'Warehouse keeps an empty description, never null');
  assert.deepEqual(bare.info.classifiers, []);
});

test('files: absolute URLs, the three digests, Warehouse\'s two upload-time forms, release yank state', () => {
  const out = project(sampleState());
  const f = out.releases!['1.0']![0]!;
  assert.equal(f.filename, 'frob_nicate-1.0.tar.gz');
  assert.equal(f.url, `${BASE}/packages/20/00/${'0'.repeat(60)}/frob_nicate-1.0.tar.gz`);
  assert.deepEqual(f.digests, { blake2b_256: `2${'0'.repeat(63)}`, md5: '2'.repeat(32), sha256: hex('2') });
  assert.equal(f.md5_digest, '2'.repeat(32));
  assert.equal(f.packagetype, 'sdist');
  assert.equal(f.python_version, 'source');
  assert.equal(f.size, 1002);
  assert.equal(f.upload_time, '2024-02-02T10:00:00');
  assert.equal(f.upload_time_iso_8601, '2024-02-02T10:00:00.123456Z');
  assert.equal(f.yanked, true);
  assert.equal(f.yanked_reason, 'Use "1.9" instead');
  const rc = out.releases!['1.0rc1']![0]!;
  assert.equal(rc.yanked, true);
  assert.equal(rc.yanked_reason, null, 'a yank without a reason has a null reason');
  assert.equal(out.releases!['1.9']![0]!.requires_python, '>=3.8,<4', 'the file\'s Requires-Python when the release has none');
});

test('releases lists every release, files ordered by filename; urls are the shown version\'s files', () => {
  const out = project(sampleState());
  assert.deepEqual(Object.keys(out.releases!).sort(), ['1.0', '1.0rc1', '1.10', '1.9', '2.0']);
  assert.deepEqual(out.releases!['2.0'], [], 'a release without files is listed, empty');
  assert.equal(out.info.version, '2.0');
  assert.deepEqual(out.urls, []);

  const rich = project(richState());
  assert.deepEqual(rich.urls.map((f) => f.filename), ['frob_nicate-1.0-py3-none-any.whl', 'frob_nicate-1.0.tar.gz']);
  assert.deepEqual(rich.urls, rich.releases!['1.0']);
  assert.equal(rich.last_serial, 42);
  assert.deepEqual(rich.vulnerabilities, []);
});

function withVersions(specs: readonly (string | [string, 'yanked'])[]): ProjectState {
  return {
    project: makeProject(),
    releases: specs.map((s, i) => (typeof s === 'string' ? makeRelease(i + 1, s) : makeRelease(i + 1, s[0], { yanked: true }))),
    files: [],
  };
}

test('the project response shows the release Warehouse picks: not yanked, then final, then highest', () => {
  const cases: [readonly (string | [string, 'yanked'])[], string][] = [
    [['1.0', '2.0rc1', '1.5'], '1.5'],
    [['1.0', ['1.5', 'yanked'], '2.0rc1'], '1.0'],
    [[['1.0', 'yanked'], '2.0rc1'], '2.0rc1'],
    [[['1.0', 'yanked'], ['2.0', 'yanked'], ['3.0rc1', 'yanked']], '2.0'],
    [['1.0a1', '1.0b2', '1.0.dev3'], '1.0b2'],
    [['1.9', '1.10', '1.10.post1', '1!0.1'], '1!0.1'],
    [['0.9', '1.0.dev1'], '0.9'],
  ];
  for (const [versions, expected] of cases) {
    const state = withVersions(versions);
    assert.equal(latestRelease(state.releases)?.version, expected, JSON.stringify(versions));
    assert.equal(project(state).info.version, expected, JSON.stringify(versions));
  }
  assert.equal(latestRelease([]), null);
  assert.equal(renderProjectJsonApi(withVersions([]), BASE), null, 'nothing to show without releases');
});

test('a release is found by any spelling of its version; unknown versions give null', () => {
  const state = sampleState();
  const a = JSON.parse(renderReleaseJsonApi(state, '1.9.0', BASE)!) as ApiOut;
  assert.equal(a.info.version, '1.9');
  assert.deepEqual(a.urls.map((f) => f.filename), ['frob_nicate-1.9.tar.gz']);
  assert.equal(a.info.release_url, `${BASE}/project/Frob_Nicate/1.9/`);
  const rc = JSON.parse(renderReleaseJsonApi(state, '1.0.0-RC1', BASE)!) as ApiOut;
  assert.equal(rc.info.version, '1.0rc1');
  assert.equal(rc.info.yanked, true);
  assert.equal(renderReleaseJsonApi(state, '3.0', BASE), null);
  assert.equal(renderReleaseJsonApi(state, 'not a version', BASE), null);
});

test('quarantined projects are hidden from the JSON API', () => {
  const state = sampleState({ status: 'quarantined' });
  assert.equal(renderProjectJsonApi(state, BASE), null);
  assert.equal(renderReleaseJsonApi(state, '1.9', BASE), null);
});

test('bytes are deterministic, keys sorted like Python, non-ASCII escaped like ensure_ascii', () => {
  const state = richState();
  const reordered: ProjectState = { ...state, files: [...state.files].reverse() };
  const body = renderProjectJsonApi(state, BASE)!;
  assert.equal(renderProjectJsonApi(reordered, BASE), body);
  assert.ok(body.startsWith('{"info":{"author":"Ann","author_email":"ann@example.org","bugtrack_url":null,'), body.slice(0, 120));
  assert.match(body, /"last_serial":42,"releases":\{"1\.0":\[/);
  assert.match(body, /"summary":"Frobs \\u2014 nicely"/);
  assert.ok(/^[\x20-\x7e]*$/.test(body), 'pure printable ASCII');
  const sample = renderProjectJsonApi(sampleState(), BASE)!;
  assert.match(sample, /"releases":\{"1\.0":\[.*\],"1\.0rc1":\[.*\],"1\.10":\[.*\],"1\.9":\[.*\],"2\.0":\[\]\}/);
});

test('dumpJson matches Python\'s json.dumps(sort_keys=True, separators=(",", ":"))', () => {
  // Integer-like keys sort as strings (a plain JS object would put them first, numerically).
  assert.equal(dumpJson(new Map([['2', 1], ['10', 2], ['1.5', 3]])), '{"1.5":3,"10":2,"2":1}');
  assert.equal(dumpJson({ b: [true, null, -1], a: 'x"\\\n\u0001\u007f' }), '{"a":"x\\"\\\\\\n\\u0001\\u007f","b":[true,null,-1]}');
  // Code-point order: U+1F600 sorts after U+FFFD although its first UTF-16 unit is smaller.
  assert.equal(dumpJson(new Map([['\u{1F600}', 1], ['\uFFFD', 2]])), '{"\\ufffd":2,"\\ud83d\\ude00":1}');
  assert.equal(dumpJson(new Map([['__proto__', 'p']])), '{"__proto__":"p"}');
  assert.throws(() => dumpJson(Number.NaN), RangeError);
});

test('upload times take Warehouse\'s forms from what the databases store', () => {
  assert.deepEqual(uploadTimes('2024-01-02T03:04:05.123Z'), { plain: '2024-01-02T03:04:05', iso: '2024-01-02T03:04:05.123000Z' });
  assert.deepEqual(uploadTimes('2024-01-02 03:04:05'), { plain: '2024-01-02T03:04:05', iso: '2024-01-02T03:04:05Z' });
  assert.deepEqual(uploadTimes('2024-01-02T03:04:05.000Z'), { plain: '2024-01-02T03:04:05', iso: '2024-01-02T03:04:05Z' });
  assert.deepEqual(uploadTimes('2024-01-02 05:04:05.5+02:00'), { plain: '2024-01-02T03:04:05', iso: '2024-01-02T03:04:05.500000Z' });
});

test('renderJsonApiPages gives the bytes of the project page and of each release page rendered alone', () => {
  const states: [string, ProjectState][] = [
    ['sample', sampleState()],
    ['rich', richState()],
    ['quarantined', sampleState({ status: 'quarantined' })],
    ['no releases', withVersions([])],
    ['yanked and pre-releases', withVersions(['1.0a1', ['1.5', 'yanked'], '1!0.1', '2.0rc1'])],
  ];
  for (const [what, state] of states) {
    const pages = renderJsonApiPages(state, BASE);
    const project = renderProjectJsonApi(state, BASE);
    assert.equal(pages.project, project, what);
    const alone = project === null ? [] : state.releases.map((r) => [r.version, renderReleaseJsonApi(state, r.version, BASE)]).filter(([, doc]) => doc !== null);
    assert.deepEqual(pages.releases, alone, what);
  }
  assert.equal(renderJsonApiPages(sampleState(), BASE).releases.length, 5);
});
