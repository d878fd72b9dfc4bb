/**
 * Change feed latency: how long after an upload commits a client waiting on
 * `/changes` hears of it, for a long-poll client and an SSE client connected at
 * the same time. The in-run reference is the round trip of a trivial GET
 * (`/_health`) on the same origin. Run after a build: `node dist/bench/changes.js [--help]`.
 */
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nowMs, timedGet, timedRequest } from './lib/http-timing.js';
import type { LoadRequest } from './lib/load.js';
import { createToken, startOrigin, stopAll, type Service } from './lib/processes.js';
import { fixed, markdownTable, percentile } from './lib/stats.js';
import { buildBenchWheel, uploadRequest } from './lib/wheels.js';

const { values: opts } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '1,4' },
    size: { type: 'string', default: '4096' },
    health: { type: 'string', default: '1000' },
    'ping-interval': { type: 'string', default: '5' },
    help: { type: 'boolean', default: false },
  },
});
if (opts.help) {
  process.stdout.write(
    'node dist/bench/changes.js [--count 1000] [--concurrency 1,4] [--size 4096] [--health 1000] [--ping-interval 5]\n' +
      '  --concurrency   upload clients; a list runs one pass of --count uploads per value\n' +
      '  --health        sequential GET /_health before the uploads (the idle reference)\n' +
      '  --ping-interval ms between GET /_health sent during the uploads (the loaded reference)\n',
  );
  process.exit(0);
}

const count = Number(opts.count);
const passes = opts.concurrency.split(',').map(Number);
/** How long to wait for the last events after the last upload. */
const DRAIN_MS = 10_000;

/** One `add file` event as a client received it. */
interface Received {
  readonly filename: string;
  /** The change's `time`, epoch ms (ms precision). */
  readonly changeMs: number;
  /** Date.now() when the client had parsed it. */
  readonly wallMs: number;
  /** The monotonic clock at the same moment (nowMs()). */
  readonly monoMs: number;
}

interface WireChange {
  readonly serial: number;
  readonly action: string;
  readonly filename: string | null;
  readonly time: string;
}

/** A change feed client that records every `add file` it hears of. */
interface FeedClient {
  readonly received: Map<string, Received>;
  close(): void;
}

function record(into: Map<string, Received>, c: WireChange): void {
  if (c.action !== 'add file' || !c.filename) return;
  const wallMs = Date.now();
  into.set(c.filename, { filename: c.filename, changeMs: Date.parse(c.time), wallMs, monoMs: nowMs() });
}

/** `Accept: text/event-stream` on one connection, parsed as it arrives. */
async function sseClient(baseUrl: string, since: number): Promise<FeedClient> {
  const base = new URL(baseUrl);
  const received = new Map<string, Received>();
  const req = http.request({
    host: base.hostname,
    port: base.port,
    path: `/changes?since=${since}`,
    headers: { accept: 'text/event-stream' },
    agent: false,
  });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  });
  if (res.statusCode !== 200) throw new Error(`SSE /changes answered ${res.statusCode}`);
  res.setEncoding('utf8');
  let buffer = '';
  res.on('data', (chunk: string) => {
    buffer += chunk;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (data) record(received, JSON.parse(data) as WireChange);
    }
  });
  res.on('error', () => undefined);
  return { received, close: () => req.destroy() };
}

/** A loop of `GET /changes?since=S&wait=30` on one keep-alive connection. */
function longPollClient(baseUrl: string, since: number): FeedClient {
  const base = new URL(baseUrl);
  const received = new Map<string, Received>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let closed = false;
  let current: http.ClientRequest | null = null;
  const poll = (from: number): Promise<number> =>
    new Promise((resolve, reject) => {
      current = http.get({ host: base.hostname, port: base.port, path: `/changes?since=${from}&wait=30`, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`long-poll /changes answered ${res.statusCode}`));
          const page = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { next: number; changes: WireChange[] };
          for (const c of page.changes) record(received, c);
          resolve(page.next);
        });
        res.on('error', reject);
      });
      current.on('error', reject);
    });
  void (async () => {
    let cursor = since;
    while (!closed) {
      try {
        cursor = await poll(cursor);
      } catch (err) {
        if (!closed) process.stderr.write(`long-poll client: ${err instanceof Error ? err.message : String(err)}\n`);
        return;
      }
    }
  })();
  return {
    received,
    close: () => {
      closed = true;
      current?.destroy();
      agent.destroy();
    },
  };
}

/** Sequential GET /_health round trips on one keep-alive connection, `gapMs` apart, until `until()` is true or `n` are done. */
async function healthPings(baseUrl: string, n: number, gapMs: number, until: () => boolean = () => false): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  try {
    for (let i = 0; i < n && !until(); i++) {
      const r = await timedGet(baseUrl, '/_health', undefined, { agent });
      if (r.status !== 200) throw new Error(`/_health answered ${r.status}`);
      out.push(r.endMs - r.startMs);
      if (gapMs > 0) await new Promise((res) => setTimeout(res, gapMs));
    }
  } finally {
    agent.destroy();
  }
  return out;
}

/** When the upload of each file was answered. */
interface Uploaded {
  readonly wallMs: number;
  readonly monoMs: number;
  readonly latencyMs: number;
}

async function uploadAll(baseUrl: string, requests: readonly { filename: string; request: LoadRequest }[], concurrency: number): Promise<Map<string, Uploaded>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const done = new Map<string, Uploaded>();
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < requests.length; i = next++) {
          const { filename, request } = requests[i]!;
          const r = await timedRequest(baseUrl, request, { agent });
          const wallMs = Date.now();
          if (r.status !== 200) throw new Error(`upload of ${filename} answered ${r.status}`);
          done.set(filename, { wallMs, monoMs: r.endMs, latencyMs: r.endMs - r.startMs });
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return done;
}

