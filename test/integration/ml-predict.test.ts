/**
 * ML_PREDICT on every adapter, in every context of SPEC §1.2, checked against values
 * computed in the test.
 */
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { classifierExpected, linearExpected, writeModelFiles } from '../support/model-files.js';

const files = writeModelFiles();
const ROWS = 50;
const row = (i: number) => ({ id: i, a: i * 0.5, b: (i % 7) - 3 });

/** Relative closeness for float32 model arithmetic. */
function close(actual: unknown, expected: number): boolean {
  return typeof actual === 'number' && Math.abs(actual - expected) <= 1e-4 * Math.max(1, Math.abs(expected));
}

for (const adapter of ADAPTERS) {
  describe(`ML_PREDICT on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
      await db.sql(`CREATE TABLE t AS SELECT CAST(i AS BIGINT) AS id, CAST(i * 0.5 AS DOUBLE PRECISION) AS a, CAST((i % 7) - 3 AS DOUBLE PRECISION) AS b FROM generate_series(0, ${ROWS - 1}) AS r(i)`);
      await db.sql(`CREATE TABLE other AS SELECT CAST(i AS BIGINT) AS id, 'name ' || CAST(i AS VARCHAR) AS name FROM generate_series(0, ${ROWS - 1}) AS r(i)`);
      await db.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}', 'task' = 'regression')`);
      await db.sql(
        `CREATE MODEL cls INPUT (a DOUBLE, b DOUBLE) OUTPUT (label BIGINT, probabilities ARRAY<FLOAT>) WITH ('provider' = 'onnx', 'path' = '${files.classifier}', 'task' = 'classification')`,
      );
      await db.sql(`CREATE MODEL two INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.multiInput}')`);
    });
    afterAll(async () => {
      await db.close();
    });

    const leftovers = () => adapter.countTempTables(db);

    it('returns every input column then the OUTPUT columns, in input order', async () => {
      const r = await db.sql('SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))');
      expect(r.columns.map((c) => c.name)).toEqual(['id', 'a', 'b', 'y']);
      expect(r.rows).toHaveLength(ROWS);
      r.rows.forEach((values, i) => {
        const { id, a, b } = row(i);
        expect(values[0]).toBe(BigInt(id));
        expect(close(values[3], linearExpected(a, b))).toBe(true);
      });
      expect(await leftovers()).toBe(0n);
    });

    it('runs an ONNX-ML classifier with labels and probabilities', async () => {
      const r = await db.sql('SELECT id, label, probabilities FROM ML_PREDICT(TABLE t, MODEL cls, DESCRIPTOR(a, b)) ORDER BY id');
      r.rows.forEach((values, i) => {
        const { a, b } = row(i);
        const expected = classifierExpected(a, b);
        expect(values[1]).toBe(BigInt(expected.label));
        const probabilities = values[2] as number[];
        expect(probabilities).toHaveLength(3);
        probabilities.forEach((p, c) => expect(close(p, expected.probabilities[c]!)).toBe(true));
      });
    });

    it('feeds one tensor per column', async () => {
      const r = await db.sql('SELECT a, b, y FROM ML_PREDICT(TABLE t, MODEL two, DESCRIPTOR(a, b))');
      for (const [a, b, y] of r.rows) expect(close(y, 2 * (a as number) + (b as number))).toBe(true);
    });

    it('works in joins, CTEs, subqueries, INSERT ... SELECT and CREATE TABLE AS', async () => {
      const expectedSum = Array.from({ length: ROWS }, (_, i) => linearExpected(row(i).a, row(i).b)).reduce((x, y) => x + y, 0);
      const joined = await db.sql('SELECT o.name, p.y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b)) AS p JOIN other o ON o.id = p.id WHERE p.id = 4');
      expect(joined.rows).toHaveLength(1);
      expect(joined.rows[0]![0]).toBe('name 4');
      expect(close(joined.rows[0]![1], linearExpected(2, 1))).toBe(true);

      const cte = await db.sql('WITH p AS (SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))) SELECT sum(y) FROM p');
      expect(close(cte.rows[0]![0], expectedSum)).toBe(true);

      const sub = await db.sql('SELECT count(*) FROM (SELECT y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b)) WHERE y > 0) s');
      const positives = Array.from({ length: ROWS }, (_, i) => linearExpected(row(i).a, row(i).b)).filter((y) => y > 0).length;
      expect(sub.rows[0]![0]).toBe(BigInt(positives));

      await db.sql('CREATE TABLE sink (id BIGINT, y DOUBLE PRECISION)');
      await db.sql('INSERT INTO sink SELECT id, y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))');
      expect(close((await db.sql('SELECT sum(y) FROM sink')).rows[0]![0], expectedSum)).toBe(true);

      await db.sql('CREATE TABLE ctas AS SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))');
      expect((await db.sql('SELECT count(*) FROM ctas')).rows[0]![0]).toBe(BigInt(ROWS));
      expect(await leftovers()).toBe(0n);
    });

    it('runs several calls in one statement, nested calls, TABLE (subquery) and Flink forms', async () => {
      const both = await db.sql(
        'SELECT p.id, p.y, c.label FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b)) p JOIN TABLE(ML_PREDICT(TABLE t, MODEL cls, DESCRIPTOR(a, b))) c ON p.id = c.id ORDER BY p.id LIMIT 3',
      );
      expect(both.rows.map((r) => r[2])).toEqual([0, 1, 2].map((i) => BigInt(classifierExpected(row(i).a, row(i).b).label)));

      const nested = await db.sql(
        'SELECT id, y FROM ML_PREDICT(TABLE (SELECT id, a, y AS b FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b)) WHERE id < 5), MODEL lin, DESCRIPTOR(a, b)) ORDER BY id',
      );
      nested.rows.forEach(([id, y]) => {
        const { a, b } = row(Number(id));
        expect(close(y, linearExpected(a, linearExpected(a, b)))).toBe(true);
      });

      const named = await db.sql(
        "SELECT count(*) FROM ML_PREDICT(CONFIG => MAP['batch-size', '7'], ARGS => DESCRIPTOR(a, b), model => MODEL lin, INPUT => TABLE t)",
      );
      expect(named.rows[0]![0]).toBe(BigInt(ROWS));
    });

    it('suffixes an output name that clashes with an input column', async () => {
      await db.sql('CREATE TABLE clash AS SELECT a, b, 1 AS y, 2 AS y0 FROM t');
      const r = await db.sql('SELECT * FROM ML_PREDICT(TABLE clash, MODEL lin, DESCRIPTOR(a, b)) LIMIT 1');
      expect(r.columns.map((c) => c.name)).toEqual(['a', 'b', 'y', 'y0', 'y1']);
    });

    it('gives NULL outputs for rows with a NULL feature', async () => {
      const r = await db.sql('SELECT a, y FROM ML_PREDICT(TABLE (SELECT * FROM (VALUES (1.0, 2.0), (NULL, 1.0), (3.0, 1.0)) v(a, b)), MODEL lin, DESCRIPTOR(a, b))');
      expect(r.rows[1]).toEqual([null, null]);
      expect(close(r.rows[2]![1], linearExpected(3, 1))).toBe(true);
    });

    it('uses a version named with $N and the default after a rollback', async () => {
      await db.sql(`CREATE MODEL ver INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
      await db.sql(`CREATE OR REPLACE MODEL ver INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.multiInput}')`);
      const v1 = await db.sql('SELECT y FROM ML_PREDICT(TABLE t, MODEL ver$1, DESCRIPTOR(a, b)) WHERE id = 3');
      const v2 = await db.sql('SELECT y FROM ML_PREDICT(TABLE t, MODEL ver, DESCRIPTOR(a, b)) WHERE id = 3');
      expect(close(v1.rows[0]![0], linearExpected(1.5, 0))).toBe(true);
      expect(close(v2.rows[0]![0], 2 * 1.5 + 0)).toBe(true);
    });

    it('fails clearly, before inference, on bad calls', async () => {
      await expectSqlError(db.sql('SELECT * FROM ML_PREDICT(TABLE t, MODEL nope, DESCRIPTOR(a))'), '42704', /nope/);
      await expectSqlError(db.sql('SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a))'), '42804', /1 column.*2 inputs/);
      await expectSqlError(db.sql('SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(zz))'), '42703', /zz/);
      await expectSqlError(db.sql('SELECT * FROM ML_PREDICT(TABLE other, MODEL lin, DESCRIPTOR(name, id))'), '42804', /name/);
      await expectSqlError(db.sql("SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b), MAP['colour', 'red'])"), '22023', /batch-size/);
      await expectSqlError(db.sql('SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, TABLE t)'), '42601');
      await expectSqlError(db.sql('CREATE VIEW v AS SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))'), '0A000', /view/);
      await expectSqlError(db.sql('PREPARE p AS SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))'), '0A000', /prepared statement/);
      if (adapter.name === 'duckdb') await expectSqlError(db.sql('CREATE MACRO m() AS TABLE SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))'), '0A000', /macro/);
      expect(await leftovers()).toBe(0n);
    });

    it('removes its temporary relations when the model file vanished', async () => {
      const { copyFileSync, rmSync } = await import('node:fs');
      const path = `${files.dir}/vanishing.onnx`;
      copyFileSync(files.linear, path);
      await db.sql(`CREATE MODEL vanish INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${path}')`);
      rmSync(path);
      await expectSqlError(db.sql('SELECT * FROM ML_PREDICT(TABLE t, MODEL vanish, DESCRIPTOR(a, b))'), '58P01');
      expect(await leftovers()).toBe(0n);
    });

    it('records a lineage row per prediction run', async () => {
      const before = (await db.sql("SELECT count(*) FROM ml_catalog.prediction_runs WHERE model_name = 'lin'")).rows[0]![0] as bigint;
      await db.sql('SELECT count(*) FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))');
      const after = await db.sql("SELECT count(*), max(row_count) FROM ml_catalog.prediction_runs WHERE model_name = 'lin'");
      expect(after.rows[0]).toEqual([before + 1n, BigInt(ROWS)]);
    });
  });
}
