/**
 * The change feed: long-poll and SSE both see an upload; an SSE client that
 * reconnects with Last-Event-ID misses nothing and sees nothing twice, across a
 * restart of the origin; the number of waiting clients is capped with a clear 503.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pyedge, startPyedge, type Service } from './helpers/processes.js';
import { buildWheel, formUpload } from './helpers/distributions.js';

interface FeedChange {
  serial: number;
  project: string;
  action: string;
  filename: string | null;
}

interface SseEvent {
  id: number;
  change: FeedChange;
}

/** Read SSE events from a stream until `stop` returns true or the time runs out. */
async function readEvents(url: string, lastEventId: number | null, stop: (events: SseEvent[]) => boolean, timeoutMs = 15_000): Promise<SseEvent[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const events: SseEvent[] = [];
  try {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (lastEventId !== null) headers['last-event-id'] = String(lastEventId);
    const res = await fetch(`${url}/changes`, { headers, signal: abort.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body!) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const id = /^id: (\d+)$/m.exec(block);
        const data = /^data: (.*)$/m.exec(block);
        if (id && data) events.push({ id: Number(id[1]), change: JSON.parse(data[1]!) as FeedChange });
      }
      if (stop(events)) break;
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return events;
}

describe('change feed', () => {
  let work: string;
  let data: string;
  let origin: Service;
  let token: string;
  let n = 0;

  const upload = async (): Promise<string> => {
    const dir = join(work, `w${n}`);
    await mkdir(dir);
    const wheel = await buildWheel(dir, { name: 'feed-demo', version: `1.${n++}` });
    const a = await formUpload(origin.url, wheel, { token });
    assert.equal(a.status, 200, a.body);
    return wheel;
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-feed-'));
    data = join(work, 'data');
    origin = await startPyedge(['serve', '--data', data, '--port', '0', '--feed-max-clients', '3']);
    token = (await pyedge(['token', 'create', '--data', data, '--user', 'erin'])).stdout.trim();
  });

  after(async () => {
    await origin?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('JSON paging from a serial, and a clear 400 for a bad one', async () => {
    await upload();
    const all = (await (await fetch(`${origin.url}/changes?since=0`)).json()) as { changes: FeedChange[]; next: number; last_serial: number };
    assert.deepEqual(
      all.changes.map((c) => [c.serial, c.action]),
      [
        [1, 'create'],
        [2, 'new release'],
        [3, 'add file'],
      ],
    );
    assert.equal(all.next, 3);
    const page = (await (await fetch(`${origin.url}/changes?since=1&limit=1`)).json()) as { changes: FeedChange[]; next: number };
    assert.deepEqual(page.changes.map((c) => c.serial), [2]);
    assert.equal(page.next, 2);
    const beyond = (await (await fetch(`${origin.url}/changes?since=999`)).json()) as { changes: FeedChange[] };
    assert.deepEqual(beyond.changes, []);
    const bad = await fetch(`${origin.url}/changes?since=-4`);
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /Invalid since/);
  });

  test('a long-poll returns as soon as an upload commits', async () => {
    const last = ((await (await fetch(`${origin.url}/changes?since=0`)).json()) as { next: number }).next;
    const started = Date.now();
    const waiting = fetch(`${origin.url}/changes?since=${last}&wait=30`).then((r) => r.json() as Promise<{ changes: FeedChange[] }>);
    await new Promise((r) => setTimeout(r, 300));
    await upload();
    const got = await waiting;
    assert.ok(Date.now() - started < 10_000, 'answered before the wait ran out');
    assert.ok(got.changes.length >= 1);
    assert.equal(got.changes[0]!.serial, last + 1);
    assert.ok(got.changes.some((c) => c.action === 'add file'));
  });

  test('SSE sees uploads; reconnecting with Last-Event-ID across a restart misses nothing and repeats nothing', async () => {
    const before = ((await (await fetch(`${origin.url}/changes?since=0`)).json()) as { next: number }).next;
    const first = readEvents(origin.url, null, (ev) => ev.length > 0 && ev[ev.length - 1]!.id >= before + 2);
    await new Promise((r) => setTimeout(r, 300));
    await upload(); // new release + add file: two serials
    const seen = await first;
    assert.deepEqual(seen.map((e) => e.id), Array.from({ length: before + 2 }, (_, i) => i + 1));

    // Restart the origin; meanwhile nothing is listening. Then resume from the last id seen.
    assert.equal(await origin.stop(), 0);
    origin = await startPyedge(['serve', '--data', data, '--port', '0', '--feed-max-clients', '3']);
    const lastSeen = seen[seen.length - 1]!.id;
    await upload();
    const resumed = readEvents(origin.url, lastSeen, (ev) => ev.length >= 4);
    await new Promise((r) => setTimeout(r, 300));
    await upload();
    const rest = await resumed;
    assert.deepEqual(rest.map((e) => e.id), [lastSeen + 1, lastSeen + 2, lastSeen + 3, lastSeen + 4]);
    assert.deepEqual(rest.map((e) => e.change.action), ['new release', 'add file', 'new release', 'add file']);
  });

  test('waiting clients are capped with a clear 503', async () => {
    const last = ((await (await fetch(`${origin.url}/changes?since=0`)).json()) as { next: number }).next;
    const aborts = [new AbortController(), new AbortController(), new AbortController()];
    const waiters = aborts.map((a) => fetch(`${origin.url}/changes?since=${last}&wait=20`, { signal: a.signal }).catch(() => null));
    await new Promise((r) => setTimeout(r, 300));
    const refused = await fetch(`${origin.url}/changes?since=${last}&wait=20`);
    assert.equal(refused.status, 503);
    assert.match(await refused.text(), /Too many clients are waiting on the change feed/);
    for (const a of aborts) a.abort();
    await Promise.all(waiters);
    await new Promise((r) => setTimeout(r, 200));
    // Slots are given back when clients leave.
    const ok = await fetch(`${origin.url}/changes?since=${last}&wait=0`);
    assert.equal(ok.status, 200);
  });
});
