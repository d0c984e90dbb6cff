/**
 * The hosts the shared integration suite runs on. `MODELSQL_TEST_ADAPTERS=duckdb` (comma
 * separated) narrows the list.
 */
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { connectPostgres } from '../../adapters/postgres/index.js';
import type { Session } from '../../core/session/session.js';
import { createTestDatabase } from './postgres-server.js';

/** One host under test. */
export interface TestAdapter {
  readonly name: string;
  /** The schema unqualified names resolve to in a fresh database (`main`, `public`). */
  readonly schema: string;
  /** A fresh, empty database. */
  open(): Promise<Session>;
  /** How many of modelsql's temporary tables (`__modelsql...`) the session holds. */
  countTempTables(session: Session): Promise<bigint>;
}

const ALL: readonly TestAdapter[] = [
  {
    name: 'duckdb',
    schema: 'main',
    open: () => openDuckDB(),
    countTempTables: async (db) => (await db.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '__modelsql%'")).rows[0]![0] as bigint,
  },
  {
    name: 'postgres',
    schema: 'public',
    open: async () => {
      const url = process.env.MODELSQL_TEST_POSTGRES_URL;
      if (!url) throw new Error('MODELSQL_TEST_POSTGRES_URL is not set: run the tests through jest (globalSetup starts a server)');
      return connectPostgres(await createTestDatabase(url));
    },
    countTempTables: async (db) =>
      (await db.sql("SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname LIKE '\\_\\_modelsql%' AND pg_class.relnamespace = pg_my_temp_schema()")).rows[0]![0] as bigint,
  },
];

const wanted = process.env.MODELSQL_TEST_ADAPTERS?.split(',').map((s) => s.trim());

/** The adapters selected for this run. */
export const ADAPTERS: readonly TestAdapter[] = wanted ? ALL.filter((a) => wanted.includes(a.name)) : ALL;
