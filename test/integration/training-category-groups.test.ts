/**
 * Linear and logistic regression sum their statistics per combination of the STRING
 * features' values when every value is one of its feature's categories
 * (core/training/category-groups.ts), and over the one-hot columns otherwise. The two ways
 * train the same model: `'max-categories'` equal to a feature's number of values keeps the
 * same categories but takes the one-hot way (the limit is reached, so other values might
 * exist). Two STRING features, NULLs in both (imputed with the mode), on every host.
 */
import type { Session } from '../../core/session/session.js';
import { MAX_VALUE_COMBINATIONS, categoryGroups } from '../../core/training/category-groups.js';
import { describeTrainingQuery, prepareTrainingData } from '../../core/training/training-data.js';
import { parseTrainingOptions } from '../../core/training/training-options.js';
import { ADAPTERS } from '../support/adapters.js';
import { storedSpec } from '../core/training/training-helpers.js';

const ROWS = Array.from({ length: 240 }, (_, i) => {
  const a = i % 19 === 0 ? 'NULL' : String(((i * 37) % 101) / 7);
  const b = (i * 13) % 9;
  const city = i % 23 === 0 ? 'NULL' : `'${['berlin', 'lyon', 'oslo', 'rome'][(i * 7) % 4]!}'`;
  const tier = i % 29 === 0 ? 'NULL' : `'${['gold', 'silver', 'tin'][(i * 5) % 3]!}'`;
  const y = ((i * 37) % 101) / 3 + b * b - ((i * 7) % 4 === 2 ? 11 : 0) + ((i * 5) % 3) * 4 + Math.sin(i) * 3;
  const kind = ['big', 'mid', 'small'][((i * 37) % 101) % 3 === 0 ? 0 : b > 4 ? 1 : 2]!;
  const fast = (i * 37) % 101 > 50 !== (b % 4 === 0);
  return `(${a}, ${b}, ${city}, ${tier}, ${y}, '${kind}', ${fast})`;
});
const TABLE = `CREATE TABLE t (a DOUBLE PRECISION, b INTEGER, city VARCHAR, tier VARCHAR, y DOUBLE PRECISION, kind VARCHAR, fast BOOLEAN);
INSERT INTO t VALUES ${ROWS.join(', ')}`;

const MODELS = [
  ['linear', "'algorithm' = 'linear_regression', 'label' = 'y', 'l2' = '0.1'", 'y'],
  ['binary', "'algorithm' = 'logistic_regression', 'label' = 'fast'", 'fast'],
  ['multinomial', "'algorithm' = 'logistic_regression', 'label' = 'kind', 'l2' = '0.01'", 'kind'],
] as const;

/** Every number within 1e-9 (relative to max(1, |x|)) of the one at the same place. */
function expectClose(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'number') {
    if (typeof actual !== 'number' || Math.abs(actual - expected) > 1e-9 * Math.max(1, Math.abs(expected))) throw new Error(`${path}: ${String(actual)} against ${expected}`);
  } else if (Array.isArray(expected)) {
    expect(actual).toHaveLength(expected.length);
    expected.forEach((v, i) => expectClose((actual as unknown[])[i], v, `${path}[${i}]`));
  } else {
    expect(actual).toEqual(expected);
  }
}

for (const adapter of ADAPTERS) {
  describe(`sums per category group on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
      await db.sql(TABLE);
    });
    afterAll(async () => {
      await db.close();
    });

    it.each(MODELS)('%s: the same model as from the one-hot sums', async (name, options, label) => {
      const query = `AS SELECT a, b, city, tier, ${label} FROM t`;
      await db.sql(`CREATE MODEL ${name}_grouped WITH (${options}) ${query}`);
      await db.sql(`CREATE MODEL ${name}_one_hot WITH (${options}, 'max-categories' = '4') ${query}`);
      const [grouped, oneHot] = [await storedSpec(db, `${name}_grouped`), await storedSpec(db, `${name}_one_hot`)];
      expect(grouped.features).toEqual(oneHot.features);
      expect(grouped.features.map((f: { categories?: string[] }) => f.categories?.length)).toEqual([undefined, undefined, 4, 3]);
      for (const key of ['intercept', 'weights', 'intercepts']) expectClose(grouped.parameters[key], oneHot.parameters[key], key);
    });

    it('groups only when every value is a category and the combinations are few', async () => {
      const host = await adapter.openHost();
      try {
        await host.execute(TABLE);
        const prepared = async (raw: [string, string][], query = 'SELECT a, b, city, tier, y FROM t') => {
          const positions = { option: () => undefined };
          return prepareTrainingData(host, query, await describeTrainingQuery(host, query, positions), parseTrainingOptions([['algorithm', 'linear_regression'], ['label', 'y'], ...raw]), positions);
        };
        const groups = categoryGroups(await prepared([]));
        expect(groups?.keys.map(([name]) => name)).toEqual(['g0', 'g1']);
        expect(groups?.base).toEqual([0, 1, 2]);
        // berlin (column 3) and tin (column 9): the constant, both numeric columns, and one column per STRING feature.
        expect(groups?.active(['berlin', 'tin'])).toEqual([[0, 0], [1, 1], [2, 2], [3, 0], [9, 0]]);
        expect(categoryGroups(await prepared([['max-categories', '4']]))).toBeUndefined();
        // Three STRING features of 17 values each: 4,913 combinations, more than the grouped sums take.
        await host.execute(
          'CREATE TABLE wide AS SELECT CAST(i % 17 AS VARCHAR) AS p, CAST((i * 7) % 17 AS VARCHAR) AS q, CAST((i * 11) % 17 AS VARCHAR) AS r, CAST(i % 5 AS DOUBLE PRECISION) AS y FROM generate_series(1, 400) AS g(i)',
        );
        expect(17 ** 3).toBeGreaterThan(MAX_VALUE_COMBINATIONS);
        expect(categoryGroups(await prepared([], 'SELECT p, q, r, y FROM wide'))).toBeUndefined();
        expect(categoryGroups(await prepared([], 'SELECT p, q, y FROM wide'))?.keys).toHaveLength(2);
      } finally {
        await host.close();
      }
    });
  });
}
