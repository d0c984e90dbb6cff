/**
 * `CREATE TABLE ... AS SELECT <columns> FROM ML_PREDICT(...)` on DuckDB writes the stage's
 * rows straight into the new table (duckdb-stage-target.ts): the same table, values, NULLs,
 * names and types as the general path (the same statement with `WHERE true`, which the
 * write does not take); the shapes it must leave alone; failures leave no table and the
 * catalog as it was. Which path ran is read off the Appenders the driver opened (the real
 * driver, observed): a direct write appends into the user's table, the general path into a
 * table of predictions.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { openDuckDB } from '../../../adapters/duckdb/index.js';
import { duckdbApi } from '../../../adapters/duckdb/duckdb-api.js';
import { fixedWidth } from '../../../adapters/duckdb/duckdb-stage-target.js';
import type { Session } from '../../../core/session/session.js';
import { expectSqlError } from '../../support/expect-error.js';
import { linearExpected, writeModelFiles } from '../../support/model-files.js';
import { fixedBatchModel } from '../../support/onnx-models.js';

const files = writeModelFiles();
const dir = mkdtempSync(join(tmpdir(), 'modelsql-duck-direct-'));
const fixedBatch = join(dir, 'fixed_batch.onnx');
writeFileSync(fixedBatch, fixedBatchModel());

const CALL = 'ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b))';
const ROWS = 2500;

describe('DuckDB: CREATE TABLE AS straight into the target', () => {
  let db: Session;
  let appended: string[] = [];
  const createAppender = duckdbApi.DuckDBConnection.prototype.createAppender;

  /** Runs `sql` and says which path it took: `direct` when rows were appended into a table of the user's. */
  async function run(sql: string): Promise<{ path: 'direct' | 'general'; result: Awaited<ReturnType<Session['sql']>> }> {
    appended = [];
    const result = await db.sql(sql);
    return { path: appended.some((table) => !table.startsWith('__modelsql')) ? 'direct' : 'general', result };
  }

  const rows = async (table: string) => (await db.sql(`SELECT * FROM ${table}`)).rows;
  const columns = async (table: string) => (await db.sql(`SELECT column_name, data_type, is_nullable FROM duckdb_columns() WHERE table_name = '${table}' ORDER BY column_index`)).rows;
  const tables = async () => (await db.sql("SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE table_name NOT LIKE '__modelsql%' ORDER BY ALL")).rows;
  const leftovers = async () => (await db.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '__modelsql%'")).rows[0]![0];
  const runs = async () => (await db.sql('SELECT count(*) FROM ml_catalog.prediction_runs')).rows[0]![0];

  beforeAll(() => {
    jest.spyOn(duckdbApi.DuckDBConnection.prototype, 'createAppender').mockImplementation(function (this: InstanceType<typeof duckdbApi.DuckDBConnection>, table: string, schema?: string | null, catalog?: string | null) {
      appended.push(table);
      return createAppender.call(this, table, schema, catalog);
    });
  });
  afterAll(() => jest.restoreAllMocks());

  beforeEach(async () => {
    db = await openDuckDB();
    await db.sql(
      `CREATE TABLE t AS SELECT i AS id, CASE WHEN i % 10 = 3 THEN NULL ELSE i * 0.5 END AS a, CAST(i % 7 - 3 AS DOUBLE) AS b, ` +
        `'row ' || i AS s, CAST(i / 3.0 AS DECIMAL(10, 2)) AS n, CASE WHEN i % 4 = 0 THEN NULL ELSE CAST(i AS INTEGER) END AS k, ` +
        `DATE '2024-01-01' + CAST(i AS INTEGER) AS d, i % 2 = 0 AS flag FROM range(1, ${ROWS + 1}) r(i)`,
    );
    await db.sql(`CREATE MODEL m INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}', 'batch-size' = '1000')`);
    await db.sql(`CREATE MODEL fails INPUT (a DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${fixedBatch}')`);
  });
  afterEach(async () => {
    expect(await leftovers()).toBe(0n);
    await db.close();
  });

  it.each([
    ['fixed-width input columns of 13 bytes a row', (r: string) => `CREATE TABLE ${r} AS SELECT id, k, flag, y FROM ${CALL}`],
    ['a projection with repeats, labels and column names', (r: string) => `CREATE TABLE ${r} (w, v) AS SELECT y, p.k AS label, id, y AS y_again, d FROM ${CALL} p`],
    ['outputs only, Flink form', (r: string) => `CREATE TABLE ${r} AS SELECT y FROM TABLE(ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b)))`],
    ['inputs only (the model still runs)', (r: string) => `CREATE TABLE ${r} AS SELECT k, id FROM ${CALL} AS p`],
    ['an ordered subquery, an output renamed against an input', (r: string) => `CREATE TABLE ${r} AS SELECT y, y0 FROM ML_PREDICT(TABLE (SELECT id, a, b, a AS y FROM t ORDER BY id DESC), MODEL m, DESCRIPTOR(a, b))`],
    ['a call over another call', (r: string) => `CREATE TABLE ${r} AS SELECT id, y0 FROM ML_PREDICT(TABLE (SELECT id, a, b, y FROM ${CALL}), MODEL m, DESCRIPTOR(b, y))`],
  ])('%s: the same table as the general path', async (_name, statement) => {
    const direct = await run(statement('dt'));
    const general = await run(`${statement('gt')} WHERE true`);
    expect([direct.path, general.path]).toEqual(['direct', 'general']);
    expect(direct.result).toEqual(general.result);
    expect(await rows('dt')).toEqual(await rows('gt'));
    expect(await columns('dt')).toEqual(await columns('gt'));
    expect((await rows('dt')).length).toBe(ROWS);
  });

  it('puts the predictions of each row next to that row, NULL where a feature is NULL, across batches', async () => {
    expect((await run(`CREATE TABLE dt AS SELECT id, k, y FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b), MAP['batch-size', '700'])`)).path).toBe('direct');
    expect((await db.sql('SELECT id FROM dt')).rows.map((r) => Number(r[0]))).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
    const got = await db.sql('SELECT id, t.a, t.b, dt.k, dt.y FROM dt JOIN t USING (id) ORDER BY id');
    for (const [id, a, b, k, y] of got.rows) {
      expect(k).toBe(Number(id) % 4 === 0 ? null : Number(id));
      if (a === null) expect(y).toBeNull();
      else expect(y).toBeCloseTo(linearExpected(Number(a), b as number), 3);
    }
    expect(await runs()).toBe(1n);
  });

  it('streams as the last statement of a script: one empty batch, the table written', async () => {
    const batches = [];
    appended = [];
    for await (const batch of db.stream(`SELECT 1; CREATE TABLE dt AS SELECT id, y FROM ${CALL}`)) batches.push(batch);
    expect(batches).toEqual([{ columns: [], rows: [] }]);
    expect(appended).toContain('dt');
    expect((await rows('dt')).length).toBe(ROWS);
  });

  it('creates the table where the statement would: the current schema after USE, a qualified name, an attached database', async () => {
    await db.sql('CREATE SCHEMA s2');
    await db.sql('USE memory.s2');
    const call = 'ML_PREDICT(TABLE main.t, MODEL main.m, DESCRIPTOR(a, b))';
    expect((await run(`CREATE TABLE r AS SELECT id, y FROM ${call}`)).path).toBe('direct');
    expect((await rows('memory.s2.r')).length).toBe(ROWS);
    expect((await run(`CREATE TABLE main."R2" AS SELECT id FROM ${call}`)).path).toBe('direct');
    expect((await rows('memory.main."R2"')).length).toBe(ROWS);
    await db.sql('USE memory.main');
    await db.sql(`ATTACH '${join(dir, `other-${Date.now()}.duckdb`)}' AS other`);
    expect((await run(`CREATE TABLE other.main.r AS SELECT id, y FROM ${CALL}`)).path).toBe('direct');
    expect((await rows('other.main.r')).length).toBe(ROWS);
    await db.sql('DETACH other');
  });

  it('goes on working after the database it wrote into, the current one then, is detached', async () => {
    await db.sql(`ATTACH '${join(dir, `current-${Date.now()}.duckdb`)}' AS current_db`);
    await db.sql('USE current_db');
    expect((await run('CREATE TABLE r AS SELECT id, y FROM ML_PREDICT(TABLE memory.main.t, MODEL memory.main.m, DESCRIPTOR(a, b))')).path).toBe('direct');
    expect((await rows('current_db.main.r')).length).toBe(ROWS);
    await db.sql('USE memory');
    await db.sql('DETACH current_db');
    expect((await db.sql(`SELECT count(y) FROM ${CALL}`)).rows).toEqual([[2250n]]);
    expect((await run(`CREATE TABLE r AS SELECT id, y FROM ${CALL}`)).path).toBe('direct');
    expect((await rows('memory.main.r')).length).toBe(ROWS);
  });

  it.each([
    ['a temporary table', `CREATE TEMP TABLE x AS SELECT id, y FROM ${CALL}`],
    ['IF NOT EXISTS', `CREATE TABLE IF NOT EXISTS x AS SELECT id, y FROM ${CALL}`],
    ['a VARCHAR input column', `CREATE TABLE x AS SELECT s, y FROM ${CALL}`],
    ['every column (a VARCHAR among them)', `CREATE TABLE x AS SELECT * FROM ${CALL}`],
    ['input columns of more than 16 bytes a row', `CREATE TABLE x AS SELECT id, n, k, d, y FROM ${CALL}`],
    ['INSERT INTO ... SELECT', `INSERT INTO x SELECT id, y FROM ${CALL}`],
  ])('leaves %s to the general path, with the same rows', async (_name, statement) => {
    if (statement.startsWith('INSERT')) await db.sql('CREATE TABLE x (id BIGINT, y DOUBLE)');
    expect((await run(statement)).path).toBe('general');
    expect((await rows('x')).length).toBe(ROWS);
  });

  it('inside a transaction takes the general path, and a ROLLBACK takes the table away', async () => {
    const before = await tables();
    await db.sql('BEGIN');
    expect((await run(`CREATE TABLE x AS SELECT id, y FROM ${CALL}`)).path).toBe('general');
    expect((await rows('x')).length).toBe(ROWS);
    await db.sql('ROLLBACK');
    expect(await tables()).toEqual(before);
  });

  it('a model failing mid-stream leaves no table, no rows and the catalog as it was', async () => {
    // The fixed-batch model runs the first batches of 2 rows and fails on the last, of 1.
    await db.sql('CREATE TABLE odd AS SELECT id, a FROM t WHERE id <= 2001');
    const before = await tables();
    const runsBefore = await runs();
    appended = [];
    await expectSqlError(db.sql(`CREATE TABLE x AS SELECT id, y FROM ML_PREDICT(TABLE odd, MODEL fails, DESCRIPTOR(a), MAP['batch-size', '2'])`), '38000', /ONNX inference failed/);
    expect(appended).toEqual(['x']);
    expect(await tables()).toEqual(before);
    expect(await runs()).toBe(runsBefore);
    // The name is free: the same statement over a good model writes it.
    expect((await run(`CREATE TABLE x AS SELECT id, y FROM ${CALL}`)).path).toBe('direct');
  });

  it('an existing table: the host error at the statement, nothing run or changed', async () => {
    await db.sql('CREATE TABLE x AS SELECT 1 AS one');
    const runsBefore = await runs();
    await expectSqlError(db.sql(`CREATE TABLE x AS SELECT id, y FROM ${CALL}`), '42P07', /already exists/);
    expect(await rows('x')).toEqual([[1]]);
    expect(await runs()).toBe(runsBefore);
  });

  it('knows the width of the fixed-width types, and no other', () => {
    expect(fixedWidth('BIGINT')).toBe(8);
    expect(fixedWidth('BOOLEAN')).toBe(1);
    expect(fixedWidth('TIMESTAMP WITH TIME ZONE')).toBe(8);
    expect([fixedWidth('DECIMAL(4,1)'), fixedWidth('DECIMAL(9,2)'), fixedWidth('DECIMAL(18,3)'), fixedWidth('DECIMAL(30,3)')]).toEqual([2, 4, 8, 16]);
    expect([fixedWidth('VARCHAR'), fixedWidth('INTEGER[2]'), fixedWidth("ENUM('x', 'y')"), fixedWidth('STRUCT(a INTEGER)')]).toEqual([undefined, undefined, undefined, undefined]);
  });
});

describe('DuckDB: CREATE TABLE AS straight into a table of a database file', () => {
  it('commits the table to the file: it is there after the database is opened again', async () => {
    const path = join(dir, `file-${Date.now()}.duckdb`);
    let db = await openDuckDB(path);
    await db.sql(`CREATE TABLE t AS SELECT i AS id, i * 0.5 AS a, CAST(i % 7 AS DOUBLE) AS b FROM range(${ROWS}) r(i)`);
    await db.sql(`CREATE MODEL m INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
    await db.sql(`CREATE TABLE out AS SELECT id, y FROM ${CALL}`);
    await db.close();
    db = await openDuckDB(path);
    try {
      expect((await db.sql('SELECT count(*), count(y) FROM out')).rows).toEqual([[BigInt(ROWS), BigInt(ROWS)]]);
    } finally {
      await db.close();
    }
  });
});
