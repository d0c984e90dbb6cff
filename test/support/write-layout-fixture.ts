/**
 * Writes the fixture of the catalog layout this modelsql writes
 * (`test/fixtures/catalog-layouts/layout-<CATALOG_VERSION>.sql`): loads the fixture of the
 * layout before it into a fresh DuckDB database and upgrades it (or, with none, creates
 * the fixture models there), then dumps schema `ml_catalog` — its tables (types in
 * spellings both hosts accept), views, indexes and rows — as a SQL script that loads on DuckDB
 * and on Postgres. Run it once when a layout is released, from the repository root:
 * `npm run build && node dist/test/support/write-layout-fixture.js`. Fixtures of older
 * layouts are never regenerated: they are what those releases wrote.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { CATALOG_VERSION } from '../../core/catalog/catalog-layout.js';
import { quoteString } from '../../core/sql/format.js';
import type { Session } from '../../core/session/session.js';
import { FIXTURE_MODELS_SQL, FIXTURE_SCHEMA, LAYOUT_FIXTURES, LAYOUT_FIXTURE_DIR, loadLayoutFixture } from './catalog-layouts.js';

/** DuckDB's names of the catalog column types, and the spelling both hosts read the same way. */
const PORTABLE_TYPES: Readonly<Record<string, string>> = {
  VARCHAR: 'text',
  INTEGER: 'integer',
  BIGINT: 'bigint',
  DOUBLE: 'double precision',
  BLOB: 'bytea',
  TIMESTAMP: 'timestamp',
};

/** One value as a literal; bytes through `from_hex` (see catalog-layouts.ts). */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (value instanceof Uint8Array) return `from_hex('${Buffer.from(value).toString('hex')}')`;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return quoteString(String(value));
}

/** The script that recreates schema `ml_catalog` of `db` with its rows. */
export async function dumpCatalog(db: Session): Promise<string> {
  const lines = ['CREATE SCHEMA ml_catalog;'];
  // Sequences (layout 4: model ids), each starting where the catalog's would go on.
  const sequences = await db.sql("SELECT sequence_name, last_value FROM duckdb_sequences() WHERE schema_name = 'ml_catalog' ORDER BY sequence_name");
  for (const [name, last] of sequences.rows) lines.push(`CREATE SEQUENCE ml_catalog.${String(name)} START WITH ${Number(last ?? 0) + 1};`);
  const tables = await db.sql("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'ml_catalog' ORDER BY table_name = 'schema_version' DESC, table_name");
  for (const [table] of tables.rows) {
    const columns = await db.sql(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'ml_catalog' AND table_name = ${quoteString(String(table))} ORDER BY ordinal_position`,
    );
    const defs = columns.rows.map(([name, type, nullable]) => `${String(name)} ${PORTABLE_TYPES[String(type)] ?? String(type)}${nullable === 'NO' ? ' NOT NULL' : ''}`);
    lines.push('', `CREATE TABLE ml_catalog.${String(table)} (${defs.join(', ')});`);
    const cast = columns.rows.map(([name, type]) => (type === 'TIMESTAMP' ? `CAST(${String(name)} AS VARCHAR)` : String(name))).join(', ');
    const rows = await db.sql(`SELECT ${cast} FROM ml_catalog.${String(table)} ORDER BY ALL`);
    for (const row of rows.rows) lines.push(`INSERT INTO ml_catalog.${String(table)} VALUES (${row.map(literal).join(', ')});`);
  }
  const views = await db.sql("SELECT sql FROM duckdb_views() WHERE schema_name = 'ml_catalog' AND NOT internal ORDER BY view_name");
  if (views.rows.length > 0) lines.push('');
  for (const [sql] of views.rows) lines.push(String(sql).trim().replace(/;?$/, ';'));
  const indexes = await db.sql("SELECT sql FROM duckdb_indexes() WHERE schema_name = 'ml_catalog' ORDER BY index_name");
  if (indexes.rows.length > 0) lines.push('');
  for (const [sql] of indexes.rows) lines.push(String(sql).trim().replace(/;?$/, ';'));
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  // The remote model's key is a reference; CREATE checks that it resolves.
  process.env.REVIEWER_API_KEY ??= 'sk-fixture';
  const db = await openDuckDB();
  try {
    // From the fixture before it, upgraded, so that every fixture holds the same rows;
    // from the models themselves when there is none.
    const previous = CATALOG_VERSION - 1;
    if (LAYOUT_FIXTURES.includes(previous)) {
      await loadLayoutFixture(db, 'duckdb', previous);
      await db.sql('SHOW MODELS');
    } else {
      await db.sql(FIXTURE_MODELS_SQL);
    }
    const header = [
      `-- Model catalog of layout ${CATALOG_VERSION}, as modelsql writes it (test/support/write-layout-fixture.ts).`,
      '-- The fixture models of test/support/catalog-layouts.ts; loads on DuckDB and on Postgres.',
      `CREATE SCHEMA ${FIXTURE_SCHEMA};`,
      '',
    ];
    const file = join(LAYOUT_FIXTURE_DIR, `layout-${CATALOG_VERSION}.sql`);
    await writeFile(file, header.join('\n') + (await dumpCatalog(db)));
    process.stderr.write(`wrote ${file}\n`);
  } finally {
    await db.close();
  }
}

await main();
