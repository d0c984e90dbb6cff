/**
 * Upgrading the model catalog from every released layout (the fixtures in
 * test/fixtures/catalog-layouts/, found by file name) on every adapter, through the
 * library API of core/catalog/catalog-layout.ts: the plan, one transaction, models intact
 * afterwards, a migration failing half-way leaving the catalog as it was, a newer layout
 * refused, and the automatic upgrade on first use.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLocationHost, openLocationSession, parseLocation } from '../../cli/catalog/location.js';
import { CATALOG_VERSION, applyCatalogUpgrade, planCatalogUpgrade, readCatalogVersion } from '../../core/catalog/catalog-layout.js';
import type { ModelSqlError } from '../../core/errors.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import {
  FIXTURE_MODEL_NAMES,
  LAYOUT_FIXTURES,
  catalogSnapshot,
  catalogStructure,
  layoutDatabase,
  locationOf,
  withHost,
  withSession,
} from '../support/catalog-layouts.js';
import { expectSqlError } from '../support/expect-error.js';

const CURRENT = LAYOUT_FIXTURES[LAYOUT_FIXTURES.length - 1]!;
const OLDER = LAYOUT_FIXTURES.filter((n) => n < CATALOG_VERSION);

/** Layouts `from + 1` up to the current one. */
const after = (from: number): number[] => Array.from({ length: CATALOG_VERSION - from }, (_, i) => from + 1 + i);

