/**
 * CREATE MODEL ... AS on hostile data, on every host: values DOUBLE cannot standardize
 * (NaN, ±Infinity, magnitudes whose squares overflow), two columns of one name, and a
 * cancel or a statement timeout arriving between training's queries. Each failure is a
 * SQLSTATE error pointing at the training query, and leaves the catalog, the host
 * functions and the session's temporary tables as they were.
 */
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { catalogDump } from '../core/training/training-helpers.js';

for (const adapter of ADAPTERS) {
  describe(`training on hostile data on ${adapter.name}`, () => {
    let db: Session;
    beforeEach(async () => {
      db = await adapter.open();
      await db.sql(
        `CREATE TABLE t AS SELECT CAST(i AS DOUBLE PRECISION) AS x, CAST(i % 4 AS DOUBLE PRECISION) AS z, CAST(i AS DOUBLE PRECISION) * 2 + 1 AS y, i % 2 = 0 AS even FROM generate_series(1, 12) AS g(i)`,
      );
      await db.sql(`CREATE MODEL keep WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t`);
    });
    afterEach(async () => {
      await db.close();
    });

    /** Expects `statement` to fail with `sqlstate` and `message` at the training query, changing nothing. */
    async function expectRefused(statement: string, sqlstate: string, message: RegExp): Promise<void> {
      const before = await catalogDump(db);
      const error = await expectSqlError(db.sql(statement), sqlstate, message);
      expect(error.position?.offset).toBe(statement.indexOf('SELECT'));
      expect(await catalogDump(db)).toBe(before);
      expect(await adapter.countFunctions(db, 'ml_predict_bad')).toBe(0);
      expect(await adapter.countTempTables(db)).toBe(0n);
    }

    const nonFinite = ["CAST('NaN' AS DOUBLE PRECISION)", "CAST('Infinity' AS DOUBLE PRECISION)", "CAST('-Infinity' AS DOUBLE PRECISION)"];
    const algorithms = [
      `'algorithm' = 'linear_regression', 'label' = 'y'`,
      `'algorithm' = 'logistic_regression', 'label' = 'even'`,
      `'algorithm' = 'kmeans', 'k' = '2'`,
      `'algorithm' = 'decision_tree', 'label' = 'y'`,
    ];

    it.each(nonFinite.flatMap((value) => algorithms.map((options) => [value, options] as const)))('refuses a feature that is %s in one row (%s) with 22000', async (value, options) => {
      const kmeans = options.includes('kmeans');
      await expectRefused(
        `CREATE MODEL bad WITH (${options}) AS SELECT CASE WHEN x = 5 THEN ${value} ELSE x END AS x, z${kmeans ? '' : options.includes('even') ? ', even' : ', y'} FROM t`,
        '22000',
        /^feature column "x" is NaN or infinite in 1 row of the training query/,
      );
    });

    it.each(nonFinite)('refuses a regression or numeric classification label that is %s with 22000 (not an internal error)', async (value) => {
      await expectRefused(`CREATE MODEL bad WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, z, CASE WHEN x = 5 THEN ${value} ELSE y END AS y FROM t`, '22000', /^the label "y" is NaN or infinite in 1 row/);
      await expectRefused(
        `CREATE MODEL bad WITH ('algorithm' = 'decision_tree', 'label' = 'c', 'task' = 'classification') AS SELECT x, z, CASE WHEN x = 5 THEN ${value} ELSE z END AS c FROM t`,
        '22000',
        /^the label "c" is NaN or infinite in 1 row/,
      );
    });

    it('refuses values whose squares overflow DOUBLE with 22003 at the training query', async () => {
      await expectRefused(`CREATE MODEL bad WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x * 1e300 AS x, y FROM t`, '22003', /^a number overflowed DOUBLE while training/);
      await expectRefused(`CREATE MODEL bad WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y * 1e300 AS y FROM t`, '22003', /^a number overflowed DOUBLE while training/);
    });

    it.each([
      ['the label twice', 'SELECT x, y, x AS y FROM t'],
      ['a feature twice', 'SELECT x, z AS x, y FROM t'],
      ['a feature twice in another case', 'SELECT x, z AS "X", y FROM t'],
    ])('refuses a training query with %s on every host, naming the columns as written', async (what, query) => {
      // Postgres keeps "x" and "X" apart: there, two columns of those names are two features.
      if (what.includes('case') && adapter.name === 'postgres') {
        await db.sql(`CREATE MODEL bad WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS ${query}`);
        expect((await db.sql('DESCRIBE MODEL bad')).rows.slice(0, 2).map((r) => r[0])).toEqual(['x', 'X']);
        return;
      }
      await expectRefused(`CREATE MODEL bad WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS ${query}`, '22000', /^the training query has two columns of the same name; columns: x, /);
    });
  });
}
