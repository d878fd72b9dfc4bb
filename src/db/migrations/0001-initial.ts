/** The first schema: one definition for both engines, with engine-specific column types where they differ. */
import { sql } from 'kysely';
import type { ColumnDataType, ColumnDefinitionBuilder, Expression, Kysely, Migration } from 'kysely';
import type { DialectName } from './migrations.js';

/** Column types that differ between the engines. */
interface Types {
  /** A surrogate key that the engine generates. */
  id: (col: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;
  /**
   * Text that pages are sorted by. PostgreSQL sorts by the database's locale
   * unless told otherwise, which would order `foo-bar` and `foobar` differently
   * from SQLite; byte order keeps both engines (and so their pages) identical.
   */
  sortedText: ColumnDataType | Expression<unknown>;
  bigInt: ColumnDataType;
  bool: ColumnDataType;
  falseValue: Expression<unknown>;
}

function typesFor(dialect: DialectName): Types {
  if (dialect === 'postgres') {
    return {
      id: (col) => col.primaryKey().generatedByDefaultAsIdentity(),
      sortedText: sql`text collate "C"`,
      bigInt: 'bigint',
      bool: 'boolean',
      falseValue: sql`false`,
    };
  }
  return {
    // AUTOINCREMENT so that ids are never reused after a delete.
    id: (col) => col.primaryKey().autoIncrement(),
    sortedText: 'text',
    bigInt: 'integer',
    bool: 'integer',
    falseValue: sql`0`,
  };
}

export function initialSchema(dialect: DialectName): Migration {
  const t = typesFor(dialect);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('users')
        .addColumn('id', 'integer', t.id)
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('project_scope', 'text')
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('tokens_user_id').on('tokens').column('user_id').execute();

      await db.schema
        .createTable('projects')
        .addColumn('id', 'integer', t.id)
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('normalized_name', t.sortedText, (c) => c.notNull().unique())
        .addColumn('status', 'text', (c) =>
          c.notNull().defaultTo('active').check(sql`status in ('active', 'archived', 'quarantined', 'deprecated')`),
        )
        .addColumn('status_reason', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_serial', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();

      await db.schema
        .createTable('roles')
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('project_id', 'integer', (c) => c.notNull().references('projects.id').onDelete('cascade'))
        .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('Owner', 'Maintainer')`))
        .addPrimaryKeyConstraint('roles_pkey', ['user_id', 'project_id'])
        .execute();
      await db.schema.createIndex('roles_project_id').on('roles').column('project_id').execute();

      await db.schema
        .createTable('releases')
        .addColumn('id', 'integer', t.id)
        .addColumn('project_id', 'integer', (c) => c.notNull().references('projects.id').onDelete('cascade'))
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('canonical_version', 'text', (c) => c.notNull())
        .addColumn('yanked', t.bool, (c) => c.notNull().defaultTo(t.falseValue))
        .addColumn('yanked_reason', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addUniqueConstraint('releases_project_version', ['project_id', 'canonical_version'])
        .execute();

      await db.schema
        .createTable('files')
        .addColumn('id', 'integer', t.id)
        .addColumn('release_id', 'integer', (c) => c.notNull().references('releases.id').onDelete('cascade'))
        .addColumn('filename', t.sortedText, (c) => c.notNull().unique())
        .addColumn('packagetype', 'text', (c) => c.notNull())
        .addColumn('python_version', 'text', (c) => c.notNull())
        .addColumn('requires_python', 'text')
        .addColumn('size', t.bigInt, (c) => c.notNull())
        .addColumn('md5', 'text', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('blake2b_256', 'text', (c) => c.notNull())
        .addColumn('path', 'text', (c) => c.notNull().unique())
        .addColumn('metadata_sha256', 'text')
        .addColumn('upload_time', 'text', (c) => c.notNull())
        .addColumn('uploaded_by', 'text')
        .execute();
      await db.schema.createIndex('files_release_id').on('files').column('release_id').execute();
      // Makes two concurrent sdist uploads to one release collide instead of both landing.
      await sql`create unique index files_one_sdist_per_release on files (release_id) where packagetype = 'sdist'`.execute(db);

      // Every filename ever used, never deleted: PyPI never allows a filename again.
      await db.schema
        .createTable('file_registry')
        .addColumn('filename', t.sortedText, (c) => c.primaryKey())
        .execute();

      await db.schema
        .createTable('changelog')
        .addColumn('serial', 'integer', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('normalized_name', 'text', (c) => c.notNull())
        .addColumn('version', 'text')
        .addColumn('filename', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('detail', 'text')
        .addColumn('submitted_at', 'text', (c) => c.notNull())
        .addColumn('submitted_by', 'text')
        .execute();

      // Serials come from this row, not from a sequence: a sequence leaves gaps when a transaction rolls back.
      await db.schema
        .createTable('counter')
        .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
        .addColumn('last_serial', 'integer', (c) => c.notNull())
        .execute();
      await sql`insert into counter (id, last_serial) values (1, 0)`.execute(db);
    },
  };
}