/** Every fixture model as model SQL shows it: SHOW MODELS, and per version SHOW CREATE MODEL and DESCRIBE MODEL EXTENDED. */
async function modelsAsShown(db: Session): Promise<string> {
  const shown: unknown[] = [(await db.sql('SHOW MODELS FROM shop')).rows];
  for (const name of FIXTURE_MODEL_NAMES) {
    const versions = await db.sql(`SHOW MODEL VERSIONS shop.${name}`);
    shown.push(versions.rows);
    for (const [version] of versions.rows) {
      shown.push((await db.sql(`SHOW CREATE MODEL shop.${name}$${String(version)}`)).rows);
      shown.push((await db.sql(`DESCRIBE MODEL EXTENDED shop.${name}$${String(version)}`)).rows);
    }
  }
  return JSON.stringify(shown, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** One prediction of a model on one row of `input` (a SELECT), the named output column. */
async function predictOne(db: Session, model: string, input: string, args: string, column: string): Promise<number> {
  const r = await db.sql(`SELECT ${column} FROM ML_PREDICT(TABLE (${input}), MODEL ${model}, DESCRIPTOR(${args}))`);
  return Number(r.rows[0]![0]);
}

test('there is a fixture of every released layout', () => {
  expect(LAYOUT_FIXTURES).toEqual(after(0));
});

for (const adapter of ADAPTERS) {
  describe(`catalog upgrade on ${adapter.name}`, () => {
    let dir: string;
    const database = (layout?: number): Promise<string> => layoutDatabase(adapter, dir, layout);

    /** The current fixture as model SQL shows it, never upgraded; and the structure of a fresh catalog. */
    let reference: string;
    let fresh: unknown;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'modelsql-layouts-'));
      reference = await withSession(await database(CURRENT), modelsAsShown);
      fresh = await withHost(await database(), async (host) => catalogStructure(await catalogSnapshot(host)));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    describe.each(LAYOUT_FIXTURES)('from the layout-%i fixture', (layout) => {
      it('plans the migrations after it, changing nothing', async () => {
        await withHost(await database(layout), async (host) => {
          expect(await readCatalogVersion(host)).toBe(layout);
          const before = await catalogSnapshot(host);
          const plan = await planCatalogUpgrade(host);
          expect({ from: plan.from, to: plan.to, setup: plan.setup, versions: plan.migrations.map((m) => m.version) }).toEqual({
            from: layout,
            to: CATALOG_VERSION,
            setup: [],
            versions: after(layout),
          });
          for (const m of plan.migrations) expect(m.statements[m.statements.length - 1]).toMatch(new RegExp(`^INSERT INTO ml_catalog\\.schema_version VALUES \\(${m.version},`));
          expect(await catalogSnapshot(host)).toEqual(before);
        });
      });

      it('upgrades to the current layout, every model intact and usable', async () => {
        const location = await database(layout);
        await withHost(location, async (host) => {
          const before = await catalogSnapshot(host);
          await applyCatalogUpgrade(host, await planCatalogUpgrade(host));
          expect(await readCatalogVersion(host)).toBe(CATALOG_VERSION);
          const upgraded = await catalogSnapshot(host);
          // The layout of a catalog created by this modelsql, and every row kept.
          expect(catalogStructure(upgraded)).toEqual(fresh);
          for (const [table, { rows }] of Object.entries(before.tables)) {
            if (table !== 'schema_version') expect(upgraded.tables[table]!.rows.length).toBe(rows.length);
          }
          expect(upgraded.tables['artifacts']!.rows).toHaveLength(4);
        });
        await withSession(location, async (db) => {
          expect(await modelsAsShown(db)).toBe(reference);
          expect((await db.sql('SHOW MODELS FROM shop')).rows.map((r) => [r[0], r[2], r[4]])).toEqual([
            ['house_price', 'onnx', 1],
            ['price_model', 'internal', 1],
            ['reviewer', 'openai', 1],
          ]);
          expect(String((await db.sql('SHOW CREATE MODEL shop.reviewer')).rows[0]![0])).toContain("'api-key' = '${env:REVIEWER_API_KEY}'");
          // The imported ONNX model, and both versions of the trained one (v1 as SQL, v2 through its stored ONNX artifact).
          const house = 'SELECT CAST(1500 AS DOUBLE PRECISION) AS sqft, CAST(3 AS DOUBLE PRECISION) AS bedrooms, CAST(10 AS DOUBLE PRECISION) AS age';
          expect(await predictOne(db, 'shop.house_price', house, 'sqft, bedrooms, age', 'price')).toBeCloseTo(295000, 0);
          const row = "SELECT CAST(1000 AS DOUBLE PRECISION) AS sqft, CAST(5 AS DOUBLE PRECISION) AS age, 'north' AS city";
          expect(await predictOne(db, 'shop.price_model', row, 'sqft, age, city', 'predicted_price')).toBeCloseTo(127500, 0);
          const onnx = await predictOne(db, 'shop.price_model$2', row, 'sqft, age, city', 'predicted_price');
          expect(Math.abs(onnx - 127500) / 127500).toBeLessThan(0.01);
          // The upgraded layout takes writes: a literal key goes to model_secrets (layout 2).
          await db.sql("ALTER MODEL shop.reviewer SET ('api-key' = 'sk-literal')");
          expect(String((await db.sql('SHOW CREATE MODEL shop.reviewer')).rows[0]![0])).toContain("'api-key' = '******'");
          // Stored sealed (layout 4): the key nowhere in the catalog.
          const stored = (await db.sql('SELECT secret FROM ml_catalog.model_secrets')).rows;
          expect(stored).toEqual([[expect.stringMatching(/^modelsql-sealed:v1:/)]]);
          expect(JSON.stringify(stored)).not.toContain('sk-literal');
        });
      });

      it('upgrades automatically on first use', async () => {
        const location = await database(layout);
        await withSession(location, async (db) => {
          expect((await db.sql('SHOW MODELS FROM shop')).rows.map((r) => r[0])).toEqual([...FIXTURE_MODEL_NAMES]);
        });
        await withHost(location, async (host) => expect(await readCatalogVersion(host)).toBe(CATALOG_VERSION));
      });
    });

    describe.each(OLDER)('from the layout-%i fixture, failing half-way', (layout) => {
      it('leaves the catalog exactly as it was', async () => {
        await withHost(await database(layout), async (host) => {
          const before = await catalogSnapshot(host);
          const plan = await planCatalogUpgrade(host);
          // Every statement of every migration runs, then the last migration fails before recording itself.
          const last = plan.migrations.length - 1;
          const broken = {
            ...plan,
            migrations: plan.migrations.map((m, i) => (i < last ? m : { ...m, statements: [...m.statements.slice(0, -1), 'SELECT * FROM ml_catalog.no_such_table', ...m.statements.slice(-1)] })),
          };
          await expectSqlError(applyCatalogUpgrade(host, broken), '42P01', new RegExp(`^catalog migration to layout ${CATALOG_VERSION} failed: `));
          expect(await catalogSnapshot(host)).toEqual(before);
          expect(await readCatalogVersion(host)).toBe(layout);
          // The same plan, unbroken, still applies.
          await applyCatalogUpgrade(host, plan);
          expect(await readCatalogVersion(host)).toBe(CATALOG_VERSION);
          // Applied again, it is stale: refused, nothing run.
          const upgraded = await catalogSnapshot(host);
          await expectSqlError(applyCatalogUpgrade(host, plan), '40001', /changed while planning/);
          expect(await catalogSnapshot(host)).toEqual(upgraded);
        });
      });
    });

    // Several clients share a Postgres database; a DuckDB file has one writing process at a time.
    const concurrent = adapter.name === 'postgres' ? it.each(OLDER) : it.skip.each(OLDER);
    concurrent('serialises two upgrades of a layout-%i catalog at once: one applies, the other runs nothing', async (layout) => {
      const location = await database(layout);
      const [first, second] = [await openLocationHost(parseLocation(location)), await openLocationHost(parseLocation(location))];
      try {
        const plans = [await planCatalogUpgrade(first), await planCatalogUpgrade(second)];
        const results = await Promise.allSettled([applyCatalogUpgrade(first, plans[0]!), applyCatalogUpgrade(second, plans[1]!)]);
        expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
        const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!.reason as ModelSqlError;
        expect([failure.sqlstate, failure.message]).toEqual(['40001', expect.stringMatching(/changed while planning/)]);
      } finally {
        await first.close();
        await second.close();
      }
      await withHost(location, async (host) => {
        expect(await readCatalogVersion(host)).toBe(CATALOG_VERSION);
        expect(catalogStructure(await catalogSnapshot(host))).toEqual(fresh);
      });
      // Sessions that find the catalog old at once all upgrade it, or see it upgraded.
      const other = await database(layout);
      const sessions = await Promise.all([1, 2, 3].map(() => openLocationSession(parseLocation(other))));
      try {
        const shown = await Promise.all(sessions.map((db) => db.sql('SHOW MODELS FROM shop')));
        expect(shown.map((r) => r.rows.length)).toEqual([3, 3, 3]);
      } finally {
        await Promise.all(sessions.map((db) => db.close()));
      }
    });

    it('refuses a catalog of a newer layout and leaves it untouched', async () => {
      const location = await database(CURRENT);
      await withHost(location, async (host) => {
        await host.execute(`INSERT INTO ml_catalog.schema_version VALUES (${CATALOG_VERSION + 1}, CAST(now() AS TIMESTAMP))`);
        const before = await catalogSnapshot(host);
        await expectSqlError(planCatalogUpgrade(host), '55000', new RegExp(`layout version ${CATALOG_VERSION + 1}, newer than this modelsql understands \\(${CATALOG_VERSION}\\)`));
        expect(await catalogSnapshot(host)).toEqual(before);
      });
      await withSession(location, (db) => expectSqlError(db.sql('SHOW MODELS'), '55000', /newer/));
    });

    it('plans the whole catalog for a database with none, and creates it when applied', async () => {
      const { session, cliArgs } = await adapter.openShared(mkdtempSync(join(dir, 'empty-')));
      await session.close();
      await withHost(locationOf(cliArgs), async (host) => {
        const plan = await planCatalogUpgrade(host);
        expect({ from: plan.from, versions: plan.migrations.map((m) => m.version), setup: plan.setup.length }).toEqual({ from: 0, versions: after(0), setup: 2 });
        await applyCatalogUpgrade(host, plan);
        expect(catalogStructure(await catalogSnapshot(host))).toEqual(fresh);
      });
    });
  });
}