/** p50, p99, max of `values` (sorted here). */
function spread(values: readonly number[], digits: number): string[] {
  const s = Float64Array.from(values).sort();
  return [fixed(percentile(s, 0.5), digits), fixed(percentile(s, 0.99), digits), fixed(s[s.length - 1] ?? NaN, digits)];
}

interface PassResult {
  readonly concurrency: number;
  readonly uploads: Map<string, Uploaded>;
  readonly clients: { name: string; received: Map<string, Received> }[];
  readonly pings: number[];
  readonly seconds: number;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'pyedge-bench-changes-'));
  let origin: Service | null = null;
  const load0 = loadavg();
  try {
    const data = join(work, 'data');
    const token = await createToken(data, 'bench');
    origin = await startOrigin(data);
    const url = origin.url;
    const authorization = 'Basic ' + Buffer.from(`__token__:${token}`).toString('base64');

    process.stderr.write(`idle reference: ${opts.health} × GET /_health…\n`);
    await healthPings(url, 100, 0);
    const idle = await healthPings(url, Number(opts.health), 0);

    const results: PassResult[] = [];
    for (const [p, concurrency] of passes.entries()) {
      const requests = Array.from({ length: count }, (_, i) => {
        const u = uploadRequest(buildBenchWheel(`bench-changes-${p}-${i % 20}`, `1.0.${Math.floor(i / 20)}`, Number(opts.size)));
        return { filename: u.filename, request: { method: 'POST', path: '/legacy/', headers: { 'content-type': u.contentType, authorization }, body: u.body } };
      });
      const health = await timedGet(url, '/_health', undefined, { keepBody: true });
      const since = (JSON.parse(health.body.toString('utf8')) as { serial: number }).serial;
      const sse = await sseClient(url, since);
      const poll = longPollClient(url, since);
      // Let both clients reach their wait before the first commit.
      await new Promise((r) => setTimeout(r, 200));
      let uploading = true;
      const pinging = healthPings(url, Number.MAX_SAFE_INTEGER, Number(opts['ping-interval']), () => !uploading);
      process.stderr.write(`pass ${p + 1}: ${count} uploads, ${concurrency} client(s)…\n`);
      const t0 = nowMs();
      let uploads: Map<string, Uploaded>;
      try {
        uploads = await uploadAll(url, requests, concurrency);
      } finally {
        uploading = false;
      }
      const seconds = (nowMs() - t0) / 1000;
      const pings = await pinging;
      const deadline = nowMs() + DRAIN_MS;
      while ((sse.received.size < count || poll.received.size < count) && nowMs() < deadline) await new Promise((r) => setTimeout(r, 20));
      sse.close();
      poll.close();
      for (const [name, c] of [
        ['SSE', sse],
        ['long-poll', poll],
      ] as const) {
        if (c.received.size < count) throw new Error(`${name} client heard of ${c.received.size} of ${count} uploads within ${DRAIN_MS} ms of the last`);
      }
      process.stderr.write(`  ${fixed(count / seconds)} uploads/s; both clients heard of all ${count}\n`);
      results.push({
        concurrency,
        uploads,
        clients: [
          { name: 'long-poll (`wait=30`)', received: poll.received },
          { name: 'SSE', received: sse.received },
        ],
        pings,
        seconds,
      });
    }
    const load1 = loadavg();

    const rows: string[][] = [];
    for (const r of results) {
      const commitTo200 = [...r.uploads.entries()].map(([f, u]) => u.wallMs - r.clients[0]!.received.get(f)!.changeMs);
      for (const c of r.clients) {
        const commit = [...c.received.values()].map((e) => e.wallMs - e.changeMs);
        const after200 = [...c.received.values()].map((e) => e.monoMs - r.uploads.get(e.filename)!.monoMs);
        const before = after200.filter((d) => d < 0).length;
        rows.push([
          String(r.concurrency),
          c.name,
          String(c.received.size),
          ...spread(commit, 0),
          ...spread(after200, 2),
          `${fixed((100 * before) / after200.length)} %`,
        ]);
      }
      rows.push([
        String(r.concurrency),
        'uploader: `time` → its 200; round trip of the upload',
        String(r.uploads.size),
        ...spread(commitTo200, 0),
        ...spread(
          [...r.uploads.values()].map((u) => u.latencyMs),
          2,
        ),
        '–',
      ]);
      rows.push([String(r.concurrency), 'reference: GET `/_health` during the uploads', String(r.pings.length), '–', '–', '–', ...spread(r.pings, 2), '–']);
    }
    rows.push(['–', 'reference: GET `/_health`, idle', String(idle.length), '–', '–', '–', ...spread(idle, 2), '–']);

    const rates = results.map((r) => `${r.concurrency} client(s): ${fixed(count / r.seconds)} uploads/s`).join(', ');
    process.stdout.write(
      `\nchange feed benchmark, ${new Date().toISOString().slice(0, 10)}, node ${process.version}: ${count} uploads per pass ` +
        `(${opts.size} B wheels; ${rates}); load average ${load0.map((l) => fixed(l, 2)).join(' ')} at start, ` +
        `${load1.map((l) => fixed(l, 2)).join(' ')} at end. ` +
        'Commit latency = Date.now() at the client − the change\'s `time` (ms resolution, ±1 ms); ' +
        'after 200 = monotonic clock, event received − upload answered (negative: the event came first).\n\n' +
        markdownTable(
          [
            'upload clients',
            'client',
            'events',
            'commit → event p50 ms',
            'p99 ms',
            'max ms',
            'upload 200 → event (or round trip) p50 ms',
            'p99 ms',
            'max ms',
            'event before the 200',
          ],
          rows,
        ) +
        '\n',
    );
  } finally {
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`change feed benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
