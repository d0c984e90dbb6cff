/**
 * The Postgres host beyond the shared suite: model SQL inside the user's transactions, the
 * catalog's schema and transactional behaviour, COPY escaping of every value kind, value
 * parsing, streams, cancel, and error mapping.
 */
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { PgClientConnection } from '../../../adapters/postgres/pg-client-connection.js';
import type { PgConnection } from '../../../adapters/postgres/pg-connection.js';
import { PostgresHost, copyField } from '../../../adapters/postgres/postgres-host.js';
import { connectPostgres } from '../../../adapters/postgres/index.js';
import type { Session } from '../../../core/session/session.js';
import { ModelSession } from '../../../core/session/model-session.js';
import { ADAPTERS } from '../../support/adapters.js';
import { expectSqlError } from '../../support/expect-error.js';
import { linearExpected, writeModelFiles } from '../../support/model-files.js';
import { createTestDatabase } from '../../support/postgres-server.js';

const files = writeModelFiles();
const enabled = ADAPTERS.some((a) => a.name === 'postgres');
const describePg = enabled ? describe : describe.skip;
const create = (name: string, extra = '') => `CREATE MODEL ${name} INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}'${extra})`;

async function freshUrl(): Promise<string> {
  return createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
}

const tempTables = async (db: Session) =>
  (await db.sql("SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname LIKE '\\_\\_modelsql%' AND relnamespace = pg_my_temp_schema()")).rows[0]![0];

