/**
 * The Postgres sides of one ML_PREDICT grid cell (predict-grid-worker.ts runs them in a
 * process of their own), over a table `t(id bigint, f0 .. f{k-1} double precision)` the grid
 * made in the server at `url`, each writing `CREATE TABLE out AS <projection>`:
 * - `modelsql`: `ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(f0, ...))` through `connectPostgres`;
 * - `hand`: `COPY (SELECT <columns> FROM t) TO STDOUT` on one connection, the features into a
 *   Float32Array, one `session.run` per 65,536 rows, and `COPY out FROM STDIN` of each line
 *   (all of it, or its id) and its prediction streaming on a second connection;
 * - `sql`: the model as a native SQL expression.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as ort from 'onnxruntime-node';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { connectPostgres } from '../adapters/postgres/index.js';

const BATCH = 65_536;

/** What a side needs: the cell, the model, and where to put it. */
export interface PostgresSide {
  readonly side: 'modelsql' | 'hand' | 'sql';
  readonly url: string;
  readonly features: number;
  readonly shape: 'star' | 'id';
  readonly modelBytes: Uint8Array;
  /** The model file (modelsql's CREATE MODEL reads it). */
  readonly modelPath: string;
  /** `w0 * f0 + ... + b`. */
  readonly expression: string;
}

/** Runs one side; returns its seconds and the `sum(prediction), count(*)` of `out`. */
export async function runPostgresSide(task: PostgresSide): Promise<{ seconds: number; sum: unknown; count: unknown }> {
  const admin = new pg.Client({ connectionString: task.url });
  await admin.connect();
  try {
    await admin.query('DROP TABLE IF EXISTS out');
    const seconds = task.side === 'hand' ? await handWritten(task) : await statement(task);
    const { rows } = await admin.query({ text: 'SELECT sum(prediction), count(*) FROM out', rowMode: 'array' });
    await admin.query('DROP TABLE out');
    return { seconds, sum: rows[0][0], count: rows[0][1] };
  } finally {
    await admin.end();
  }
}

async function statement(task: PostgresSide): Promise<number> {
  const db = await connectPostgres(task.url);
  try {
    const columns = Array.from({ length: task.features }, (_, j) => `f${j}`).join(', ');
    const projection = task.shape === 'star' ? '*' : 'id, prediction';
    let sql: string;
    if (task.side === 'modelsql') {
      await db.sql('DROP MODEL IF EXISTS m');
      await db.sql(`CREATE MODEL m INPUT (${Array.from({ length: task.features }, (_, j) => `f${j} DOUBLE`).join(', ')}) OUTPUT (prediction DOUBLE) WITH ('provider' = 'onnx', 'path' = '${task.modelPath}')`);
      // Loads the model before the clock starts, as the hand-written side creates its session first.
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE (SELECT * FROM t LIMIT 1), MODEL m, DESCRIPTOR(${columns}))`);
      sql = `CREATE TABLE out AS SELECT ${projection} FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(${columns}))`;
    } else {
      sql = `CREATE TABLE out AS SELECT ${task.shape === 'star' ? '*' : 'id'}, ${task.expression} AS prediction FROM t`;
    }
    const started = performance.now();
    await db.sql(sql);
    return (performance.now() - started) / 1000;
  } finally {
    await db.close();
  }
}

async function handWritten(task: PostgresSide): Promise<number> {
  const k = task.features;
  const reader = new pg.Client({ connectionString: task.url });
  const writer = new pg.Client({ connectionString: task.url });
  await reader.connect();
  await writer.connect();
  const features = Array.from({ length: k }, (_, j) => `f${j}`);
  const outColumns = task.shape === 'star' ? ['id', ...features] : ['id'];
  await writer.query(`CREATE TABLE out (id bigint, ${task.shape === 'star' ? features.map((f) => `${f} double precision, `).join('') : ''}prediction double precision)`);
  const session = await ort.InferenceSession.create(task.modelBytes);
  const started = performance.now();

  async function* lines(): AsyncGenerator<string> {
    const source = reader.query(copyStreams.to(`COPY (SELECT id, ${features.join(', ')} FROM t) TO STDOUT`));
    const x = new Float32Array(BATCH * k);
    const kept: string[] = [];
    let n = 0;
    let rest = '';
    const flush = async (): Promise<string> => {
      const out = await session.run({ x: new ort.Tensor('float32', x.subarray(0, n * k), [n, k]) });
      const y = out[session.outputNames[0]!]!.data as Float32Array;
      let text = '';
      for (let i = 0; i < n; i++) text += `${kept[i]}\t${y[i]}\n`;
      n = 0;
      kept.length = 0;
      return text;
    };
    for await (const chunk of source as AsyncIterable<Buffer>) {
      const chunkLines = (rest + chunk.toString('utf8')).split('\n');
      rest = chunkLines.pop()!;
      for (const line of chunkLines) {
        let tab = line.indexOf('\t');
        kept.push(task.shape === 'star' ? line : line.slice(0, tab));
        for (let c = 0; c < k; c++) {
          const next = c === k - 1 ? line.length : line.indexOf('\t', tab + 1);
          x[n * k + c] = Number(line.slice(tab + 1, next));
          tab = next;
        }
        if (++n === BATCH) yield await flush();
      }
    }
    if (n > 0) yield await flush();
  }

  await pipeline(Readable.from(lines()), writer.query(copyStreams.from(`COPY out (${[...outColumns, 'prediction'].join(', ')}) FROM STDIN`)));
  const seconds = (performance.now() - started) / 1000;
  await session.release();
  await reader.end();
  await writer.end();
  return seconds;
}
