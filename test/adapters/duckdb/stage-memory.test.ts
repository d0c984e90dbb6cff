/**
 * What DuckDB's one-pass stage holds in this process is bounded by the batch, not by the
 * table: the batches in flight and one data chunk per batch being appended (`appendBatch`
 * fills one chunk again for every 2,048 rows; the driver frees a chunk only when V8
 * collects its wrapper). What grows with the rows is the predictions themselves (held in
 * this process for a DOUBLE output, duckdb-stage-lookup.ts; in DuckDB's table of them
 * otherwise).
 *
 * The peak resident set size is sampled at every fetched chunk; the assertions compare
 * growths in megabytes with wide margins (no timing is involved).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { duckdbApi } from '../../../adapters/duckdb/duckdb-api.js';
import { openDuckDB } from '../../../adapters/duckdb/index.js';
import type { Session } from '../../../core/session/session.js';
import { linearRegressorModel } from '../../support/onnx-models.js';

const FEATURES = 8;
const SMALL = 500_000;
const BIG = 2_000_000;
/** Bytes of the feature chunks of the rows the big table has more (8 DOUBLE columns). */
const EXTRA_CHUNK_BYTES = (BIG - SMALL) * FEATURES * 8;

/** Samples the process's resident set size at every chunk fetched or made while `run` runs; returns the peak growth. */
async function peakGrowth(run: () => Promise<unknown>): Promise<{ bytes: number; created: number }> {
  const Result = duckdbApi.DuckDBResult.prototype;
  const Chunk = duckdbApi.DuckDBDataChunk;
  const fetchChunk = Result.fetchChunk;
  const create = Chunk.create;
  const before = process.memoryUsage.rss();
  let peak = before;
  let created = 0;
  Result.fetchChunk = async function (this: typeof Result) {
    peak = Math.max(peak, process.memoryUsage.rss());
    return fetchChunk.call(this);
  } as typeof fetchChunk;
  Chunk.create = ((...args: Parameters<typeof create>) => {
    created++;
    return create.apply(Chunk, args);
  }) as typeof create;
  try {
    await run();
  } finally {
    Result.fetchChunk = fetchChunk;
    Chunk.create = create;
  }
  return { bytes: Math.max(peak, process.memoryUsage.rss()) - before, created };
}

describe('DuckDB stage memory', () => {
  let db: Session;
  const columns = Array.from({ length: FEATURES }, (_, j) => `f${j}`).join(', ');
  const predict = (table: string, options = '') => db.sql(`SELECT count(*), sum(y) FROM ML_PREDICT(TABLE ${table}, MODEL m, DESCRIPTOR(${columns})${options})`);
  beforeAll(async () => {
    db = await openDuckDB();
    const dir = mkdtempSync(join(tmpdir(), 'modelsql-stage-memory-'));
    const weights = Array.from({ length: FEATURES }, (_, j) => (j % 3) - 1);
    writeFileSync(join(dir, 'm.onnx'), linearRegressorModel(weights, 0.5));
    const features = weights.map((_, j) => `CAST((i * ${j + 3}) % 100 AS DOUBLE) AS f${j}`).join(', ');
    await db.sql(`CREATE TABLE small AS SELECT i AS id, ${features} FROM range(${SMALL}) r(i)`);
    await db.sql(`CREATE TABLE big AS SELECT i AS id, ${features} FROM range(${BIG}) r(i)`);
    const inputs = weights.map((_, j) => `f${j} DOUBLE`).join(', ');
    await db.sql(`CREATE MODEL m INPUT (${inputs}) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${join(dir, 'm.onnx')}')`);
    await predict('small'); // loads the model and warms the allocator
  });
  afterAll(async () => {
    await db.close();
  });

  it('grows the process by about as much for 4× the rows', async () => {
    const small = await peakGrowth(() => predict('small'));
    const big = await peakGrowth(() => predict('big'));
    const [rows] = (await predict('big')).rows[0]!;
    expect(rows).toBe(BigInt(BIG));
    // Holding the features of the extra 1,500,000 rows would take ≈ 92 MB more; what does
    // grow is the predictions, ≈ 12 MB more. Two thirds of the features'
    // bytes is the bound: the chunks' native memory is freed when V8 collects their
    // wrappers, and on a machine whose cores are busy with other work V8's concurrent
    // collection runs later, so the same code has peaked at 16 to 52 MB more.
    expect(big.bytes - small.bytes).toBeLessThan((EXTRA_CHUNK_BYTES * 2) / 3);
  });

  it('fills one chunk per appended batch, not one per 2,048 rows', async () => {
    // Without insertion order kept, the predictions go to a table of them, by rowid.
    await db.sql('SET preserve_insertion_order = false');
    try {
      const { created } = await peakGrowth(() => predict('small', `, MAP['batch-size', '50000']`));
      // 500,000 predictions: 245 slices of 2,048 rows, in 10 batches of 50,000.
      expect(created).toBe(10);
    } finally {
      await db.sql('RESET preserve_insertion_order');
    }
  });
});
