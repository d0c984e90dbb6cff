/**
 * Event-loop health of the proxy: while one client runs a long ONNX ML_PREDICT through the
 * proxy, another client's `SELECT 1` through the same proxy must answer within 50 ms at
 * the 99th percentile. Compared with the same `SELECT 1` loop straight to Postgres at the
 * same time (the rates are 1000 / p99 ms: queries per second at the 99th-percentile latency).
 * The proxy runs in its own process (`modelsql proxy`, as users run it); the three clients
 * (predictor, proxied probe, direct probe) live in the benchmark process, which does
 * nothing else meanwhile. `BENCH_LATENCY_ROWS` sets the input size (default 2,000,000 rows).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { linearRegressorModel } from '../test/support/onnx-models.js';
import type { BenchmarkResult } from './benchmark-result.js';
import { openBenchServer, startProxyProcess } from './proxy-support.js';
import { percentile } from './statistics.js';

const ROWS = Number(process.env.BENCH_LATENCY_ROWS ?? 5_000_000);

async function client(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return c;
}

/** Runs `SELECT 1` in a loop (5 ms apart) until `until` settles; returns the latencies in ms, sorted. */
async function sample(c: pg.Client, until: Promise<unknown>): Promise<number[]> {
  let done = false;
  void until.finally(() => (done = true));
  const times: number[] = [];
  while (!done) {
    const t0 = performance.now();
    await c.query('SELECT 1');
    times.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 5));
  }
  return times.sort((a, b) => a - b);
}

/** Runs the measurement. */
export async function benchmarkProxyLatency(): Promise<BenchmarkResult> {
  const server = await openBenchServer();
  const proxy = await startProxyProcess(server.directUrl);
  const dir = mkdtempSync(join(tmpdir(), 'modelsql-bench-'));
  const model = join(dir, 'linear.onnx');
  writeFileSync(model, linearRegressorModel([2, 3], -1));
  const predictor = await client(proxy.url);
  const viaProxy = await client(proxy.url);
  const direct = await client(server.directUrl);
  try {
    await predictor.query('DROP TABLE IF EXISTS bench_latency; DROP MODEL IF EXISTS bench_linear');
    await predictor.query(`CREATE TABLE bench_latency AS SELECT i AS id, (i % 1000)::float8 AS a, (i % 7)::float8 AS b FROM generate_series(1, ${ROWS}) i`);
    await predictor.query(`CREATE MODEL bench_linear INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${model}')`);
    const started = performance.now();
    const predicting = predictor.query('SELECT count(*), sum(y) FROM ML_PREDICT(TABLE bench_latency, MODEL bench_linear, DESCRIPTOR(a, b))');
    const [proxied, straight] = await Promise.all([sample(viaProxy, predicting), sample(direct, predicting)]);
    const result = await predicting;
    const seconds = (performance.now() - started) / 1000;
    if (Number(result.rows[0].count) !== ROWS) throw new Error('ML_PREDICT returned the wrong row count');
    const p99 = percentile(proxied, 99);
    const p99Direct = percentile(straight, 99);
    return {
      name: `SELECT 1 through the proxy during an ML_PREDICT over ${ROWS.toLocaleString('en-US')} rows (${seconds.toFixed(1)} s), vs direct`,
      modelsqlRowsPerSecond: 1000 / p99,
      handWrittenRowsPerSecond: 1000 / p99Direct,
      ratio: p99Direct / p99,
      unit: 'queries/s at p99',
      details: [
        `proxy:  p50 ${percentile(proxied, 50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${proxied[proxied.length - 1]!.toFixed(2)} ms over ${proxied.length} queries (required p99 ≤ 50 ms)`,
        `direct: p50 ${percentile(straight, 50).toFixed(2)} ms, p99 ${p99Direct.toFixed(2)} ms over ${straight.length} queries`,
      ],
    };
  } finally {
    await Promise.all([predictor, viaProxy, direct].map((c) => c.end().catch(() => undefined)));
    await proxy.close();
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // run alone: node dist/benchmarks/proxy-latency.js
  console.log(await benchmarkProxyLatency());
}
