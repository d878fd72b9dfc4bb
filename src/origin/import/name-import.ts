/**
 * Builds an index at PyPI's size from a list of real project names and versions
 * (`../shared/data/pypi-projects.tsv.gz`: name, latest_version, …): one release
 * and one generated sdist per project, written in large transactions.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Database } from '../../db/database.js';
import type { ImportRecord } from '../../db/bulk-import.js';
import type { BlobStore } from '../../blobstore/blob-store.js';
import { EMPTY_RELEASE_METADATA } from '../../core/model.js';
import { isValidName, normalizeName } from '../../core/names.js';
import { canonicalVersion } from '../../core/versions.js';
import { MultiHasher, packagePath } from '../../core/hashes.js';

export interface NameImportOptions {
  /** Stop after this many projects. */
  readonly limit?: number;
  /** Write each generated file to the blob store too (without, pages link to files that are not stored). */
  readonly files: boolean;
  /** Projects per transaction. */
  readonly batchSize?: number;
  /** Called after each batch. */
  readonly onProgress?: (done: number, skipped: number) => void;
}

export interface NameImportResult {
  readonly imported: number;
  readonly skipped: number;
  /** Lines that were not a valid name and version. */
  readonly invalid: number;
  readonly lastSerial: number;
  readonly ms: number;
}

/** The generated file of a project: small, deterministic bytes under Warehouse's path. */
export function generatedFile(name: string, version: string): { record: ImportRecord; bytes: Buffer } {
  const filename = `${normalizeName(name).replace(/-/g, '_')}-${version}.tar.gz`;
  const bytes = Buffer.from(`pyedge generated distribution for ${name} ${version}\n`);
  const h = new MultiHasher();
  h.update(bytes);
  const d = h.digest();
  return {
    bytes,
    record: {
      name,
      version,
      canonicalVersion: canonicalVersion(version) ?? version,
      metadata: { ...EMPTY_RELEASE_METADATA, summary: `${name} (imported)` },
      file: {
        filename,
        packagetype: 'sdist',
        pythonVersion: 'source',
        requiresPython: null,
        size: bytes.length,
        md5: d.md5,
        sha256: d.sha256,
        blake2b256: d.blake2b_256,
        path: packagePath(d.blake2b_256, filename),
        metadataSha256: null,
      },
    },
  };
}

/** Import projects from a `name<TAB>version…` TSV (gzip when the path ends in .gz), header line skipped. */
export async function importNames(
  db: Database,
  blobs: BlobStore,
  path: string,
  options: NameImportOptions,
): Promise<NameImportResult> {
  const started = Date.now();
  const batchSize = options.batchSize ?? 5000;
  const owner = await db.ensureUser('importer');
  const raw: Readable = createReadStream(path);
  const input = path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  const lines = createInterface({ input, crlfDelay: Infinity });
  let batch: { record: ImportRecord; bytes: Buffer }[] = [];
  let imported = 0;
  let skipped = 0;
  let invalid = 0;
  let lastSerial = await db.lastSerial();
  let header = true;
  let taken = 0;

  // Files of one batch are written while the database takes the previous batch.
  let recording: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const current = batch;
    batch = [];
    if (options.files) {
      // Files first, as for uploads: a page never links a file that is not there.
      const queue = [...current];
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let item = queue.pop(); item; item = queue.pop()) await blobs.put(item.record.file.path, item.bytes, { durable: false });
        }),
      );
    }
    await recording;
    recording = (async () => {
      // One flush for everything written so far, before the database links the files.
      if (options.files) await blobs.sync();
      const r = await db.importProjects(
        current.map((c) => c.record),
        { userId: owner.id, username: owner.username },
      );
      imported += r.imported;
      skipped += r.skipped;
      lastSerial = r.lastSerial;
      options.onProgress?.(imported, skipped);
    })();
    // Observed here so a failure is not reported as unhandled before the next await picks it up.
    recording.catch(() => undefined);
  };

  try {
    for await (const line of lines) {
      if (header) {
        header = false;
        if (/^name\t/i.test(line)) continue;
      }
      if (options.limit !== undefined && taken >= options.limit) break;
      const [name, version] = line.split('\t');
      if (!name || !version || !isValidName(name) || canonicalVersion(version) === null) {
        invalid++;
        continue;
      }
      batch.push(generatedFile(name, version));
      taken++;
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    await recording;
  } finally {
    lines.close();
    raw.destroy();
  }
  return { imported, skipped, invalid, lastSerial, ms: Date.now() - started };
}
