import { runDatabaseContract } from '../database.contract.js';
import { createTestPostgres } from '../../../test/helpers/postgres.js';
import { PostgresDatabase } from './postgres-database.js';

runDatabaseContract('postgres', async () => {
  const pg = await createTestPostgres();
  return { db: new PostgresDatabase(pg.url), cleanup: pg.drop };
});
