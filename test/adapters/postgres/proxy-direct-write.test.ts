/**
 * Through the proxy, `CREATE TABLE ... AS` and `INSERT INTO ... SELECT` over one ML_PREDICT
 * write straight into their table and answer with Postgres's own command tags and row
 * counts (`SELECT n`, `INSERT 0 n`), in the simple and the extended protocol, the same as the
 * general path (the statement with `WHERE true`); a failure inside a transaction block
 * aborts it and leaves nothing. Which path ran is read off the upstream session: an event
 * trigger notes the CREATE TABLE AS statements it receives, a statement trigger the query
 * that inserts into `ins`.
 */
import type pg from 'pg';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeModelFiles } from '../../support/model-files.js';
import { fixedBatchModel } from '../../support/onnx-models.js';
import { proxyFixture, type ProxyFixture } from './proxy-helpers.js';

let fx: ProxyFixture;
let db: pg.Client;
const CALL = 'ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))';

beforeAll(async () => {
  const models = writeModelFiles();
  const fixedBatch = join(mkdtempSync(join(tmpdir(), 'modelsql-proxy-direct-')), 'fixed_batch.onnx');
  writeFileSync(fixedBatch, fixedBatchModel());
  fx = await proxyFixture();
  db = await fx.client();
  await db.query('CREATE TABLE pts (id int PRIMARY KEY, a float8, b float8)');
  await db.query('INSERT INTO pts SELECT i, i * 0.5, 10 - i FROM generate_series(1, 20) i');
  await db.query(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.linear}')`);
  await db.query(`CREATE MODEL fails INPUT (a DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${fixedBatch}')`);
  await db.query('CREATE TABLE seen (q text)');
  await db.query("CREATE FUNCTION note() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO seen VALUES (current_query()); END$$");
  await db.query("CREATE EVENT TRIGGER note ON ddl_command_end WHEN TAG IN ('CREATE TABLE AS') EXECUTE FUNCTION note()");
  await db.query('CREATE TABLE ins (id int, y float8)');
  await db.query("CREATE FUNCTION note_insert() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO seen VALUES (current_query()); RETURN NULL; END$$");
  await db.query('CREATE TRIGGER note AFTER INSERT ON ins FOR EACH STATEMENT EXECUTE FUNCTION note_insert()');
}, 60_000);

afterAll(async () => {
  await fx?.close();
});

/** What the upstream session received for the table `name`: `direct` (created empty and copied into) or `general`. */
async function pathOf(name: string): Promise<string> {
  const { rows } = await db.query<{ q: string }>("SELECT q FROM seen WHERE q ~* ('^(CREATE TABLE|INSERT INTO|COPY) ' || $1 || '\\M')", [name]);
  const last = rows[rows.length - 1]?.q ?? '';
  return /WITH NO DATA$|^COPY /.test(last) ? 'direct' : 'general';
}

/** The parts of a result a client sees of a statement without rows. */
const answer = (r: pg.QueryResult) => ({ command: r.command, rowCount: r.rowCount, fields: r.fields.length });

test('simple protocol: the tags and row counts Postgres gives, and the same tables', async () => {
  const direct = await db.query(`CREATE TABLE d AS SELECT * FROM ${CALL}`);
  const general = await db.query(`CREATE TABLE g AS SELECT * FROM ${CALL} WHERE true`);
  expect([await pathOf('d'), await pathOf('g')]).toEqual(['direct', 'general']);
  expect(answer(direct)).toEqual({ command: 'SELECT', rowCount: 20, fields: 0 });
  expect(answer(general)).toEqual(answer(direct));
  expect((await db.query('SELECT * FROM d')).rows).toEqual((await db.query('SELECT * FROM g')).rows);

  const inserted = await db.query(`INSERT INTO ins SELECT id, y FROM ${CALL}`);
  expect(await pathOf('ins')).toBe('direct');
  const insertedGeneral = await db.query(`INSERT INTO ins SELECT id, y FROM ${CALL} WHERE true`);
  expect(await pathOf('ins')).toBe('general');
  expect(answer(inserted)).toEqual({ command: 'INSERT', rowCount: 20, fields: 0 });
  expect(answer(insertedGeneral)).toEqual(answer(inserted));

  const skipped = await db.query(`CREATE TABLE IF NOT EXISTS d AS SELECT id FROM ${CALL}`);
  const skippedGeneral = await db.query(`CREATE TABLE IF NOT EXISTS d AS SELECT id FROM ${CALL} WHERE true`);
  expect(answer(skipped)).toEqual({ command: 'CREATE', rowCount: null, fields: 0 });
  expect(answer(skippedGeneral)).toEqual(answer(skipped));
  const empty = await db.query(`CREATE TABLE none AS SELECT * FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id < 0), MODEL lin, DESCRIPTOR(a, b))`);
  expect(answer(empty)).toEqual({ command: 'SELECT', rowCount: 0, fields: 0 });
});

test('extended protocol with $1, and a named statement run twice', async () => {
  const text = 'CREATE TABLE e AS SELECT id, y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id <= $1), MODEL lin, DESCRIPTOR(a, b))';
  expect(answer(await db.query({ text, values: [5] }))).toEqual({ command: 'SELECT', rowCount: 5, fields: 0 });
  expect(await pathOf('e')).toBe('direct');
  const insert = { name: 'ins_upto', text: 'INSERT INTO e SELECT id, y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id <= $1), MODEL lin, DESCRIPTOR(a, b))' };
  expect(answer(await db.query({ ...insert, values: [3] }))).toEqual({ command: 'INSERT', rowCount: 3, fields: 0 });
  expect(answer(await db.query({ ...insert, values: [7] }))).toEqual({ command: 'INSERT', rowCount: 7, fields: 0 });
  expect((await db.query('SELECT count(*)::int AS n FROM e')).rows).toEqual([{ n: 15 }]);
});

test('a failing write aborts the transaction block and leaves nothing; ROLLBACK takes successful writes', async () => {
  const failing = "ML_PREDICT(TABLE (SELECT id, b FROM pts WHERE id <= 11), MODEL fails, DESCRIPTOR(b), MAP['batch-size', '2'])";
  await db.query('BEGIN');
  await expect(db.query(`CREATE TABLE f AS SELECT id, y FROM ${failing}`)).rejects.toMatchObject({ code: '38000' });
  await expect(db.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
  await db.query('ROLLBACK');
  expect((await db.query("SELECT to_regclass('f') IS NULL AS gone")).rows).toEqual([{ gone: true }]);

  await db.query('BEGIN');
  await db.query(`CREATE TABLE r AS SELECT id, y FROM ${CALL}`);
  await db.query(`INSERT INTO ins SELECT id, y FROM ${CALL}`);
  const before = (await db.query('SELECT count(*)::int AS n FROM ins')).rows[0].n as number;
  await db.query('ROLLBACK');
  expect((await db.query("SELECT to_regclass('r') IS NULL AS gone")).rows).toEqual([{ gone: true }]);
  expect((await db.query('SELECT count(*)::int AS n FROM ins')).rows[0].n).toBe(before - 20);
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'pg_temp%' AND c.relname LIKE '\\_\\_modelsql%'`);
  expect(rows).toEqual([{ n: 0 }]);
});
