/**
 * One side of one cell of the ML_PREDICT grid (predict-grid.ts), run in a process of its
 * own so that its peak RSS is its own: `node predict-grid-worker.js <json WorkerTask>`.
 * Sends back a {@link WorkerResult} over IPC.
 *
 * Sides, each writing `CREATE TABLE out AS <projection>` of the same linear model's
 * predictions over a table `t(id, f0 .. f{k-1})`:
 * - `modelsql`: `ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(f0, ...))`.
 * - `hand`: the hand-written pipeline: stream `rowid` and the features on one connection,
 *   fill a Float32Array, one `session.run` per 65,536 rows, a DataChunk appender of (rowid,
 *   prediction) on a second connection, then join back on rowid.
 * - `sql`: the model as a native SQL expression (`w0 * f0 + ... + b`).
 * With a Postgres URL in the task, the same three over Postgres (predict-grid-postgres.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import * as ort from 'onnxruntime-node';
import { openDuckDB } from '../adapters/duckdb/index.js';
import { appendPredictions } from './hand-written-append.js';
import { runPostgresSide } from './predict-grid-postgres.js';
import { linearRegressorModel } from '../test/support/onnx-models.js';

/** What one worker process runs. */
export interface WorkerTask {
  readonly side: 'modelsql' | 'hand' | 'sql';
  readonly rows: number;
  readonly features: number;
  /** A DuckDB file holding `t` (made by the grid), or undefined for an in-memory database the worker fills. */
  readonly file?: string;
  /** A Postgres database holding `t` (made by the grid): the cell runs there (predict-grid-postgres.ts). */
  readonly url?: string;
  /** `*` for `SELECT *`, `id` for `SELECT id, prediction`. */
  readonly shape: 'star' | 'id';
}

/** What a worker reports. */
export interface WorkerResult {
  readonly seconds: number;
  /** sum(prediction) of the output table, to compare the sides. */
  readonly checksum: number;
  readonly outputRows: number;
  /** Peak resident set size of the process, bytes. */
  readonly maxRssBytes: number;
  /** DuckDB sides: CPU time (user + system, every thread of the process) spent while `seconds` ran. */
  readonly cpuSeconds?: number;
}

const BATCH = 65_536;

/** Wall and CPU seconds of the timed part of a side. */
interface Timing {
  readonly seconds: number;
  readonly cpuSeconds: number;
}

/** Starts a clock; calling the result stops it. */
function clock(): () => Timing {
  const started = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
  };
}

/** The linear model's weights for `k` features: small, distinct, so sums stay finite. */
export function gridWeights(k: number): number[] {
  return Array.from({ length: k }, (_, j) => ((j % 7) - 3) / 10 + 0.05);
}

const BIAS = 0.5;

/** The statement filling `t` with `rows` rows of `k` DOUBLE features, in DuckDB's or Postgres's SQL. */
export function tableSql(rows: number, k: number, host: 'duckdb' | 'postgres' = 'duckdb'): string {
  const double = host === 'duckdb' ? 'DOUBLE' : 'double precision';
  const features = Array.from({ length: k }, (_, j) => `CAST((i * ${j + 7}) % 1000 AS ${double}) / 10 AS f${j}`);
  const source = host === 'duckdb' ? `range(${rows}) r(i)` : `generate_series(0, ${rows - 1}) AS r(i)`;
  return `CREATE TABLE t AS SELECT ${host === 'duckdb' ? 'i' : 'CAST(i AS bigint)'} AS id, ${features.join(', ')} FROM ${source}`;
}

