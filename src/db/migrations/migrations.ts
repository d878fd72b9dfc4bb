/** The ordered list of schema migrations, and the runner that applies the missing ones. */
import { Migrator } from 'kysely';
import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { PyedgeError } from '../../core/errors.js';
import { initialSchema } from './0001-initial.js';
import { downloadCounts } from './0002-download-counts.js';
import { coreMetadata } from './0003-core-metadata.js';

export type DialectName = 'sqlite' | 'postgres';

/** Every migration, keyed by a name that sorts in the order they must run. Append only. */
export function migrationsFor(dialect: DialectName): Record<string, Migration> {
  return {
    '0001-initial': initialSchema(dialect),
    '0002-download-counts': downloadCounts(dialect),
    '0003-core-metadata': coreMetadata(dialect),
  };
}

/**
 * Bring the schema up to date. Kysely's migrator records what ran and takes a
 * lock, so running it twice or from two processes at once is harmless.
 */
export async function migrateToLatest(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => migrationsFor(dialect) };
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const reason = error instanceof Error ? error.message : String(error);
    throw new PyedgeError(
      'PYEDGE_UNAVAILABLE',
      `Database migration ${failed ?? '(setup)'} failed on ${dialect}: ${reason}`,
      { dialect, migration: failed },
      { cause: error },
    );
  }
}
