/** Operating `pyedge serve`: configuration errors, environment variables, logs, and SIGTERM during an upload. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pyedge, startPyedge } from './helpers/processes.js';
import { buildWheel } from './helpers/distributions.js';

describe('operating the origin', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pyedge-ops-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  test('a bad option or environment variable stops start-up with a message naming it', async () => {
    const noData = await pyedge(['serve', '--port', '0']);
    assert.equal(noData.code, 2);
    assert.match(noData.stderr, /Missing --data DIR \(or PYEDGE_DATA\)/);

    const badSize = await pyedge(['serve', '--data', join(work, 'x'), '--port', '0'], { PYEDGE_MAX_UPLOAD_SIZE: 'lots' });
    assert.equal(badSize.code, 2);
    assert.match(badSize.stderr, /Invalid value for --max-upload-size: 'lots'/);

    const badDb = await pyedge(['serve', '--data', join(work, 'x'), '--port', '0', '--db', 'mysql://x']);
    assert.equal(badDb.code, 2);
    assert.match(badDb.stderr, /Invalid value for --db/);

    const badPort = await pyedge(['serve', '--data', join(work, 'x'), '--port', '99999']);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /Invalid value for --port: '99999'/);
  });

  test('options come from PYEDGE_<OPTION> variables; one log line per request', async () => {
    const data = join(work, 'env-data');
    const origin = await startPyedge(['serve'], { env: { PYEDGE_DATA: data, PYEDGE_PORT: '0', PYEDGE_PAGE_MAX_AGE: '42s' } });
    try {
      const res = await fetch(`${origin.url}/simple/`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'max-age=42, public');
      await res.text();
      await (await fetch(`${origin.url}/simple/nothing-here/`)).text();
      const requestLines = (): string[] =>
        origin
          .logs()
          .split('\n')
          .filter((l) => l.includes('"msg":"request"'));
      // Log lines are written asynchronously: give them a moment.
      for (let i = 0; i < 30 && requestLines().length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 100));
      const lines = requestLines()
        .map((l) => JSON.parse(l) as { url: string; status: number; method: string; ms: number });
      // One line per request; lines are written as responses finish, so their order may differ.
      assert.deepEqual(
        lines.map((l) => `${l.method} ${l.url} ${l.status}`).sort(),
        ['GET /simple/ 200', 'GET /simple/nothing-here/ 404'],
      );
    } finally {
      assert.equal(await origin.stop(), 0);
    }
  });

  test('SIGTERM lets an upload in flight finish, then exits 0; the file is there after restart', async () => {
    const data = join(work, 'term-data');
    const origin = await startPyedge(['serve', '--data', data, '--port', '0']);
    const token = (await pyedge(['token', 'create', '--data', data, '--user', 'dora'])).stdout.trim();
    const wheel = await buildWheel(work, { name: 'slow-upload', version: '1.0' });
    const bytes = await readFile(wheel);
    const boundary = 'pyedgeBoundary';
    const field = (k: string, v: string): string => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
    const head =
      field(':action', 'file_upload') +
      field('protocol_version', '1') +
      field('name', 'slow-upload') +
      field('version', '1.0') +
      field('filetype', 'bdist_wheel') +
      field('metadata_version', '2.4') +
      field('sha256_digest', createHash('sha256').update(bytes).digest('hex')) +
      `--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="${basename(wheel)}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    const tail = `\r\n--${boundary}--\r\n`;
    const body = Buffer.concat([Buffer.from(head), bytes, Buffer.from(tail)]);
    const url = new URL(`${origin.url}/legacy/`);

    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            'content-type': `multipart/form-data; boundary=${boundary}`,
            'content-length': String(body.length),
            authorization: 'Basic ' + Buffer.from(`__token__:${token}`).toString('base64'),
          },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      // Send the first half, then SIGTERM the server, then the rest.
      req.write(body.subarray(0, Math.floor(body.length / 2)));
      setTimeout(() => {
        origin.process.kill('SIGTERM');
        setTimeout(() => req.end(body.subarray(Math.floor(body.length / 2))), 500);
      }, 300);
    });
    const a = await answer;
    assert.equal(a.status, 200, a.text);
    assert.equal(await origin.exited(), 0, 'exits 0 after finishing the upload');

    const again = await startPyedge(['serve', '--data', data, '--port', '0']);
    try {
      const page = await fetch(`${again.url}/simple/slow-upload/`).then((r) => r.text());
      assert.match(page, /slow_upload-1\.0-py3-none-any\.whl/);
    } finally {
      await again.stop();
    }
  });
});
