/**
 * DuckDB's stage reads its predictions back by rowid through a scalar function
 * (duckdb-stage-lookup.ts) where the input keeps insertion order: rows under filters,
 * limits and joins above the call get their own predictions, FLOAT and several outputs are
 * read, nothing is held once a statement ends (failed ones included), and the function
 * called by hand finds nothing: not with a guessed id, not with a held stage's id read from
 * the statement's text through a function of another type (which wrote past the output
 * vector), not with the id of a stage another database is running.
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

  it('finds nothing for a held stage read through a function of another type', async () => {
    // The statement's own stage id, from its rewritten text: a DOUBLE read as FLOAT would
    // copy 8 bytes a row into a vector of 4, a FLOAT read as DOUBLE leave half of it unset.
    const idOf = (fn: string) => `CAST(regexp_extract(current_query(), '${fn}\\((\\d+)', 1) AS BIGINT)`;
    await expect(db.sql(`SELECT __modelsql_stage_float(${idOf('__modelsql_stage_double')}, 0, id) FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))`)).rejects.toThrow(/no longer held/);
    await expect(db.sql(`SELECT __modelsql_stage_double(${idOf('__modelsql_stage_float')}, 0, id) FROM ML_PREDICT(TABLE t, MODEL lin32, DESCRIPTOR(a, b))`)).rejects.toThrow(/no longer held/);
    await expect(db.sql(`SELECT __modelsql_stage_integer(${idOf('__modelsql_stage_double')}, 0, id) FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))`)).rejects.toThrow(/no longer held/);
  });

  it("finds nothing for the id of a stage another database is running", async () => {
    const other = await openDuckDB();
    try {
      await other.sql(`CREATE TABLE t AS SELECT 1.0 AS a, 2.0 AS b`);
      await other.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
      expect((await other.sql(`SELECT y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))`)).rows).toEqual([[7]]);
      const opened = jest.spyOn(PredictionStore, 'open');
      // Held while its rows stream: the first batch is read, the statement not finished.
      const running = db.stream(`SELECT id, y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))`)[Symbol.asyncIterator]();
      try {
        expect((await running.next()).done).toBe(false);
        const id = (opened.mock.results[0]!.value as PredictionStore).id;
        opened.mockRestore();
        expect(heldStageCount()).toBe(1);
        await expect(other.sql(`SELECT __modelsql_stage_double(${id}, 0, 5)`)).rejects.toThrow(/no longer held/);
      } finally {
        await running.return?.();
      }
    } finally {
      await other.close();
    }
  });
});
