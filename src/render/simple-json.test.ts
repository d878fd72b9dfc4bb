import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderProjectJson, renderRootJson } from './simple-json.js';
import { hex, makeFile, makeProject, makeRelease, sampleState } from './test-fixtures.js';

const Z = '0'.repeat(60);

test('project page matches the golden bytes', () => {
  const file = (digit: string, name: string, extra: string): string =>
    `{"filename":"${name}","url":"../../packages/${digit}0/00/${Z}/${name}","hashes":{"sha256":"${hex(digit)}"},${extra}`;
  const expected =
    '{"meta":{"_last-serial":42,"api-version":"1.4"},"name":"frob-nicate",' +
    '"project-status":{"status":"archived","reason":"moved to \\"frob2\\" & friends"},' +
    '"versions":["1.0rc1","1.0","1.9","1.10","2.0"],"files":[' +
    file('1', 'frob_nicate-1.0rc1.tar.gz', '"core-metadata":false,"data-dist-info-metadata":false,"size":1001,"upload-time":"2024-02-01T10:00:00.123456Z","yanked":true},') +
    file('2', 'frob_nicate-1.0.tar.gz', '"core-metadata":false,"data-dist-info-metadata":false,"size":1002,"upload-time":"2024-02-02T10:00:00.123456Z","yanked":"Use \\"1.9\\" instead"},') +
    file('3', 'frob_nicate-1.9.tar.gz', '"requires-python":">=3.8,<4","core-metadata":false,"data-dist-info-metadata":false,"size":1003,"upload-time":"2024-02-03T10:00:00.123456Z","yanked":false},') +
    file(
      '4',
      'frob_nicate-1.10-py3-none-any.whl',
      `"core-metadata":{"sha256":"${hex('d')}"},"data-dist-info-metadata":{"sha256":"${hex('d')}"},"size":1004,"upload-time":"2024-02-04T10:00:00.123456Z","yanked":false}`,
    ) +
    ']}';
  assert.equal(renderProjectJson(sampleState()), expected);
});

test('project page uses exactly the PEP 691/700/714/792 key names', () => {
  const page = JSON.parse(renderProjectJson(sampleState())) as Record<string, unknown>;
  assert.deepEqual(Object.keys(page), ['meta', 'name', 'project-status', 'versions', 'files']);
  assert.deepEqual(Object.keys(page.meta as object), ['_last-serial', 'api-version']);
  assert.deepEqual(Object.keys(page['project-status'] as object), ['status', 'reason']);
  const files = page.files as Record<string, unknown>[];
  assert.deepEqual(Object.keys(files[2] ?? {}), [
    'filename', 'url', 'hashes', 'requires-python', 'core-metadata', 'data-dist-info-metadata', 'size', 'upload-time', 'yanked',
  ]);
  for (const f of files) {
    assert.ok(!('dist-info-metadata' in f), 'the bare PEP 658 key crashes pip 22.3–23.1');
    assert.equal(typeof f.size, 'number');
  }
  // A file without requires-python omits the key rather than sending null.
  assert.ok(!('requires-python' in (files[0] ?? {})));
});

test('versions follow PEP 440 order and include releases without files', () => {
  const state = {
    project: makeProject(),
    releases: ['1.10', '1.0', '1.9', '1.0rc1', '0.9.dev1', '1!0.1'].map((v, i) => makeRelease(i + 1, v)),
    files: [makeFile(1, '1.10', 'frob_nicate-1.10.tar.gz', '1')],
  };
  const page = JSON.parse(renderProjectJson(state)) as { versions: string[] };
  assert.deepEqual(page.versions, ['0.9.dev1', '1.0rc1', '1.0', '1.9', '1.10', '1!0.1']);
});

test('an active project reports its status without a reason', () => {
  const page = JSON.parse(renderProjectJson(sampleState({ status: 'active', statusReason: 'old' }))) as Record<string, unknown>;
  assert.deepEqual(page['project-status'], { status: 'active' });
});

test('a quarantined project lists versions but no files', () => {
  const page = JSON.parse(renderProjectJson(sampleState({ status: 'quarantined', statusReason: null }))) as Record<string, unknown>;
  assert.deepEqual(page['project-status'], { status: 'quarantined' });
  assert.deepEqual(page.files, []);
  assert.equal((page.versions as string[]).length, 5);
});

test('upload times from SQLite and PostgreSQL come out in PEP 700 form', () => {
  const state = {
    project: makeProject(),
    releases: [makeRelease(1, '1.0')],
    files: [
      makeFile(1, '1.0', 'a-1.0.tar.gz', '1', { uploadTime: '2024-03-04 05:06:07' }),
      makeFile(2, '1.0', 'b-1.0.tar.gz', '2', { uploadTime: '2024-03-04 05:06:07.654321+00' }),
      makeFile(3, '1.0', 'c-1.0.tar.gz', '3', { uploadTime: '2024-03-04T05:06:07+02:00' }),
      makeFile(4, '1.0', 'd-1.0.tar.gz', '4', { uploadTime: 'yesterday' }),
    ],
  };
  const files = (JSON.parse(renderProjectJson(state)) as { files: Record<string, unknown>[] }).files;
  assert.deepEqual(
    files.map((f) => f['upload-time']),
    ['2024-03-04T05:06:07Z', '2024-03-04T05:06:07.654321Z', '2024-03-04T03:06:07.000Z', undefined],
  );
});

test('root page gives every project its own _last-serial', () => {
  const json = renderRootJson(
    [
      { name: 'Zeta', normalizedName: 'zeta', lastSerial: 3 },
      { name: 'Frob_Nicate', normalizedName: 'frob-nicate', lastSerial: 42 },
      { name: 'a"b', normalizedName: 'a-b', lastSerial: 1 },
    ],
    50,
  );
  assert.equal(
    json,
    '{"meta":{"_last-serial":50,"api-version":"1.4"},"projects":[' +
      '{"_last-serial":1,"name":"a\\"b"},{"_last-serial":42,"name":"Frob_Nicate"},{"_last-serial":3,"name":"Zeta"}]}',
  );
  assert.equal(renderRootJson([], 0), '{"meta":{"_last-serial":0,"api-version":"1.4"},"projects":[]}');
});
