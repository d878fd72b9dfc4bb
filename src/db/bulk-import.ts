/**
 * Bulk loading of projects, each with one release and one file, for building an
 * index at PyPI's size (`pyedge import-names`). The same rows and changelog entries
 * an upload would write, but many projects per statement and transaction.
 */
import type { Insertable, Transaction } from 'kysely';
import { normalizeName } from '../core/names.js';
import type { ReleaseMetadata } from '../core/model.js';
import type { NewFile } from './database.js';
import type { ChangelogTable, Schema } from './schema.js';

/** One project to import: its only release and that release's only file. */
export interface ImportRecord {
  readonly name: string;
  readonly version: string;
  readonly canonicalVersion: string;
  readonly metadata: ReleaseMetadata;
  readonly file: NewFile;
}

export interface ImportResult {
  readonly imported: number;
  /** Projects that already existed (a re-run of the same import skips them). */
  readonly skipped: number;
  readonly lastSerial: number;
}

/** Rows per INSERT: keeps every statement under SQLite's and PostgreSQL's bind-parameter limits. */
const CHUNK = 400;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

/** Import `records` inside the caller's transaction; projects that exist are skipped. */
export async function importBatch(
  trx: Transaction<Schema>,
  records: readonly ImportRecord[],
  owner: { readonly userId: number; readonly username: string },
  now: string,
): Promise<ImportResult> {
  const byName = new Map<string, ImportRecord>();
  for (const r of records) byName.set(normalizeName(r.name), r);
  for (const part of chunks([...byName.keys()])) {
    const existing = await trx.selectFrom('projects').select('normalized_name').where('normalized_name', 'in', part).execute();
    for (const row of existing) byName.delete(row.normalized_name);
  }
  const fresh = [...byName.entries()];
  if (fresh.length === 0) {
    const { last_serial } = await trx.selectFrom('counter').select('last_serial').where('id', '=', 1).executeTakeFirstOrThrow();
    return { imported: 0, skipped: records.length, lastSerial: last_serial };
  }

  // Three serials per project: create, new release, add file.
  const { last_serial: lastSerial } = await trx
    .updateTable('counter')
    .set((eb) => ({ last_serial: eb('last_serial', '+', fresh.length * 3) }))
    .where('id', '=', 1)
    .returning('last_serial')
    .executeTakeFirstOrThrow();
  const first = lastSerial - fresh.length * 3 + 1;

  const projectIds = new Map<string, number>();
  for (const [k, part] of chunks(fresh).entries()) {
    // A project's last serial is that of its 'add file' entry.
    const lastOf = (i: number): number => first + (k * CHUNK + i) * 3 + 2;
    const rows = await trx
      .insertInto('projects')
      .values(part.map(([normalized, r], i) => ({ name: r.name, normalized_name: normalized, created_at: now, last_serial: lastOf(i) })))
      .returning(['id', 'normalized_name'])
      .execute();
    for (const row of rows) projectIds.set(row.normalized_name, row.id);
  }
  for (const part of chunks(fresh)) {
    await trx
      .insertInto('roles')
      .values(part.map(([normalized]) => ({ user_id: owner.userId, project_id: projectIds.get(normalized)!, role: 'Owner' as const })))
      .execute();
  }
  const releaseIds = new Map<number, number>();
  for (const part of chunks(fresh)) {
    const rows = await trx
      .insertInto('releases')
      .values(
        part.map(([normalized, r]) => ({
          project_id: projectIds.get(normalized)!,
          version: r.version,
          canonical_version: r.canonicalVersion,
          created_at: now,
          metadata: JSON.stringify(r.metadata),
        })),
      )
      .returning(['id', 'project_id'])
      .execute();
    for (const row of rows) releaseIds.set(row.project_id, row.id);
  }
  for (const part of chunks(fresh)) {
    await trx.insertInto('file_registry').values(part.map(([, r]) => ({ filename: r.file.filename }))).execute();
    await trx
      .insertInto('files')
      .values(
        part.map(([normalized, r]) => ({
          release_id: releaseIds.get(projectIds.get(normalized)!)!,
          filename: r.file.filename,
          packagetype: r.file.packagetype,
          python_version: r.file.pythonVersion,
          requires_python: r.file.requiresPython,
          size: r.file.size,
          md5: r.file.md5,
          sha256: r.file.sha256,
          blake2b_256: r.file.blake2b256,
          path: r.file.path,
          metadata_sha256: r.file.metadataSha256,
          upload_time: now,
          uploaded_by: owner.username,
        })),
      )
      .execute();
  }
  const changes: Insertable<ChangelogTable>[] = [];
  fresh.forEach(([normalized, r], i) => {
    const s = first + i * 3;
    const base = { name: r.name, normalized_name: normalized, submitted_at: now, submitted_by: owner.username };
    changes.push({ ...base, serial: s, action: 'create', version: null, filename: null, detail: null });
    changes.push({ ...base, serial: s + 1, action: 'new release', version: r.version, filename: null, detail: null });
    changes.push({
      ...base,
      serial: s + 2,
      action: 'add file',
      version: r.version,
      filename: r.file.filename,
      detail: `add ${r.file.pythonVersion} file ${r.file.filename}`,
    });
  });
  for (const part of chunks(changes)) await trx.insertInto('changelog').values(part).execute();
  return { imported: fresh.length, skipped: records.length - fresh.length, lastSerial };
}
