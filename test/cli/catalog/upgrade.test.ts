/**
 * `modelsql catalog upgrade` as a subprocess (test/support/run-cli.ts: the built CLI) on
 * every adapter, from every fixture layout (test/fixtures/catalog-layouts/): the upgrade,
 * `--dry-run` (a script that changes nothing, and does the upgrade when run), `--json`, a
 * newer layout refused, a migration failing half-way, unreachable databases.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CATALOG_VERSION, readCatalogVersion } from '../../../core/catalog/catalog-layout.js';
import { ADAPTERS } from '../../support/adapters.js';
import { FIXTURE_MODEL_NAMES, LAYOUT_FIXTURES, catalogSnapshot, layoutDatabase, locationOf, withHost, withSession } from '../../support/catalog-layouts.js';
import { freePort } from '../../support/postgres-server.js';
import { runCli, type CliRun } from '../../support/run-cli.js';

/** Layouts before migration 2, which adds `prediction_runs.cache_hits` (the half-way failure below). */
const BEFORE_CACHE_HITS = LAYOUT_FIXTURES.filter((n) => n < 2);

/** Runs `modelsql catalog upgrade ...args`. */
const upgrade = (...args: string[]): Promise<CliRun> => runCli(['catalog', 'upgrade', ...args]);

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'modelsql-cli-upgrade-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const adapter of ADAPTERS) {
  describe(`modelsql catalog upgrade on ${adapter.name}`, () => {
    const database = (layout?: number): Promise<string> => layoutDatabase(adapter, dir, layout);
    const snapshot = (location: string) => withHost(location, catalogSnapshot);

    describe.each(LAYOUT_FIXTURES)('from the layout-%i fixture', (layout) => {
      it('upgrades, and the models work afterwards', async () => {
        const location = await database(layout);
        const r = await upgrade(location);
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(
          layout < CATALOG_VERSION
            ? new RegExp(`: upgraded the model catalog from layout ${layout} to layout ${CATALOG_VERSION}\\n(  layout \\d+: .+\\n)+$`)
            : new RegExp(`: the model catalog is at layout ${layout}, the current one; nothing to upgrade\\n$`),
        );
        await withHost(location, async (host) => expect(await readCatalogVersion(host)).toBe(CATALOG_VERSION));
        await withSession(location, async (db) => {
          expect((await db.sql('SHOW MODELS FROM shop')).rows.map((row) => row[0])).toEqual([...FIXTURE_MODEL_NAMES]);
          const r = await db.sql(
            'SELECT price FROM ML_PREDICT(TABLE (SELECT CAST(1500 AS DOUBLE PRECISION) AS sqft, CAST(3 AS DOUBLE PRECISION) AS bedrooms, CAST(10 AS DOUBLE PRECISION) AS age), MODEL shop.house_price, DESCRIPTOR(sqft, bedrooms, age))',
          );
          expect(r.rows[0]![0]).toBeCloseTo(295000, 0);
        });
      });

      it('--dry-run prints the migrations as a script and changes nothing', async () => {
        const location = await database(layout);
        const before = await snapshot(location);
        const r = await upgrade(location, '--dry-run');
        expect(r.status).toBe(0);
        expect(await snapshot(location)).toEqual(before);
        if (layout === CATALOG_VERSION) {
          expect(r.stdout).toMatch(/nothing to upgrade\n$/);
          return;
        }
        expect(r.stderr).toBe('dry run: nothing was changed\n');
        expect(r.stdout).toMatch(/^-- .+\nBEGIN;\n/);
        expect(r.stdout).toMatch(new RegExp(`INSERT INTO ml_catalog\\.schema_version VALUES \\(${CATALOG_VERSION}, [^\\n]*;\\nCOMMIT;\\n$`));
        // The printed script is the upgrade: run by hand, it brings the catalog to the current layout.
        await withSession(location, (db) => db.sql(r.stdout));
        await withHost(location, async (host) => expect(await readCatalogVersion(host)).toBe(CATALOG_VERSION));
      });

      it('--json prints one object, before and after', async () => {
        const location = await database(layout);
        const dry = JSON.parse((await upgrade(location, '--dry-run', '--json')).stdout) as Record<string, unknown>;
        const pending = Array.from({ length: CATALOG_VERSION - layout }, (_, i) => layout + 1 + i);
        expect(dry).toMatchObject({ ok: true, from: layout, to: CATALOG_VERSION, dryRun: true, changed: false });
        expect((dry['migrations'] as { version: number }[]).map((m) => m.version)).toEqual(pending);
        const run = await upgrade(location, '--json');
        expect(run.status).toBe(0);
        expect(JSON.parse(run.stdout)).toEqual({ ...dry, dryRun: false, changed: pending.length > 0 });
        const again = JSON.parse((await upgrade(location, '--json')).stdout) as Record<string, unknown>;
        expect(again).toMatchObject({ ok: true, from: CATALOG_VERSION, to: CATALOG_VERSION, changed: false, migrations: [] });
      });
    });

    it('refuses a catalog of a newer layout, with its SQLSTATE, and leaves it untouched', async () => {
      const location = await database(CATALOG_VERSION);
      await withHost(location, (host) => host.execute(`INSERT INTO ml_catalog.schema_version VALUES (${CATALOG_VERSION + 1}, CAST(now() AS TIMESTAMP))`));
      const before = await snapshot(location);
      const r = await upgrade(location);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^ERROR:  55000: .+: the model catalog in schema ml_catalog has layout version ${CATALOG_VERSION + 1}, newer than this modelsql understands \\(${CATALOG_VERSION}\\); upgrade modelsql\\n$`));
      const json = await upgrade(location, '--json', '--dry-run');
      expect(json.status).toBe(1);
      expect(JSON.parse(json.stdout)).toEqual({ ok: false, error: { sqlstate: '55000', message: expect.stringMatching(/newer than this modelsql/) } });
      expect(await snapshot(location)).toEqual(before);
    });

    it.each(BEFORE_CACHE_HITS)('leaves a layout-%i catalog as it was when a migration fails half-way', async (layout) => {
      // A column migration 2 adds, already there: its ALTER fails after the migration's other statements ran.
      const location = await database(layout);
      await withHost(location, (host) => host.execute('ALTER TABLE ml_catalog.prediction_runs ADD COLUMN cache_hits BIGINT'));
      const before = await snapshot(location);
      const r = await upgrade(location);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^ERROR:  \w{5}: .+: catalog migration to layout 2 failed: .*cache_hits/);
      expect(r.stderr).toMatch(new RegExp(`the upgrade was rolled back: the catalog is unchanged, at layout ${layout}\\n$`));
      expect(await snapshot(location)).toEqual(before);
    });

    it('leaves a database with no catalog alone', async () => {
      const { session, cliArgs } = await adapter.openShared(mkdtempSync(join(dir, 'empty-')));
      await session.close();
      const location = locationOf(cliArgs);
      const r = await upgrade(location);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/: no model catalog \(schema ml_catalog\); nothing to upgrade\n$/);
      expect(await snapshot(location)).toEqual({ tables: {}, indexes: [] });
    });
  });
}

describe('modelsql catalog upgrade on unreachable databases', () => {
  it('names a Postgres server that does not answer, password masked (08001)', async () => {
    const r = await upgrade(`postgres://me:hunter2@127.0.0.1:${await freePort()}/shop`, '--json');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ERROR:  08001: cannot open postgres:\/\/me:\*{6}@127\.0\.0\.1:\d+\/shop: .*ECONNREFUSED/);
    expect(r.stderr).not.toContain('hunter2');
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { sqlstate: '08001' } });
  });

  it('refuses a DuckDB file that does not exist, creating none (58P01)', async () => {
    const missing = join(dir, 'missing.duckdb');
    const r = await upgrade(`duckdb:${missing}`);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`ERROR:  58P01: cannot open duckdb:${missing}: no such database file\n`);
    expect(existsSync(missing)).toBe(false);
  });

  it('rejects a location of no known kind as bad usage', async () => {
    const r = await upgrade('mysql://db/shop');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not a catalog location: 'mysql:\/\/db\/shop'; give duckdb:path\/to\/file\.duckdb, postgres:\/\/user@host:5432\/db \(missing parts from the PG\* variables\) or postgres: \(DATABASE_URL\)\n$/);
  });
});
