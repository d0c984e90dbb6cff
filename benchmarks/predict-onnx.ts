/**
 * ML_PREDICT of an ONNX linear model over a 1,000,000-row DuckDB table, against the
 * hand-written pipeline doing the same work in the same process: stream the chunks, fill
 * a Float32Array, one `session.run` per large batch, Appender back. Both write a table of
 * (id, prediction); the results are compared before the rates are printed.
 */
import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import * as ort from 'onnxruntime-node';
import { openDuckDB } from '../adapters/duckdb/index.js';
import { appendPredictions } from './hand-written-append.js';
import type { BenchmarkResult } from './benchmark-result.js';

/** One measured comparison. */
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const MODEL_PATH = new URL('../../examples/models/house_price.onnx', import.meta.url);
const BATCH = 65_536;

const TABLE_SQL = `CREATE TABLE houses AS SELECT i AS id, 500.0 + (i % 3000) AS sqft, CAST(1 + i % 5 AS DOUBLE) AS bedrooms, CAST(i % 80 AS DOUBLE) AS age FROM range(${ROWS}) t(i)`;

/** The hand-written pipeline: two connections (DuckDB cuts a stream short when its connection appends). */
async function handWritten(): Promise<{ seconds: number; checksum: number }> {
  const instance = await DuckDBInstance.create(':memory:');
  const reader = await instance.connect();
  const writer = await instance.connect();
  await reader.run(TABLE_SQL);
  await writer.run('CREATE TABLE result_hand (id BIGINT, price DOUBLE)');
  const session = await ort.InferenceSession.create(readFileSync(MODEL_PATH));
  const started = performance.now();
  const appender = await writer.createAppender('result_hand');
  const stream = await reader.stream('SELECT id, sqft, bedrooms, age FROM houses');
  const features = new Float32Array(BATCH * 3);
  const ids: bigint[] = [];
  let n = 0;
  const flush = async () => {
    if (n === 0) return;
    const out = await session.run({ x: new ort.Tensor('float32', features.subarray(0, n * 3), [n, 3]) });
    const y = out[session.outputNames[0]!]!.data as Float32Array;
    appendPredictions(appender, ids, y, n);
    n = 0;
    ids.length = 0;
  };
  for (;;) {
    const chunk = await stream.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    const id = chunk.getColumnVector(0);
    const cols = [1, 2, 3].map((c) => chunk.getColumnVector(c));
    for (let i = 0; i < chunk.rowCount; i++) {
      ids.push(id.getItem(i) as bigint);
      for (let c = 0; c < 3; c++) features[n * 3 + c] = cols[c]!.getItem(i) as number;
      n++;
      if (n === BATCH) await flush();
    }
  }
  await flush();
  appender.flushSync();
  appender.closeSync();
  const seconds = (performance.now() - started) / 1000;
  const check = await writer.runAndReadAll('SELECT sum(price) FROM result_hand');
  const checksum = Number(check.getRows()[0]![0]);
  await session.release();
  reader.closeSync();
  writer.closeSync();
  instance.closeSync();
  return { seconds, checksum };
}

async function modelsql(): Promise<{ seconds: number; checksum: number }> {
  const db = await openDuckDB();
  await db.sql(TABLE_SQL);
  await db.sql(`CREATE MODEL house_price INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE) OUTPUT (price DOUBLE) WITH ('provider' = 'onnx', 'path' = '${MODEL_PATH.pathname}')`);
  const started = performance.now();
  await db.sql(`CREATE TABLE result_ml AS SELECT id, price FROM ML_PREDICT(TABLE houses, MODEL house_price, DESCRIPTOR(sqft, bedrooms, age))`);
  const seconds = (performance.now() - started) / 1000;
  const check = await db.sql('SELECT sum(price) FROM result_ml');
  await db.close();
  return { seconds, checksum: Number(check.rows[0]![0]) };
}

/** Runs both pipelines (hand-written first, then modelsql, then each once more; best of two). */
export async function benchmarkPredictOnnx(): Promise<BenchmarkResult> {
  const hand = [await handWritten(), await handWritten()];
  const ours = [await modelsql(), await modelsql()];
  const h = Math.min(...hand.map((r) => r.seconds));
  const m = Math.min(...ours.map((r) => r.seconds));
  const relative = Math.abs(hand[0]!.checksum - ours[0]!.checksum) / Math.abs(hand[0]!.checksum);
  if (!(relative < 1e-6)) throw new Error(`results differ: hand-written sum ${hand[0]!.checksum}, modelsql sum ${ours[0]!.checksum}`);
  return {
    name: `ML_PREDICT ONNX linear model, ${ROWS.toLocaleString('en-US')} rows (DuckDB)`,
    rows: ROWS,
    modelsqlRowsPerSecond: ROWS / m,
    handWrittenRowsPerSecond: ROWS / h,
    ratio: h / m,
  };
}
