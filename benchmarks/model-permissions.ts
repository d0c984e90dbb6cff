/**
 * The cost of model permissions on Postgres: a small ML_PREDICT of a trained (compiled)
 * model (one input row unless `BENCH_PERMISSION_ROWS` says otherwise) through the proxy, run by a grantee, whose catalog look-ups pass the row-level
 * security policies, against the same statement run by the superuser that owns the catalog
 * (Postgres exempts it from the policies): statements per second, in alternating rounds in
 * one process. The catalog holds `BENCH_PERMISSION_MODELS` other models (default 200)
 * owned by another role, so the policies have rows to filter.
 */
import pg from 'pg';
import type { BenchmarkResult } from './benchmark-result.js';
import { openBenchServer, startProxyProcess } from './proxy-support.js';

const OTHER_MODELS = Number(process.env.BENCH_PERMISSION_MODELS ?? 200);
/** Rows of the input table (default 1: the latency of one prediction, the fixed cost of a statement). */
const INPUT_ROWS = Number(process.env.BENCH_PERMISSION_ROWS ?? 1);
const ROUNDS = 6;
const PER_ROUND = 100;
const PREDICT = 'SELECT sum(predicted_y) FROM ML_PREDICT(TABLE bench_perm, MODEL bench_perm_model, DESCRIPTOR(x))';

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

function asRole(url: string, role: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = 'bench-pw';
  return u.toString();
}

/** Runs the measurement. */
export async function benchmarkModelPermissions(): Promise<BenchmarkResult> {
  const server = await openBenchServer();
  const proxy = await startProxyProcess(server.directUrl);
  const bench = { proxyUrl: proxy.url };
  const admin = await client(bench.proxyUrl);
  const clients: pg.Client[] = [admin];
  try {
    await admin.query('DROP TABLE IF EXISTS bench_perm, bench_perm_train; DROP ROLE IF EXISTS bench_grantee; DROP ROLE IF EXISTS bench_other');
    await admin.query(`CREATE ROLE bench_grantee LOGIN PASSWORD 'bench-pw'; CREATE ROLE bench_other LOGIN PASSWORD 'bench-pw'; GRANT CREATE ON SCHEMA public TO bench_other`);
    await admin.query(`CREATE TABLE bench_perm AS SELECT i AS id, i::float8 AS x, (2 * i + 1)::float8 AS y FROM generate_series(1, ${INPUT_ROWS}) i; GRANT SELECT ON bench_perm TO PUBLIC`);
    await admin.query('CREATE TABLE bench_perm_train AS SELECT i::float8 AS x, (2 * i + 1)::float8 AS y FROM generate_series(1, 100) i');
    await admin.query(`CREATE MODEL bench_perm_model WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM bench_perm_train`);
    await admin.query('GRANT USAGE ON MODEL bench_perm_model TO bench_grantee');
    const other = await client(asRole(bench.proxyUrl, 'bench_other'));
    clients.push(other);
    for (let i = 0; i < OTHER_MODELS; i++) {
      await other.query(`CREATE MODEL bench_other_${i} INPUT (t STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:1/v1', 'model' = 'x', 'api-key' = 'k-${i}')`);
    }
    const grantee = await client(asRole(bench.proxyUrl, 'bench_grantee'));
    clients.push(grantee);
    const expected = (await admin.query(PREDICT)).rows[0].sum;
    const time = async (c: pg.Client): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < PER_ROUND; i++) {
        const r = await c.query(PREDICT);
        if (r.rows[0].sum !== expected) throw new Error('ML_PREDICT gave another answer');
      }
      return performance.now() - t0;
    };
    await time(grantee);
    await time(admin);
    let granteeMs = 0;
    let ownerMs = 0;
    for (let round = 0; round < ROUNDS; round++) {
      granteeMs += await time(grantee);
      ownerMs += await time(admin);
    }
    const statements = ROUNDS * PER_ROUND;
    return {
      name: `ML_PREDICT of a compiled model (${INPUT_ROWS} row${INPUT_ROWS === 1 ? '' : 's'}) through the proxy: a grantee under row-level security vs the catalog's owner (${OTHER_MODELS} other models in the catalog)`,
      modelsqlRowsPerSecond: (statements * 1000) / granteeMs,
      handWrittenRowsPerSecond: (statements * 1000) / ownerMs,
      ratio: ownerMs / granteeMs,
      unit: 'statements/s',
      details: [`grantee: ${(granteeMs / statements).toFixed(2)} ms per statement; owner: ${(ownerMs / statements).toFixed(2)} ms per statement`],
    };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await proxy.close();
    await server.close();
  }
}
