/**
 * What a running publisher tells its operator: `pyedge publish --watch
 * --metrics` serves Prometheus metrics whose serials and counters follow the
 * uploads; `pyedge publish --status` shows the applied serial and no lag once
 * caught up, the last error while the origin is down, and the lag once the
 * origin has moved on without the publisher. Also what a lagging root may
 * differ in: only its `_last-serial` values, for at most `--root-interval`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';
import { freePort } from './helpers/nginx.js';

const SIMPLE_JSON = 'application/vnd.pypi.simple.v1+json';
const ROOT_INTERVAL_MS = 3000;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

/** Samples of a Prometheus text page, by name with labels as written. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

/** The root's JSON with every `_last-serial` value blanked: what must agree with the origin even while the root lags. */
function withoutSerials(text: string): string {
  return text.replace(/"_last-serial":\d+/g, '"_last-serial":0');
}

describe('pyedge publish --status and --metrics', () => {
  let work: string;
  let data: string;
  let tree: string;
  let port: number;
  let metricsUrl: string;
  let origin: Service;
  let publisher: Service;
  let token: string;

  const serve = (): Promise<Service> => startPyedge(['serve', '--data', data, '--port', String(port)]);
  const upload = async (version: string): Promise<void> => {
    const wheel = await buildWheel(work, { name: 'stat-demo', version, module: 'stat_demo', value: version });
    const a = await formUpload(origin.url, wheel, { token });
    assert.equal(a.status, 200, a.body);
  };
  const originSerial = async (): Promise<number> =>
    ((await (await fetch(`${origin.url}/changes?since=0&limit=1`)).json()) as { last_serial: number }).last_serial;
  const state = async (): Promise<{ serial: number; rootSerial: number; newer: Record<string, number> } | null> =>
    readFile(join(tree, 'pyedge-state.json'), 'utf8').then((t) => JSON.parse(t) as { serial: number; rootSerial: number; newer: Record<string, number> }, () => null);
  const caughtUp = async (): Promise<number> => {
    const serial = await originSerial();
    await waitFor(`the tree to reach serial ${serial}`, async () => (await state())?.serial === serial, 10_000);
    return serial;
  };
  const scrape = async (): Promise<Map<string, number>> => {
    const res = await fetch(metricsUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    return parseMetrics(await res.text());
  };
  /** The metrics once the publisher has taken in the state it just wrote (it does so after flushing the file's folder). */
  const scrapeAt = async (serial: number): Promise<Map<string, number>> => {
    let m = await scrape();
    await waitFor(`the applied serial metric to reach ${serial}`, async () => (m = await scrape()).get('pyedge_publish_applied_serial') === serial, 5000);
    return m;
  };
  const status = (...extra: string[]) => pyedge(['publish', '--status', '--target', tree, ...extra]);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-publish-status-'));
    data = join(work, 'data');
    tree = join(work, 'tree');
    port = await freePort();
    origin = await serve();
    token = (await pyedge(['token', 'create', '--data', data, '--user', 'stan'])).stdout.trim();
    const metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    publisher = await startPyedge(
      [
        'publish', '--source', origin.url, '--target', tree, '--watch', '--key-file', join(work, 'key.pem'),
        '--metrics', `127.0.0.1:${metricsPort}`, '--root-interval', `${ROOT_INTERVAL_MS}ms`, '--log-level', 'warn',
      ],
      { ready: /following (\S+?)\/? into/ },
    );
  });

  after(async () => {
    await publisher?.kill();
    await origin?.kill();
    await rm(work, { recursive: true, force: true });
  });

  test('metrics follow uploads; a lagging root differs only in its serials, and not for longer than --root-interval', async () => {
    await upload('1.0');
    const first = await caughtUp();
    let m = await scrapeAt(first);
    assert.equal(m.get('pyedge_publish_applied_serial'), first);
    assert.equal(m.get('pyedge_publish_root_serial'), first, 'a new project writes the root at once');
    assert.equal(m.get('pyedge_publish_lag_serials'), 0);
    assert.ok(m.get('pyedge_publish_batches_total{result="ok"}')! >= 1);
    const files = m.get('pyedge_publish_files_copied_total')!;
    const bytes = m.get('pyedge_publish_bytes_copied_total')!;
    assert.ok(files >= 2, `the wheel and its metadata: ${files}`);
    assert.ok(bytes > 0);

    await upload('1.1');
    const second = await caughtUp();
    assert.ok(second > first);
    // The upload went to an existing project: the state moved, the root's serials may wait.
    const lagging = (await state())!;
    const root = await readFile(join(tree, 'simple/index.v1_json'), 'utf8');
    const fromOrigin = await (await fetch(`${origin.url}/simple/`, { headers: { accept: SIMPLE_JSON } })).text();
    assert.equal(withoutSerials(root), withoutSerials(fromOrigin), 'names, order and everything but the serials agree at once');
    assert.deepEqual(await readFile(join(tree, 'simple/index.html')), Buffer.from(await (await fetch(`${origin.url}/simple/`)).arrayBuffer()), 'the HTML root is exact');
    assert.equal((JSON.parse(root) as { meta: { '_last-serial': number } }).meta['_last-serial'], lagging.rootSerial, 'the state says where the root is');
    if (lagging.rootSerial < lagging.serial) assert.deepEqual(lagging.newer, { 'stat-demo': second }, 'and which pages are newer');
    const ms = await waitFor(
      "the root's serials to catch up",
      async () =>
        (await readFile(join(tree, 'simple/index.v1_json'), 'utf8')) === (await (await fetch(`${origin.url}/simple/`, { headers: { accept: SIMPLE_JSON } })).text()) &&
        // The state goes up right after the root.
        (await state())?.rootSerial === second,
      ROOT_INTERVAL_MS + 5000,
    );
    assert.ok(ms <= ROOT_INTERVAL_MS + 2000, `the root caught up after ${ms} ms`);
    assert.deepEqual((await state())!.newer, {});

    m = await scrapeAt(second);
    assert.equal(m.get('pyedge_publish_applied_serial'), second);
    assert.equal(m.get('pyedge_publish_source_serial'), second);
    assert.equal(m.get('pyedge_publish_root_serial'), second);
    assert.ok(m.get('pyedge_publish_files_copied_total')! > files, 'files copied grew');
    assert.ok(m.get('pyedge_publish_bytes_copied_total')! > bytes, 'bytes copied grew');
    assert.ok(m.get('pyedge_publish_projects_written_total')! >= 2);
    assert.ok(m.get('pyedge_publish_batch_duration_seconds_count')! >= 2);
    assert.ok(m.get('pyedge_publish_last_success_timestamp_seconds')! * 1000 > Date.now() - 60_000);

    const s = await status();
    assert.equal(s.code, 0, `${s.stdout}\n${s.stderr}`);
    assert.match(s.stdout, new RegExp(`^applied serial: +${second} \\(recorded `, 'm'));
    assert.match(s.stdout, new RegExp(`^source serial: +${second}$`, 'm'));
    assert.match(s.stdout, /^lag: +0 serials, 0\.0 s$/m);
    assert.match(s.stdout, /^last error: +none$/m);
    const json = JSON.parse((await status('--json')).stdout) as { state: { serial: number }; lagSerials: number; source: string };
    assert.equal(json.state.serial, second);
    assert.equal(json.lagSerials, 0);
    assert.equal(json.source, origin.url);
  });

  test('with the origin down --status shows the last error; once it is back, the lag of a stopped publisher', async () => {
    const applied = await caughtUp();
    assert.equal(await origin.stop(), 0);
    await waitFor(
      'the publisher to record the outage',
      async () => {
        const text = await readFile(join(tree, 'pyedge-status.json'), 'utf8').catch(() => '{}');
        return ((JSON.parse(text) as { failuresInARow?: number }).failuresInARow ?? 0) > 0;
      },
      20_000,
    );
    const down = await status();
    assert.equal(down.code, 0, `${down.stdout}\n${down.stderr}`);
    assert.match(down.stdout, new RegExp(`^applied serial: +${applied} `, 'm'));
    assert.match(down.stdout, /^source serial: +unreachable \(.*\); the publisher last saw \d+ at /m);
    assert.match(down.stdout, /^last error: +.*PYEDGE_UNAVAILABLE: .*unreachable.* \(\d+ failure\(s\) in a row\)$/m);
    assert.ok((await scrape()).get('pyedge_publish_source_errors_total')! >= 1, 'metrics are served while the origin is down');

    assert.equal(await publisher.stop(), 0, publisher.logs());
    origin = await serve();
    await upload('1.2');
    await upload('1.3');
    const serial = await originSerial();
    const behind = await status('--source', origin.url);
    assert.equal(behind.code, 0, `${behind.stdout}\n${behind.stderr}`);
    assert.match(behind.stdout, new RegExp(`^source serial: +${serial}$`, 'm'));
    const lag = /^lag: +(\d+) serials?, ([\d.]+) s$/m.exec(behind.stdout);
    assert.ok(lag, behind.stdout);
    assert.equal(Number(lag[1]), serial - applied);
    assert.ok(Number(lag[2]) >= 0 && Number(lag[2]) < 120, lag[2]);
    assert.match(behind.stdout, /^last error: +.*PYEDGE_UNAVAILABLE/m, 'the publisher stopped while failing: its last error stays');

    const none = await pyedge(['publish', '--status', '--target', join(work, 'no-such-tree')]);
    assert.equal(none.code, 2, 'a mistyped --target is a configuration error');
    assert.match(none.stderr, /There is no tree at/);
  });
});
