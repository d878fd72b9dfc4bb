import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { blake2b256Hex } from '../../core/hashes.js';
import { field, readUploadForm } from './upload-form.js';

const BOUNDARY = 'pyedge-test-boundary';

/** A twine-shaped body with one field and the file `content`, cut into chunks of `chunk` bytes. */
function request(content: Buffer, chunk: number): IncomingMessage {
  const body = Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name=":action"\r\n\r\nfile_upload\r\n`),
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="content"; filename="demo-1.0-py3-none-any.whl"\r\n`),
    Buffer.from('Content-Type: application/octet-stream\r\n\r\n'),
    content,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i += chunk) chunks.push(body.subarray(i, i + chunk));
  const req = Readable.from(chunks, { objectMode: false }) as unknown as IncomingMessage;
  req.headers = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };
  return req;
}

/** Bytes that look like the start of a boundary now and then, so the parser holds some back. */
function content(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7919 + (i >> 8)) % 251;
  for (let i = 50; i + 3 < size; i += 997) bytes.write('\r\n--', i, 'latin1');
  return bytes;
}

let spoolDir = '';
before(async () => {
  spoolDir = await mkdtemp(join(tmpdir(), 'pyedge-upload-form-'));
});
after(async () => {
  await rm(spoolDir, { recursive: true, force: true });
});

test('a small file is spooled and also kept in memory, with its digests', async () => {
  const bytes = content(40_000);
  const form = await readUploadForm(request(bytes, 1000), { spoolDir, maxFileSize: 1 << 20 });
  assert.equal(field(form, ':action'), 'file_upload');
  const file = form.file;
  assert.ok(file);
  assert.equal(file.size, bytes.length);
  assert.ok(file.bytes?.equals(bytes), 'bytes in memory are the file');
  assert.ok((await readFile(file.path)).equals(bytes), 'the spool file is the file');
  assert.equal(file.digests.sha256, createHash('sha256').update(bytes).digest('hex'));
  assert.equal(file.digests.blake2b_256, blake2b256Hex(bytes));
  await rm(file.path);
});

test('a file past keepInMemory is only spooled; 0 keeps none', async () => {
  const bytes = content(40_000);
  for (const keepInMemory of [39_999, 0]) {
    const form = await readUploadForm(request(bytes, 4096), { spoolDir, maxFileSize: 1 << 20, keepInMemory });
    assert.ok(form.file);
    assert.equal(form.file.bytes, undefined);
    assert.ok((await readFile(form.file.path)).equals(bytes));
    await rm(form.file.path);
  }
  const exact = await readUploadForm(request(bytes, 4096), { spoolDir, maxFileSize: 1 << 20, keepInMemory: 40_000 });
  assert.ok(exact.file?.bytes?.equals(bytes));
  await rm(exact.file!.path);
  assert.deepEqual(await readdir(spoolDir), []);
});

test('a request that breaks off mid-file is refused and leaves no spool file', async () => {
  const bytes = content(100_000);
  for (const keepInMemory of [1 << 20, 0]) {
    const whole = request(bytes, 8192) as unknown as Readable;
    const chunks: Buffer[] = [];
    for await (const c of whole) chunks.push(c as Buffer);
    // Half the body, then the connection goes away.
    const broken = new Readable({
      read() {
        const next = chunks.shift();
        if (next && chunks.length > 6) this.push(next);
        else this.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
      },
    }) as unknown as IncomingMessage;
    broken.headers = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };
    await assert.rejects(readUploadForm(broken, { spoolDir, maxFileSize: 1 << 20, keepInMemory }), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'PYEDGE_BAD_REQUEST');
      return true;
    });
    assert.deepEqual(await readdir(spoolDir), []);
  }
});
