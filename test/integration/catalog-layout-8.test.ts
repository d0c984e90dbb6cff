/**
 * Catalog layout 8 on Postgres, upgraded in place from layout 7 by a superuser while an
 * ordinary role owns the catalog and another holds a materialized table: the table keeps
 * its id and refreshes (claimed through `claim_refresh`), the claim columns are there and
 * empty, the id sequence is gone, and the new functions belong to the catalog owner.
 */
import pg from 'pg';
import { connectPostgres, PgClientConnection, PostgresHost } from '../../adapters/postgres/index.js';
import { applyCatalogUpgrade, planCatalogUpgrade, readCatalogVersion } from '../../core/catalog/catalog-layout.js';
import { createTestDatabase } from '../support/postgres-server.js';
import { serverUrl } from '../adapters/postgres/proxy-helpers.js';

const tag = Math.random().toString(36).slice(2, 8);
const ADMIN = `l8_admin_${tag}`;
const ALICE = `l8_alice_${tag}`;
const PASSWORD = 'pw-of-a-role';

function urlOf(db: string, role?: string): string {
  const url = new URL(db);
  if (role) {
    url.username = role;
    url.password = PASSWORD;
  }
  return url.toString();
}

async function query(url: string, sql: string, params: unknown[] = []): Promise<unknown[][]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query({ text: sql, values: params, rowMode: 'array' })).rows as unknown[][];
  } finally {
    await c.end();
  }
}

test('a layout-7 catalog with a materialized table upgrades to layout 8 in place', async () => {
  const db = await createTestDatabase(serverUrl());
  const name = new URL(db).pathname.slice(1);
  for (const role of [ADMIN, ALICE]) await query(db, `CREATE ROLE ${role} LOGIN PASSWORD '${PASSWORD}'`);
  await query(db, `GRANT CREATE ON DATABASE ${name} TO ${ADMIN}`);
  await query(db, `GRANT CREATE ON SCHEMA public TO ${ALICE}`);
  // The catalog owner creates a catalog of layout 7.
  const admin = new PostgresHost(await PgClientConnection.connect(urlOf(db, ADMIN)));
  try {
    const plan = await planCatalogUpgrade(admin);
    await applyCatalogUpgrade(admin, { ...plan, to: 7, migrations: plan.migrations.filter((m) => m.version <= 7) });
    expect(await readCatalogVersion(admin)).toBe(7);
  } finally {
    await admin.close();
  }
  // alice's FULL materialized table, made with layout 7's functions.
  const definition = `CREATE MATERIALIZED TABLE public.seven FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = FULL AS SELECT 7 AS n`;
  await query(urlOf(db, ALICE), 'CREATE TABLE public.seven AS SELECT 7 AS n');
  const [[id]] = (await query(urlOf(db, ALICE), `SELECT ml_catalog.create_materialized('public', 'seven', $1, 'SELECT 7 AS n', 'FULL', 3600, 'ACTIVE', NULL, NULL, NULL, NULL, NULL, NULL, NULL)`, [definition])) as [[string]];
  // A superuser upgrades it.
  const superuser = new PostgresHost(await PgClientConnection.connect(db));
  try {
    await applyCatalogUpgrade(superuser, await planCatalogUpgrade(superuser));
    expect(await readCatalogVersion(superuser)).toBe(8);
  } finally {
    await superuser.close();
  }
  expect(await query(db, `SELECT table_id, owner, refresh_pid, refresh_role FROM ml_catalog.materialized_tables`)).toEqual([[id, ALICE, null, null]]);
  expect(await query(db, `SELECT count(*)::int FROM pg_class WHERE relname = 'materialized_ids'`)).toEqual([[0]]);
  const owners = await query(db, `SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc WHERE pronamespace = 'ml_catalog'::regnamespace AND proname IN ('claim_refresh', 'claim_refresh_as', 'release_refresh', 'release_refresh_as', 'create_materialized', 'create_materialized_as')`);
  expect(owners).toEqual([[ADMIN]]);
  // The table refreshes under the new claim, and releases it.
  const session = await connectPostgres(urlOf(db, ALICE));
  try {
    await session.sql('ALTER MATERIALIZED TABLE public.seven REFRESH');
    expect((await session.sql('SELECT n FROM public.seven')).rows).toEqual([[7]]);
  } finally {
    await session.close();
  }
  expect(await query(db, `SELECT refresh_count, refresh_pid FROM ml_catalog.materialized_tables`)).toEqual([['1', null]]);
}, 120_000);
