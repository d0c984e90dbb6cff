/**
 * Model DDL on every adapter: CREATE (both option forms), versions, ALTER, DROP, SHOW,
 * DESCRIBE, TEMPORARY models, and that a failed statement leaves the catalog unchanged.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { CATALOG_VERSION } from '../../core/catalog/catalog-store.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { writeModelFiles, type ModelFiles } from '../support/model-files.js';

const files: ModelFiles = writeModelFiles();

const createLinear = (name = 'm', extra = '') =>
  `CREATE MODEL ${name} INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) ${extra} WITH ('provider' = 'onnx', 'path' = '${files.linear}')`;

/** Every row of every catalog table, to prove a failed statement changed nothing. */
async function catalogDump(db: Session): Promise<string> {
  const tables = ['models', 'model_versions', 'artifacts', 'training_metrics'];
  const parts: unknown[] = [];
  for (const t of tables) parts.push((await db.sql(`SELECT * FROM ml_catalog.${t} ORDER BY 1, 2, 3`)).rows);
  return JSON.stringify(parts, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

for (const adapter of ADAPTERS) {
  describe(`model DDL on ${adapter.name}`, () => {
    let db: Session;
    beforeEach(async () => {
      db = await adapter.open();
    });
    afterEach(async () => {
      await db.close();
    });

    it('creates a model with provider options and shows it', async () => {
      await db.sql(createLinear('price', "COMMENT 'linear'"));
      const shown = await db.sql('SHOW MODELS');
      expect(shown.columns.map((c) => c.name)).toEqual(['model_name', 'schema_name', 'provider', 'task', 'default_version', 'temporary', 'comment']);
      expect(shown.rows).toEqual([['price', adapter.schema, 'onnx', null, 1, false, 'linear']]);
    });

    it("accepts Flink's type/format/ONNX.path form", async () => {
      await db.sql(`CREATE MODEL f INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('type' = 'import', 'format' = 'ONNX', 'ONNX.path' = '${files.linear}')`);
      const d = await db.sql('DESCRIBE MODEL f');
      expect(d.rows.map((r) => [r[0], r[1], r[3]])).toEqual([
        ['a', 'DOUBLE', 'input'],
        ['b', 'DOUBLE', 'input'],
        ['y', 'DOUBLE', 'output'],
      ]);
    });

    it('derives INPUT and OUTPUT from the graph when both are omitted', async () => {
      await db.sql(`CREATE MODEL g WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
      const d = await db.sql('DESCRIBE MODEL g');
      expect(d.rows.map((r) => [r[0], r[3]])).toEqual([
        ['x0', 'input'],
        ['x1', 'input'],
        ['y', 'output'],
      ]);
    });

    it('refuses a duplicate CREATE, accepts IF NOT EXISTS, versions with OR REPLACE', async () => {
      await db.sql(createLinear());
      const before = await catalogDump(db);
      await expectSqlError(db.sql(createLinear()), '42710', /already exists/);
      expect(await catalogDump(db)).toBe(before);
      await db.sql(createLinear('IF NOT EXISTS m'));
      expect(await catalogDump(db)).toBe(before);
      await db.sql(createLinear('m', "COMMENT 'second'").replace('CREATE MODEL', 'CREATE OR REPLACE MODEL'));
      const versions = await db.sql('SHOW MODEL VERSIONS m');
      expect(versions.rows.map((r) => [r[0], r[1], r[4]])).toEqual([
        [1, false, null],
        [2, true, 'second'],
      ]);
      await db.sql("ALTER MODEL m SET ('default-version' = '1')");
      expect((await db.sql('SHOW MODELS')).rows[0]![4]).toBe(1);
      expect((await db.sql('DESCRIBE MODEL EXTENDED m$2')).rows.find((r) => r[0] === 'comment')?.[1]).toBe('second');
      await db.sql('DROP MODEL m$1');
      expect((await db.sql('SHOW MODEL VERSIONS m')).rows.map((r) => [r[0], r[1]])).toEqual([[2, true]]);
      await db.sql('DROP MODEL m');
      expect((await db.sql('SHOW MODELS')).rows).toEqual([]);
      await db.sql('DROP MODEL IF EXISTS m');
      await expectSqlError(db.sql('DROP MODEL m'), '42704', /does not exist/);
    });

    it('filters SHOW MODELS with LIKE and NOT LIKE, and by schema', async () => {
      // `side` sorts after both hosts' default schema (main, public): SHOW MODELS orders by schema, then name
      await db.sql('CREATE SCHEMA side');
      for (const name of ['price_a', 'price_b', 'churn']) await db.sql(createLinear(name));
      await db.sql(createLinear('side.elsewhere'));
      const names = async (sql: string) => (await db.sql(sql)).rows.map((r) => r[0]);
      expect(await names("SHOW MODELS LIKE 'price%'")).toEqual(['price_a', 'price_b']);
      expect(await names("SHOW MODELS NOT LIKE 'price%'")).toEqual(['churn', 'elsewhere']);
      expect(await names("SHOW MODELS LIKE 'price__'")).toEqual(['price_a', 'price_b']);
      expect(await names('SHOW MODELS FROM side')).toEqual(['elsewhere']);
      expect(await names(`SHOW MODELS IN ${adapter.schema} LIKE '%n'`)).toEqual(['churn']);
    });

    it('filters SHOW MODELS with ILIKE and NOT ILIKE, ignoring case', async () => {
      await db.sql('CREATE SCHEMA side');
      for (const name of ['price_a', '"Price_B"', 'churn']) await db.sql(createLinear(name));
      await db.sql(createLinear('side.elsewhere'));
      const names = async (sql: string) => (await db.sql(sql)).rows.map((r) => r[0]);
      expect(await names("SHOW MODELS LIKE 'price%'")).toEqual(['price_a']);
      expect(await names("SHOW MODELS ILIKE 'PRICE%'")).toEqual(['Price_B', 'price_a']);
      expect(await names("SHOW MODELS NOT ILIKE 'p%'")).toEqual(['churn', 'elsewhere']);
      expect(await names("SHOW MODELS FROM side ILIKE 'ELSE%'")).toEqual(['elsewhere']);
      await expectSqlError(db.sql('SHOW MODELS ILIKE price'), '42601', /ILIKE pattern/);
    });

    it('SHOW CREATE MODEL prints a statement that recreates the model', async () => {
      await db.sql(
        `CREATE MODEL "Odd Name" INPUT (a DOUBLE COMMENT 'first', b DOUBLE) OUTPUT (y DOUBLE COMMENT 'it''s y') COMMENT 'quote '' inside' WITH ('provider' = 'onnx', 'path' = '${files.linear}', 'task' = 'regression')`,
      );
      const first = String((await db.sql('SHOW CREATE MODEL "Odd Name"')).rows[0]![0]);
      await db.sql('DROP MODEL "Odd Name"');
      await db.sql(first);
      const second = String((await db.sql('SHOW CREATE MODEL "Odd Name"')).rows[0]![0]);
      expect(second).toBe(first);
      expect(first).toContain("'task' = 'regression'");
    });

    it('renames, resets and sets options', async () => {
      await db.sql(createLinear('m', '').replace("WITH (", "WITH ('task' = 'regression', "));
      await db.sql('ALTER MODEL m RENAME TO n');
      await expectSqlError(db.sql('DESCRIBE MODEL m'), '42704');
      await db.sql("ALTER MODEL n RESET ('task')");
      expect((await db.sql('SHOW MODELS')).rows[0]![3]).toBeNull();
      await db.sql("ALTER MODEL n SET ('task' = 'classification')");
      expect((await db.sql('SHOW MODELS')).rows[0]![3]).toBe('classification');
      await db.sql('ALTER MODEL IF EXISTS missing RENAME TO other');
      const before = await catalogDump(db);
      await expectSqlError(db.sql("ALTER MODEL n SET ('colour' = 'blue')"), '22023', /unknown option 'colour'.*known options: .*path/);
      await expectSqlError(db.sql("ALTER MODEL n SET ('path' = '/nonexistent/model.onnx')"), '58P01');
      await expectSqlError(db.sql("ALTER MODEL n SET ('default-version' = '7')"), '22023', /no version/);
      await expectSqlError(db.sql("ALTER MODEL n RESET ('provider')"), '22023');
      expect(await catalogDump(db)).toBe(before);
    });

    it('keeps TEMPORARY models in the session only, shadowing persistent ones', async () => {
      await db.sql(createLinear('t', "COMMENT 'persistent'"));
      await db.sql(createLinear('t', "COMMENT 'temporary'").replace('CREATE MODEL', 'CREATE TEMPORARY MODEL'));
      expect((await db.sql('SHOW MODELS')).rows.map((r) => [r[0], r[5], r[6]])).toEqual([['t', true, 'temporary']]);
      expect((await db.sql('SELECT count(*) FROM ml_catalog.models')).rows[0]![0]).toBe(1n);
      await db.sql('DROP TEMPORARY MODEL t');
      expect((await db.sql('SHOW MODELS')).rows.map((r) => [r[0], r[5], r[6]])).toEqual([['t', false, 'persistent']]);
    });

    it('rejects bad definitions before touching the catalog', async () => {
      await db.sql(createLinear('keep'));
      const before = await catalogDump(db);
      const bad: [string, string, RegExp][] = [
        [`CREATE MODEL x INPUT (a DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`, '42804', /input/i],
        [`CREATE MODEL x INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.corrupt}')`, '22P03', /ONNX/],
        [`CREATE MODEL x INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.dir}/missing.onnx')`, '58P01', /missing\.onnx/],
        [`CREATE MODEL x INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}', 'colour' = 'red')`, '22023', /known options/],
        [`CREATE MODEL x INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'tensorflow')`, '22023', /unknown provider/],
        [`CREATE MODEL x INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('path' = '${files.linear}')`, '22023', /provider/],
        [`CREATE MODEL x INPUT (a DOUBLE, b DOUBLE) OUTPUT (y STRING) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`, '42804', /.+/],
        [`CREATE MODEL nope.x INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`, '3F000', /nope/],
        [`CREATE MODEL x INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}', 'task' = 'guessing')`, '22023', /regression/],
        [`CREATE MODEL x WITH ()`, '42601', /.+/],
      ];
      for (const [sql, state, message] of bad) {
        await expectSqlError(db.sql(sql), state, message);
      }
      expect(await catalogDump(db)).toBe(before);
    });

    it('reports syntax errors with SQLSTATE, line and column', async () => {
      const error = await expectSqlError(db.sql('SELECT 1;\nCREATE MODEL m\n  INPUT (a DOUBLE) WITH (\'provider\' = \'onnx\')'), '42601');
      expect(error.position?.line).toBe(3);
    });
  });
}

describe('catalog persistence on DuckDB files', () => {
  it('keeps models across restarts and records schema_version', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'modelsql-db-')), 'models.duckdb');
    const first = await openDuckDB(path);
    await first.sql(createLinear('kept'));
    await first.sql(createLinear('gone').replace('CREATE MODEL', 'CREATE TEMPORARY MODEL'));
    await first.close();
    const second = await openDuckDB(path);
    expect((await second.sql('SHOW MODELS')).rows.map((r) => r[0])).toEqual(['kept']);
    expect((await second.sql('SELECT max(version) FROM ml_catalog.schema_version')).rows[0]![0]).toBe(CATALOG_VERSION);
    await second.close();
  });

  it('refuses a catalog written by a newer modelsql', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'modelsql-db-')), 'newer.duckdb');
    const first = await openDuckDB(path);
    await first.sql('SHOW MODELS');
    await first.sql('INSERT INTO ml_catalog.schema_version VALUES (99, now())');
    await first.close();
    const second = await openDuckDB(path);
    await expectSqlError(second.sql('SHOW MODELS'), '55000', /newer/);
    await second.close();
  });
});
