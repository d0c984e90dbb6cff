/**
 * CONTINUOUS materialized tables compared with their query run whole after each refresh,
 * on every adapter: odd keys (composite, text with NULL-like values and trailing spaces,
 * uuid, numeric, timestamp, double), keys changed, rows deleted and inserted again, rows
 * moving in and out of filters, TRUNCATE, a refresh rolled back, SUSPEND/RESUME, a change
 * of mode and of model version; what the source and the model may not do under a table;
 * and names already taken.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelSession } from '../../core/session/model-session.js';
import type { Session } from '../../core/session/session.js';
import { RefreshScheduler } from '../../core/materialized/refresh-scheduler.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { writeModelFiles } from '../support/model-files.js';
import { linearRegressorModel } from '../support/onnx-models.js';

const files = writeModelFiles();
const other = join(files.dir, 'other.onnx');
writeFileSync(other, linearRegressorModel([-1, 5], 7));

const sorted = (rows: readonly unknown[][]) => rows.map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).sort();

for (const adapter of ADAPTERS) {
  describe(`materialized tables against their query on ${adapter.name}`, () => {
    let db: Session;
    const pg = adapter.name === 'postgres';
    beforeAll(async () => {
      db = await adapter.open();
      await db.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
    });
    afterAll(async () => db.close());
    const agree = async (name: string, query: string, refresh = true) => {
      if (refresh) await db.sql(`ALTER MATERIALIZED TABLE ${name} REFRESH`);
      const kept = sorted((await db.sql(`SELECT * FROM ${name}`)).rows as unknown[][]);
      const whole = sorted((await db.sql(`SELECT * FROM (${query}) AS q`)).rows as unknown[][]);
      expect(kept).toEqual(whole);
    };

    it('composite text keys with odd values, key updates, delete and re-insert', async () => {
      await db.sql('CREATE TABLE ck (k1 VARCHAR, k2 INTEGER, a DOUBLE PRECISION, b DOUBLE PRECISION, note VARCHAR, PRIMARY KEY (k1, k2))');
      await db.sql(`INSERT INTO ck VALUES ('', 1, 1, 1, 'x'), ('NULL', 1, 2, 2, 'x'), ('null', 1, 3, 3, 'x'), ('a ', 1, 4, 4, 'x'), ('a', 1, 5, 5, 'x'), ('é😀', 2, 6, 6, 'x'), ('\\N', 3, 7, 7, 'x')`);
      const q = 'SELECT k1, k2, note, y FROM ML_PREDICT(TABLE ck, MODEL lin, DESCRIPTOR(a, b))';
      await db.sql(`CREATE MATERIALIZED TABLE ck_y FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = CONTINUOUS AS ${q}`);
      await agree('ck_y', q, false);
      await db.sql(`UPDATE ck SET k2 = k2 + 1000`);
      await agree('ck_y', q);
      await db.sql(`UPDATE ck SET k1 = k1 || ' ' WHERE k1 = 'é😀'`);
      await db.sql(`BEGIN`);
      await db.sql(`DELETE FROM ck WHERE k1 = 'NULL'`);
      await db.sql(`INSERT INTO ck VALUES ('NULL', 1001, 20, 1, 'y')`);
      await db.sql(`COMMIT`);
      await agree('ck_y', q);
      await db.sql(`DELETE FROM ck WHERE k1 = ''`);
      await agree('ck_y', q);
      await db.sql(`INSERT INTO ck VALUES ('', 1001, 9, 9, 'z')`);
      await agree('ck_y', q);
      await db.sql('DROP MATERIALIZED TABLE ck_y');
      await db.sql('DROP TABLE ck');
    });

    it('uuid, numeric, timestamp and double keys', async () => {
      for (const [type, values] of [
        ['UUID', ["'00000000-0000-0000-0000-000000000000'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'"]],
        ['NUMERIC(10, 2)', ['1.5', '-0.00']],
        ['TIMESTAMP', ["'2024-01-01 00:00:00'", "'1970-01-01 00:00:00.000001'"]],
        ['DOUBLE PRECISION', ['0.0', '1e300']],
      ] as const) {
        await db.sql(`CREATE TABLE tk (id ${type} PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION)`);
        await db.sql(`INSERT INTO tk VALUES (${values[0]}, 1, 2), (${values[1]}, 3, 4)`);
        const q = 'SELECT id, a, y FROM ML_PREDICT(TABLE tk, MODEL lin, DESCRIPTOR(a, b)) WHERE y > 7';
        await db.sql(`CREATE MATERIALIZED TABLE tk_y FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = CONTINUOUS AS ${q}`);
        await agree('tk_y', q, false);
        await db.sql(`UPDATE tk SET a = 10 WHERE id = ${values[0]}`);
        await agree('tk_y', q);
        await db.sql(`UPDATE tk SET a = 0, b = 0 WHERE id = ${values[1]}`);
        await agree('tk_y', q);
        await db.sql('DROP MATERIALIZED TABLE tk_y');
        await db.sql('DROP TABLE tk');
      }
    });

    it('a row moving in and out of a filter on outputs and inputs; expressions and a column twice', async () => {
      await db.sql('CREATE TABLE mv (id INTEGER PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION, note VARCHAR)');
      await db.sql(`INSERT INTO mv VALUES (1, 1, 1, 'a'), (2, 5, 5, 'b'), (3, 10, 0, 'c')`);
      const q = `SELECT id, a, a AS a2, y * 2 AS y2, upper(note) AS n FROM ML_PREDICT(TABLE mv, MODEL lin, DESCRIPTOR(a, b)) AS p WHERE p.y > 10 AND note <> 'hide'`;
      await db.sql(`CREATE MATERIALIZED TABLE mv_y FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = CONTINUOUS AS ${q}`);
      await agree('mv_y', q, false);
      await db.sql(`UPDATE mv SET a = 100 WHERE id = 1`);
      await db.sql(`UPDATE mv SET note = 'hide' WHERE id = 2`);
      await agree('mv_y', q);
      await db.sql(`UPDATE mv SET a = 0 WHERE id = 1`);
      await db.sql(`UPDATE mv SET note = 'B' WHERE id = 2`);
      await agree('mv_y', q);
      await db.sql('DROP MATERIALIZED TABLE mv_y');
      await db.sql('DROP TABLE mv');
    });

    it('the same column selected twice: DuckDB names the second one apart, Postgres refuses the table (42701)', async () => {
      await db.sql('CREATE TABLE tw (id INTEGER PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION)');
      await db.sql(`INSERT INTO tw VALUES (1, 1, 1)`);
      const q = `SELECT id, a, a, y FROM ML_PREDICT(TABLE tw, MODEL lin, DESCRIPTOR(a, b))`;
      const create = db.sql(`CREATE MATERIALIZED TABLE tw_y FRESHNESS = INTERVAL '1' SECOND AS ${q}`);
      if (pg) {
        await expectSqlError(create, '42701', /"a" specified more than once/);
        expect((await db.sql('SHOW MATERIALIZED TABLES')).rows.filter((r) => r[1] === 'tw_y')).toEqual([]);
      } else {
        await create;
        await db.sql(`UPDATE tw SET a = 3`);
        await db.sql(`INSERT INTO tw VALUES (2, 2, 2)`);
        await agree('tw_y', q);
        await db.sql('DROP MATERIALIZED TABLE tw_y');
      }
      await db.sql('DROP TABLE tw');
    });

    it('TRUNCATE and re-insert in one transaction', async () => {
      await db.sql('CREATE TABLE tr (id INTEGER PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION)');
      await db.sql(`INSERT INTO tr VALUES (1, 1, 1), (2, 2, 2)`);
      const q = `SELECT id, y FROM ML_PREDICT(TABLE tr, MODEL lin, DESCRIPTOR(a, b))`;
      await db.sql(`CREATE MATERIALIZED TABLE tr_y FRESHNESS = INTERVAL '1' SECOND AS ${q}`);
      await db.sql('BEGIN');
      await db.sql('TRUNCATE tr');
      await db.sql(`INSERT INTO tr VALUES (1, 5, 5), (3, 3, 3)`);
      await db.sql('COMMIT');
      await agree('tr_y', q);
      await db.sql('DROP MATERIALIZED TABLE tr_y');
      await db.sql('DROP TABLE tr');
    });

    it('a whole-row projection keeps the columns it had at CREATE: columns added to the source stay out, a column dropped stops its refreshes (42703), never filling another column', async () => {
      await db.sql('CREATE TABLE al (id INTEGER PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION, note VARCHAR, extra INTEGER)');
      await db.sql(`INSERT INTO al VALUES (1, 1, 1, 'a', 1), (2, 2, 2, 'b', 2)`);
      const star = `SELECT * FROM ML_PREDICT(TABLE al, MODEL lin, DESCRIPTOR(a, b))`;
      const asCreated = `SELECT id, a, b, note, extra, y FROM ML_PREDICT(TABLE al, MODEL lin, DESCRIPTOR(a, b))`;
      const narrow = `SELECT id, note, y FROM ML_PREDICT(TABLE al, MODEL lin, DESCRIPTOR(a, b))`;
      for (const mode of ['CONTINUOUS', 'FULL']) await db.sql(`CREATE MATERIALIZED TABLE al_${mode} FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = ${mode} AS ${star}`);
      await db.sql(`CREATE MATERIALIZED TABLE al_narrow FRESHNESS = INTERVAL '1' SECOND AS ${narrow}`);
      const columns = async (name: string) => (await db.sql(`SELECT * FROM ${name} LIMIT 0`)).columns.map((c) => c.name);
      await db.sql('ALTER TABLE al ADD COLUMN more INTEGER');
      await db.sql(`INSERT INTO al VALUES (3, 3, 3, 'c', 3, 30)`);
      await db.sql(`UPDATE al SET a = 5, more = 10 WHERE id = 1`);
      for (const mode of ['CONTINUOUS', 'FULL']) {
        await agree(`al_${mode}`, asCreated);
        expect(await columns(`al_${mode}`)).toEqual(['id', 'a', 'b', 'note', 'extra', 'y']);
      }
      await agree('al_narrow', narrow);
      await db.sql('ALTER TABLE al DROP COLUMN extra');
      await db.sql(`UPDATE al SET a = 9 WHERE id = 2`);
      for (const mode of ['CONTINUOUS', 'FULL']) await expectSqlError(db.sql(`ALTER MATERIALIZED TABLE al_${mode} REFRESH`), '42703', /extra/);
      await agree('al_narrow', narrow);
      await db.sql('ALTER TABLE al ALTER COLUMN b TYPE INTEGER');
      await db.sql(`UPDATE al SET b = 4 WHERE id = 3`);
      await agree('al_narrow', narrow);
      for (const mode of ['CONTINUOUS', 'FULL']) await db.sql(`DROP MATERIALIZED TABLE al_${mode}`);
      await db.sql('DROP MATERIALIZED TABLE al_narrow');
      await db.sql('DROP TABLE al');
    });

    it('DROP MODEL and ALTER MODEL RENAME under a CONTINUOUS table are refused (2BP01: made again, the model would be version 1 and the old predictions kept); SUSPEND/RESUME, new versions and FULL keep it right', async () => {
      await db.sql('CREATE TABLE lc (id INTEGER PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION)');
      await db.sql(`INSERT INTO lc VALUES (1, 1, 1), (2, 2, 2)`);
      await db.sql(`CREATE MODEL lm INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
      const q = `SELECT id, y FROM ML_PREDICT(TABLE lc, MODEL lm, DESCRIPTOR(a, b))`;
      await db.sql(`CREATE MATERIALIZED TABLE lc_y FRESHNESS = INTERVAL '1' SECOND AS ${q}`);
      await db.sql('ALTER MATERIALIZED TABLE lc_y SUSPEND');
      await db.sql(`INSERT INTO lc VALUES (3, 3, 3)`);
      await db.sql(`UPDATE lc SET a = 7 WHERE id = 1`);
      await db.sql(`DELETE FROM lc WHERE id = 2`);
      const scheduler = new RefreshScheduler((db as ModelSession).materialized);
      await scheduler.runOnce(true);
      await db.sql('ALTER MATERIALIZED TABLE lc_y RESUME');
      await scheduler.runOnce(true);
      await agree('lc_y', q, false);
      // the model may not be dropped or renamed under the table (made again, it would be version 1 again)
      const catalog = async () => (await db.sql('SELECT model_name, model_version FROM ml_catalog.materialized_tables')).rows;
      const before = await catalog();
      const drop = await expectSqlError(db.sql('DROP MODEL lm'), '2BP01', /materialized table "lc_y" reads it/);
      expect(drop.position?.column).toBe(12);
      await expectSqlError(db.sql('DROP MODEL IF EXISTS lm$1'), '2BP01', /version 1 of model "lm": materialized table "lc_y" holds its predictions/);
      await expectSqlError(db.sql('ALTER MODEL lm RENAME TO lm_old'), '2BP01', /cannot rename model "lm"/);
      expect(await catalog()).toEqual(before);
      await db.sql(`CREATE OR REPLACE MODEL lm INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${other}')`);
      await agree('lc_y', q);
      await db.sql('DROP MODEL lm$1');
      await agree('lc_y', q);
      await db.sql(`CREATE OR REPLACE MODEL lm INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
      await agree('lc_y', q);
      await db.sql(`ALTER MODEL lm SET ('default-version' = '2')`);
      await expectSqlError(db.sql('DROP MODEL lm$3'), '2BP01', /version 3 of model "lm"/);
      await agree('lc_y', q);
      await expectSqlError(db.sql('DROP MODEL lm$2'), '2BP01', /version 2 of model "lm"/);
      await db.sql('DROP MODEL lm$3');
      await db.sql(`ALTER MATERIALIZED TABLE lc_y SET REFRESH_MODE = FULL`);
      await db.sql(`INSERT INTO lc VALUES (4, 4, 4)`);
      await agree('lc_y', q);
      await expectSqlError(db.sql(`ALTER MATERIALIZED TABLE lc_y SET REFRESH_MODE = CONTINUOUS`), '0A000');
      await db.sql(`ALTER MATERIALIZED TABLE lc_y SET FRESHNESS = INTERVAL '2' MINUTE`);
      await db.sql(`UPDATE lc SET b = 0`);
      await agree('lc_y', q);
      await db.sql('DROP MATERIALIZED TABLE lc_y');
      await db.sql('DROP TABLE lc');
    });

    it('REFRESH in a transaction rolled back', async () => {
      await db.sql('CREATE TABLE rb (id INTEGER PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION)');
      await db.sql(`INSERT INTO rb VALUES (1, 1, 1), (2, 2, 2)`);
      const q = `SELECT id, y FROM ML_PREDICT(TABLE rb, MODEL lin, DESCRIPTOR(a, b))`;
      await db.sql(`CREATE MATERIALIZED TABLE rb_y FRESHNESS = INTERVAL '1' SECOND AS ${q}`);
      await db.sql(`INSERT INTO rb VALUES (3, 3, 3)`);
      await db.sql(`UPDATE rb SET a = 5 WHERE id = 1`);
      await db.sql('BEGIN');
      await db.sql('ALTER MATERIALIZED TABLE rb_y REFRESH');
      await db.sql('ROLLBACK');
      await agree('rb_y', q);
      await db.sql('DROP MATERIALIZED TABLE rb_y');
      await db.sql('DROP TABLE rb');
    });

    it('a name taken by a table or view is 42P07 at the name, before anything runs; the catalog is unchanged', async () => {
      await db.sql('CREATE TABLE bi (id INTEGER PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION)');
      await db.sql('CREATE TABLE taken (x INTEGER)');
      await db.sql('CREATE VIEW taken_view AS SELECT * FROM bi');
      const catalog = async () => (await db.sql('SELECT count(*) FROM ml_catalog.materialized_tables')).rows;
      const before = await catalog();
      for (const [name, mode] of [['taken', 'CONTINUOUS'], ['taken', 'FULL'], ['taken_view', 'CONTINUOUS'], ['bi', 'FULL']] as const) {
        const error = await expectSqlError(
          db.sql(`CREATE MATERIALIZED TABLE ${name}\n  FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = ${mode} AS SELECT id, y FROM ML_PREDICT(TABLE bi, MODEL lin, DESCRIPTOR(a, b))`),
          '42P07',
          new RegExp(`relation "${name}" already exists`),
        );
        expect(error.position).toMatchObject({ line: 1, column: 27 });
      }
      expect(await catalog()).toEqual(before);
      expect((await db.sql('SELECT count(*) FROM taken')).rows[0]![0]).toBeDefined();
      await db.sql('DROP VIEW taken_view');
      await db.sql('DROP TABLE bi');
      await db.sql('DROP TABLE taken');
    });
  });
}
