/**
 * The upload statements for SQLite as prepared better-sqlite3 statements,
 * prepared once per connection. An upload is a dozen small statements; built
 * and compiled by kysely for every upload they cost more than running them.
 * The SQL is the same as the kysely queries of kyselyUploadWriter.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Insertable } from 'kysely';
import type { UploadWriter, ProjectWithRole } from '../add-file.js';
import type { ProjectRow } from '../rows.js';
import type { ChangelogTable, FilesTable, ReleasesTable } from '../schema.js';

export class SqliteUploadWriter implements UploadWriter {
  readonly #findProject: BetterSqlite3.Statement;
  readonly #findFilename: BetterSqlite3.Statement;
  readonly #findRelease: BetterSqlite3.Statement;
  readonly #takeSerials: BetterSqlite3.Statement;
  readonly #setProjectSerial: BetterSqlite3.Statement;
  readonly #insertProject: BetterSqlite3.Statement;
  readonly #insertRole: BetterSqlite3.Statement;
  readonly #insertRelease: BetterSqlite3.Statement;
  readonly #registerFilename: BetterSqlite3.Statement;
  readonly #insertFile: BetterSqlite3.Statement;
  readonly #insertCoreMetadata: BetterSqlite3.Statement;
  readonly #insertChange: BetterSqlite3.Statement;

  /** Prepares the statements: the schema must be migrated. */
  constructor(db: BetterSqlite3.Database) {
    this.#findProject = db.prepare(
      'select p.*, r.role from projects as p left join roles as r on r.project_id = p.id and r.user_id = ? where p.normalized_name = ?',
    );
    this.#findFilename = db.prepare(
      'select f.id from file_registry as fr left join files as f on f.filename = fr.filename where fr.filename = ?',
    );
    this.#findRelease = db.prepare(
      "select r.id, f.id as sdist_id from releases as r left join files as f on f.release_id = r.id and f.packagetype = 'sdist' " +
        'where r.project_id = ? and r.canonical_version = ?',
    );
    this.#takeSerials = db.prepare('update counter set last_serial = last_serial + ? where id = 1 returning last_serial');
    this.#setProjectSerial = db.prepare('update projects set last_serial = ? where id = ?');
    this.#insertProject = db.prepare(
      'insert into projects (name, normalized_name, created_at, last_serial) values (?, ?, ?, ?) returning *',
    );
    this.#insertRole = db.prepare("insert into roles (user_id, project_id, role) values (?, ?, 'Owner')");
    this.#insertRelease = db.prepare(
      'insert into releases (project_id, version, canonical_version, created_at, metadata) values (?, ?, ?, ?, ?) returning id',
    );
    this.#registerFilename = db.prepare('insert into file_registry (filename) values (?)');
    this.#insertFile = db.prepare(
      'insert into files (release_id, filename, packagetype, python_version, requires_python, size, md5, sha256, blake2b_256, ' +
        'path, metadata_sha256, upload_time, uploaded_by) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.#insertCoreMetadata = db.prepare('insert into core_metadata (path, content) values (?, ?)');
    this.#insertChange = db.prepare(
      'insert into changelog (serial, name, normalized_name, version, filename, action, detail, submitted_at, submitted_by) ' +
        'values (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
  }

  async findProject(normalizedName: string, userId: number): Promise<ProjectWithRole | undefined> {
    return this.#findProject.get(userId, normalizedName) as ProjectWithRole | undefined;
  }

  async findFilename(filename: string): Promise<{ fileId: number | null } | undefined> {
    const row = this.#findFilename.get(filename) as { id: number | null } | undefined;
    return row && { fileId: row.id };
  }

  async findRelease(projectId: number, canonicalVersion: string): Promise<{ id: number; sdistId: number | null } | undefined> {
    const row = this.#findRelease.get(projectId, canonicalVersion) as { id: number; sdist_id: number | null } | undefined;
    return row && { id: row.id, sdistId: row.sdist_id };
  }

  async takeSerials(count: number): Promise<number> {
    return (this.#takeSerials.get(count) as { last_serial: number }).last_serial;
  }

  async setProjectSerial(projectId: number, lastSerial: number): Promise<void> {
    this.#setProjectSerial.run(lastSerial, projectId);
  }

  async insertProject(row: Pick<ProjectRow, 'name' | 'normalized_name' | 'created_at' | 'last_serial'>, ownerId: number): Promise<ProjectRow> {
    const inserted = this.#insertProject.get(row.name, row.normalized_name, row.created_at, row.last_serial) as ProjectRow;
    this.#insertRole.run(ownerId, inserted.id);
    return inserted;
  }

  async insertRelease(row: Insertable<ReleasesTable>): Promise<number> {
    return (this.#insertRelease.get(row.project_id, row.version, row.canonical_version, row.created_at, row.metadata) as { id: number }).id;
  }

  async insertFile(row: Insertable<FilesTable>, coreMetadata: string | null): Promise<void> {
    this.#registerFilename.run(row.filename);
    this.#insertFile.run(
      row.release_id,
      row.filename,
      row.packagetype,
      row.python_version,
      row.requires_python ?? null,
      row.size,
      row.md5,
      row.sha256,
      row.blake2b_256,
      row.path,
      row.metadata_sha256 ?? null,
      row.upload_time,
      row.uploaded_by ?? null,
    );
    if (coreMetadata !== null) this.#insertCoreMetadata.run(row.path, coreMetadata);
  }

  async insertChanges(rows: readonly Insertable<ChangelogTable>[]): Promise<void> {
    for (const c of rows) {
      this.#insertChange.run(
        c.serial,
        c.name,
        c.normalized_name,
        c.version ?? null,
        c.filename ?? null,
        c.action,
        c.detail ?? null,
        c.submitted_at,
        c.submitted_by ?? null,
      );
    }
  }
}
