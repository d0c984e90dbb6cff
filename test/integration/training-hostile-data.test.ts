/**
 * CREATE MODEL ... AS on hostile data, on every host: values DOUBLE cannot standardize
 * (NaN, ±Infinity, magnitudes whose squares overflow), two columns of one name, and a
 * cancel or a statement timeout arriving between training's queries. Each failure is a
 * SQLSTATE error pointing at the training query, and leaves the catalog, the host
 * functions and the session's temporary tables as they were.
 */
import type { Host } from '../../core/host.js';
import { ModelSession } from '../../core/session/model-session.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { catalogDump } from '../core/training/training-helpers.js';

/**
 * `host` with `after(n)` awaited after the n-th statement of training (one reading the
 * training query, `__modelsql_src`, or a working table, `__modelsql_<pid>_...`) returned:
 * between two of training's statements, when the host has none in flight.
 */
function betweenTrainingStatements(host: Host, after: (n: number) => Promise<void> | void): Host {
  let n = 0;
  return new Proxy(host, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (key !== 'execute' && key !== 'materialize') return value.bind(target);
      return async (...args: unknown[]) => {
        const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        if (args.some((a) => typeof a === 'string' && a.includes('__modelsql'))) await after(++n);
        return result;
      };
    },
  });
}

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
      ['a STRING feature of 5,000 categories (linear)', `'algorithm' = 'linear_regression', 'label' = 'y', 'max-categories' = '5000'`, 'v, y', /it has 5001 parameters, more than 1664; it has 5000 encoded features/],
      ['1,000 classes (logistic)', `'algorithm' = 'logistic_regression', 'label' = 'c'`, 'x, c', /it has 2000 parameters, more than 1664; it has 1 encoded features and 1000 classes/],
      ['a STRING feature of 1,000 categories (binary logistic)', `'algorithm' = 'logistic_regression', 'label' = 'even', 'max-categories' = '1000'`, 'v, x, even', /more than 1664 .*; it has 1001 encoded features/],
      ['a STRING feature of 2,000 categories, its sums grouped (binary logistic)', `'algorithm' = 'logistic_regression', 'label' = 'even', 'max-categories' = '2000'`, 'v, even', /it has 2001 parameters, more than 1664; it has 2000 encoded features/],
      ['a STRING feature of 2,000 categories, its sums grouped (linear)', `'algorithm' = 'linear_regression', 'label' = 'y', 'max-categories' = '2000'`, 'v, y', /it has 2001 parameters, more than 1664/],
      ['a STRING feature of 1,000 categories (kmeans)', `'algorithm' = 'kmeans', 'k' = '2', 'max-categories' = '1000'`, 'v, x', /kmeans trains on at most 1000 encoded features; this model has 1001/],
    ])('refuses a model too large to train, %s, with 54011 on every host (no crash of the process)', async (_what, options, columns, message) => {
      await db.sql(
        `CREATE TABLE wide AS SELECT 'v' || CAST(i AS VARCHAR) AS v, CAST(i AS DOUBLE PRECISION) AS x, CAST(i AS DOUBLE PRECISION) * 0.5 AS y, i % 1000 AS c, i % 2 = 0 AS even FROM generate_series(1, 6000) AS g(i)`,
      );
      await expectRefused(`CREATE MODEL bad WITH (${options}) AS SELECT ${columns} FROM wide`, '54011', message);
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

    it.each([
      ['gradient_boosted_trees', `'label' = 'y', 'rounds' = '5', 'max-depth' = '2'`, 'x, z, y', [1, 4, 9]],
      ['logistic_regression', `'label' = 'even'`, 'x, z, even', [1, 3]],
      ['kmeans', `'k' = '3'`, 'x, z', [1, 4]],
    ] as const)('%s: a cancel between two training statements stops training with 57014, changing nothing', async (algorithm, options, columns, when) => {
      for (const at of when) {
        let session: Session | undefined;
        let start: number | undefined;
        let count = 0;
        const host = betweenTrainingStatements(await adapter.openHost(), (n) => {
          count = n;
          if (start !== undefined && n === start + at) session!.cancel(); // the at-th statement of the training under test
        });
        session = new ModelSession(host);
        try {
          await session.sql(`CREATE TABLE t AS SELECT CAST(i AS DOUBLE PRECISION) AS x, CAST(i % 4 AS DOUBLE PRECISION) AS z, CAST(i AS DOUBLE PRECISION) * 2 + 1 AS y, i % 2 = 0 AS even FROM generate_series(1, 40) AS g(i)`);
          await session.sql(`CREATE MODEL keep WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t`);
          const before = await catalogDump(session);
          start = count;
          await expectSqlError(session.sql(`CREATE MODEL bad WITH ('algorithm' = '${algorithm}', ${options}) AS SELECT ${columns} FROM t`), '57014', /canceling statement due to user request/);
          expect(await catalogDump(session)).toBe(before);
          expect(await adapter.countFunctions(session, 'ml_predict_bad')).toBe(0);
          expect(await adapter.countTempTables(session)).toBe(0n);
          // The next statement is not cancelled.
          await session.sql(`CREATE MODEL good WITH ('algorithm' = '${algorithm}', ${options}) AS SELECT ${columns} FROM t`);
          expect(await adapter.countFunctions(session, 'ml_predict_good')).toBe(1);
        } finally {
          await session.close();
        }
      }
    });

    if (adapter.name === 'postgres') {
      it("bounds training as a whole by the session's statement_timeout, not each of its statements only", async () => {
        // Every statement of training is far quicker than the timeout; the time between them adds up past it.
        const session = new ModelSession(betweenTrainingStatements(await adapter.openHost(), () => new Promise((resolve) => setTimeout(resolve, 40))));
        try {
          await session.sql(`CREATE TABLE t AS SELECT CAST(i AS DOUBLE PRECISION) AS x, CAST(i % 4 AS DOUBLE PRECISION) AS y FROM generate_series(1, 40) AS g(i)`);
          await session.sql(`CREATE MODEL keep WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t`);
          const before = await catalogDump(session);
          await session.sql(`SET statement_timeout = '1s'`);
          await expectSqlError(
            session.sql(`CREATE MODEL bad WITH ('algorithm' = 'gradient_boosted_trees', 'label' = 'y', 'rounds' = '50', 'max-depth' = '2') AS SELECT x, y FROM t`),
            '57014',
            /canceling statement due to statement timeout/,
          );
          await session.sql('SET statement_timeout = 0');
          expect(await catalogDump(session)).toBe(before);
          expect(await adapter.countFunctions(session, 'ml_predict_bad')).toBe(0);
          expect(await adapter.countTempTables(session)).toBe(0n);
        } finally {
          await session.close();
        }
      });
    }
  });
}
