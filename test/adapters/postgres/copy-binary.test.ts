/**
 * The Postgres stage in binary COPY (copy-binary.ts) against the same stage in text COPY, on
 * one real database: every column type whose binary value the stage decodes as a feature
 * (real, double precision, smallint, integer, bigint, numeric with and without a typmod,
 * NULLs, NaN and infinities) and every carried column (text with tabs, newlines and
 * backslashes, jsonb, arrays, boolean, timestamptz) gives the same rows and predictions;
 * the binary session is checked to have used binary COPY both ways, and text COPY where an
 * output is of another type.
 */
import { PgClientConnection } from '../../../adapters/postgres/pg-client-connection.js';
import { PostgresHost } from '../../../adapters/postgres/postgres-host.js';
import { ModelSession } from '../../../core/session/model-session.js';
import { ADAPTERS } from '../../support/adapters.js';
import { LoggingConnection } from '../../support/logging-connection.js';
import { writeModelFiles } from '../../support/model-files.js';
import { createTestDatabase } from '../../support/postgres-server.js';

const describePg = ADAPTERS.some((a) => a.name === 'postgres') ? describe : describe.skip;
const files = writeModelFiles();

const TABLE = `CREATE TABLE typed (
  id integer, f4 real, f8 double precision, i2 smallint, i4 integer, i8 bigint,
  n numeric(14, 4), nu numeric, b boolean, t text, j jsonb, arr integer[], ts timestamptz)`;

/**
 * 3,000 ordinary rows (several COPY chunks), then rows of edge values and NULLs. Numeric
 * infinities exist from Postgres 14 on; on 13 those two values are NaN.
 */
const rows = (numericInfinity: boolean): string => `INSERT INTO typed
  SELECT i, i * 0.1, i / 7.0, i % 300 - 150, i * 1000 - 7, CAST(i AS bigint) * 3000000000, i / 3.0, i * 12345.6789 - 9e6,
         i % 2 = 0, 'row ' || i || E'\\tcol\\nline\\\\ é', jsonb_build_object('i', i), ARRAY[i, NULL, -i], timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
  FROM generate_series(1, 3000) AS g(i);
INSERT INTO typed VALUES
  (-1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (-2, 'Infinity', '-Infinity', -32768, -2147483648, -9223372036854775808, -9999999999.9999, 'NaN', true, '', '{}', '{}', NULL),
  (-3, 'NaN', 'NaN', 32767, 2147483647, 9223372036854775807, 0, '${numericInfinity ? 'Infinity' : 'NaN'}', false, E'\\\\N', 'null', '{1}', NULL),
  (-4, 3.4e38, 1.7976931348623157e308, 0, 0, 9007199254740993, 0.0001, '${numericInfinity ? '-Infinity' : 'NaN'}', NULL, E'\\t', '[1, "a\\tb"]', '{NULL}', NULL),
  (-5, 1.17549435e-38, 5e-324, 1, -1, -1, -0.0001, 0.000000000000000000001234, true, 'x', '"s"', NULL, NULL),
  (-6, -0.0, -0.0, NULL, 7, NULL, 123456.789, 100000000000000000000000000000123.5, NULL, NULL, NULL, NULL, NULL)`;

/** Descriptor pairs covering every decoded type, and NULL in either feature. */
const PAIRS = [
  ['f4', 'f8'],
  ['i2', 'i4'],
  ['i8', 'n'],
  ['nu', 'i2'],
  ['n', 'f4'],
] as const;

