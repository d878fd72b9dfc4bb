/**
 * The lean front on the wire: what it answers itself, what it hands to
 * node:http (with the connection and the bytes not yet answered), and that
 * answers on one connection always come in the order of the requests.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeanHttpFront } from './lean-http.js';
import { keptFields, type EdgeReply, type EdgeRequest } from './edge-responses.js';

interface Parsed {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Splits a byte stream of HTTP/1.1 answers (each with a Content-Length, or bodiless). */
function parseAnswers(bytes: Buffer, bodiless: ReadonlySet<number> = new Set()): Parsed[] {
  const out: Parsed[] = [];
  let at = 0;
  let index = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', at, 'latin1');
    assert.ok(end > 0, `an answer head ends (${JSON.stringify(bytes.toString('latin1', at, at + 200))})`);
    const [first, ...lines] = bytes.toString('latin1', at, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = bodiless.has(index) ? 0 : Number(headers['content-length'] ?? 0);
    out.push({ status: Number(first!.split(' ')[1]), headers, body: bytes.toString('latin1', end + 4, end + 4 + length) });
    at = end + 4 + length;
    index++;
  }
  return out;
}

/** Sends `parts` (with a pause between them) on one connection; resolves with all it got once the server closed it or `quietMs` passed without bytes. */
async function exchange(port: number, parts: readonly string[], quietMs = 300): Promise<{ bytes: Buffer; closed: boolean }> {
  const socket: Socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const chunks: Buffer[] = [];
  let closed = false;
  let last = Date.now();
  socket.on('data', (c: Buffer) => {
    chunks.push(c);
    last = Date.now();
  });
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  for (const [i, part] of parts.entries()) {
    if (i > 0) await sleep(60);
    socket.write(part, 'latin1');
  }
  last = Date.now();
  for (let i = 0; i < 100 && !closed && Date.now() - last < quietMs; i++) await sleep(20);
  socket.destroy();
  return { bytes: Buffer.concat(chunks), closed };
}

const KEPT_FIELDS = keptFields(['content-type', 'text/plain', 'content-length', '4']);

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

