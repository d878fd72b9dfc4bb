/**
 * The core metadata served as `<file>.metadata` (PEP 658), kept in the database
 * beside the file's row: committed in the upload's own transaction, so an upload
 * writes (and flushes) one blob instead of two.
 */
import type { Kysely, Migration } from 'kysely';
import type { DialectName } from './migrations.js';

export function coreMetadata(_dialect: DialectName): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('core_metadata')
        .addColumn('path', 'text', (c) => c.primaryKey())
        .addColumn('content', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('core_metadata').execute();
    },
  };
}
