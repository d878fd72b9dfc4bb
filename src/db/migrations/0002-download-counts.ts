/** Per-day download counts of files, for PEP 381's /local-stats/days/. */
import type { Kysely, Migration } from 'kysely';
import type { DialectName } from './migrations.js';

export function downloadCounts(dialect: DialectName): Migration {
  const bigInt = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('download_counts')
        .addColumn('day', 'text', (c) => c.notNull())
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('filename', 'text', (c) => c.notNull())
        .addColumn('user_agent', 'text', (c) => c.notNull())
        .addColumn('count', bigInt, (c) => c.notNull())
        .addPrimaryKeyConstraint('download_counts_pk', ['day', 'filename', 'user_agent'])
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('download_counts').execute();
    },
  };
}
