/**
 * CREATE MODEL ... AS SELECT with linear_regression: coefficients against the closed form
 * computed here, the compiled SQL / the host function (DuckDB macro, Postgres SQL function) /
 * the ONNX artifact agreeing, the
 * host function kept in step with DROP / RENAME / versions, and bad input leaving the
 * catalog unchanged, on every host.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { catalogDump, close, gaussSolve, meanStd, runCli, runOnnxFile, storedSpec } from '../core/training/training-helpers.js';

const N = 240;
const CITIES = ['berlin', 'lyon', 'oslo'];
/** A deterministic data set: price depends on sqft, bedrooms, city, plus noise; some NULL ages. */
const rows = Array.from({ length: N }, (_, i) => {
  const sqft = 400 + ((i * 37) % 2600) + (i % 3) * 0.25;
  const bedrooms = 1 + ((i * 7) % 5);
  const age = i % 11 === 0 ? null : (i * 13) % 60;
  const city = CITIES[(i * 5) % 3]!;
  const noise = Math.sin(i * 1.7) * 9000;
  const price = 120 * sqft + 8000 * bedrooms - 300 * (age ?? 30) + (city === 'oslo' ? 40000 : city === 'lyon' ? -15000 : 0) + noise;
  return { id: i, sqft, bedrooms, age, city, price };
});

/** Independent ridge on standardized features (population std, NULL → mean), intercept unpenalized. */
function referenceRidge(columns: readonly (readonly (number | null)[])[], y: readonly number[], l2: number): number[] {
  const encoded = columns.map((c) => {
    const { mean, std } = meanStd(c);
    return c.map((v) => ((v ?? mean) - mean) / std);
  });
  const n = y.length;
  const p = encoded.length + 1;
  const x = (r: number, j: number) => (j === 0 ? 1 : encoded[j - 1]![r]!);
  const a = Array.from({ length: p }, (_, i) => Array.from({ length: p }, (_, j) => {
    let s = 0;
    for (let r = 0; r < n; r++) s += x(r, i) * x(r, j);
    return s / n + (i === j && i > 0 ? l2 : 0);
  }));
  const b = Array.from({ length: p }, (_, i) => {
    let s = 0;
    for (let r = 0; r < n; r++) s += x(r, i) * y[r]!;
    return s / n;
  });
  return gaussSolve(a, b);
}

/** Creates the `houses` table (the same column types on every host). */
async function loadHouses(db: Session): Promise<void> {
  const values = rows.map((r) => `(${r.id}, ${r.sqft}, ${r.bedrooms}, ${r.age ?? 'NULL'}, '${r.city}', ${r.price})`).join(', ');
  await db.sql(
    `CREATE TABLE houses AS SELECT CAST(id AS INTEGER) AS id, CAST(sqft AS DOUBLE PRECISION) AS sqft, CAST(bedrooms AS INTEGER) AS bedrooms, CAST(age AS DOUBLE PRECISION) AS age, CAST(city AS VARCHAR) AS city, CAST(price AS DOUBLE PRECISION) AS price FROM (VALUES ${values}) AS v(id, sqft, bedrooms, age, city, price)`,
  );
}

const TRAINING_ADAPTERS = ADAPTERS;

