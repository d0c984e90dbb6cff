/**
 * DuckDB's one-pass stage (duckdb-stage.ts): every way its input is read (a base table in
 * place, a copy of any other query) and its predictions written (a second connection, or
 * kept until the input is read inside a transaction) pairs each prediction with its own
 * input row, and leaves no table behind.
 */
import { openDuckDB } from '../../../adapters/duckdb/index.js';
import type { Session } from '../../../core/session/session.js';
import { linearExpected, writeModelFiles } from '../../support/model-files.js';

const files = writeModelFiles();
const ROWS = 5000;

/** Rows (id, a, b, y) whose y is not the model's prediction for their own a and b. */
function mismatches(rows: readonly (readonly unknown[])[]): unknown[] {
  return rows.filter(([, a, b, y]) => {
    if (a === null || b === null) return y !== null;
    const expected = linearExpected(a as number, b as number);
    return typeof y !== 'number' || Math.abs(y - expected) > 1e-4 * Math.max(1, Math.abs(expected));
  });
}

describe('DuckDB one-pass stage', () => {
  let db: Session;
  const leftovers = async () => (await db.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '__modelsql%'")).rows[0]![0];
  beforeAll(async () => {
    db = await openDuckDB();
    await db.sql(`CREATE TABLE t AS SELECT i AS id, i * 0.25 AS a, CAST(i % 11 AS DOUBLE) - 5 AS b FROM range(${ROWS}) r(i)`);
    await db.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
  });
  afterAll(async () => {
    await db.close();
  });

  it('reads a base table in place, across batch and chunk boundaries, in table order', async () => {
    const r = await db.sql(`SELECT id, a, b, y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b), MAP['batch-size', '1000'])`);
    expect(r.rows).toHaveLength(ROWS);
    expect(r.rows.map((row) => row[0])).toEqual(Array.from({ length: ROWS }, (_, i) => BigInt(i)));
    expect(mismatches(r.rows)).toEqual([]);
    expect(await leftovers()).toBe(0n);
  });

  it('pairs rows of a table with deleted and updated rows', async () => {
    await db.sql(`CREATE TABLE holes AS SELECT * FROM t`);
    await db.sql(`DELETE FROM holes WHERE id % 3 = 0 OR id BETWEEN 2000 AND 2999`);
    await db.sql(`UPDATE holes SET a = -a WHERE id % 5 = 0`);
    await db.sql(`INSERT INTO holes VALUES (9999, 1.5, 2.5)`);
    const r = await db.sql(`SELECT id, a, b, y FROM ML_PREDICT(TABLE holes, MODEL lin, DESCRIPTOR(a, b))`);
    const expected = (await db.sql('SELECT count(*) FROM holes')).rows[0]![0];
    expect(BigInt(r.rows.length)).toBe(expected);
    expect(mismatches(r.rows)).toEqual([]);
  });

  it('gives NULL outputs for NULL features', async () => {
    await db.sql(`CREATE TABLE gaps AS SELECT id, CASE WHEN id % 4 = 0 THEN NULL ELSE a END AS a, b FROM t`);
    const r = await db.sql(`SELECT id, a, b, y FROM ML_PREDICT(TABLE gaps, MODEL lin, DESCRIPTOR(a, b))`);
    expect(r.rows.filter((row) => row[3] === null)).toHaveLength(ROWS / 4);
    expect(mismatches(r.rows)).toEqual([]);
  });

  it('reads a view, a subquery and a temporary table that shadows a table, in their own order', async () => {
    await db.sql(`CREATE VIEW backwards AS SELECT * FROM t ORDER BY id DESC`);
    const view = await db.sql(`SELECT id, a, b, y FROM ML_PREDICT(TABLE backwards, MODEL lin, DESCRIPTOR(a, b))`);
    expect(view.rows[0]![0]).toBe(BigInt(ROWS - 1));
    expect(mismatches(view.rows)).toEqual([]);

    const sub = await db.sql(`SELECT id, a, b, y FROM ML_PREDICT(TABLE (SELECT id, b AS a, a AS b FROM t WHERE id % 2 = 1 ORDER BY b DESC, id), MODEL lin, DESCRIPTOR(a, b))`);
    expect(sub.rows).toHaveLength(ROWS / 2);
    expect(sub.rows[0]![0]).toBe(BigInt(ROWS - 1));
    expect(mismatches(sub.rows)).toEqual([]);

    await db.sql(`CREATE TABLE shadow AS SELECT * FROM t`);
    await db.sql(`CREATE TEMPORARY TABLE shadow AS SELECT id, a * 2 AS a, b FROM t WHERE id < 100`);
    const shadowed = await db.sql(`SELECT id, a, b, y FROM ML_PREDICT(TABLE shadow, MODEL lin, DESCRIPTOR(a, b))`);
    expect(shadowed.rows).toHaveLength(100);
    expect(mismatches(shadowed.rows)).toEqual([]);
  });

  it('pairs rows when scans need not keep insertion order', async () => {
    // Several row groups (122,880 rows each), which parallel scans may return in any order.
    const rows = 400_000;
    await db.sql(`CREATE TABLE wide AS SELECT i AS id, i * 0.25 AS a, CAST(i % 11 AS DOUBLE) - 5 AS b FROM range(${rows}) r(i)`);
    await db.sql(`SET preserve_insertion_order = false`);
    try {
      await db.sql(`CREATE TABLE wide_y AS SELECT id, a, b, y FROM ML_PREDICT(TABLE wide, MODEL lin, DESCRIPTOR(a, b))`);
      const r = await db.sql(`SELECT count(*), count(*) FILTER (WHERE abs(y - (2 * a + 3 * b - 1)) > 1e-4 * greatest(1, abs(2 * a + 3 * b - 1))) FROM wide_y`);
      expect(r.rows).toEqual([[BigInt(rows), 0n]]);
    } finally {
      await db.sql(`SET preserve_insertion_order = true`);
    }
  });

  describe('over wide rows', () => {
    // A statement's table that copies more than 64 bytes a row of the input, from a call
    // that allows any order, gets its rows paired with their predictions by a join on rowid:
    // every DuckDB type rides along, NULLs included, over several row groups (122,880 rows).
    // Calls in input order (the default) keep the positional join.
    const UNORDERED = `, MAP['output-mode', 'ALLOW_UNORDERED']`;
    const WIDE_ROWS = 300_000;
    const carried = [
      `'name ' || i AS s`,
      `CAST('bytes' || i AS BLOB) AS bl`,
      `[i, i + 1] AS l`,
      `{'k': i, 'v': 'x' || i} AS st`,
      `CAST(i AS DECIMAL(18, 3)) / 7 AS dec`,
      `CAST(i AS DECIMAL(38, 2)) AS hugedec`,
      `TIMESTAMP '2020-01-01' + to_seconds(i) AS ts`,
      `DATE '2020-01-01' + CAST(i % 1000 AS INTEGER) AS d`,
      `i % 2 = 0 AS flag`,
      `CAST(md5(CAST(i AS VARCHAR)) AS UUID) AS u`,
      `to_days(CAST(i % 30 AS INTEGER)) AS iv`,
      `MAP {'m': i} AS mp`,
      `CAST(i AS HUGEINT) * 1000000000000 AS hi`,
    ];
    const nullable = (expression: string) => {
      const [value, name] = expression.split(/ AS (?=\w+$)/);
      return `CASE WHEN i % 7 = 3 THEN NULL ELSE ${value} END AS ${name}`;
    };
    beforeAll(async () => {
      await db.sql(
        `CREATE TABLE wide_in AS SELECT i AS id, i * 0.25 AS a, CASE WHEN i % 13 = 0 THEN NULL ELSE CAST(i % 11 AS DOUBLE) - 5 END AS b, ${carried.map(nullable).join(', ')} FROM range(${WIDE_ROWS}) r(i)`,
      );
    });
    /** Rows, rows whose y is not their own prediction, rows out of input order. */
    const wrong = (table: string) =>
      db.sql(
        `SELECT count(*), count(*) FILTER (WHERE y IS DISTINCT FROM 2 * a + 3 * b - 1 AND abs(y - (2 * a + 3 * b - 1)) > 1e-4 * greatest(1, abs(2 * a + 3 * b - 1))), count(*) FILTER (WHERE rowid <> id) FROM ${table}`,
      );

    it('writes SELECT * in input order by default', async () => {
      await db.sql(`CREATE TABLE wide_ordered AS SELECT * FROM ML_PREDICT(TABLE wide_in, MODEL lin, DESCRIPTOR(a, b))`);
      expect((await wrong('wide_ordered')).rows).toEqual([[BigInt(WIDE_ROWS), 0n, 0n]]);
    });

    it('writes an unordered SELECT * with every type carried, NULLs kept', async () => {
      await db.sql(`CREATE TABLE wide_out AS SELECT * FROM ML_PREDICT(TABLE wide_in, MODEL lin, DESCRIPTOR(a, b)${UNORDERED})`);
      expect((await wrong('wide_out')).rows[0]!.slice(0, 2)).toEqual([BigInt(WIDE_ROWS), 0n]);
      // The carried columns are the input's, value for value, and the same as through the positional path.
      const differ = await db.sql(`SELECT count(*) FROM (SELECT * EXCLUDE (y, mp) FROM wide_out EXCEPT ALL SELECT * EXCLUDE (mp) FROM wide_in)`);
      expect(differ.rows).toEqual([[0n]]);
      const maps = await db.sql(`SELECT count(*) FROM wide_out o JOIN wide_in i USING (id) WHERE CAST(o.mp AS VARCHAR) IS DISTINCT FROM CAST(i.mp AS VARCHAR)`);
      expect(maps.rows).toEqual([[0n]]);
      const narrow = await db.sql(
        `SELECT count(*) FROM (SELECT id, y FROM wide_out EXCEPT ALL SELECT id, y FROM ML_PREDICT(TABLE (SELECT id, a, b FROM wide_in), MODEL lin, DESCRIPTOR(a, b)))`,
      );
      expect(narrow.rows).toEqual([[0n]]);
      const types = await db.sql(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'wide_out' ORDER BY ordinal_position`);
      const inputTypes = await db.sql(`SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'wide_in' ORDER BY ordinal_position`);
      expect(types.rows).toEqual([...inputTypes.rows, ['y', 'DOUBLE']]);
      expect(await leftovers()).toBe(0n);
    });

    it('writes an unordered SELECT * of outputs kept in a table (BIGINT) by a join on rowid: the rows written in order', async () => {
      await db.sql(`CREATE MODEL lin_big INPUT (a DOUBLE, b DOUBLE) OUTPUT (y BIGINT) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
      await db.sql(`CREATE TABLE wide_big_un AS SELECT * FROM ML_PREDICT(TABLE wide_in, MODEL lin_big, DESCRIPTOR(a, b)${UNORDERED})`);
      await db.sql(`CREATE TABLE wide_big AS SELECT * FROM ML_PREDICT(TABLE wide_in, MODEL lin_big, DESCRIPTOR(a, b))`);
      const differ = await db.sql(`SELECT (SELECT count(*) FROM wide_big_un), (SELECT count(*) FROM (SELECT * EXCLUDE (mp) FROM wide_big_un EXCEPT ALL SELECT * EXCLUDE (mp) FROM wide_big))`);
      expect(differ.rows).toEqual([[BigInt(WIDE_ROWS), 0n]]);
      const order = await db.sql(`SELECT count(*) FILTER (WHERE rowid <> id), count(*) FILTER (WHERE y IS DISTINCT FROM CAST(trunc(2 * a + 3 * b - 1) AS BIGINT) AND abs(y - (2 * a + 3 * b - 1)) > 1) FROM wide_big`);
      expect(order.rows).toEqual([[0n, 0n]]);
      expect(await leftovers()).toBe(0n);
    });

    it('inserts an unordered SELECT *', async () => {
      await db.sql(`CREATE TABLE wide_ins AS SELECT *, CAST(NULL AS DOUBLE) AS y FROM wide_in LIMIT 0`);
      await db.sql(`INSERT INTO wide_ins SELECT * FROM ML_PREDICT(TABLE wide_in, MODEL lin, DESCRIPTOR(a, b)${UNORDERED})`);
      expect((await wrong('wide_ins')).rows[0]!.slice(0, 2)).toEqual([BigInt(WIDE_ROWS), 0n]);
      const strings = await db.sql(`SELECT count(*) FROM wide_ins WHERE s IS DISTINCT FROM CASE WHEN id % 7 = 3 THEN NULL ELSE 'name ' || id END`);
      expect(strings.rows).toEqual([[0n]]);
    });

    it('pairs rows of an unordered call over a wide table with deleted rows, and inside a transaction', async () => {
      await db.sql(`CREATE TABLE wide_holes AS SELECT * FROM wide_in`);
      await db.sql(`DELETE FROM wide_holes WHERE id % 3 = 0 OR id BETWEEN 100000 AND 150000`);
      await db.sql(`CREATE TABLE wide_holes_y AS SELECT * FROM ML_PREDICT(TABLE wide_holes, MODEL lin, DESCRIPTOR(a, b)${UNORDERED})`);
      const [count, nonNull] = (await db.sql('SELECT count(*), count(b) FROM wide_holes')).rows[0]!;
      const check = (table: string) =>
        db.sql(`SELECT count(*), count(*) FILTER (WHERE abs(y - (2 * a + 3 * b - 1)) > 1e-4 * greatest(1, abs(2 * a + 3 * b - 1))), count(y) FROM ${table}`);
      expect((await check('wide_holes_y')).rows).toEqual([[count, 0n, nonNull]]);
      await db.sql('BEGIN');
      try {
        await db.sql(`DELETE FROM wide_holes WHERE id < 1000`);
        await db.sql(`CREATE TABLE wide_inside AS SELECT * FROM ML_PREDICT(TABLE wide_holes, MODEL lin, DESCRIPTOR(a, b)${UNORDERED})`);
        const [inside, insideNonNull] = (await db.sql('SELECT count(*), count(b) FROM wide_holes')).rows[0]!;
        expect((await check('wide_inside')).rows).toEqual([[inside, 0n, insideNonNull]]);
      } finally {
        await db.sql('ROLLBACK');
      }
      expect(await leftovers()).toBe(0n);
    });

    it('pairs an unordered call by position when a column is named rowid', async () => {
      await db.sql(`CREATE TABLE wide_rowid AS SELECT 5000 - id AS rowid, * FROM wide_in WHERE id < 5000`);
      await db.sql(`CREATE TABLE wide_rowid_y AS SELECT * FROM ML_PREDICT(TABLE wide_rowid, MODEL lin, DESCRIPTOR(a, b)${UNORDERED})`);
      const r = await db.sql(
        `SELECT count(*), count(*) FILTER (WHERE abs(y - (2 * a + 3 * b - 1)) > 1e-4 * greatest(1, abs(2 * a + 3 * b - 1))), count(*) FILTER (WHERE rowid <> 5000 - id) FROM wide_rowid_y`,
      );
      expect(r.rows).toEqual([[5000n, 0n, 0n]]);
    });
  });

  it('pairs each row with its own prediction when a CTE of the statement has the input table\'s name', async () => {
    // The stage runs its input apart from the statement, where the name is the base table's;
    // the statement's relation must read that same table, not the CTE that shadows it there.
    for (const config of ['', `, MAP['output-mode', 'ALLOW_UNORDERED']`]) {
      const r = await db.sql(`WITH t AS (SELECT * FROM main.t WHERE id >= ${ROWS - 10}) SELECT id, a, b, y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b)${config})`);
      expect(mismatches(r.rows)).toEqual([]);
      expect(r.rows.every((row) => row[0] !== null)).toBe(true);
    }
  });

  it('runs nested calls, and several calls in one statement', async () => {
    const nested = await db.sql(
      `SELECT id, a, b, y FROM ML_PREDICT(TABLE (SELECT id, y AS a, b FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))), MODEL lin, DESCRIPTOR(a, b))`,
    );
    expect(mismatches(nested.rows)).toEqual([]);
    const both = await db.sql(
      `SELECT p.id, p.a, p.b, p.y, q.y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b)) p JOIN ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(b, a)) q ON p.id = q.id`,
    );
    expect(both.rows).toHaveLength(ROWS);
    expect(mismatches(both.rows)).toEqual([]);
    expect(await leftovers()).toBe(0n);
  });

  it('sees the rows of an open transaction, in several statements of it, and leaves them to ROLLBACK', async () => {
    await db.sql('BEGIN');
    try {
      await db.sql(`INSERT INTO t VALUES (${ROWS}, 1, 1)`);
      const first = await db.sql(`SELECT id, a, b, y FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))`);
      expect(first.rows).toHaveLength(ROWS + 1);
      expect(mismatches(first.rows)).toEqual([]);
      await db.sql(`CREATE TABLE inside AS SELECT * FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id < 10), MODEL lin, DESCRIPTOR(a, b))`);
      const second = await db.sql(`SELECT id, a, b, y FROM inside`);
      expect(second.rows).toHaveLength(10);
      expect(mismatches(second.rows)).toEqual([]);
    } finally {
      await db.sql('ROLLBACK');
    }
    expect((await db.sql('SELECT count(*) FROM t')).rows[0]![0]).toBe(BigInt(ROWS));
    expect(await leftovers()).toBe(0n);
  });

  it('leaves no table behind when the statement around the call fails', async () => {
    await expect(db.sql(`SELECT no_such_column FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))`)).rejects.toThrow(/no_such_column/);
    expect(await leftovers()).toBe(0n);
  });
});
