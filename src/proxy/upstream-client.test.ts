import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { UpstreamFailure, upstreamRequest } from './upstream-client.js';
import { parseUpstream, resolveProxyConfig } from './proxy-config.js';

const TIMEOUTS = { connectMs: 300, firstByteMs: 200, idleMs: 150 };

/** A raw TCP server whose behaviour per connection is `onData`. */
let server: Server;
let port: number;
let refusedPort: number;
const sockets = new Set<Socket>();

before(async () => {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', (d) => {
      const path = d.toString().split(' ')[1];
      if (path === '/hang') return;
      if (path === '/garbage') return void socket.end(Buffer.from([0, 1, 2, 3, 255, 254, 10, 13, 10]));
      if (path === '/stall') return void socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
      if (path === '/short') return void socket.end('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  refusedPort = (closed.address() as { port: number }).port;
  await new Promise((r) => closed.close(r));
});

after(() => {
  server.close();
  for (const s of sockets) s.destroy();
});

const kindOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof UpstreamFailure, String(err));
    return err.kind;
  }
};

test('a plain answer', async () => {
  const res = await upstreamRequest(`http://127.0.0.1:${port}/ok`, { timeouts: TIMEOUTS });
  assert.equal(res.status, 200);
  assert.equal((await res.text()).toString(), 'hello');
  assert.ok(res.firstByteMs >= 0);
});

test('each way of failing has its kind, within its own timeout', async () => {
  assert.equal(await kindOf(upstreamRequest(`http://127.0.0.1:${refusedPort}/`, { timeouts: TIMEOUTS })), 'refused');
  const t = performance.now();
  assert.equal(await kindOf(upstreamRequest(`http://127.0.0.1:${port}/hang`, { timeouts: TIMEOUTS })), 'first-byte-timeout');
  const waited = performance.now() - t;
  assert.ok(waited >= 190 && waited < 1000, `waited ${waited} ms`);
  assert.equal(await kindOf(upstreamRequest(`http://127.0.0.1:${port}/garbage`, { timeouts: TIMEOUTS })), 'protocol');
  const stalled = await upstreamRequest(`http://127.0.0.1:${port}/stall`, { timeouts: TIMEOUTS });
  assert.equal(stalled.status, 200);
  assert.equal(await kindOf(stalled.text()), 'idle-timeout');
  const short = await upstreamRequest(`http://127.0.0.1:${port}/short`, { timeouts: TIMEOUTS });
  assert.equal(await kindOf(short.text()), 'reset');
});

test('an abort cancels a request under way', async () => {
  const controller = new AbortController();
  const p = upstreamRequest(`http://127.0.0.1:${port}/hang`, { timeouts: { ...TIMEOUTS, firstByteMs: 5000 }, signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  assert.equal(await kindOf(p), 'aborted');
});

test('upstreams are index roots ending in /simple/', () => {
  assert.equal(parseUpstream('http://h:1/simple'), 'http://h:1/simple/');
  assert.equal(parseUpstream('https://h/mirror/simple/'), 'https://h/mirror/simple/');
  assert.throws(() => parseUpstream('http://h/'), /ending in \/simple\//);
  assert.throws(() => resolveProxyConfig({}), /at least one --upstream/);
  const config = resolveProxyConfig({ upstream: ['http://a/simple/', 'http://a/simple', 'http://b/simple/'], connectTimeout: '100ms' });
  assert.deepEqual(config.upstreams, ['http://a/simple/', 'http://b/simple/']);
  assert.equal(config.pageTimeouts.connectMs, 100);
  assert.throws(() => resolveProxyConfig({ upstream: 'http://a/simple/', hedgeBudget: '2' }), /--hedge-budget/);
});
