/**
 * A model that takes one `[N, k]` matrix of 8 or more features gets them row by row on
 * DuckDB (`ColumnBatch.rowMajor`): one `DOUBLE[k]` array a row, which DuckDB builds and the
 * stage copies a chunk at a time (duckdb-chunks.ts). Postgres hands them over column by
 * column; the same checks run there. Every row still gets its own prediction, a NULL anywhere in a row makes
 * that row's outputs NULL, integer and DECIMAL inputs are read as the columnar path reads
 * them, and a runtime that reads columns gets them from the rows.
 */
import { jest } from '@jest/globals';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADAPTERS } from '../support/adapters.js';
import { OnnxModelRuntime } from '../../core/runtime/onnx-runtime.js';
import type { ColumnBatch } from '../../core/model-types.js';
import type { Session } from '../../core/session/session.js';
import { linearRegressorModel } from '../support/onnx-models.js';

const WEIGHTS = [0.5, -1.25, 2, 0.75, -0.5, 1, -2, 0.25, 1.5];
const K = WEIGHTS.length;
const NAMES = WEIGHTS.map((_, j) => `f${j}`);
const BIAS = 3;
const ROWS = 10_000;

/** Runs `statement` and says, for each batch the ONNX runtime got, whether it came row by row. */
async function batchesRowMajor(statement: () => Promise<unknown>): Promise<boolean[]> {
  const original = OnnxModelRuntime.prototype.predictBatch;
  const rowMajor: boolean[] = [];
  const spy = jest.spyOn(OnnxModelRuntime.prototype, 'predictBatch').mockImplementation(function (this: OnnxModelRuntime, b: ColumnBatch, options) {
    rowMajor.push(b.rowMajor !== undefined);
    return original.call(this, b, options);
  });
  try {
    await statement();
  } finally {
    spy.mockRestore();
  }
  return rowMajor;
}

