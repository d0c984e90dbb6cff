/**
 * The same data, options and seed train the same model on DuckDB and on Postgres: for each
 * of the five algorithms, the stored parameters agree to 1e-9 and so do the predictions of
 * the compiled SQL over every row. Runs when the Postgres host is selected (DuckDB is
 * in-process and always there). No test split: the split's row hash is host-specific
 * (docs/training.md, "On PostgreSQL").
 */
import { openDuckDB } from '../../adapters/duckdb/index.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSame, storedSpec } from '../core/training/training-helpers.js';

const N = 300;
/** A non-integer feature with NULLs and ties, an integer feature, a city; a numeric, a three-class and a binary label. */
const ROWS = Array.from({ length: N }, (_, i) => {
  const a = i % 17 === 0 ? 'NULL' : String(((i * 37) % 101) / 7);
  const b = (i * 13) % 9;
  const city = ['berlin', 'lyon', 'oslo', 'rome'][(i * 7) % 4]!;
  const y = ((i * 37) % 101) / 3 + b * b - (city === 'oslo' ? 11 : 0) + Math.sin(i) * 3;
  const kind = ['big', 'mid', 'small'][((i * 37) % 101) % 3 === 0 ? 0 : b > 4 ? 1 : 2]!;
  const fast = (i * 37) % 101 > 50 !== (b % 4 === 0);
  return `(${i}, ${a}, ${b}, '${city}', ${y}, '${kind}', ${fast})`;
});
const TABLE = `CREATE TABLE t (id INTEGER, a DOUBLE PRECISION, b INTEGER, city VARCHAR, y DOUBLE PRECISION, kind VARCHAR, fast BOOLEAN);
INSERT INTO t VALUES ${ROWS.join(', ')}`;

const MODELS: readonly { readonly name: string; readonly create: string; readonly features: string }[] = [
  { name: 'lin', features: 'a, b, city', create: "WITH ('algorithm' = 'linear_regression', 'label' = 'y', 'l2' = '0.1') AS SELECT a, b, city, y FROM t" },
  { name: 'logit', features: 'a, b, city', create: "WITH ('algorithm' = 'logistic_regression', 'label' = 'kind', 'l2' = '0.01') AS SELECT a, b, city, kind FROM t" },
  { name: 'logit_binary', features: 'a, b, city', create: "WITH ('algorithm' = 'logistic_regression', 'label' = 'fast') AS SELECT a, b, city, fast FROM t" },
  { name: 'km', features: 'a, b, city', create: "WITH ('algorithm' = 'kmeans', 'k' = '4', 'seed' = '7') AS SELECT a, b, city FROM t" },
  { name: 'tree', features: 'a, b, city', create: "WITH ('algorithm' = 'decision_tree', 'label' = 'kind', 'max-depth' = '4') AS SELECT a, b, city, kind FROM t" },
  { name: 'gbt', features: 'a, b, city', create: "WITH ('algorithm' = 'gradient_boosted_trees', 'label' = 'y', 'max-depth' = '3', 'rounds' = '10', 'bins' = '8') AS SELECT a, b, city, y FROM t" },
  { name: 'gbt_binary', features: 'a, b, city', create: "WITH ('algorithm' = 'gradient_boosted_trees', 'label' = 'fast', 'max-depth' = '2', 'rounds' = '5', 'bins' = '6') AS SELECT a, b, city, fast FROM t" },
  { name: 'gbt_multi', features: 'a, b, city', create: "WITH ('algorithm' = 'gradient_boosted_trees', 'label' = 'kind', 'max-depth' = '2', 'rounds' = '4') AS SELECT a, b, city, kind FROM t" },
];

const withPostgres = ADAPTERS.find((a) => a.name === 'postgres');
(withPostgres ? describe : describe.skip)('the same model on DuckDB and Postgres', () => {
  let duck: Session;
  let pg: Session;
  beforeAll(async () => {
    duck = await openDuckDB();
    pg = await withPostgres!.open();
    await duck.sql(TABLE);
    await pg.sql(TABLE);
  });
  afterAll(async () => {
    await duck?.close();
    await pg?.close();
  });

  for (const model of MODELS) {
    it(`${model.name}: parameters and predictions agree to 1e-9`, async () => {
      await duck.sql(`CREATE MODEL ${model.name} ${model.create}`);
      await pg.sql(`CREATE MODEL ${model.name} ${model.create}`);
      const [d, p] = [await storedSpec(duck, model.name), await storedSpec(pg, model.name)];
      expectSame(p.parameters, d.parameters, 'parameters');
      const query = `SELECT * FROM ML_PREDICT(TABLE (SELECT id, ${model.features} FROM t), MODEL ${model.name}, DESCRIPTOR(${model.features})) AS r ORDER BY id`;
      const [dr, pr] = [await duck.sql(query), await pg.sql(query)];
      expect(pr.rows).toHaveLength(N);
      pr.rows.forEach((row, i) => expectSame(row.map((v) => (typeof v === 'bigint' ? Number(v) : v)), dr.rows[i]!.map((v) => (typeof v === 'bigint' ? Number(v) : v)), `row ${i}`));
    });
  }
});