describePg('Postgres stage: binary COPY against text COPY', () => {
  let binaryLog: LoggingConnection;
  let binary: ModelSession;
  let text: ModelSession;
  beforeAll(async () => {
    const url = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
    binaryLog = new LoggingConnection(await PgClientConnection.connect(url));
    binary = new ModelSession(new PostgresHost(binaryLog));
    text = new ModelSession(new PostgresHost(await PgClientConnection.connect(url), { stageCopyFormat: 'text' }));
    await binary.sql(TABLE);
    const version = await binary.sql('SELECT CAST(pg_catalog.current_setting(\'server_version_num\') AS integer)');
    await binary.sql(rows(Number(version.rows[0]![0]) >= 140000));
    await binary.sql(`CREATE MODEL m INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
  });
  afterAll(async () => {
    await binary.close();
    await text.close();
  });

  it.each(PAIRS)('reads features %s and %s, and carries every column, as the text path does', async (a, b) => {
    const sql = `SELECT * FROM ML_PREDICT(TABLE typed, MODEL m, DESCRIPTOR(${a}, ${b})) ORDER BY id`;
    const from = binaryLog.log.length;
    const got = await binary.sql(sql);
    const expected = await text.sql(sql);
    expect(got.columns).toEqual(expected.columns);
    expect(got.rows).toHaveLength(3006);
    expect(got.rows).toEqual(expected.rows);
    const copies = binaryLog.log.slice(from).filter((s) => s.startsWith('COPY '));
    expect(copies.some((s) => / TO STDOUT \(FORMAT binary\)$/.test(s))).toBe(true);
    expect(copies.some((s) => / FROM STDIN \(FORMAT binary\)$/.test(s))).toBe(true);
    // Every column is of a built-in type with binary I/O: the catalog is not asked.
    expect(binaryLog.log.slice(from).filter((s) => s.includes('typsend'))).toEqual([]);
  });

  it('writes the same table straight into a CREATE TABLE AS target', async () => {
    await binary.sql(`CREATE TABLE out_binary AS SELECT * FROM ML_PREDICT(TABLE typed, MODEL m, DESCRIPTOR(f8, i8))`);
    await text.sql(`CREATE TABLE out_text AS SELECT * FROM ML_PREDICT(TABLE typed, MODEL m, DESCRIPTOR(f8, i8))`);
    const compare = `SELECT count(*) FROM ((TABLE out_binary EXCEPT ALL TABLE out_text) UNION ALL (TABLE out_text EXCEPT ALL TABLE out_binary)) AS d`;
    expect((await binary.sql(compare)).rows).toEqual([[0n]]);
    expect((await binary.sql('SELECT count(*), count(y) FROM out_binary')).rows).toEqual([[3006n, expect.any(BigInt)]]);
  });

  it('writes a real output and NULL predictions over the placeholders of every carried row, as the text path does', async () => {
    await binary.sql(`CREATE MODEL m4 INPUT (a DOUBLE, b DOUBLE) OUTPUT (y FLOAT) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
    const sql = `SELECT * FROM ML_PREDICT(TABLE typed, MODEL m4, DESCRIPTOR(f4, i2)) ORDER BY id`;
    const from = binaryLog.log.length;
    const got = await binary.sql(sql);
    expect(got.columns.at(-1)).toEqual({ name: 'y', type: 'real' });
    expect(got.rows).toEqual((await text.sql(sql)).rows);
    expect(got.rows.filter((row) => row.at(-1) === null).length).toBeGreaterThan(0);
    expect(binaryLog.log.slice(from).some((s) => /CAST\(0 AS real\) AS "__modelsql_output_0" FROM .* TO STDOUT \(FORMAT binary\)$/s.test(s))).toBe(true);
  });

  it('uses text COPY when an output is not double precision or real (a label, an array), with the same rows', async () => {
    await binary.sql(`CREATE MODEL cls INPUT (a DOUBLE, b DOUBLE) OUTPUT (label BIGINT, probabilities ARRAY<FLOAT>) WITH ('provider' = 'onnx', 'path' = '${files.classifier}', 'task' = 'classification')`);
    const from = binaryLog.log.length;
    const sql = `SELECT id, t, label, probabilities FROM ML_PREDICT(TABLE typed, MODEL cls, DESCRIPTOR(f8, i4)) ORDER BY id`;
    const got = await binary.sql(sql);
    expect(got.rows).toHaveLength(3006);
    expect(got.rows).toEqual((await text.sql(sql)).rows);
    const copies = binaryLog.log.slice(from).filter((s) => s.startsWith('COPY '));
    expect(copies.length).toBeGreaterThan(0);
    expect(copies.filter((s) => s.includes('FORMAT binary'))).toEqual([]);
  });

  it('asks the catalog about binary I/O only for types it does not know, and uses text COPY for a type without it', async () => {
    await binary.sql(`CREATE DOMAIN positive AS integer CHECK (VALUE > 0)`);
    await binary.sql(`CREATE TYPE mood AS ENUM ('sad', 'ok')`);
    await binary.sql(`CREATE TABLE kinds (id positive, f8 double precision, m mood, acl aclitem)`);
    await binary.sql(`INSERT INTO kinds SELECT i, i * 0.5, CASE WHEN i % 2 = 0 THEN 'ok' ELSE 'sad' END::mood, 'postgres=r/postgres' FROM generate_series(1, 20) AS g(i)`);
    const run = async (columns: string) => {
      const sql = `SELECT * FROM ML_PREDICT(TABLE (SELECT ${columns} FROM kinds), MODEL m, DESCRIPTOR(id, f8)) ORDER BY id`;
      const from = binaryLog.log.length;
      const got = await binary.sql(sql);
      expect(got.rows).toHaveLength(20);
      expect(got.rows).toEqual((await text.sql(sql)).rows);
      const log = binaryLog.log.slice(from);
      return { asked: log.some((s) => s.includes('typsend')), binary: log.filter((s) => s.startsWith('COPY ') && s.endsWith('(FORMAT binary)')).length };
    };
    // A domain is described by its base type, whose binary I/O its COPY uses.
    expect(await run('id, f8')).toEqual({ asked: false, binary: 2 });
    // An enum is not a built-in type: asked, and it has binary I/O.
    expect(await run('id, f8, m')).toEqual({ asked: true, binary: 2 });
    // aclitem has no binary send or receive function: asked, and text COPY both ways.
    expect(await run('id, f8, acl')).toEqual({ asked: true, binary: 0 });
  });

  it('asks the catalog again once a type of its own has taken a built-in type name', async () => {
    // The session's temporary schema comes first for types: its `text` is described as `text`.
    await binary.sql(`CREATE TYPE pg_temp.text AS ENUM ('a', 'b')`);
    await binary.sql(`CREATE TEMPORARY TABLE shadowed AS SELECT 1.5::float8 AS a, 2.5::float8 AS b, CAST('a' AS pg_temp.text) AS t, CAST('x' AS pg_catalog.text) AS u`);
    try {
      const from = binaryLog.log.length;
      const got = await binary.sql(`SELECT * FROM ML_PREDICT(TABLE (SELECT a, b, t FROM shadowed), MODEL m, DESCRIPTOR(a, b))`);
      expect(got.rows).toEqual([[1.5, 2.5, 'a', expect.any(Number)]]);
      await binary.sql(`SELECT * FROM ML_PREDICT(TABLE (SELECT a, b, u FROM shadowed), MODEL m, DESCRIPTOR(a, b))`);
      expect(binaryLog.log.slice(from).filter((s) => s.includes('typsend'))).toHaveLength(2);
    } finally {
      // Straight to the connection: the session's own catalog queries would meet that `text` too.
      await binaryLog.query('DROP TABLE shadowed; DROP TYPE pg_temp.text');
    }
  });
});
