/**
 * The hosts the shared integration suite runs on. `MODELSQL_TEST_ADAPTERS=duckdb` (comma
 * separated) narrows the list.
 */
import { join } from 'node:path';
import { DuckDBHost, openDuckDB } from '../../adapters/duckdb/index.js';
import { PgClientConnection, PostgresHost, connectPostgres } from '../../adapters/postgres/index.js';
import type { Host } from '../../core/host.js';
import type { Session } from '../../core/session/session.js';
import type { SessionOptions } from '../../core/session/model-session.js';
import { createTestDatabase } from './postgres-server.js';

/** One host under test. */
export interface TestAdapter {
  readonly name: string;
  /** The schema unqualified names resolve to in a fresh database (`main`, `public`). */
  readonly schema: string;
  /** A fresh, empty database (with session options, e.g. limits). */
  open(options?: SessionOptions): Promise<Session>;
  /** How many of modelsql's temporary tables (`__modelsql...`) the session holds. */
  countTempTables(session: Session): Promise<bigint>;
  /** How many host functions (DuckDB macros, Postgres functions) called `name` exist. */
  countFunctions(session: Session, name: string): Promise<number>;
  /**
   * A fresh database that another process can open too: the session, and the CLI options
   * that name it (`--db file.duckdb`, `--postgres url`). `dir` holds a DuckDB file.
   */
  openShared(dir: string): Promise<{ session: Session; cliArgs: string[] }>;
  /** A fresh, empty database as a bare `Host` (for tests that watch what the core sends it). */
  openHost(): Promise<Host>;
  /**
   * Two sessions on one fresh database, or undefined where only one session can write a
   * database (DuckDB: a database file is locked by one process, and two instances in one
   * process on one file are two separate databases).
   */
  readonly openPair?: () => Promise<[Session, Session]>;
  /** Statements that make `schema` the current one (the name is a plain lower-case identifier), each a different way. */
  readonly useSchema: readonly ((schema: string) => string)[];
}

function postgresUrl(): string {
  const url = process.env.MODELSQL_TEST_POSTGRES_URL;
  if (!url) throw new Error('MODELSQL_TEST_POSTGRES_URL is not set: run the tests through jest (globalSetup starts a server)');
  return url;
}

const ALL: readonly TestAdapter[] = [
  {
    name: 'duckdb',
    schema: 'main',
    open: (options) => openDuckDB(undefined, options),
    countTempTables: async (db) => (await db.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '__modelsql%'")).rows[0]![0] as bigint,
    countFunctions: async (db, name) =>
      Number((await db.sql(`SELECT count(*) FROM duckdb_functions() WHERE function_name = '${name.replace(/'/g, "''")}' AND function_type = 'macro'`)).rows[0]![0]),
    openShared: async (dir) => {
      const file = join(dir, 'shared.duckdb');
      return { session: await openDuckDB(file), cliArgs: ['--db', file] };
    },
    openHost: () => DuckDBHost.open(),
    // https://duckdb.org/docs/stable/sql/statements/use, https://duckdb.org/docs/stable/configuration/overview (schema)
    useSchema: [(schema) => `USE ${schema}`, (schema) => `SET schema = '${schema}'`],
  },
  {
    name: 'postgres',
    schema: 'public',
    open: async (options) => {
      const url = process.env.MODELSQL_TEST_POSTGRES_URL;
      if (!url) throw new Error('MODELSQL_TEST_POSTGRES_URL is not set: run the tests through jest (globalSetup starts a server)');
      return connectPostgres(await createTestDatabase(url), options);
    },
    countTempTables: async (db) =>
      (await db.sql("SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname LIKE '\\_\\_modelsql%' AND pg_class.relnamespace = pg_my_temp_schema()")).rows[0]![0] as bigint,
    countFunctions: async (db, name) =>
      Number((await db.sql(`SELECT count(*) FROM pg_proc WHERE proname = '${name.replace(/'/g, "''")}'`)).rows[0]![0]),
    openShared: async () => {
      const url = process.env.MODELSQL_TEST_POSTGRES_URL;
      if (!url) throw new Error('MODELSQL_TEST_POSTGRES_URL is not set: run the tests through jest (globalSetup starts a server)');
      const target = await createTestDatabase(url);
      return { session: await connectPostgres(target), cliArgs: ['--postgres', target] };
    },
    openHost: async () => new PostgresHost(await PgClientConnection.connect(await createTestDatabase(postgresUrl()))),
    openPair: async () => {
      const target = await createTestDatabase(postgresUrl());
      return [await connectPostgres(target), await connectPostgres(target)];
    },
    // https://www.postgresql.org/docs/current/ddl-schemas.html#DDL-SCHEMAS-PATH
    useSchema: [(schema) => `SET search_path = ${schema}`, (schema) => `SET search_path TO missing_schema, ${schema}, public`],
  },
];

const wanted = process.env.MODELSQL_TEST_ADAPTERS?.split(',').map((s) => s.trim());

/** The adapters selected for this run. */
export const ADAPTERS: readonly TestAdapter[] = wanted ? ALL.filter((a) => wanted.includes(a.name)) : ALL;
