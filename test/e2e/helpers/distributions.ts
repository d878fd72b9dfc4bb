/**
 * Distribution files made at test time (with Python's zipfile/tarfile, as real
 * build tools do), and a plain multipart upload shaped like a current twine's.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { blake2b } from '@noble/hashes/blake2.js';
import { run } from './processes.js';
import { SYSTEM_PYTHON, isolatedEnv } from './python.js';

export interface WheelSpec {
  readonly name: string;
  readonly version: string;
  /** The module to put in the wheel, with `VALUE = value`. */
  readonly module?: string;
  readonly value?: string;
  /** Extra METADATA header lines (after Name and Version). */
  readonly headers?: readonly string[];
  readonly metadataVersion?: string;
  /** Replace the METADATA text entirely. */
  readonly metadataText?: string;
  /** Leave METADATA out. */
  readonly omitMetadata?: boolean;
  /** Override the file name. */
  readonly filename?: string;
  readonly tag?: string;
  /** Add this many incompressible bytes (a data file in the wheel), to make it weigh something. */
  readonly padding?: number;
  /** Seed of the padding bytes (same seed, same bytes). */
  readonly paddingSeed?: number;
}

/** Builds every wheel of a JSON list of [spec, out] pairs (one Python start for many wheels). */
const WHEEL_SCRIPT = `
import json, sys, zipfile, hashlib, base64, random
def build(spec, out):
    dist = spec['dist']
    records = []
    def add(z, name, data):
        data = data.encode() if isinstance(data, str) else data
        z.writestr(name, data)
        h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
        records.append(f"{name},sha256={h},{len(data)}")
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
        if spec.get('module'):
            add(z, spec['module'] + '/__init__.py', 'VALUE = ' + json.dumps(spec['value']) + '\\n')
        if spec.get('padding'):
            add(z, dist + '.data/data/padding.bin', random.Random(spec.get('paddingSeed', 0)).randbytes(spec['padding']))
        if spec.get('metadata') is not None:
            add(z, dist + '.dist-info/METADATA', spec['metadata'])
        add(z, dist + '.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: pyedge-tests\\nRoot-Is-Purelib: true\\nTag: ' + spec['tag'] + '\\n')
        records.append(dist + '.dist-info/RECORD,,')
        z.writestr(dist + '.dist-info/RECORD', '\\n'.join(records) + '\\n')
for spec, out in json.loads(sys.argv[1]):
    build(spec, out)
`;

/** The Python-side spec and output path of one wheel. */
function wheelJob(dir: string, spec: WheelSpec): [Record<string, unknown>, string] {
  const escaped = spec.name.replace(/[-_.]+/g, '_');
  const tag = spec.tag ?? 'py3-none-any';
  const filename = spec.filename ?? `${escaped}-${spec.version}-${tag}.whl`;
  const metadata = spec.omitMetadata
    ? null
    : (spec.metadataText ??
      [`Metadata-Version: ${spec.metadataVersion ?? '2.4'}`, `Name: ${spec.name}`, `Version: ${spec.version}`, ...(spec.headers ?? [])].join('\n') +
        '\n\nA wheel built by pyedge tests.\n');
  const job = { dist: `${escaped}-${spec.version}`, tag, module: spec.module, value: spec.value ?? '', metadata, padding: spec.padding ?? 0, paddingSeed: spec.paddingSeed ?? 0 };
  return [job, join(dir, filename)];
}

/** Build a pure-Python wheel into `dir`; returns its path. */
export async function buildWheel(dir: string, spec: WheelSpec): Promise<string> {
  return (await buildWheels(dir, [spec]))[0]!;
}

/** Build many wheels into `dir` with one Python process; returns their paths in order. */
export async function buildWheels(dir: string, specs: readonly WheelSpec[]): Promise<string[]> {
  const jobs = specs.map((s) => wheelJob(dir, s));
  const r = await run(SYSTEM_PYTHON, ['-c', WHEEL_SCRIPT, JSON.stringify(jobs)], { env: isolatedEnv() });
  if (r.code !== 0) throw new Error(`building wheels failed: ${r.stderr}`);
  return jobs.map(([, out]) => out);
}

const SDIST_SCRIPT = `
import io, json, sys, tarfile
spec = json.loads(sys.argv[1]); out = sys.argv[2]
with tarfile.open(out, 'w:gz') as t:
    for name, text in spec['files'].items():
        data = text.encode()
        info = tarfile.TarInfo(name); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
`;

/** Build a `.tar.gz` sdist with the given members. */
export async function buildSdist(dir: string, filename: string, files: Record<string, string>): Promise<string> {
  const out = join(dir, filename);
  const r = await run(SYSTEM_PYTHON, ['-c', SDIST_SCRIPT, JSON.stringify({ files }), out], { env: isolatedEnv() });
  if (r.code !== 0) throw new Error(`building sdist failed: ${r.stderr}`);
  return out;
}

export interface UploadAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly body: string;
}

export interface FormUploadOptions {
  /** Fields to add or override (a null value removes a field). */
  readonly fields?: Record<string, string | string[] | null>;
  /** Upload these bytes instead of the file's. */
  readonly content?: Uint8Array;
  /** The filename to send (defaults to the file's). */
  readonly filename?: string;
  /** Basic auth password; `null` sends no Authorization header. */
  readonly token: string | null;
  readonly username?: string;
}

/** Upload a file with a multipart form shaped like a current twine's (twine 6, metadata 2.4). */
export async function formUpload(url: string, path: string, options: FormUploadOptions): Promise<UploadAnswer> {
  const bytes = options.content ?? (await readFile(path));
  const filename = options.filename ?? basename(path);
  const isWheel = filename.endsWith('.whl');
  const m = /^(.+?)-([^-]+?)(-|\.tar\.gz|\.zip)/.exec(filename);
  const fields: Record<string, string | string[] | null> = {
    name: m?.[1]?.replace(/_/g, '-') ?? 'unknown',
    version: m?.[2] ?? '0',
    filetype: isWheel ? 'bdist_wheel' : 'sdist',
    pyversion: isWheel ? 'py3' : 'source',
    metadata_version: '2.4',
    summary: 'uploaded by pyedge tests',
    md5_digest: createHash('md5').update(bytes).digest('hex'),
    sha256_digest: createHash('sha256').update(bytes).digest('hex'),
    blake2_256_digest: Buffer.from(blake2b(bytes, { dkLen: 32 })).toString('hex'),
    ':action': 'file_upload',
    protocol_version: '1',
    ...options.fields,
  };
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) form.append(k, item);
  }
  form.append('content', new Blob([bytes], { type: 'application/octet-stream' }), filename);
  const headers: Record<string, string> = {};
  if (options.token !== null) {
    headers.authorization = 'Basic ' + Buffer.from(`${options.username ?? '__token__'}:${options.token}`).toString('base64');
  }
  const res = await fetch(`${url.replace(/\/$/, '')}/legacy/`, { method: 'POST', body: form, headers });
  return { status: res.status, statusText: res.statusText, body: await res.text() };
}
