/** Wheels and twine-shaped upload bodies built in memory for benchmarks. */
import { createHash, randomBytes } from 'node:crypto';
import { blake2b } from '@noble/hashes/blake2.js';
import { buildZip, type ZipEntry } from './zip.js';

/** A wheel held in memory. */
export interface BenchWheel {
  readonly name: string;
  readonly version: string;
  readonly filename: string;
  readonly bytes: Buffer;
}

/** A ready-to-send multipart/form-data request. */
export interface UploadRequest {
  readonly filename: string;
  readonly body: Buffer;
  readonly contentType: string;
}

function recordHash(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('base64url');
}

/**
 * A pure-Python wheel of about `size` bytes: a module holding `size` minus
 * ~1.3 KB of random bytes (so it does not compress and every wheel's digest
 * differs), METADATA (Metadata-Version 2.1), WHEEL and RECORD.
 */
export function buildBenchWheel(name: string, version: string, size: number, tag = 'py3-none-any'): BenchWheel {
  const escaped = name.replace(/[-_.]+/g, '_');
  const dist = `${escaped}-${version}`;
  const text = (s: string): Buffer => Buffer.from(s, 'utf8');
  const metadata = text(
    [
      'Metadata-Version: 2.1',
      `Name: ${name}`,
      `Version: ${version}`,
      'Summary: A wheel made by the pyedge upload benchmark',
      'License: Apache-2.0',
      'Requires-Python: >=3.8',
      'Requires-Dist: requests (>=2.28)',
      "Requires-Dist: tomli ; python_version < '3.11'",
      'Classifier: Programming Language :: Python :: 3',
      '',
      `${name} exists to be uploaded many times.`,
      '',
    ].join('\n'),
  );
  const entries: ZipEntry[] = [
    { name: `${escaped}/__init__.py`, data: text(`__version__ = ${JSON.stringify(version)}\n`) },
    { name: `${escaped}/payload.bin`, data: randomBytes(Math.max(0, size - 1300)) },
    { name: `${dist}.dist-info/METADATA`, data: metadata },
    { name: `${dist}.dist-info/WHEEL`, data: text(`Wheel-Version: 1.0\nGenerator: pyedge-bench\nRoot-Is-Purelib: true\nTag: ${tag}\n`) },
  ];
  const record = entries.map((e) => `${e.name},sha256=${recordHash(e.data)},${e.data.length}`).concat(`${dist}.dist-info/RECORD,,`, '');
  entries.push({ name: `${dist}.dist-info/RECORD`, data: text(record.join('\n')) });
  return { name, version, filename: `${dist}-${tag}.whl`, bytes: buildZip(entries) };
}

/** The multipart body twine sends for `wheel` (metadata 2.1, sha256 and BLAKE2b-256 digests). */
export function uploadRequest(wheel: BenchWheel): UploadRequest {
  const boundary = `----pyedgebench${randomBytes(12).toString('hex')}`;
  const fields: [string, string][] = [
    [':action', 'file_upload'],
    ['protocol_version', '1'],
    ['name', wheel.name],
    ['version', wheel.version],
    ['filetype', 'bdist_wheel'],
    ['pyversion', 'py3'],
    ['metadata_version', '2.1'],
    ['summary', 'A wheel made by the pyedge upload benchmark'],
    ['requires_python', '>=3.8'],
    ['sha256_digest', createHash('sha256').update(wheel.bytes).digest('hex')],
    ['blake2_256_digest', Buffer.from(blake2b(wheel.bytes, { dkLen: 32 })).toString('hex')],
  ];
  const parts: Buffer[] = [];
  for (const [k, v] of fields) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`));
  }
  parts.push(
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="content"; filename="${wheel.filename}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    ),
    wheel.bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  );
  return { filename: wheel.filename, body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}
