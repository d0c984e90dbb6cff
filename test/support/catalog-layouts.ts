/**
 * Fixture catalogs of every released catalog layout (`test/fixtures/catalog-layouts/
 * layout-<N>.sql`), how to load one into a host, and a snapshot of schema `ml_catalog` to
 * prove an upgrade changed exactly what it should. Every fixture holds the same models
 * ({@link FIXTURE_MODELS_SQL}); a new layout adds its fixture file and nothing else.
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PostgresDialect } from '../../adapters/postgres/postgres-dialect.js';
import { openLocationHost, openLocationSession, parseLocation } from '../../cli/catalog/location.js';
import type { Host } from '../../core/host.js';
import type { Session } from '../../core/session/session.js';
import type { TestAdapter } from './adapters.js';

/** `test/fixtures/catalog-layouts/` (from the sources, and from dist/ alike). */
export const LAYOUT_FIXTURE_DIR = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..').replace(/[\\/]dist$/, ''), 'test', 'fixtures', 'catalog-layouts');

/** The released layouts that have a fixture, ascending. */
export const LAYOUT_FIXTURES: readonly number[] = readdirSync(LAYOUT_FIXTURE_DIR)
  .map((file) => /^layout-(\d+)\.sql$/.exec(file)?.[1])
  .filter((n): n is string => n !== undefined)
  .map(Number)
  .sort((a, b) => a - b);

/**
 * The models of every fixture, in schema `shop` (so that they resolve alike on both hosts),
 * written with modelsql on DuckDB from the repository root
 * (write-layout-fixture.ts): an imported ONNX model, a remote model with options (its key a
 * reference), a trained model with two versions (v1 compiled to SQL, v2 run through its
 * stored ONNX artifact; default version 1, held-out metrics), and one prediction run.
 */
export const FIXTURE_MODELS_SQL = `
CREATE SCHEMA shop;
CREATE TABLE shop.houses AS
  SELECT CAST(800 + 37 * i AS DOUBLE) AS sqft, CAST(i % 17 AS DOUBLE) AS age,
         CASE WHEN i % 3 = 0 THEN 'north' ELSE 'south' END AS city,
         100 * (800 + 37 * i) - 500 * (i % 17) + CASE WHEN i % 3 = 0 THEN 10000 ELSE 0 END + 20000.0 AS price
  FROM range(40) AS t(i);
CREATE MODEL shop.house_price
  INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE)
  OUTPUT (price DOUBLE)
  COMMENT 'imported ONNX model'
  WITH ('provider' = 'onnx', 'path' = 'examples/models/house_price.onnx');
CREATE MODEL shop.reviewer
  INPUT (review STRING COMMENT 'the review text')
  OUTPUT (sentiment STRING)
  COMMENT 'remote chat model'
  WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'gpt-4o-mini',
        'api-key' = '\${env:REVIEWER_API_KEY}', 'system-prompt' = 'Answer positive or negative.',
        'temperature' = '0', 'max-tokens' = '5');
CREATE MODEL shop.price_model
  WITH ('task' = 'regression', 'algorithm' = 'linear_regression', 'label' = 'price', 'test-split' = '0.25')
  AS SELECT sqft, age, city, price FROM shop.houses;
CREATE OR REPLACE MODEL shop.price_model
  WITH ('task' = 'regression', 'algorithm' = 'linear_regression', 'label' = 'price', 'l2' = '0.01', 'runtime' = 'onnx')
  AS SELECT sqft, age, city, price FROM shop.houses;
ALTER MODEL shop.price_model SET ('default-version' = '1');
SELECT count(*) FROM ML_PREDICT(TABLE (SELECT sqft, 3.0 AS bedrooms, age FROM shop.houses), MODEL shop.house_price, DESCRIPTOR(sqft, bedrooms, age));
`;

/** The schema of the fixture models, created by every fixture (a host schema, not part of the catalog). */
export const FIXTURE_SCHEMA = 'shop';

/** The models every fixture holds, in schema {@link FIXTURE_SCHEMA}, by name. */
export const FIXTURE_MODEL_NAMES = ['house_price', 'price_model', 'reviewer'] as const;

/**
 * Loads the fixture of `layout` into the (empty) database of `db`. Fixtures write bytes
 * as `from_hex('...')`, DuckDB's own function; on Postgres it is defined for the load, and
 * the Postgres-only statements of each layout (`RoleDialect.catalogMigration`) follow.
 */
