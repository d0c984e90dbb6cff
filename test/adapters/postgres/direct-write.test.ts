/**
 * `CREATE TABLE ... AS` and `INSERT INTO ... SELECT` over one ML_PREDICT write the stage's
 * rows straight into their table on Postgres: the same tables, values, names, types and
 * results as the general path (the same statement with `WHERE true`, which the write does
 * not take); the shapes and targets it must leave alone; failures leave nothing behind.
 * Which path ran is read off the statements the host sent (a logging connection around a
 * real one): a direct write is a `COPY <target> (...) FROM STDIN`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgClientConnection } from '../../../adapters/postgres/pg-client-connection.js';
import { PostgresHost } from '../../../adapters/postgres/postgres-host.js';
import { ModelSession } from '../../../core/session/model-session.js';
import { ADAPTERS } from '../../support/adapters.js';
import { expectSqlError } from '../../support/expect-error.js';
import { LoggingConnection } from '../../support/logging-connection.js';
import { linearExpected, writeModelFiles } from '../../support/model-files.js';
import { fixedBatchModel } from '../../support/onnx-models.js';
import { createTestDatabase } from '../../support/postgres-server.js';

const enabled = ADAPTERS.some((a) => a.name === 'postgres');
const describePg = enabled ? describe : describe.skip;
const files = writeModelFiles();
const fixedBatch = join(mkdtempSync(join(tmpdir(), 'modelsql-direct-')), 'fixed_batch.onnx');
writeFileSync(fixedBatch, fixedBatchModel());

const CALL = 'ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b))';

describePg('Postgres: CREATE TABLE AS / INSERT ... SELECT straight into the target', () => {
  let connection: LoggingConnection;
  let db: ModelSession;

  /** Runs `sql` and says which path it took: `direct` when rows were copied into a table of the user's. */
  async function run(sql: string): Promise<{ path: 'direct' | 'general'; result: Awaited<ReturnType<ModelSession['sql']>> }> {
    const from = connection.log.length;
    const result = await db.sql(sql);
    const copies = connection.log.slice(from).filter((s) => /^COPY .* FROM STDIN( \(FORMAT binary\))?$/s.test(s) && !s.startsWith('COPY pg_temp."__modelsql'));
    return { path: copies.length > 0 ? 'direct' : 'general', result };
  }

  const rows = async (table: string) => (await db.sql(`SELECT * FROM ${table}`)).rows;
  const columns = async (table: string) =>
    (await db.sql(`SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute WHERE attrelid = '${table}'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`)).rows;
  const persistence = async (table: string) => (await db.sql(`SELECT relpersistence FROM pg_class WHERE oid = '${table}'::regclass`)).rows[0]![0];
  const exists = async (table: string) => (await db.sql(`SELECT to_regclass('${table}') IS NOT NULL`)).rows[0]![0];
  const tempTables = async () => (await db.sql("SELECT count(*) FROM pg_class WHERE relname LIKE '\\_\\_modelsql%' AND relnamespace = pg_my_temp_schema()")).rows[0]![0];

  beforeEach(async () => {
    connection = new LoggingConnection(await PgClientConnection.connect(await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!)));
    db = new ModelSession(new PostgresHost(connection));
    await db.sql(
      `CREATE TABLE t AS SELECT CAST(i AS bigint) AS id, CASE WHEN i % 10 = 3 THEN NULL ELSE i * 0.5 END AS a, CAST(i % 7 - 3 AS double precision) AS b, ` +
        `'row ' || i || E'\\t"x"' AS s, CAST(i / 3.0 AS numeric(10, 2)) AS n FROM generate_series(1, 2500) AS g(i)`,
    );
    await db.sql(`CREATE MODEL m INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}', 'batch-size' = '1000')`);
    await db.sql(`CREATE MODEL fails INPUT (a DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${fixedBatch}')`);
  });
  afterEach(async () => {
    expect(await tempTables()).toBe(0n);
    await db.close();
  });

  it.each([
    ['every column', (r: string) => `CREATE TABLE ${r} AS SELECT * FROM ${CALL}`],
    ['a projection with repeats, labels, column names and an ordered input', (r: string) => `CREATE TABLE ${r} (k, w) AS SELECT y, p.s AS label, id, y AS y_again, n FROM ML_PREDICT(TABLE (SELECT * FROM t ORDER BY id DESC), MODEL m, DESCRIPTOR(a, b)) p`],
    ['the alias star and a label', (r: string) => `CREATE TABLE ${r} AS SELECT p.*, id AS id2 FROM ${CALL} p`],
    ['UNLOGGED, outputs only, Flink form', (r: string) => `CREATE UNLOGGED TABLE ${r} AS SELECT y FROM TABLE(ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b)))`],
    ['inputs only (the model still runs)', (r: string) => `CREATE TABLE ${r} AS SELECT s, id FROM ${CALL} AS p`],
    ['an output renamed against an input', (r: string) => `CREATE TABLE ${r} AS SELECT * FROM ML_PREDICT(TABLE (SELECT id, a, b, a AS y FROM t), MODEL m, DESCRIPTOR(a, b))`],
    ['storage options', (r: string) => `CREATE TABLE ${r} WITH (fillfactor = 70) AS SELECT id, y FROM ${CALL}`],
    ['a call over another call', (r: string) => `CREATE TABLE ${r} AS SELECT * FROM ML_PREDICT(TABLE (ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b))), MODEL m, DESCRIPTOR(b, y))`],
  ])('CREATE TABLE AS, %s: same table as the general path', async (_name, statement) => {
    const direct = await run(statement('d'));
    const general = await run(`${statement('g')} WHERE true`);
    expect([direct.path, general.path]).toEqual(['direct', 'general']);
    expect(direct.result).toEqual(general.result);
    expect(await rows('d')).toEqual(await rows('g'));
    expect(await columns('d')).toEqual(await columns('g'));
    expect(await persistence('d')).toBe(await persistence('g'));
    expect((await rows('d')).length).toBe(2500);
  });

  it('streams as the last statement of a script: one empty batch, the table written', async () => {
    const batches = [];
    for await (const batch of db.stream(`SELECT 1; CREATE TABLE d AS SELECT id, y FROM ${CALL}`)) batches.push(batch);
    expect(batches).toEqual([{ columns: [], rows: [] }]);
    expect(connection.log.some((s) => s.startsWith('COPY d ('))).toBe(true);
    expect((await rows('d')).length).toBe(2500);
  });

  it('puts the predictions of each row next to that row', async () => {
    await run(`CREATE TABLE d AS SELECT id, a, b, y FROM ${CALL}`);
    const got = await db.sql('SELECT id, a, b, y FROM d');
    expect(got.rows.map((r) => Number(r[0]))).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    for (const [, a, b, y] of got.rows) {
      if (a === null) expect(y).toBeNull();
      else expect(y).toBeCloseTo(linearExpected(a as number, b as number), 3);
    }
  });

  it('CREATE TEMP TABLE, ON COMMIT DROP, a shadowing temporary table, and the search path', async () => {
    expect((await run(`CREATE TEMP TABLE tt AS SELECT id, y FROM ${CALL}`)).path).toBe('direct');
    expect(await persistence('tt')).toBe('t');
    expect((await rows('tt')).length).toBe(2500);

    // Outside a transaction block the table goes at the end of the statement, as Postgres does it.
    expect((await run(`CREATE TEMP TABLE gone ON COMMIT DROP AS SELECT id, y FROM ${CALL}`)).path).toBe('direct');
    expect(await exists('gone')).toBe(false);

    // An unqualified CREATE TABLE makes public.shadow, not the temporary table of that name.
    await db.sql('CREATE TEMP TABLE shadow (x int)');
    expect((await run(`CREATE TABLE shadow AS SELECT id, y FROM ${CALL}`)).path).toBe('direct');
    expect((await rows('public.shadow')).length).toBe(2500);
    expect(await rows('pg_temp.shadow')).toEqual([]);

    await db.sql('CREATE SCHEMA s2');
    await db.sql('SET search_path = s2, public');
    const call = 'ML_PREDICT(TABLE public.t, MODEL public.m, DESCRIPTOR(a, b))';
    expect((await run(`CREATE TABLE r AS SELECT id, y FROM ${call}`)).path).toBe('direct');
    expect((await rows('s2.r')).length).toBe(2500);
    expect((await run(`CREATE TABLE "public"."R" AS SELECT id FROM ${call}`)).path).toBe('direct');
    expect((await rows('public."R"')).length).toBe(2500);
  });

  it('CREATE TABLE IF NOT EXISTS: a new table is written, an existing one left alone without running the model', async () => {
    expect((await run(`CREATE TABLE IF NOT EXISTS r AS SELECT id, y FROM ${CALL}`)).path).toBe('direct');
    expect((await rows('r')).length).toBe(2500);
    const from = connection.log.length;
    const again = await run(`CREATE TABLE IF NOT EXISTS r AS SELECT s FROM ${CALL}`);
    expect(again.result).toEqual({ command: 'CREATE TABLE', columns: [], rows: [] });
    expect(connection.log.slice(from).filter((s) => s.startsWith('COPY'))).toEqual([]);
    expect((await columns('r')).map((c) => c[0])).toEqual(['id', 'y']);
    expect((await rows('r')).length).toBe(2500);
  });

  it.each([
    ['all columns, the same types', 'CREATE TABLE {r} AS SELECT *, CAST(NULL AS double precision) AS y FROM t WITH NO DATA', `INSERT INTO {r} SELECT * FROM ${CALL}`],
    [
      'a column list in another order, defaults, an identity column, a CHECK',
      "CREATE TABLE {r} (k bigint, note text DEFAULT 'd', y double precision CHECK (y < 1e9), serial_no bigint GENERATED ALWAYS AS IDENTITY, s text, n numeric)",
      `INSERT INTO {r} (y, k, s, n) SELECT y, id, s, n FROM ${CALL} p`,
    ],
    ['fewer columns than the table, a temporary table', 'CREATE TEMP TABLE {r} (id bigint, y double precision, extra int DEFAULT 7)', `INSERT INTO {r} SELECT id, y FROM ${CALL}`],
    ['the same typmod', 'CREATE TABLE {r} (n numeric(10, 2), y double precision)', `INSERT INTO {r} SELECT n, y FROM ${CALL}`],
  ])('INSERT, %s: same rows as the general path', async (_name, table, statement) => {
    await db.sql(table.replace('{r}', 'd'));
    await db.sql(table.replace('{r}', 'g'));
    const direct = await run(statement.replace('{r}', 'd'));
    const general = await run(`${statement.replace('{r}', 'g')} WHERE true`);
    expect([direct.path, general.path]).toEqual(['direct', 'general']);
    expect(direct.result).toEqual(general.result);
    expect(direct.result).toEqual({ command: 'INSERT', columns: [], rows: [] });
    expect(await rows('d')).toEqual(await rows('g'));
    expect((await rows('d')).length).toBe(2500);
  });

  it.each([
    ['other column types (assignment casts)', ['CREATE TABLE r (id integer, y real)'], 'INSERT INTO r SELECT id, y FROM {call}'],
    ['another typmod', ['CREATE TABLE r (n numeric(12, 3))'], 'INSERT INTO r SELECT n FROM {call}'],
    ['a rule', ['CREATE TABLE r (id bigint, y double precision)', 'CREATE RULE no_odd AS ON INSERT TO r WHERE new.id % 2 = 1 DO INSTEAD NOTHING'], 'INSERT INTO r SELECT id, y FROM {call}'],
    [
      'a BEFORE ROW trigger that skips rows',
      [
        'CREATE TABLE r (id bigint, y double precision)',
        'CREATE FUNCTION skip_r() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN IF NEW.id > 100 THEN RETURN NULL; END IF; RETURN NEW; END$$',
        'CREATE TRIGGER skip BEFORE INSERT ON r FOR EACH ROW EXECUTE FUNCTION skip_r()',
      ],
      'INSERT INTO r SELECT id, y FROM {call}',
    ],
    ['row-level security', ['CREATE TABLE r (id bigint, y double precision)', 'ALTER TABLE r ENABLE ROW LEVEL SECURITY'], 'INSERT INTO r SELECT id, y FROM {call}'],
    ['a view', ['CREATE TABLE r_base (id bigint, y double precision)', 'CREATE VIEW r AS SELECT * FROM r_base'], 'INSERT INTO r SELECT id, y FROM {call}'],
    ['a partitioned table', ['CREATE TABLE r (id bigint, y double precision) PARTITION BY RANGE (id)', 'CREATE TABLE r_all PARTITION OF r DEFAULT'], 'INSERT INTO r SELECT id, y FROM {call}'],
  ])('INSERT into a table with %s takes the general path', async (_name, setup, statement) => {
    for (const part of setup) await db.sql(part);
    const { path } = await run(statement.replace('{call}', CALL));
    expect(path).toBe('general');
    expect(Number((await db.sql('SELECT count(*) FROM r')).rows[0]![0])).toBeGreaterThan(0);
  });

  it('shapes outside the direct write still run: WHERE, ORDER BY, a join, expressions, RETURNING', async () => {
    await db.sql('CREATE TABLE ins (id bigint, y double precision)');
    const statements = [
      `CREATE TABLE w AS SELECT * FROM ${CALL} WHERE id < 10`,
      `CREATE TABLE o AS SELECT id, y FROM ${CALL} ORDER BY y DESC LIMIT 3`,
      `CREATE TABLE j AS SELECT p.id, t.s FROM ${CALL} p JOIN t ON t.id = p.id`,
      `CREATE TABLE e AS SELECT id, y * 2 AS y2 FROM ${CALL}`,
      `INSERT INTO ins SELECT id, y FROM ${CALL} WHERE id <= 5 RETURNING id`,
    ];
    for (const statement of statements) expect((await run(statement)).path).toBe('general');
    expect((await db.sql('SELECT (SELECT count(*) FROM w), (SELECT count(*) FROM o), (SELECT count(*) FROM j), (SELECT count(*) FROM e), (SELECT count(*) FROM ins)')).rows).toEqual([[9n, 3n, 2500n, 2500n, 5n]]);
  });

  it('the same errors as the general path for an INSERT Postgres refuses', async () => {
    await db.sql('CREATE TABLE ident (k bigint GENERATED ALWAYS AS IDENTITY, y double precision)');
    await expectSqlError(db.sql(`INSERT INTO ident (k, y) SELECT id, y FROM ${CALL}`), '428C9');
    await expectSqlError(db.sql(`INSERT INTO nowhere SELECT id, y FROM ${CALL}`), '42P01');
    await expectSqlError(db.sql(`INSERT INTO ident (y, nope) SELECT id, y FROM ${CALL}`), '42703');
    await expectSqlError(db.sql(`CREATE TABLE t AS SELECT id, y FROM ${CALL}`), '42P07');
    expect((await rows('ident')).length).toBe(0);
  });

  describe('a failure leaves no table and no rows', () => {
    // 11 rows in batches of 2: the last batch (1 row) fails inside onnxruntime, after five went through.
    const failing = "ML_PREDICT(TABLE (SELECT id, b FROM t WHERE id <= 11), MODEL fails, DESCRIPTOR(b), MAP['batch-size', '2'])";

    it('a model failing on a batch, in CREATE TABLE AS and INSERT', async () => {
      await db.sql('CREATE TABLE kept (id bigint, y double precision)');
      const from = connection.log.length;
      await expectSqlError(db.sql(`CREATE TABLE r AS SELECT id, y FROM ${failing}`), '38000', /ONNX inference failed/);
      expect(connection.log.slice(from).some((s) => s.startsWith('CREATE TABLE r AS'))).toBe(true);
      expect(await exists('r')).toBe(false);
      await expectSqlError(db.sql(`INSERT INTO kept SELECT id, y FROM ${failing}`), '38000', /ONNX inference failed/);
      expect(await rows('kept')).toEqual([]);
    });

    it('inside BEGIN ... ROLLBACK: a failed write leaves the transaction its earlier work, ROLLBACK takes every write', async () => {
      await db.sql('CREATE TABLE kept (id bigint, y double precision)');
      await db.sql('BEGIN');
      await db.sql('INSERT INTO kept VALUES (0, 0)');
      await expectSqlError(db.sql(`CREATE TABLE r AS SELECT id, y FROM ${failing}`), '38000');
      expect(await exists('r')).toBe(false);
      expect(await rows('kept')).toEqual([[0n, 0]]);
      expect((await run(`CREATE TABLE r2 AS SELECT id, y FROM ${CALL}`)).path).toBe('direct');
      expect((await run(`INSERT INTO kept SELECT id, y FROM ${CALL}`)).path).toBe('direct');
      expect((await rows('r2')).length).toBe(2500);
      expect((await rows('kept')).length).toBe(2501);
      await db.sql('ROLLBACK');
      expect(await exists('r2')).toBe(false);
      expect(await rows('kept')).toEqual([]);
    });

    it('a constraint failing mid-stream: the same error as the general path, no rows', async () => {
      for (const [table, sqlstate] of [
        ['checked (id bigint, y double precision CHECK (id < 2000))', '23514'],
        ['not_null (id bigint, y double precision NOT NULL)', '23502'],
      ] as const) {
        const name = table.split(' ')[0]!;
        await db.sql(`CREATE TABLE ${table}`);
        const from = connection.log.length;
        const direct = await expectSqlError(db.sql(`INSERT INTO ${name} SELECT id, y FROM ${CALL}`), sqlstate);
        expect(connection.log.slice(from).some((s) => s.startsWith(`COPY ${name} (`))).toBe(true);
        const general = await expectSqlError(db.sql(`INSERT INTO ${name} SELECT id, y FROM ${CALL} WHERE true`), sqlstate);
        expect(direct.message).toBe(general.message);
        expect(direct.position).toEqual(general.position);
        expect(await rows(name)).toEqual([]);
      }
    });

    it('an input error in the middle of the read', async () => {
      await expectSqlError(db.sql('CREATE TABLE r AS SELECT * FROM ML_PREDICT(TABLE (SELECT id, a, 1 / (id - 2000) AS b FROM t), MODEL m, DESCRIPTOR(a, b))'), '22012');
      expect(await exists('r')).toBe(false);
    });

    it('a cancel mid-stream', async () => {
      await db.sql('CREATE TABLE big AS SELECT CAST(i AS double precision) AS a, CAST(i % 5 AS double precision) AS b FROM generate_series(1, 400000) AS g(i)');
      db.events.once('progress', () => db.cancel());
      const from = connection.log.length;
      await expectSqlError(db.sql("CREATE TABLE r AS SELECT * FROM ML_PREDICT(TABLE big, MODEL m, DESCRIPTOR(a, b), MAP['batch-size', '1000'])"), '57014');
      expect(connection.log.slice(from).some((s) => s.startsWith('CREATE TABLE r AS'))).toBe(true);
      expect(await exists('r')).toBe(false);
      expect((await db.sql('SELECT 1')).rows).toEqual([[1]]);
    });
  });
});
