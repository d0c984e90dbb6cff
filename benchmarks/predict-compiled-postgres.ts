/**
 * A trained linear model compiled to SQL, predicted over `BENCH_COMPILED_ROWS` rows (default
 * 1,000,000) on Postgres through the library: `ML_PREDICT`, whose generated SQL qualifies
 * every operator and function (`OPERATOR(pg_catalog.*)`, typed literals), against the same
 * expression as it was generated before that hardening (plain operators and number
 * literals: the model function's body with the qualification taken out) run as plain SQL,
 * and, as a detail, against the model written by hand without NULL imputation. The sides
 * alternate `BENCH_ROUNDS` times (default 7) after warm-up rounds; the best time of each
 * counts. Each aggregates its predictions to one row, so what is timed is the scan and the
 * per-row expression, not moving a million rows to Node.
 */
import { connectPostgres } from '../adapters/postgres/index.js';
import type { BenchmarkResult } from './benchmark-result.js';
import { openBenchServer } from './proxy-support.js';

const ROWS = Number(process.env.BENCH_COMPILED_ROWS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const WARM_UP = 3;
const FEATURES = 4;
const COEFFICIENTS = [2, -3, 0.5, 4];
const INTERCEPT = 1.5;

/** Runs the measurement. */
export async function benchmarkPredictCompiledPostgres(): Promise<BenchmarkResult> {
  const server = await openBenchServer();
  const db = await connectPostgres(server.directUrl);
  try {
    const x = Array.from({ length: FEATURES }, (_, j) => `x${j}`);
    const columns = x.map((c, j) => `CAST((i * ${j + 7}) % 1000 AS double precision) / 10 AS ${c}`).join(', ');
    const label = `${INTERCEPT} + ${x.map((c, j) => `${COEFFICIENTS[j]} * ${c}`).join(' + ')}`;
    await db.sql('DROP TABLE IF EXISTS bench_compiled');
    await db.sql(`CREATE TABLE bench_compiled AS SELECT *, ${label} AS y FROM (SELECT ${columns} FROM generate_series(1, ${ROWS}) AS g(i)) AS s`);
    await db.sql('VACUUM ANALYZE bench_compiled');
    await db.sql('DROP MODEL IF EXISTS bench_compiled_model');
    await db.sql(`CREATE MODEL bench_compiled_model WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT ${x.join(', ')}, y FROM bench_compiled`);
    const modelsql = `SELECT sum(predicted_y) FROM ML_PREDICT(TABLE bench_compiled, MODEL bench_compiled_model, DESCRIPTOR(${x.join(', ')}))`;
    const plain = `SELECT sum(${label}) FROM bench_compiled`;
    // The model function's body (SELECT <expression over the quoted parameters>) with the hardening taken out.
    const body = String((await db.sql(`SELECT prosrc FROM pg_proc WHERE proname = 'ml_predict_bench_compiled_model'`)).rows[0]![0]);
    const unhardened = body
      .replace(/^SELECT /, '')
      .replace(/OPERATOR\(pg_catalog\.([^)]+)\)/g, '$1')
      .replace(/CAST\((-?[0-9.e+-]+) AS double precision\)/g, '$1');
    const handWritten = `SELECT sum(${unhardened}) FROM bench_compiled`;
    const answer = async (sql: string) => Number((await db.sql(sql)).rows[0]![0]);
    const [a, b, c] = [await answer(modelsql), await answer(handWritten), await answer(plain)];
    if (Math.abs(a - b) > 1e-9 * Math.abs(b) || Math.abs(a - c) > 1e-6 * Math.abs(c)) throw new Error(`ML_PREDICT summed to ${a}, the unhardened expression to ${b}, the hand-written model to ${c}`);
    const time = async (sql: string) => {
      const t0 = performance.now();
      await db.sql(sql);
      return performance.now() - t0;
    };
    for (let i = 0; i < WARM_UP; i++) for (const sql of [modelsql, handWritten, plain]) await time(sql);
    const best = { modelsql: Infinity, handWritten: Infinity, plain: Infinity };
    for (let round = 0; round < ROUNDS; round++) {
      best.modelsql = Math.min(best.modelsql, await time(modelsql));
      best.handWritten = Math.min(best.handWritten, await time(handWritten));
      best.plain = Math.min(best.plain, await time(plain));
    }
    return {
      name: `ML_PREDICT of a trained linear model compiled to SQL (${FEATURES} features), ${ROWS.toLocaleString('en-US')} rows on Postgres, vs its expression as generated before the search_path hardening`,
      modelsqlRowsPerSecond: (ROWS * 1000) / best.modelsql,
      handWrittenRowsPerSecond: (ROWS * 1000) / best.handWritten,
      ratio: best.handWritten / best.modelsql,
      details: [
        `best of ${ROUNDS}: ML_PREDICT ${best.modelsql.toFixed(1)} ms, unhardened expression ${best.handWritten.toFixed(1)} ms, by hand without imputation ${best.plain.toFixed(1)} ms (ratio ${(best.plain / best.modelsql).toFixed(2)})`,
      ],
    };
  } finally {
    await db.sql('DROP TABLE IF EXISTS bench_compiled; DROP MODEL IF EXISTS bench_compiled_model').catch(() => undefined);
    await db.close();
    await server.close();
  }
}
