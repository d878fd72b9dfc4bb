/**
 * A throwaway PostgreSQL database per test run, on the server the machine
 * provides (trust auth on 127.0.0.1). PYEDGE_TEST_PG_URL overrides the admin URL.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface TestPostgres {
  /** URL of the new, empty database. */
  readonly url: string;
  /** Drops the database, closing any connection still open to it. */
  readonly drop: () => Promise<void>;
}

/** Creates `pyedge_test_<random>` and returns its URL and a function that drops it. */
export async function createTestPostgres(): Promise<TestPostgres> {
  const adminUrl = process.env.PYEDGE_TEST_PG_URL || DEFAULT_ADMIN_URL;
  const name = `pyedge_test_${randomBytes(6).toString('hex')}`;
  await admin(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await admin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function admin(adminUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}