async function handWritten(instance: DuckDBInstance, modelBytes: Uint8Array, task: WorkerTask): Promise<Timing> {
  const reader = await instance.connect();
  const writer = await instance.connect();
  const session = await ort.InferenceSession.create(modelBytes);
  const k = task.features;
  await writer.run('CREATE TABLE preds (rid BIGINT, prediction DOUBLE)');
  const stop = clock();
  const appender = await writer.createAppender('preds');
  const stream = await reader.stream(`SELECT rowid, ${Array.from({ length: k }, (_, j) => `f${j}`).join(', ')} FROM t`);
  const features = new Float32Array(BATCH * k);
  const ids = new BigInt64Array(BATCH);
  let n = 0;
  const flush = async (): Promise<void> => {
    const out = await session.run({ x: new ort.Tensor('float32', features.subarray(0, n * k), [n, k]) });
    const y = out[session.outputNames[0]!]!.data as Float32Array;
    appendPredictions(appender, ids, y, n);
    n = 0;
  };
  for (;;) {
    const chunk = await stream.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    const rowid = chunk.getColumnVector(0);
    const columns = Array.from({ length: k }, (_, c) => chunk.getColumnVector(c + 1));
    for (let i = 0; i < chunk.rowCount; i++) {
      ids[n] = rowid.getItem(i) as bigint;
      for (let c = 0; c < k; c++) features[n * k + c] = columns[c]!.getItem(i) as number;
      if (++n === BATCH) await flush();
    }
  }
  if (n > 0) await flush();
  appender.closeSync();
  const projection = task.shape === 'star' ? 't.*' : 't.id';
  await writer.run(`CREATE TABLE out AS SELECT ${projection}, p.prediction FROM t JOIN preds p ON t.rowid = p.rid`);
  const timing = stop();
  await session.release();
  reader.closeSync();
  writer.closeSync();
  return timing;
}

async function run(task: WorkerTask): Promise<WorkerResult> {
  const k = task.features;
  const weights = gridWeights(k);
  const modelBytes = linearRegressorModel(weights, BIAS);
  const dir = mkdtempSync(join(tmpdir(), 'modelsql-grid-'));
  try {
    let timing: Timing;
    let check: (sql: string) => Promise<unknown[]>;
    const columns = Array.from({ length: k }, (_, j) => `f${j}`).join(', ');
    const projection = task.shape === 'star' ? '*' : 'id, prediction';
    const expression = weights.map((w, j) => `${w} * f${j}`).join(' + ') + ` + ${BIAS}`;
    if (task.url) {
      const modelPath = join(dir, 'model.onnx');
      writeFileSync(modelPath, modelBytes);
      const { seconds: s, sum, count } = await runPostgresSide({ side: task.side, url: task.url, features: k, shape: task.shape, modelBytes, modelPath, expression });
      return { seconds: s, checksum: Number(sum), outputRows: Number(count), maxRssBytes: process.resourceUsage().maxRSS * 1024 };
    }
    if (task.side === 'hand') {
      const instance = await DuckDBInstance.create(task.file ?? ':memory:');
      const connection: DuckDBConnection = await instance.connect();
      if (!task.file) await connection.run(tableSql(task.rows, k));
      timing = await handWritten(instance, modelBytes, task);
      check = async (sql) => (await connection.runAndReadAll(sql)).getRows()[0]!;
      const result = await finish(check, timing);
      await connection.run('DROP TABLE out; DROP TABLE preds');
      connection.closeSync();
      instance.closeSync();
      return result;
    }
    const session = await openDuckDB(task.file);
    if (!task.file) await session.sql(tableSql(task.rows, k));
    check = async (sql) => (await session.sql(sql)).rows[0]! as unknown[];
    let statement: string;
    if (task.side === 'modelsql') {
      const path = join(dir, 'model.onnx');
      writeFileSync(path, modelBytes);
      await session.sql(`CREATE TEMPORARY MODEL m INPUT (${Array.from({ length: k }, (_, j) => `f${j} DOUBLE`).join(', ')}) OUTPUT (prediction DOUBLE) WITH ('provider' = 'onnx', 'path' = '${path}')`);
      // Loads the model (worker threads, session) before the clock starts, as the hand-written side does.
      await session.sql(`SELECT * FROM ML_PREDICT(TABLE (SELECT * FROM t LIMIT 1), MODEL m, DESCRIPTOR(${columns}))`);
      statement = `CREATE TABLE out AS SELECT ${projection} FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(${columns}))`;
    } else {
      statement = `CREATE TABLE out AS SELECT ${projection === '*' ? '*' : 'id'}, ${expression} AS prediction FROM t`;
    }
    const stop = clock();
    await session.sql(statement);
    timing = stop();
    const result = await finish(check, timing);
    await session.sql('DROP TABLE out');
    await session.close();
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function finish(check: (sql: string) => Promise<unknown[]>, timing: Timing): Promise<WorkerResult> {
  const [sum, count] = await check('SELECT sum(prediction), count(*) FROM out');
  return { ...timing, checksum: Number(sum), outputRows: Number(count), maxRssBytes: process.resourceUsage().maxRSS * 1024 };
}

// Run only as the forked entry point (predict-grid.ts imports this module for `tableSql`).
if (process.send !== undefined && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await run(JSON.parse(process.argv[2]) as WorkerTask);
  process.send(result, () => process.exit(0));
}