for (const adapter of ADAPTERS) describe(`features read row by row for a matrix model on ${adapter.name}`, () => {
  let db: Session;
  const dir = mkdtempSync(join(tmpdir(), 'modelsql-rows-'));
  beforeAll(async () => {
    writeFileSync(join(dir, 'wide.onnx'), linearRegressorModel(WEIGHTS, BIAS));
    db = await adapter.open();
    // Feature j of row i is NULL where i % 37 = j + 1: NULLs at every place in a row, across chunks and batches.
    const feature = (j: number, expr: string) => `CASE WHEN i % 37 = ${j + 1} THEN NULL ELSE ${expr} END AS f${j}`;
    const kinds = ['i * 0.5', 'CAST(i % 13 AS INTEGER)', 'CAST(i % 7 AS DECIMAL(9,2)) / 4', 'CAST(-i AS BIGINT)', 'CAST(i % 3 AS REAL)'];
    await db.sql(`CREATE TABLE t AS SELECT i AS id, ${NAMES.map((_, j) => feature(j, kinds[j % kinds.length]!)).join(', ')} FROM generate_series(0, ${ROWS - 1}) AS r(i)`);
    await db.sql(`CREATE MODEL wide INPUT (${NAMES.map((n) => `${n} DOUBLE`).join(', ')}) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${join(dir, 'wide.onnx')}')`);
  });
  afterAll(async () => {
    await db.close();
  });

  const expected = WEIGHTS.map((w, j) => `${w} * CAST(f${j} AS DOUBLE PRECISION)`).join(' + ') + ` + ${BIAS}`;
  const wrong = (y: string) => `sum(CASE WHEN (${y} IS NULL) <> (${expected} IS NULL) OR abs(${y} - (${expected})) > 1e-3 * greatest(1, abs(${expected})) THEN 1 ELSE 0 END)`;

  (adapter.name === 'duckdb' ? it : it.skip)('reads fewer features column by column on DuckDB', async () => {
    writeFileSync(join(dir, 'narrow.onnx'), linearRegressorModel(WEIGHTS.slice(0, 3), BIAS));
    await db.sql(`CREATE MODEL narrow INPUT (f0 DOUBLE, f1 DOUBLE, f2 DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${join(dir, 'narrow.onnx')}')`);
    const rowMajor = await batchesRowMajor(async () => {
      const r = await db.sql(`SELECT count(y) FROM ML_PREDICT(TABLE t, MODEL narrow, DESCRIPTOR(f0, f1, f2))`);
      expect(Number(r.rows[0]![0])).toBeGreaterThan(0);
    });
    expect(rowMajor).toContain(false);
    expect(rowMajor).not.toContain(true);
  });

  it.each([['1000'], ['2048'], ['4097']])('pairs every row with its prediction, NULL rows NULL (batch size %s)', async (batch) => {
    const rowMajor = await batchesRowMajor(async () => {
      const r = await db.sql(`SELECT count(*), count(y), ${wrong('y')} FROM ML_PREDICT(TABLE t, MODEL wide, DESCRIPTOR(${NAMES.join(', ')}), MAP['batch-size', '${batch}'])`);
      const withNull = Number((await db.sql(`SELECT count(*) FROM t WHERE ${NAMES.map((n) => `${n} IS NULL`).join(' OR ')}`)).rows[0]![0]);
      expect(withNull).toBe(Array.from({ length: ROWS }, (_, i) => i % 37).filter((m) => m >= 1 && m <= K).length);
      expect(r.rows[0]!.map(Number)).toEqual([ROWS, ROWS - withNull, 0]);
    });
    expect(rowMajor.length).toBeGreaterThanOrEqual(Math.floor(ROWS / Number(batch)));
    expect(rowMajor.every((r) => r === (adapter.name === 'duckdb'))).toBe(true);
  });

  it('gives the same predictions as the model written in SQL through every way the stage writes', async () => {
    const call = `ML_PREDICT(TABLE t, MODEL wide, DESCRIPTOR(${NAMES.join(', ')}))`;
    await db.sql(`CREATE TABLE direct AS SELECT id, y FROM ${call}`);
    await db.sql(`CREATE TABLE star AS SELECT * FROM ${call}`);
    const direct = await db.sql(`SELECT count(*), ${wrong('d.y')} FROM direct d JOIN t USING (id)`);
    const star = await db.sql(`SELECT count(*), ${wrong('y')} FROM star`);
    expect(direct.rows[0]!.map(Number)).toEqual([ROWS, 0]);
    expect(star.rows[0]!.map(Number)).toEqual([ROWS, 0]);
    await db.sql('DROP TABLE direct; DROP TABLE star');
  });

  it('reads them so for an INTEGER output too (on Postgres, through COPY text rather than binary)', async () => {
    await db.sql(`CREATE MODEL wide_int INPUT (${NAMES.map((n) => `${n} DOUBLE`).join(', ')}) OUTPUT (y INTEGER) WITH ('provider' = 'onnx', 'path' = '${join(dir, 'wide.onnx')}')`);
    const rowMajor = await batchesRowMajor(async () => {
      const r = await db.sql(
        `SELECT count(*), count(y), sum(CASE WHEN (y IS NULL) <> ((${expected}) IS NULL) OR abs(y - (${expected})) > 1 THEN 1 ELSE 0 END) FROM ML_PREDICT(TABLE t, MODEL wide_int, DESCRIPTOR(${NAMES.join(', ')}), MAP['batch-size', '3000'])`,
      );
      const withNull = Array.from({ length: ROWS }, (_, i) => i % 37).filter((m) => m >= 1 && m <= K).length;
      expect(r.rows[0]!.map(Number)).toEqual([ROWS, ROWS - withNull, 0]);
    });
    expect(rowMajor.length).toBeGreaterThanOrEqual(3);
    expect(rowMajor.every((r) => r === (adapter.name === 'duckdb'))).toBe(true);
  });
});
