/**
 * Embedding 100,000 short texts of a DuckDB table with a local text model (a BERT-shaped
 * graph, hidden size 32, 1 layer, written by test/support/text-models.ts), against the
 * hand-written loop: the same tokenizer library (@huggingface/tokenizers) and
 * onnxruntime-node on the calling thread, texts read from the table, padded batches at the
 * best of several batch sizes, mean pooling, embeddings appended back with the Appender.
 * Both write a table of (id, embedding); their sums are compared.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, FLOAT, LIST } from '@duckdb/node-api';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { openDuckDB } from '../adapters/duckdb/index.js';
import { writeTextModel } from '../test/support/text-models.js';
import type { BenchmarkResult } from './benchmark-result.js';

const ROWS = Number(process.env.BENCH_TEXT_ROWS ?? 100_000);
const MAX_LENGTH = 128;
const WORDS = ['the', 'cat', 'dog', 'sat', 'on', 'mat', 'sql', 'model', 'data', 'search', 'vector', 'text', 'local', 'query', 'fast', 'table', 'index', 'duck', 'postgres', 'hello'];
/** Short texts of 3 to 14 words, deterministic. */
const TABLE_SQL = `CREATE TABLE texts AS SELECT i AS id, array_to_string(list_transform(range(3 + i % 12), w -> (${JSON.stringify(WORDS).replace(/"/g, "'")})[1 + (i * 7 + w * 13) % ${WORDS.length}]), ' ') AS body FROM range(${ROWS}) t(i)`;

/** One hand-written run at `batch` texts per session.run. */
async function handWritten(dir: string, batch: number): Promise<{ seconds: number; checksum: number }> {
  const instance = await DuckDBInstance.create(':memory:');
  const db = await instance.connect();
  await db.run(TABLE_SQL);
  await db.run('CREATE TABLE result_hand (id BIGINT, embedding FLOAT[])');
  const tokenizer = new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
  const session = await ort.InferenceSession.create(readFileSync(join(dir, 'onnx', 'model.onnx')), { graphOptimizationLevel: 'all' });
  const started = performance.now();
  const rows = (await db.runAndReadAll('SELECT id, body FROM texts')).getRows();
  const appender = await db.createAppender('result_hand');
  for (let start = 0; start < rows.length; start += batch) {
    const slice = rows.slice(start, start + batch);
    const encoded = slice.map(([, body]) => {
      const ids = tokenizer.encode(String(body)).ids;
      return ids.length <= MAX_LENGTH ? ids : [...ids.slice(0, MAX_LENGTH - 1), ids[ids.length - 1]!];
    });
    const length = Math.max(...encoded.map((e) => e.length));
    const ids = new BigInt64Array(slice.length * length);
    const mask = new BigInt64Array(slice.length * length);
    encoded.forEach((e, i) => e.forEach((id: number, t: number) => {
      ids[i * length + t] = BigInt(id);
      mask[i * length + t] = 1n;
    }));
    const dims = [slice.length, length];
    const out = await session.run({ input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', mask, dims), token_type_ids: new ort.Tensor('int64', new BigInt64Array(ids.length), dims) });
    const hidden = out['last_hidden_state']!;
    const data = hidden.data as Float32Array;
    const h = hidden.dims[2]!;
    encoded.forEach((e, i) => {
      const v = new Array<number>(h).fill(0);
      for (let t = 0; t < e.length; t++) for (let k = 0; k < h; k++) v[k]! += data[(i * length + t) * h + k]!;
      appender.appendBigInt(slice[i]![0] as bigint);
      appender.appendList(v.map((x) => x / e.length), LIST(FLOAT));
      appender.endRow();
    });
  }
  appender.flushSync();
  appender.closeSync();
  const seconds = (performance.now() - started) / 1000;
  const checksum = Number((await db.runAndReadAll('SELECT sum(list_sum(embedding)) FROM result_hand')).getRows()[0]![0]);
  await session.release();
  db.closeSync();
  instance.closeSync();
  return { seconds, checksum };
}

async function modelsql(dir: string): Promise<{ seconds: number; checksum: number }> {
  const db = await openDuckDB();
  await db.sql(TABLE_SQL);
  await db.sql(`CREATE MODEL embedder INPUT (text STRING) OUTPUT (embedding ARRAY<FLOAT>) WITH ('provider' = 'onnx', 'path' = '${dir}', 'task' = 'embedding')`);
  const started = performance.now();
  await db.sql(`CREATE TABLE result_ml AS SELECT id, embedding FROM ML_PREDICT(TABLE texts, MODEL embedder, DESCRIPTOR(body))`);
  const seconds = (performance.now() - started) / 1000;
  const check = await db.sql('SELECT sum(list_sum(embedding)) FROM result_ml');
  await db.close();
  return { seconds, checksum: Number(check.rows[0]![0]) };
}

/** The best hand-written batch size, then both sides twice (best of two). */
export async function benchmarkTextEmbedding(): Promise<BenchmarkResult> {
  const root = mkdtempSync(join(tmpdir(), 'modelsql-bench-text-'));
  try {
    const dir = writeTextModel(join(root, 'model'), { hidden: 32, layers: 1, maxPositions: MAX_LENGTH, seed: 5 });
    const sizes = [64, 512, 2048];
    const tried = [];
    for (const size of sizes) tried.push({ size, ...(await handWritten(dir, size)) });
    const best = tried.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const hand = Math.min(best.seconds, (await handWritten(dir, best.size)).seconds);
    const ours = [await modelsql(dir), await modelsql(dir)];
    const m = Math.min(...ours.map((r) => r.seconds));
    const relative = Math.abs(best.checksum - ours[0]!.checksum) / Math.max(1, Math.abs(best.checksum));
    if (!(relative < 1e-4)) throw new Error(`results differ: hand-written sum ${best.checksum}, modelsql sum ${ours[0]!.checksum}`);
    return {
      name: `Local text model embeddings, ${ROWS.toLocaleString('en-US')} short texts (DuckDB)`,
      rows: ROWS,
      modelsqlRowsPerSecond: ROWS / m,
      handWrittenRowsPerSecond: ROWS / hand,
      ratio: hand / m,
      details: [`hand-written batch sizes: ${tried.map((t) => `${t.size} → ${Math.round(ROWS / t.seconds).toLocaleString('en-US')} texts/s`).join(', ')}`],
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