describePg('Postgres host: model SQL and transactions', () => {
  let db: Session;
  beforeEach(async () => {
    db = await connectPostgres(await freshUrl());
    await db.sql('CREATE TABLE t AS SELECT CAST(i AS bigint) AS id, i * 0.5 AS a, CAST(i % 7 - 3 AS double precision) AS b FROM generate_series(0, 999) AS g(i)');
  });
  afterEach(async () => {
    await db.close();
  });

  it('creates the catalog on first use in schema ml_catalog', async () => {
    expect((await db.sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'ml_catalog'")).rows[0]![0]).toBe(0n);
    await db.sql('SHOW MODELS');
    const tables = await db.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'ml_catalog' ORDER BY 1");
    expect(tables.rows.map((r) => r[0])).toEqual(expect.arrayContaining(['artifacts', 'model_versions', 'models', 'prediction_runs', 'schema_version', 'training_metrics']));
  });

  it('predicts inside BEGIN ... COMMIT, and a ROLLBACK takes the rows and the model away', async () => {
    await db.sql('BEGIN');
    await db.sql(create('m'));
    await db.sql('INSERT INTO t VALUES (1000, 1.0, 2.0)');
    const inside = await db.sql('SELECT count(*), sum(y) FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b))');
    expect(inside.rows[0]![0]).toBe(1001n);
    await db.sql('CREATE TABLE kept AS SELECT id, y FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b)) WHERE id < 10');
    await db.sql('COMMIT');
    expect((await db.sql('SELECT count(*) FROM kept')).rows[0]![0]).toBe(10n);
    expect((await db.sql('SHOW MODELS')).rows.map((r) => r[0])).toEqual(['m']);

    await db.sql('BEGIN');
    await db.sql(create('gone'));
    await db.sql('INSERT INTO kept SELECT id, y FROM ML_PREDICT(TABLE t, MODEL gone, DESCRIPTOR(a, b))');
    expect((await db.sql('SELECT count(*) FROM kept')).rows[0]![0]).toBe(1011n);
    await db.sql('ROLLBACK');
    expect((await db.sql('SELECT count(*) FROM kept')).rows[0]![0]).toBe(10n);
    expect((await db.sql('SHOW MODELS')).rows.map((r) => r[0])).toEqual(['m']);
    expect(await tempTables(db)).toBe(0n);
  });

  it('runs ML_PREDICT in a CTE, a join, INSERT ... SELECT and CREATE TABLE AS with correct values', async () => {
    await db.sql(create('m'));
    const r = await db.sql(
      'WITH p AS (SELECT * FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id < 100 ORDER BY id DESC), MODEL m, DESCRIPTOR(a, b))) SELECT p.id, p.y, t.b FROM p JOIN t ON t.id = p.id ORDER BY p.id LIMIT 5',
    );
    r.rows.forEach(([id, y, b]) => expect(Math.abs((y as number) - linearExpected(Number(id) * 0.5, b as number))).toBeLessThan(1e-4));
    const ordered = await db.sql('SELECT id FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id < 100 ORDER BY id DESC), MODEL m, DESCRIPTOR(a, b))');
    expect(ordered.rows.map((row) => Number(row[0]))).toEqual(Array.from({ length: 100 }, (_, i) => 99 - i));
  });

  it('leaves the catalog unchanged by a failed CREATE MODEL, and the user transaction usable', async () => {
    await db.sql(create('keep'));
    const dump = async () => JSON.stringify((await db.sql('SELECT model_name, version, options FROM ml_catalog.model_versions ORDER BY 1, 2')).rows);
    const before = await dump();
    await expectSqlError(db.sql(create('bad', ", 'colour' = 'red'")), '22023');
    expect(await dump()).toBe(before);
    await db.sql('BEGIN');
    await expectSqlError(db.sql(create('keep')), '42710');
    await expectSqlError(db.sql(create('x', `, 'path' = '${files.dir}/missing.onnx'`).replace(`'path' = '${files.linear}', `, '')), '58P01');
    expect((await db.sql('SELECT 1')).rows).toEqual([[1]]);
    await db.sql(create('y'));
    await db.sql('COMMIT');
    expect((await db.sql('SHOW MODELS')).rows.map((r) => r[0])).toEqual(['keep', 'y']);
  });

  it('reports a host error with its SQLSTATE and position', async () => {
    const error = await expectSqlError(db.sql('SELECT 1;\nSELECT nope\n  FROM t'), '42703', /nope/);
    // Lines count from the start of the submitted text, as psql's do (docs/errors.md).
    expect(error.position).toMatchObject({ line: 2, column: 8 });
    await expectSqlError(db.sql('SELECT * FROM missing_table'), '42P01');
    await expectSqlError(db.sql('SELEC 1'), '42601');
  });

  it('cancels a running host statement with 57014 and stays usable', async () => {
    const running = db.sql('SELECT pg_sleep(10)');
    // A cancel before the statement reached the server is a no-op: cancel until it ends, so
    // that a slow start on a busy machine is not mistaken for a cancel that did not work.
    const cancelling = setInterval(() => db.cancel(), 200);
    await expectSqlError(running, '57014').finally(() => clearInterval(cancelling));
    expect((await db.sql('SELECT 2')).rows).toEqual([[2]]);
  });

  it('streams in batches, stops early without breaking later statements, and streams DDL', async () => {
    let rows = 0;
    for await (const batch of db.stream('SELECT * FROM t')) {
      rows += batch.rows.length;
      if (rows >= 2048) break;
    }
    expect(rows).toBe(2048 > 1000 ? 1000 : 2048);
    expect((await db.sql('SELECT count(*) FROM t')).rows[0]![0]).toBe(1000n);
    const ddl = [];
    for await (const batch of db.stream('CREATE TABLE s (x int)')) ddl.push(batch);
    expect(ddl).toHaveLength(1);
    await db.sql('BEGIN');
    let inside = 0;
    for await (const batch of db.stream('SELECT * FROM t')) inside += batch.rows.length;
    expect(inside).toBe(1000);
    await db.sql('COMMIT');
  });
});

describePg('Postgres host: values and COPY', () => {
  let host: PostgresHost;
  beforeAll(async () => {
    host = new PostgresHost(await PgClientConnection.connect(await freshUrl()));
  });
  afterAll(async () => {
    await host.close();
  });

  it('parses result values as modelsql hands them out', async () => {
    const r = await host.execute(
      `SELECT 1::int8, 2::int4, 1.25::numeric, 1.5::float4, 2.5::float8, '{"a":[1,2]}'::jsonb, ARRAY[1.5, NULL]::float8[], ARRAY[1, 2]::int8[], ` +
        `'2024-01-02 03:04:05.5'::timestamp, '2024-01-02'::date, '\\x0102'::bytea, ARRAY['a b', 'c"d', NULL]::text[], true`,
    );
    expect(r.rows[0]).toEqual([1n, 2, 1.25, 1.5, 2.5, { a: [1, 2] }, [1.5, null], [1n, 2n], new Date('2024-01-02T03:04:05.500Z'), new Date('2024-01-02T00:00:00Z'), Buffer.from([1, 2]), ['a b', 'c"d', null], true]);
    expect(r.columns.map((c) => c.type)).toEqual(['bigint', 'integer', 'numeric', 'real', 'double precision', 'jsonb', 'double precision[]', 'bigint[]', 'timestamp without time zone', 'date', 'bytea', 'text[]', 'boolean']);
  });

  it('appends every value kind through COPY text format and reads them back', async () => {
    const columns = [
      { name: 's', type: 'text' },
      { name: 'n', type: 'double precision' },
      { name: 'i', type: 'bigint' },
      { name: 'arr', type: 'text[]' },
      { name: 'f', type: 'real[]' },
      { name: 'doc', type: 'jsonb' },
      { name: 'bytes', type: 'bytea' },
      { name: 'flag', type: 'boolean' },
      { name: 'ts', type: 'timestamp with time zone' },
    ];
    await host.createTempTable('copy_target', columns);
    const strings = ['tab\there', 'new\nline', 'back\\slash', 'cr\rhere', '\\N', 'ünïcödé ✓', '', null];
    const n = strings.length;
    const appender = await host.openAppender('copy_target');
    await appender.append({
      rowCount: n,
      columns: [
        { kind: 'value', values: strings },
        { kind: 'number', values: Float64Array.from({ length: n }, (_, i) => (i === 1 ? NaN : i / 3)), nulls: Uint8Array.from({ length: n }, (_, i) => (i === 2 ? 1 : 0)) },
        { kind: 'value', values: strings.map((_, i) => (i === 3 ? null : BigInt(i) * 10n ** 15n)) },
        { kind: 'value', values: strings.map((s) => (s === null ? null : [s, 'x,y', '{}', null, '"q"'])) },
        { kind: 'value', values: strings.map((_, i) => Float32Array.from([i, 0.5])) },
        { kind: 'value', values: strings.map((s) => ({ s, nested: { k: [1, 'two'] } })) },
        { kind: 'value', values: strings.map((_, i) => Uint8Array.from([i, 0, 255])) },
        { kind: 'value', values: strings.map((_, i) => i % 2 === 0) },
        { kind: 'value', values: strings.map((_, i) => new Date(Date.UTC(2024, 0, i + 1))) },
      ],
    });
    await appender.close();
    const r = await host.execute('SELECT s, n, i, arr, f, doc, bytes, flag, ts FROM pg_temp.copy_target ORDER BY "__modelsql_ord"');
    r.rows.forEach((row, i) => {
      expect(row[0]).toBe(strings[i]);
      if (i === 1) expect(row[1]).toBeNaN();
      else expect(row[1]).toBe(i === 2 ? null : i / 3);
      expect(row[2]).toBe(i === 3 ? null : BigInt(i) * 10n ** 15n);
      expect(row[3]).toEqual(strings[i] === null ? null : [strings[i], 'x,y', '{}', null, '"q"']);
      expect(row[4]).toEqual([i, 0.5]);
      expect(row[5]).toEqual({ s: strings[i], nested: { k: [1, 'two'] } });
      expect(row[6]).toEqual(Buffer.from([i, 0, 255]));
      expect(row[7]).toBe(i % 2 === 0);
      expect(row[8]).toEqual(new Date(Date.UTC(2024, 0, i + 1)));
    });
    await host.dropTempTable('copy_target');
  });

  it('escapes COPY fields', () => {
    expect(copyField(null)).toBe('\\N');
    expect(copyField('a\tb\nc\\d')).toBe('a\\tb\\nc\\\\d');
    expect(copyField(2.6, true)).toBe('3');
    expect(copyField(['a"b', null, 'c\\d'])).toBe('{"a\\\\"b",NULL,"c\\\\\\\\d"}');
  });

  it('materializes a query in order and reads it back in batches', async () => {
    const query = 'SELECT i, i * 2 AS j, \'r\' || i AS s FROM generate_series(1, 10000) AS g(i) ORDER BY i DESC';
    expect((await host.describe(query)).map((c) => c.name)).toEqual(['i', 'j', 's']);
    const count = await host.materialize('m_in', query);
    expect(count).toBe(10000);
    const seen: number[] = [];
    let batches = 0;
    for await (const batch of host.readBatches('m_in', ['"i"', '"s"'], ['number', 'value'], 3000)) {
      batches++;
      const values = batch.columns[0]!.values as Float64Array;
      for (let k = 0; k < batch.rowCount; k++) {
        seen.push(values[k]!);
        expect((batch.columns[1]!.values as unknown[])[k]).toBe(`r${values[k]}`);
      }
    }
    expect(batches).toBe(4);
    expect(seen).toEqual(Array.from({ length: 10000 }, (_, k) => 10000 - k));
    await host.dropTempTable('m_in');
  });
});

describePg('Postgres host over a connection that does not track transaction status', () => {
  it('probes with a SAVEPOINT and joins the open transaction block', async () => {
    const inner = await PgClientConnection.connect(await freshUrl());
    const bare: PgConnection = { query: (s, p) => inner.query(s, p), copyFrom: (s, d) => inner.copyFrom(s, d), copyTo: (s) => inner.copyTo(s), cancel: () => inner.cancel(), close: () => inner.close() };
    const host = new PostgresHost(bare);
    await host.transaction(async () => {
      await host.execute('CREATE TABLE own (x int)');
    });
    await host.execute('BEGIN');
    await expect(host.transaction(async () => {
      await host.execute('INSERT INTO own VALUES (1)');
      throw new Error('undo my part');
    })).rejects.toThrow('undo my part');
    await host.execute('INSERT INTO own VALUES (2)');
    await host.execute('COMMIT');
    expect((await host.execute('SELECT x FROM own')).rows).toEqual([[2]]);
    await host.close();
  });
});

describePg('Postgres host: the one-pass stage (openStage)', () => {
  const ODD_SQL =
    `CREATE TYPE mood AS ENUM ('sad', 'happy');` +
    `CREATE TABLE odd (id int, a double precision, b numeric(6, 2), r real, s text, v varchar(12), bin bytea, arr int[], doc jsonb, ts timestamptz, m mood);` +
    `INSERT INTO odd VALUES ` +
    `(1, 1.5, 2.25, 0.5, E'tab\\there', 'new\nline', '\\x00ff', '{1,NULL,3}', '{"k": "a\\tb"}', '2024-01-02 03:04:05.5+00', 'happy'),` +
    `(2, NULL, 1, 1, E'back\\\\slash', E'cr\\rhere', NULL, NULL, NULL, NULL, NULL),` +
    `(3, -2, NULL, -1, '\\N', 'ünïcödé ✓', '\\x', '{}', '[]', 'infinity', 'sad'),` +
    `(4, 1e300, 0.01, 3.25, '', '', '\\x5c', '{-1}', 'null', '1999-12-31 23:59:59+05', 'happy'),` +
    `(5, 'NaN', 99.99, 2, NULL, NULL, '\\x0a09', '{2,2}', '{"a": [1, {"b": null}]}', '2000-01-01 00:00:00+00', NULL)`;
  const COLUMNS = 'id, a, b, r, s, v, bin, arr, doc, ts, m';
  let db: Session;
  beforeAll(async () => {
    db = await connectPostgres(await freshUrl());
    await db.sql(ODD_SQL);
    await db.sql(create('m'));
  });
  afterAll(async () => {
    await db.close();
  });

  it('carries every input column through unchanged, in the input order, with NULL features giving NULL', async () => {
    const expected = await db.sql(`SELECT ${COLUMNS} FROM odd ORDER BY id DESC`);
    const got = await db.sql(`SELECT * FROM ML_PREDICT(TABLE (SELECT ${COLUMNS} FROM odd ORDER BY id DESC), MODEL m, DESCRIPTOR(a, b))`);
    expect(got.columns.map((c) => c.name)).toEqual([...COLUMNS.split(', '), 'y']);
    expect(got.rows.map((row) => row.slice(0, -1))).toEqual(expected.rows);
    got.rows.forEach((row) => {
      const [a, b] = [row[1] as number | null, row[2] as number | null];
      const y = row[row.length - 1] as number | null;
      if (a === null || b === null) expect(y).toBeNull();
      else if (Number.isFinite(linearExpected(a, b)) && Math.abs(a) < 1e30) expect(y).toBeCloseTo(linearExpected(a, b), 3);
    });
    await db.sql(`CREATE TABLE odd_out AS SELECT * FROM ML_PREDICT(TABLE odd, MODEL m, DESCRIPTOR(a, b))`);
    const types = await db.sql(`SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attnum > 0 AND attrelid = $1::regclass ORDER BY attnum`.replace('$1', "'odd_out'"));
    const source = await db.sql(`SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attnum > 0 AND attrelid = 'odd'::regclass ORDER BY attnum`);
    expect(types.rows).toEqual([...source.rows, ['y', 'double precision']]);
    expect(await tempTables(db)).toBe(0n);
  });

  it('reads a feature that is not a float8/integer/numeric column through a cast', async () => {
    const got = await db.sql(`SELECT id, y FROM ML_PREDICT(TABLE odd, MODEL m, DESCRIPTOR(r, b)) ORDER BY id`);
    expect(got.rows.map((row) => row[1])).toEqual([linearExpected(0.5, 2.25), linearExpected(1, 1), null, linearExpected(3.25, 0.01), linearExpected(2, 99.99)].map((y) => (y === null ? null : expect.closeTo(y, 3))));
  });

  it('spills its output to a temporary file past the memory limit, with the same result, and removes the file', async () => {
    const url = await freshUrl();
    const small = new ModelSession(new PostgresHost(await PgClientConnection.connect(url), { stageMemoryBytes: 1000 }));
    try {
      await small.sql(ODD_SQL);
      await small.sql(create('m'));
      await small.sql('CREATE TABLE big AS SELECT i AS id, CAST(i AS double precision) AS a, CAST(i % 7 AS double precision) AS b, repeat(chr(65 + i % 26), i % 50) AS pad FROM generate_series(1, 50000) AS g(i)');
      const before = readdirSync(tmpdir()).filter((f) => f.startsWith('modelsql-stage-'));
      const got = await small.sql('SELECT count(*), sum(y), sum(length(pad)), bool_and(y = 2 * a + 3 * b - 1) FROM ML_PREDICT(TABLE big, MODEL m, DESCRIPTOR(a, b))');
      const expected = await small.sql('SELECT count(*), sum(2 * a + 3 * b - 1), sum(length(pad)), true FROM big');
      expect(got.rows).toEqual(expected.rows);
      const ordered = await small.sql('SELECT id FROM ML_PREDICT(TABLE (SELECT * FROM big ORDER BY id DESC), MODEL m, DESCRIPTOR(a, b), MAP[\'batch-size\', \'777\']) LIMIT 3');
      expect(ordered.rows).toEqual([[50000], [49999], [49998]]);
      expect(readdirSync(tmpdir()).filter((f) => f.startsWith('modelsql-stage-'))).toEqual(before);
    } finally {
      await small.close();
    }
  });

  it('an input error in the middle of the read fails the statement, drops the table, keeps the session', async () => {
    await db.sql('CREATE TABLE many AS SELECT i AS id, CAST(i AS double precision) AS a FROM generate_series(1, 200000) AS g(i)');
    await expectSqlError(db.sql('SELECT count(*) FROM ML_PREDICT(TABLE (SELECT a, 1 / (id - 150000) AS b FROM many), MODEL m, DESCRIPTOR(a, b))'), '22012');
    expect(await tempTables(db)).toBe(0n);
    expect((await db.sql('SELECT 42')).rows).toEqual([[42]]);
  });

  it('stopping the batches early ends the COPY TO and leaves the connection ready; value features arrive parsed', async () => {
    const host = new PostgresHost(await PgClientConnection.connect(await freshUrl()));
    try {
      await host.execute("CREATE TABLE words AS SELECT i AS id, E'w\\t' || i AS w FROM generate_series(1, 300000) AS g(i)");
      const stage = await host.openStage({
        query: 'SELECT id, w FROM words ORDER BY id',
        inputColumns: [{ name: 'id', type: 'integer' }, { name: 'w', type: 'text' }],
        featureColumns: [1, 0],
        kinds: ['value', 'value'],
        outputColumns: [{ name: 'y', type: 'double precision' }],
        table: 'stage_t',
        batchSize: 1000,
      });
      for await (const batch of stage.batches()) {
        expect(batch.features.rowCount).toBe(1000);
        expect((batch.features.columns[0]!.values as unknown[]).slice(0, 2)).toEqual(['w\t1', 'w\t2']);
        expect((batch.features.columns[1]!.values as unknown[]).slice(0, 2)).toEqual([1, 2]);
        break;
      }
      await stage.close();
      expect((await host.execute('SELECT 1')).rows).toEqual([[1]]);
      await host.dropTempTable('stage_t');
      expect((await host.execute("SELECT count(*) FROM pg_class WHERE relname = 'stage_t'")).rows).toEqual([[0n]]);
    } finally {
      await host.close();
    }
  });
});