export async function loadLayoutFixture(db: Session, host: string, layout: number): Promise<void> {
  const script = readFileSync(join(LAYOUT_FIXTURE_DIR, `layout-${layout}.sql`), 'utf8');
  if (host !== 'postgres') {
    await db.sql(script);
    return;
  }
  await db.sql(`CREATE FUNCTION from_hex(text) RETURNS bytea LANGUAGE sql IMMUTABLE AS 'SELECT decode($1, ''hex'')'`);
  try {
    await db.sql(script);
  } finally {
    await db.sql('DROP FUNCTION from_hex(text)');
  }
  // What Postgres's layouts add to the shared tables (row-level security, role columns).
  const roles = new PostgresDialect().roles;
  for (let version = 1; version <= layout; version++) for (const statement of roles?.catalogMigration(version) ?? []) await db.sql(statement);
}

/** Schema `ml_catalog` as data: each table's columns (name, type, nullability) and rows, and the index names. */
export interface CatalogSnapshot {
  readonly tables: Readonly<Record<string, { readonly columns: readonly string[]; readonly rows: readonly string[] }>>;
  readonly indexes: readonly string[];
}

/** Reads every table, column, row and index of schema `ml_catalog` (rows sorted, as JSON). */
export async function catalogSnapshot(host: Host): Promise<CatalogSnapshot> {
  const columns = await host.execute(
    "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'ml_catalog' ORDER BY table_name, ordinal_position",
  );
  const tables: Record<string, { columns: string[]; rows: string[] }> = {};
  for (const [table, column, type, nullable] of columns.rows) {
    (tables[String(table)] ??= { columns: [], rows: [] }).columns.push(`${String(column)} ${String(type)}${nullable === 'NO' ? ' NOT NULL' : ''}`);
  }
  for (const [name, table] of Object.entries(tables)) {
    const rows = await host.execute(`SELECT * FROM ml_catalog.${name}`);
    table.rows = rows.rows.map((row) => JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).sort();
  }
  const indexes =
    host.name === 'postgres'
      ? await host.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'ml_catalog' ORDER BY 1")
      : await host.execute("SELECT index_name FROM duckdb_indexes() WHERE schema_name = 'ml_catalog' ORDER BY 1");
  return { tables, indexes: indexes.rows.map((r) => String(r[0])) };
}

/** The layout part of a snapshot: tables with their columns, and indexes; no rows. */
export function catalogStructure(snapshot: CatalogSnapshot): unknown {
  return { tables: Object.fromEntries(Object.entries(snapshot.tables).map(([name, t]) => [name, t.columns])), indexes: snapshot.indexes };
}

/** The `catalog` location (`duckdb:file`, `postgres://...`) of a database named by `TestAdapter.openShared`'s CLI options. */
export function locationOf(cliArgs: readonly string[]): string {
  return cliArgs[0] === '--db' ? `duckdb:${cliArgs[1]!}` : cliArgs[1]!;
}

/**
 * A new database of `adapter` (a DuckDB file in a new directory under `dir`) holding the
 * fixture of `layout`, or a fresh current catalog when `layout` is undefined; returns its
 * location. Nothing stays open on it.
 */
export async function layoutDatabase(adapter: TestAdapter, dir: string, layout?: number): Promise<string> {
  const { session, cliArgs } = await adapter.openShared(mkdtempSync(join(dir, 'db-')));
  try {
    if (layout === undefined) await session.sql('SHOW MODELS');
    else await loadLayoutFixture(session, adapter.name, layout);
  } finally {
    await session.close();
  }
  return locationOf(cliArgs);
}

/** Runs `fn` on the host connection of `location`, then closes it. */
export function withHost<T>(location: string, fn: (host: Host) => Promise<T>): Promise<T> {
  return using(openLocationHost(parseLocation(location)), fn);
}

/** Runs `fn` on a modelsql session of `location`, then closes it. */
export function withSession<T>(location: string, fn: (db: Session) => Promise<T>): Promise<T> {
  return using(openLocationSession(parseLocation(location)), fn);
}

async function using<C extends { close(): Promise<void> }, T>(opening: Promise<C>, fn: (c: C) => Promise<T>): Promise<T> {
  const c = await opening;
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}
