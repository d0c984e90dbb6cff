/**
 * Model function names: `ml_predict_<model>` within 63 bytes (Postgres truncates longer
 * identifiers), a hash suffix past that, so that two long model names sharing their first
 * 52 characters get two functions, not one that the later model silently replaces.
 */
import { modelFunctionName } from '../../core/sql/format.js';
import type { Session } from '../../core/session/session.js';
import type { ModelSqlError } from '../../core/errors.js';
import { ADAPTERS } from '../support/adapters.js';

describe('modelFunctionName', () => {
  it('keeps short names and hashes long ones into 63 bytes, at a character boundary', () => {
    expect(modelFunctionName('price')).toBe('ml_predict_price');
    expect(modelFunctionName('a'.repeat(52))).toBe(`ml_predict_${'a'.repeat(52)}`);
    const long = [modelFunctionName(`${'a'.repeat(52)}x`), modelFunctionName(`${'a'.repeat(52)}y`), modelFunctionName(`${'é'.repeat(40)}`)];
    for (const name of long) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(long[0]).toMatch(/^ml_predict_a{43}_[0-9a-f]{8}$/);
    expect(long[0]).not.toBe(long[1]);
    expect(long[2]).toMatch(/^ml_predict_é{21}_[0-9a-f]{8}$/);
    expect(modelFunctionName(`${'a'.repeat(52)}x`)).toBe(long[0]); // deterministic
  });
});

for (const adapter of ADAPTERS) {
  describe(`model functions of long model names on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
      await db.sql('CREATE TABLE t AS SELECT CAST(i AS DOUBLE PRECISION) AS x, CAST(i * 2 AS DOUBLE PRECISION) AS y FROM generate_series(1, 20) AS g(i)');
    });
    afterAll(async () => {
      await db.close();
    });

    it('two models sharing 52 leading characters get two functions, each answering for its own model', async () => {
      const stem = 'm'.repeat(52);
      await db.sql(`CREATE MODEL ${stem}_one WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t`);
      await db.sql(`CREATE MODEL ${stem}_two WITH ('algorithm' = 'linear_regression', 'label' = 'x') AS SELECT y, x FROM t`);
      const one = modelFunctionName(`${stem}_one`);
      const two = modelFunctionName(`${stem}_two`);
      expect(await adapter.countFunctions(db, one)).toBe(1);
      expect(await adapter.countFunctions(db, two)).toBe(1);
      const r = await db.sql(`SELECT round(${one}(10)), round(${two}(10))`);
      expect(r.rows[0]!.map(Number)).toEqual([20, 5]);
    });

    it('two models whose names differ only in case: their own functions on Postgres; on DuckDB, whose function names ignore case, the second is 42710 and the first keeps its function', async () => {
      await db.sql(`CREATE MODEL casey WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t`);
      const second = db.sql(`CREATE MODEL "CASEY" WITH ('algorithm' = 'linear_regression', 'label' = 'x') AS SELECT y, x FROM t`).then(
        () => undefined,
        (e: ModelSqlError) => e,
      );
      if (adapter.name === 'duckdb') {
        expect(await second).toMatchObject({ sqlstate: '42710', message: expect.stringContaining('function memory.main.ml_predict_casey already exists and was not created by modelsql for model main."CASEY"') });
        expect((await db.sql(`SHOW MODELS LIKE 'CASEY'`)).rows).toEqual([]);
        // An ONNX or remote model of that name has no function: it is created.
        await db.sql(`CREATE MODEL "CASEY" INPUT (x DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'm', 'api-key' = 'k')`);
        await db.sql('DROP MODEL "CASEY"');
        // A macro of a user's own of the function's name is not replaced either.
        await db.sql('CREATE MACRO ml_predict_mine(a) AS a + 1000');
        const mine = await db.sql(`CREATE MODEL mine WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t`).then(() => undefined, (e: ModelSqlError) => e);
        expect(mine).toMatchObject({ sqlstate: '42710' });
        expect((await db.sql('SELECT ml_predict_mine(1)')).rows.map((r) => r.map(Number))).toEqual([[1001]]);
      } else {
        expect(await second).toBeUndefined();
        expect(Number((await db.sql('SELECT round("ml_predict_CASEY"(10))')).rows[0]![0])).toBe(5);
        await db.sql('DROP MODEL "CASEY"');
      }
      expect(Number((await db.sql('SELECT round(ml_predict_casey(10))')).rows[0]![0])).toBe(20);
      // Replacing the model keeps its own function, whatever the host.
      await db.sql(`CREATE OR REPLACE MODEL casey WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t`);
      expect(Number((await db.sql('SELECT round(ml_predict_casey(10))')).rows[0]![0])).toBe(20);
    });

    if (adapter.name === 'postgres') {
      it('a function of the model function’s name that modelsql did not create: 42710 naming it, catalog and function unchanged', async () => {
        // Same parameter types (would be replaced) and other types (would stand beside the model's as an overload).
        await db.sql(`CREATE FUNCTION public.ml_predict_planted(x double precision) RETURNS double precision LANGUAGE sql AS 'SELECT 42.0'`);
        await db.sql(`CREATE FUNCTION public.ml_predict_overload(x text) RETURNS double precision LANGUAGE sql AS 'SELECT 42.0'`);
        for (const [name, other] of [['planted', 'public.ml_predict_planted(double precision)'], ['overload', 'public.ml_predict_overload(text)']] as const) {
          const error = await db.sql(`CREATE MODEL ${name} WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t`).then(
            () => undefined,
            (e: ModelSqlError) => e,
          );
          expect(error).toMatchObject({ sqlstate: '42710', message: expect.stringContaining(`function ${other} already exists and was not created by modelsql for model public.${name}`) });
          expect((await db.sql(`SHOW MODELS LIKE '${name}'`)).rows).toEqual([]);
          expect(await adapter.countFunctions(db, `ml_predict_${name}`)).toBe(1);
        }
        expect((await db.sql('SELECT public.ml_predict_planted(1)')).rows).toEqual([[42]]);
        // modelsql's own function is replaced by a new version, also of other parameter types.
        await db.sql(`CREATE MODEL own WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t`);
        await db.sql(`CREATE OR REPLACE MODEL own WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t`);
        await db.sql(`CREATE OR REPLACE MODEL own WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT CAST(x AS INTEGER) AS x, y FROM t`);
        expect(await adapter.countFunctions(db, 'ml_predict_own')).toBe(1);
      });
    }
  });
}
