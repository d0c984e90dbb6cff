/**
 * DuckDB's stage reads its predictions back by rowid through a scalar function
 * (duckdb-stage-lookup.ts) where the input keeps insertion order: rows under filters,
 * limits and joins above the call get their own predictions, FLOAT and several outputs are
 * read, nothing is held once a statement ends (failed ones included), and the function
 * called by hand finds nothing.
 */
import { jest } from '@jest/globals';
import { heldStageCount, PredictionStore } from '../../../adapters/duckdb/duckdb-stage-lookup.js';
import { openDuckDB } from '../../../adapters/duckdb/index.js';
import type { Session } from '../../../core/session/session.js';
import { linearExpected, writeModelFiles } from '../../support/model-files.js';

const files = writeModelFiles();
const ROWS = 20_000;

describe('DuckDB stage: predictions read back by rowid', () => {
  let db: Session;
  beforeAll(async () => {
    db = await openDuckDB();
    await db.sql(`CREATE TABLE t AS SELECT i AS id, i * 0.25 AS a, CAST(i % 11 AS DOUBLE) - 5 AS b FROM range(${ROWS}) r(i)`);
    await db.sql(`DELETE FROM t WHERE id % 101 = 7`);
    await db.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
    await db.sql(`CREATE MODEL lin32 INPUT (a DOUBLE, b DOUBLE) OUTPUT (y FLOAT) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
  });
  afterAll(async () => {
    await db.close();
  });
  afterEach(() => {
    expect(heldStageCount()).toBe(0);
  });

  const wrong = (rows: readonly (readonly unknown[])[]) =>
    rows.filter(([, a, b, y]) => Math.abs((y as number) - linearExpected(a as number, b as number)) > 1e-3 * Math.max(1, Math.abs(linearExpected(a as number, b as number))));

  it('pairs rows under a filter, an order and a limit above the call', async () => {
    const opened = jest.spyOn(PredictionStore, 'open');
    const filtered = await db.sql(`SELECT id, a, b, y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b)) WHERE id % 7 = 3 AND y > 0`);
    expect(filtered.rows.length).toBeGreaterThan(1000);
    expect(wrong(filtered.rows)).toEqual([]);
    const last = await db.sql(`SELECT id, a, b, y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b)) ORDER BY id DESC LIMIT 5`);
    expect(last.rows.map((r) => r[0])).toEqual([19999n, 19998n, 19997n, 19996n, 19995n]);
    expect(wrong(last.rows)).toEqual([]);
    expect(opened).toHaveBeenCalledTimes(2);
    opened.mockRestore();
  });

  it('pairs rows joined with another table and with a second call', async () => {
    const r = await db.sql(
      `SELECT p.id, p.a, p.b, p.y, q.y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b)) p JOIN (SELECT * FROM t WHERE id % 2 = 0) s ON s.id = p.id JOIN ML_PREDICT(TABLE t, MODEL lin32, DESCRIPTOR(a, b)) q ON q.id = p.id`,
    );
    expect(r.rows.length).toBeGreaterThan(9000);
    expect(wrong(r.rows)).toEqual([]);
    expect(wrong(r.rows.map(([id, a, b, , y]) => [id, a, b, y]))).toEqual([]);
  });

  it('reads FLOAT outputs as FLOAT', async () => {
    await db.sql(`CREATE TABLE out32 AS SELECT * FROM ML_PREDICT(TABLE t, MODEL lin32, DESCRIPTOR(a, b))`);
    const types = await db.sql(`SELECT data_type FROM information_schema.columns WHERE table_name = 'out32' AND column_name = 'y'`);
    expect(types.rows).toEqual([['FLOAT']]);
    const r = await db.sql(`SELECT count(*), count(*) FILTER (WHERE rowid <> rn) FROM (SELECT rowid, row_number() OVER (ORDER BY id) - 1 AS rn FROM out32)`);
    expect(r.rows).toEqual([[BigInt(ROWS - 198), 0n]]);
  });

  it('holds nothing after a statement that failed around the call', async () => {
    await expect(db.sql(`SELECT CAST(CAST(y AS VARCHAR) || 'x' AS INTEGER) FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))`)).rejects.toThrow(/Conversion|convert/i);
  });

  it('finds nothing for a stage called by hand', async () => {
    await expect(db.sql(`SELECT __modelsql_stage_double(12345, 0, 0)`)).rejects.toThrow(/no longer held/);
  });
});