describe('lean HTTP front', () => {
  let fallback: Server;
  let front: LeanHttpFront;
  let port: number;
  /** Requests the front answered itself. */
  const answered: string[] = [];

  before(async () => {
    fallback = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
      let size = 0;
      req.on('data', (c: Buffer) => (size += c.length));
      req.on('end', () => {
        const body = `node ${req.method} ${req.url} ${size}`;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    fallback.on('clientError', (err, socket) => {
      const status = (err as NodeJS.ErrnoException).code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    });
    fallback.emit('listening');
    const answer = (req: EdgeRequest, res: EdgeReply): boolean => {
      if (!req.url!.startsWith('/fast')) return false;
      answered.push(`${req.method} ${req.url}`);
      const body = Buffer.from(`lean ${req.url} accept=${req.headers.accept ?? '-'}`);
      if (req.url === '/fast/kept') {
        // The same frozen fields with another status each time: the front keeps their serialization, not the status.
        res.writeHead(req.headers.accept === 'created' ? 201 : 200, KEPT_FIELDS);
        res.end(Buffer.from('kept'));
        return true;
      }
      if (req.url === '/fast/304') {
        res.writeHead(304, ['etag', '"x"']);
        res.end();
        return true;
      }
      res.writeHead(200, ['content-type', 'text/plain', 'content-length', String(body.length)]);
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    };
    front = new LeanHttpFront(answer, fallback, { keepAliveMs: 5_000 });
    await new Promise<void>((resolve) => front.server.listen(0, '127.0.0.1', resolve));
    port = (front.server.address() as AddressInfo).port;
  });

  after(async () => {
    const closed = front.close();
    fallback.close();
    fallback.closeAllConnections();
    await closed;
  });

  test('answers a plain GET itself, kept alive, with Date and the handler headers', async () => {
    answered.length = 0;
    const { bytes, closed } = await exchange(port, [GET('/fast/a', 'Accept: text/html\r\n')]);
    const [a] = parseAnswers(bytes);
    assert.equal(a!.status, 200);
    assert.equal(a!.body, 'lean /fast/a accept=text/html');
    assert.equal(a!.headers.connection, 'keep-alive');
    assert.ok(Date.parse(a!.headers.date!) > 0);
    assert.equal(a!.headers['content-type'], 'text/plain');
    assert.equal(closed, false);
    assert.deepEqual(answered, ['GET /fast/a']);
  });

  test('pipelined requests are answered in order, across a hand-over to node:http in the middle', async () => {
    answered.length = 0;
    const body = 'hello';
    const { bytes } = await exchange(port, [
      GET('/fast/1') + GET('/fast/2') + `POST /fast/3 HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}` + GET('/fast/4'),
      GET('/fast/5'),
    ]);
    const answers = parseAnswers(bytes).map((a) => a.body);
    // Once node:http has the connection, it keeps it: /fast/4 and /fast/5 are its answers.
    assert.deepEqual(answers, ['lean /fast/1 accept=-', 'lean /fast/2 accept=-', 'node POST /fast/3 5', 'node GET /fast/4 0', 'node GET /fast/5 0']);
    assert.deepEqual(answered, ['GET /fast/1', 'GET /fast/2']);
  });

  test('a connection that repeats its head, then changes it, gets the answer of each head', async () => {
    const a = GET('/fast/h', 'Accept: a\r\n');
    const b = GET('/fast/h', 'Accept: b\r\n');
    const { bytes } = await exchange(port, [a, a, b, a + b, GET('/fast/kept'), GET('/fast/kept', 'Accept: created\r\n'), GET('/fast/kept')]);
    const answers = parseAnswers(bytes);
    assert.deepEqual(answers.slice(0, 5).map((x) => x.body), ['lean /fast/h accept=a', 'lean /fast/h accept=a', 'lean /fast/h accept=b', 'lean /fast/h accept=a', 'lean /fast/h accept=b']);
    assert.deepEqual(answers.slice(5).map((x) => [x.status, x.body, x.headers['content-type']]), [[200, 'kept', 'text/plain'], [201, 'kept', 'text/plain'], [200, 'kept', 'text/plain']]);
  });

  test('what the handler does not answer goes to node:http with the whole request', async () => {
    const { bytes } = await exchange(port, [GET('/slow/x?y=1', 'Accept: a\r\n')]);
    assert.deepEqual(parseAnswers(bytes).map((a) => a.body), ['node GET /slow/x?y=1 0']);
  });

  test('requests with bodies, chunked bodies, upgrades, odd heads and other versions go to node:http', async () => {
    const cases: Array<[string, string]> = [
      ['GET /fast/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc', 'node GET /fast/a 3'],
      ['GET /fast/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 'node GET /fast/a 3'],
      ['GET /fast/a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 'node GET /fast/a 0'],
      ['GET /fast/a HTTP/1.1\r\nHost: x\r\nAccept: a\r\nAccept: b\r\n\r\n', 'node GET /fast/a 0'],
      ['GET http://x/fast/a HTTP/1.1\r\nHost: x\r\n\r\n', 'node GET http://x/fast/a 0'],
      ['OPTIONS /fast/a HTTP/1.1\r\nHost: x\r\n\r\n', 'node OPTIONS /fast/a 0'],
    ];
    for (const [request, expected] of cases) {
      const { bytes } = await exchange(port, [request]);
      assert.deepEqual(parseAnswers(bytes).map((a) => a.body), [expected], JSON.stringify(request));
    }
    // node:http refuses what it must: no Host on HTTP/1.1, a folded header line, a head over 16 KiB.
    assert.equal(parseAnswers((await exchange(port, ['GET /fast/a HTTP/1.1\r\n\r\n'])).bytes)[0]!.status, 400);
    assert.equal(parseAnswers((await exchange(port, ['GET /fast/a HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n'])).bytes)[0]!.status, 400);
    const huge = await exchange(port, [`GET /fast/a HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
    assert.equal(parseAnswers(huge.bytes)[0]!.status, 431);
  });

  test('a head cut across two reads is answered here; one spread over more reads goes to node:http', async () => {
    answered.length = 0;
    const two = await exchange(port, ['GET /fast/split HT', 'TP/1.1\r\nHost: x\r\n\r\n']);
    assert.deepEqual(parseAnswers(two.bytes).map((a) => a.body), ['lean /fast/split accept=-']);
    const three = await exchange(port, ['GET /fast/slow HT', 'TP/1.1\r\nHo', 'st: x\r\n\r\n']);
    assert.deepEqual(parseAnswers(three.bytes).map((a) => a.body), ['node GET /fast/slow 0']);
    assert.deepEqual(answered, ['GET /fast/split']);
  });

  test('Connection: close and HTTP/1.0 close the connection after the answer; HTTP/1.0 keep-alive keeps it', async () => {
    const close = await exchange(port, [GET('/fast/c', 'Connection: close\r\n') + GET('/fast/never')]);
    assert.deepEqual(parseAnswers(close.bytes).map((a) => [a.body, a.headers.connection]), [['lean /fast/c accept=-', 'close']]);
    assert.equal(close.closed, true);
    const old = await exchange(port, ['GET /fast/old HTTP/1.0\r\n\r\n']);
    assert.equal(parseAnswers(old.bytes)[0]!.headers.connection, 'close');
    assert.equal(old.closed, true);
    const kept = await exchange(port, ['GET /fast/old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n']);
    assert.equal(parseAnswers(kept.bytes)[0]!.headers.connection, 'keep-alive');
    assert.equal(kept.closed, false);
  });

  test('HEAD and 304 answers carry no body and the next answer follows right after', async () => {
    const { bytes } = await exchange(port, [`HEAD /fast/h HTTP/1.1\r\nHost: x\r\n\r\n${GET('/fast/304')}${GET('/fast/after')}`]);
    const answers = parseAnswers(bytes, new Set([0, 1]));
    assert.deepEqual(
      answers.map((a) => [a.status, a.body]),
      [
        [200, ''],
        [304, ''],
        [200, 'lean /fast/after accept=-'],
      ],
    );
    assert.equal(answers[0]!.headers['content-length'], String('lean /fast/h accept=-'.length));
    assert.equal(answers[1]!.headers['content-length'], undefined);
  });

  test('an idle connection is closed after the keep-alive time, not before', async () => {
    const quick = new LeanHttpFront(() => false, fallback, { keepAliveMs: 400 });
    await new Promise<void>((resolve) => quick.server.listen(0, '127.0.0.1', resolve));
    const socket = connect((quick.server.address() as AddressInfo).port, '127.0.0.1');
    const opened = Date.now();
    const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    socket.on('error', () => undefined);
    const waited = (await closedAt) - opened;
    assert.ok(waited >= 380 && waited < 2_000, `closed after ${waited} ms`);
    await quick.close();
  });

  test('a client that sends requests without reading answers is not buffered without bound', async () => {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.pause();
    const request = GET(`/fast/${'p'.repeat(2000)}`);
    // ~20 MB of answers asked for; the front stops reading once its queue is full, so writes back up here.
    let blocked = false;
    for (let i = 0; i < 10_000 && !blocked; i++) blocked = !socket.write(request);
    assert.equal(blocked, true, 'the front stopped reading requests');
    socket.destroy();
  });
});