for (const adapter of TRAINING_ADAPTERS) {
  describe(`linear_regression training on ${adapter.name}`, () => {
    let db: Session;
    beforeEach(async () => {
      db = await adapter.open();
      await loadHouses(db);
    });
    afterEach(async () => {
      await db.close();
    });

    it.each([0, 0.3])('matches the closed-form ridge solution (l2 = %s), NULLs imputed with the mean', async (l2) => {
      await db.sql(`CREATE MODEL m WITH ('algorithm' = 'linear_regression', 'label' = 'price', 'l2' = '${l2}') AS SELECT sqft, bedrooms, age, price FROM houses`);
      const spec = await storedSpec(db, 'm');
      const expected = referenceRidge([rows.map((r) => r.sqft), rows.map((r) => r.bedrooms), rows.map((r) => r.age)], rows.map((r) => r.price), l2);
      const actual = [spec.parameters.intercept, ...spec.parameters.weights];
      expect(actual).toHaveLength(expected.length);
      actual.forEach((v: number, i: number) => expect(Math.abs(v - expected[i]!) / Math.abs(expected[i]!)).toBeLessThan(1e-6));
    });

    it('one-hot encodes STRING features (full dummies, ridge) as the closed form does', async () => {
      await db.sql(`CREATE MODEL m WITH ('algorithm' = 'linear_regression', 'label' = 'price', 'l2' = '0.1') AS SELECT sqft, city, price FROM houses`);
      const spec = await storedSpec(db, 'm');
      expect(spec.features[1]).toMatchObject({ kind: 'categorical', categories: CITIES });
      // A 0/1 column has mean 0 and std 1 in "standardized" terms only if not standardized: dummies enter as they are.
      const sqft = meanStd(rows.map((r) => r.sqft));
      const columns = [rows.map((r) => (r.sqft - sqft.mean) / sqft.std), ...CITIES.map((c) => rows.map((r) => (r.city === c ? 1 : 0)))];
      const n = N;
      const p = columns.length + 1;
      const x = (r: number, j: number) => (j === 0 ? 1 : columns[j - 1]![r]!);
      const a = Array.from({ length: p }, (_, i) => Array.from({ length: p }, (_, j) => rows.reduce((s, _r, k) => s + x(k, i) * x(k, j), 0) / n + (i === j && i > 0 ? 0.1 : 0)));
      const b = Array.from({ length: p }, (_, i) => rows.reduce((s, r, k) => s + x(k, i) * r.price, 0) / n);
      const expected = gaussSolve(a, b);
      [spec.parameters.intercept, ...spec.parameters.weights].forEach((v: number, i: number) => expect(close(v, expected[i]!, 1e-6)).toBe(true));
    });

    it('gives the same predictions by compiled SQL, the host function, the ONNX runtime path and the exported .onnx file', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'modelsql-train-'));
      const shared = await adapter.openShared(dir);
      const shop = shared.session;
      await loadHouses(shop);
      await shop.sql(`CREATE MODEL price_model WITH ('task' = 'regression', 'algorithm' = 'linear_regression', 'label' = 'price', 'l2' = '0.1', 'test-split' = '0.2', 'seed' = '42') AS SELECT sqft, bedrooms, age, city, price FROM houses`);
      await shop.sql(`INSERT INTO houses VALUES (1000, 900.5, 3, NULL, 'paris', 0), (1001, 1500, 2, 12, NULL, 0)`); // unseen category, NULL age, NULL city
      const compiled = await shop.sql('SELECT id, predicted_price FROM ML_PREDICT(TABLE houses, MODEL price_model, DESCRIPTOR(sqft, bedrooms, age, city)) ORDER BY id');
      const macro = await shop.sql('SELECT id, ml_predict_price_model(sqft, bedrooms, age, city) FROM houses ORDER BY id');
      const inputs = await shop.sql('SELECT sqft, bedrooms, age, city FROM houses ORDER BY id');
      expect(compiled.rows).toHaveLength(N + 2);
      compiled.rows.forEach((row, i) => expect(close(macro.rows[i]![1] as number, row[1] as number, 1e-9)).toBe(true));
      if (adapter.name === 'postgres') {
        // A plain LANGUAGE sql IMMUTABLE function in the model's schema, callable by any client.
        const fn = await shop.sql(
          "SELECT n.nspname, l.lanname, p.provolatile, pg_get_function_identity_arguments(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang WHERE p.proname = 'ml_predict_price_model'",
        );
        expect(fn.rows).toEqual([['public', 'sql', 'i', 'sqft double precision, bedrooms integer, age double precision, city text']]);
      }

      await shop.sql(`ALTER MODEL price_model SET ('runtime' = 'onnx')`);
      const viaOnnx = await shop.sql('SELECT id, predicted_price FROM ML_PREDICT(TABLE houses, MODEL price_model, DESCRIPTOR(sqft, bedrooms, age, city)) ORDER BY id');
      viaOnnx.rows.forEach((row, i) => {
        const hasNull = inputs.rows[i]!.some((v) => v === null);
        if (hasNull) expect(row[1]).toBeNull(); // the ONNX runtime path gives NULL for a row with a NULL input
        else expect(close(row[1] as number, compiled.rows[i]![1] as number, 1e-5)).toBe(true);
      });
      await shop.close();

      const out = join(dir, 'price_model.onnx');
      const cli = runCli(['catalog', 'export-onnx', 'price_model', ...shared.cliArgs, '--out', out]);
      expect(cli.stderr).toContain('wrote');
      expect(cli.status).toBe(0);
      // Standalone onnxruntime: NaN for a NULL number is imputed; a STRING NULL (given as '') is an unseen category.
      const result = runOnnxFile(out, {
        sqft: { type: 'float64', data: inputs.rows.map((r) => r[0] as number) },
        bedrooms: { type: 'float64', data: inputs.rows.map((r) => Number(r[1])) },
        age: { type: 'float64', data: inputs.rows.map((r) => r[2] as number | null) },
        city: { type: 'string', data: inputs.rows.map((r) => (r[3] as string | null) ?? 'berlin') },
      });
      result.predicted_price!.forEach((v, i) => {
        const cityWasNull = inputs.rows[i]![3] === null;
        if (!cityWasNull) expect(close(v as number, compiled.rows[i]![1] as number, 1e-5)).toBe(true);
      });
    });

    it('stores metrics, infers INPUT/OUTPUT, splits deterministically, and SHOW CREATE recreates the model', async () => {
      const create = `CREATE MODEL pm WITH ('algorithm' = 'linear_regression', 'label' = 'price', 'test-split' = '0.25', 'seed' = '7') AS SELECT sqft, bedrooms, city, price FROM houses`;
      await db.sql(create);
      const described = await db.sql('DESCRIBE MODEL EXTENDED pm');
      const byKind = (kind: string) => described.rows.filter((r) => r[3] === kind);
      expect(byKind('input').map((r) => [r[0], r[1]])).toEqual([['sqft', 'DOUBLE'], ['bedrooms', 'INT'], ['city', 'STRING']]);
      expect(byKind('output').map((r) => [r[0], r[1]])).toEqual([['predicted_price', 'DOUBLE']]);
      const metrics = Object.fromEntries(byKind('metric').map((r) => [r[0], Number(r[1])]));
      expect(metrics.train_rows! + metrics.test_rows!).toBe(N);
      expect(metrics.test_rows!).toBeGreaterThan(N * 0.15);
      expect(metrics.test_rows!).toBeLessThan(N * 0.35);
      expect(close(metrics.RMSE! ** 2, metrics.MSE!, 1e-9)).toBe(true);
      expect(metrics.R2!).toBeGreaterThan(0.9);
      expect(metrics.train_R2!).toBeGreaterThan(0.9);
      // The same seed gives the same split and metrics.
      const shown = (await db.sql('SHOW CREATE MODEL pm')).rows[0]![0] as string;
      expect(shown).toContain('AS SELECT sqft, bedrooms, city, price FROM houses');
      expect(shown).not.toContain('INPUT');
      await db.sql('DROP MODEL pm');
      expect(await adapter.countFunctions(db, 'ml_predict_pm')).toBe(0);
      await db.sql(shown);
      const again = Object.fromEntries((await db.sql('DESCRIBE MODEL EXTENDED pm')).rows.filter((r) => r[3] === 'metric').map((r) => [r[0], Number(r[1])]));
      expect(again).toEqual(metrics);
      expect(await adapter.countFunctions(db, 'ml_predict_pm')).toBe(1);
    });

    it('keeps ml_predict_<model> in step with versions, RENAME and DROP', async () => {
      await db.sql(`CREATE MODEL v WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, price FROM houses`);
      const one = (await db.sql('SELECT ml_predict_v(1000.0)')).rows[0]![0] as number;
      await db.sql(`CREATE OR REPLACE MODEL v WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, price FROM houses WHERE city = 'oslo'`);
      const two = (await db.sql('SELECT ml_predict_v(1000.0)')).rows[0]![0] as number;
      expect(two).not.toBeCloseTo(one, 3);
      await db.sql(`ALTER MODEL v SET ('default-version' = '1')`);
      expect((await db.sql('SELECT ml_predict_v(1000.0)')).rows[0]![0]).toBeCloseTo(one, 9);
      await db.sql('DROP MODEL v$1');
      expect((await db.sql('SELECT ml_predict_v(1000.0)')).rows[0]![0]).toBeCloseTo(two, 9);
      await db.sql('ALTER MODEL v RENAME TO w');
      expect(await adapter.countFunctions(db, 'ml_predict_v')).toBe(0);
      expect((await db.sql('SELECT ml_predict_w(1000.0)')).rows[0]![0]).toBeCloseTo(two, 9);
      await db.sql('DROP MODEL w');
      expect(await adapter.countFunctions(db, 'ml_predict_w')).toBe(0);
      // A temporary trained model predicts too and registers a temporary macro.
      // (Postgres keeps it in pg_temp, which function calls never search: name the schema.)
      await db.sql(`CREATE TEMPORARY MODEL t WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, price FROM houses`);
      const temporary = adapter.name === 'postgres' ? 'pg_temp.ml_predict_t' : 'ml_predict_t';
      expect((await db.sql(`SELECT ${temporary}(1000.0)`)).rows[0]![0]).toBeCloseTo(one, 9);
      const p = await db.sql('SELECT predicted_price FROM ML_PREDICT(TABLE (SELECT 1000.0 AS s), MODEL t, DESCRIPTOR(s))');
      expect(p.rows[0]![0]).toBeCloseTo(one, 9);
      await db.sql('DROP TEMPORARY MODEL t');
      expect(await adapter.countFunctions(db, 'ml_predict_t')).toBe(0);
      // A new version whose INPUT types differ replaces the function (no stale Postgres overload).
      await db.sql(`CREATE MODEL o WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, price FROM houses`);
      await db.sql(`CREATE OR REPLACE MODEL o WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT CAST(sqft AS INTEGER) AS sqft, CAST(bedrooms AS BIGINT) AS rooms, price FROM houses`);
      expect(await adapter.countFunctions(db, 'ml_predict_o')).toBe(1);
      const viaFunction = (await db.sql('SELECT ml_predict_o(1000, 3)')).rows[0]![0] as number;
      const viaPredict = (await db.sql('SELECT predicted_price FROM ML_PREDICT(TABLE (SELECT 1000 AS sqft, 3 AS rooms), MODEL o, DESCRIPTOR(sqft, rooms))')).rows[0]![0] as number;
      expect(close(viaFunction, viaPredict, 1e-9)).toBe(true);
      await db.sql(`ALTER MODEL o SET ('default-version' = '1')`);
      expect(await adapter.countFunctions(db, 'ml_predict_o')).toBe(1);
      expect((await db.sql('SELECT ml_predict_o(1000.0)')).rows[0]![0]).toBeCloseTo(one, 9);
      await db.sql('DROP MODEL o');
      expect(await adapter.countFunctions(db, 'ml_predict_o')).toBe(0);
    });

    it.each([
      ['no label', `WITH ('algorithm' = 'linear_regression') AS SELECT sqft, price FROM houses`, '22023', /needs 'label'/],
      ['a label not in the query', `WITH ('algorithm' = 'linear_regression', 'label' = 'cost') AS SELECT sqft, price FROM houses`, '42703', /label column "cost" is not a column/],
      ['zero rows', `WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, price FROM houses WHERE false`, '22000', /no rows/],
      ['a constant feature', `WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, 5 AS k, price FROM houses`, '22000', /"k" is constant/],
      ['an all-NULL feature', `WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, CAST(NULL AS DOUBLE PRECISION) AS z, price FROM houses`, '22000', /"z" is NULL in every/],
      ['a constant STRING feature', `WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, 'x' AS s, price FROM houses`, '22000', /"s" is constant/],
      ['an unknown algorithm', `WITH ('algorithm' = 'svm', 'label' = 'price') AS SELECT sqft, price FROM houses`, '22023', /unknown algorithm 'svm'/],
      ['an unknown option', `WITH ('algorithm' = 'linear_regression', 'label' = 'price', 'depth' = '3') AS SELECT sqft, price FROM houses`, '22023', /unknown option 'depth'/],
      ['an option of another algorithm', `WITH ('algorithm' = 'linear_regression', 'label' = 'price', 'k' = '3') AS SELECT sqft, price FROM houses`, '22023', /'k' does not apply/],
      ['a bad option value', `WITH ('algorithm' = 'linear_regression', 'label' = 'price', 'test-split' = '1.5') AS SELECT sqft, price FROM houses`, '22023', /'test-split' must be/],
      ['a non-numeric label for regression', `WITH ('algorithm' = 'linear_regression', 'label' = 'city') AS SELECT sqft, city FROM houses`, '42804', /regression label must be numeric/],
      ['a provider with AS', `WITH ('provider' = 'onnx', 'path' = 'x.onnx') AS SELECT sqft, price FROM houses`, '22023', /give 'algorithm'/],
      ['an algorithm without AS', `WITH ('algorithm' = 'linear_regression', 'label' = 'price')`, '22023', /AS SELECT/],
      ['a broken query', `WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT nope FROM houses`, '42703', /training query/],
      ['a feature of an unsupported type', `WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, DATE '2020-01-01' AS d, price FROM houses`, '42804', /"d" has type DATE/],
    ])('rejects %s before storing anything', async (_what, rest, sqlstate, message) => {
      await db.sql(`CREATE MODEL keep WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, price FROM houses`);
      const before = await catalogDump(db);
      await expectSqlError(db.sql(`CREATE MODEL bad ${rest}`), sqlstate, message);
      await expectSqlError(db.sql(`CREATE OR REPLACE MODEL keep ${rest}`), sqlstate, message);
      expect(await catalogDump(db)).toBe(before);
      expect(await adapter.countFunctions(db, 'ml_predict_bad')).toBe(0);
    });
  });
}
