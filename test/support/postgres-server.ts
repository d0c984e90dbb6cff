/**
 * The Postgres server of a test run (started by Jest's globalSetup, see `global-setup.ts`,
 * or named by `MODELSQL_TEST_POSTGRES_URL`) and the fresh databases tests open on it.
 */
import pg from 'pg';

export { freePort, startPostgres, type PostgresServer } from './global-setup.js';

/** A new, empty database on the server of `url`, named `modelsql_t_<random>`; returns its URL. */
export async function createTestDatabase(url: string): Promise<string> {
  const name = `modelsql_t_${Math.random().toString(36).slice(2, 10)}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}
