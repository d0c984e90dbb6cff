/**
 * Materialized tables over ML_PREDICT (SPEC §1.5) on every adapter: CREATE runs the first
 * refresh; a CONTINUOUS refresh predicts only inserted rows and rows whose model inputs
 * changed (a remote model's requests are counted by its loopback server), rewrites rows
 * whose other columns changed without predicting, deletes rows gone; FULL recomputes;
 * bad definitions leave the catalog as it was.
 */
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { linearExpected, writeModelFiles } from '../support/model-files.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { startOpenAIServer } from '../providers/openai-server.js';

const files = writeModelFiles();
const KEY = 'sk-materialized';

/** The prompts the server was asked, sorted. */
const asked = (server: LoopbackServer): string[] => server.requests.flatMap((r) => r.prompts).sort();

for (const adapter of ADAPTERS) {
  describe(`materialized tables on ${adapter.name}`, () => {
    let db: Session;
    let server: LoopbackServer;
    const catalogRows = async (): Promise<unknown[]> => (await db.sql('SELECT table_id, schema_name, table_name, status FROM ml_catalog.materialized_tables ORDER BY table_id')).rows as unknown[];

    beforeAll(async () => {
      server = await startOpenAIServer({ apiKey: KEY, answer: (prompt) => `label of ${prompt}` });
      db = await adapter.open();
      await db.sql(`CREATE MODEL labeler INPUT (body STRING) OUTPUT (label STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt-test', 'api-key' = '${KEY}', 'prompt' = '{body}')`);
      await db.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
    });
    afterAll(async () => {
      await db.close();
      await server.close();
    });
    beforeEach(() => server.reset());

    it('keeps a remote model\'s predictions in step: inserts, updates of inputs and of other columns, deletes', async () => {
      await db.sql('CREATE TABLE reviews (id INTEGER PRIMARY KEY, body VARCHAR, stars INTEGER)');
      await db.sql(`INSERT INTO reviews VALUES (1, 'good', 5), (2, 'bad', 1), (3, 'fine', 3)`);
      await db.sql(`CREATE MATERIALIZED TABLE review_labels FRESHNESS = INTERVAL '5' SECOND REFRESH_MODE = CONTINUOUS
        AS SELECT id, stars, label FROM ML_PREDICT(TABLE reviews, MODEL labeler, DESCRIPTOR(body)) WHERE stars > 1`);
      expect(asked(server)).toEqual(['bad', 'fine', 'good']);
      const read = async () => (await db.sql('SELECT id, stars, label FROM review_labels ORDER BY id')).rows;
      expect(await read()).toEqual([
        [1, 5, 'label of good'],
        [3, 3, 'label of fine'],
      ]);

      server.reset();
      await db.sql(`INSERT INTO reviews VALUES (4, 'great', 4)`);
      await db.sql(`UPDATE reviews SET body = 'awful' WHERE id = 1`);
      await db.sql(`UPDATE reviews SET stars = 2 WHERE id = 2`);
      await db.sql('DELETE FROM reviews WHERE id = 3');
      await db.sql('ALTER MATERIALIZED TABLE review_labels REFRESH');
      expect(asked(server)).toEqual(['awful', 'great']);
      expect(await read()).toEqual([
        [1, 5, 'label of awful'],
        [2, 2, 'label of bad'],
        [4, 4, 'label of great'],
      ]);

      server.reset();
      await db.sql('ALTER MATERIALIZED TABLE review_labels REFRESH');
      expect(server.requests).toHaveLength(0);
      const described = new Map((await db.sql('DESCRIBE MATERIALIZED TABLE review_labels')).rows.map((r) => [r[0], r[1]]));
      expect(described.get('refresh_mode')).toBe('CONTINUOUS');
      expect(described.get('rows_predicted')).toBe('5');
      expect(described.get('provider_rows')).toBe('5');
      expect(described.get('rows_deleted')).toBe('1');
      await db.sql('DROP MATERIALIZED TABLE review_labels');
      await db.sql('DROP TABLE reviews');
    });

    it('predicts with an ONNX model, FULL and CONTINUOUS alike', async () => {
      await db.sql('CREATE TABLE points (id BIGINT PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION)');
      await db.sql('INSERT INTO points SELECT CAST(i AS BIGINT), CAST(i AS DOUBLE PRECISION), CAST(i % 3 AS DOUBLE PRECISION) FROM generate_series(1, 100) AS r(i)');
      await db.sql(`CREATE MATERIALIZED TABLE pc FRESHNESS = INTERVAL '1' SECOND AS SELECT id, y FROM ML_PREDICT(TABLE points, MODEL lin, DESCRIPTOR(a, b))`);
      await db.sql(`CREATE MATERIALIZED TABLE pf FRESHNESS = INTERVAL '1' HOUR AS SELECT id, y FROM ML_PREDICT(TABLE points, MODEL lin, DESCRIPTOR(a, b))`);
      const modes = (await db.sql('SHOW MATERIALIZED TABLES')).rows.map((r) => [r[1], r[2], r[3]]);
      expect(modes).toEqual([
        ['pc', 'CONTINUOUS', "INTERVAL '1' SECOND"],
        ['pf', 'FULL', "INTERVAL '1' HOUR"],
      ]);
      await db.sql('UPDATE points SET a = a + 1 WHERE id <= 10');
      await db.sql('ALTER MATERIALIZED TABLE pc REFRESH');
      await db.sql('ALTER MATERIALIZED TABLE pf REFRESH');
      for (const name of ['pc', 'pf']) {
        const rows = (await db.sql(`SELECT t.id, t.y, p.a, p.b FROM ${name} AS t JOIN points AS p ON p.id = t.id ORDER BY t.id`)).rows;
        expect(rows).toHaveLength(100);
        for (const [, y, a, b] of rows) expect(Math.abs(Number(y) - linearExpected(Number(a), Number(b)))).toBeLessThan(1e-3);
      }
      await db.sql('DROP MATERIALIZED TABLE pc');
      await db.sql('DROP MATERIALIZED TABLE pf');
      await db.sql('DROP TABLE points');
    });

    it('takes a burst of 10,000 inserted rows in one refresh, then an update of every row\'s other column without predicting', async () => {
      await db.sql('CREATE TABLE burst (id BIGINT PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION, note VARCHAR)');
      await db.sql(`CREATE MATERIALIZED TABLE burst_y FRESHNESS = INTERVAL '1' SECOND AS SELECT id, note, y FROM ML_PREDICT(TABLE burst, MODEL lin, DESCRIPTOR(a, b))`);
      await db.sql(`INSERT INTO burst SELECT CAST(i AS BIGINT), CAST(i % 100 AS DOUBLE PRECISION), CAST(i % 7 AS DOUBLE PRECISION), 'n' FROM generate_series(1, 10000) AS r(i)`);
      await db.sql('ALTER MATERIALIZED TABLE burst_y REFRESH');
      await db.sql(`UPDATE burst SET note = 'm'`);
      await db.sql('ALTER MATERIALIZED TABLE burst_y REFRESH');
      const [count, distinct, notes, wrong] = (await db.sql(`SELECT count(*), count(DISTINCT t.id), count(*) FILTER (WHERE t.note = 'm'), count(*) FILTER (WHERE abs(t.y - (2 * s.a + 3 * s.b - 1)) > 1e-3) FROM burst_y AS t JOIN burst AS s ON s.id = t.id`)).rows[0]!.map(Number);
      expect([count, distinct, notes, wrong]).toEqual([10000, 10000, 10000, 0]);
      const described = new Map((await db.sql('DESCRIBE MATERIALIZED TABLE burst_y')).rows.map((r) => [r[0], r[1]]));
      expect(described.get('rows_predicted')).toBe('10000');
      expect(described.get('rows_refreshed')).toBe('20000');
      await db.sql('DROP MATERIALIZED TABLE burst_y');
      await db.sql('DROP TABLE burst');
    });

    it('matches the query run whole after changed keys, repeated changes of one key, rows filtered out, a whole-row projection and TRUNCATE', async () => {
      await db.sql('CREATE TABLE pts (id BIGINT PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION, note VARCHAR)');
      await db.sql(`INSERT INTO pts SELECT CAST(i AS BIGINT), CAST(i AS DOUBLE PRECISION), CAST(i % 4 AS DOUBLE PRECISION), 'n' FROM generate_series(1, 50) AS r(i)`);
      const star = 'SELECT p.* FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p WHERE note <> \'hide\'';
      const narrow = 'SELECT id, note, y FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))';
      await db.sql(`CREATE MATERIALIZED TABLE pts_star FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = CONTINUOUS AS ${star}`);
      await db.sql(`CREATE MATERIALIZED TABLE pts_narrow FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = CONTINUOUS AS ${narrow}`);
      const agree = async () => {
        await db.sql('ALTER MATERIALIZED TABLE pts_star REFRESH');
        await db.sql('ALTER MATERIALIZED TABLE pts_narrow REFRESH');
        for (const [name, query] of [['pts_star', star], ['pts_narrow', narrow]] as const) {
          const kept = (await db.sql(`SELECT * FROM ${name} ORDER BY id`)).rows;
          expect(kept).toEqual((await db.sql(`SELECT * FROM (${query}) AS q ORDER BY id`)).rows);
        }
      };
      await db.sql('UPDATE pts SET id = id + 1000 WHERE id <= 5');
      await db.sql(`UPDATE pts SET note = 'hide' WHERE id BETWEEN 6 AND 10`);
      await db.sql('DELETE FROM pts WHERE id = 11');
      await db.sql(`INSERT INTO pts VALUES (2000, 1, 1, 'n'), (3000, 2, 2, 'n')`);
      await db.sql('DELETE FROM pts WHERE id = 2000');
      await db.sql('UPDATE pts SET a = 7 WHERE id = 3000');
      await db.sql(`UPDATE pts SET note = 'm' WHERE id = 3000`);
      await agree();
      const predicted = async () => new Map((await db.sql('DESCRIBE MATERIALIZED TABLE pts_narrow')).rows.map((r) => [r[0], r[1]])).get('rows_predicted');
      // 50 at CREATE, then the five moved keys and key 3000 (its note's change alone predicts nothing).
      expect(await predicted()).toBe('56');
      await db.sql('TRUNCATE pts');
      await db.sql(`INSERT INTO pts VALUES (1, 1, 1, 'n'), (2, 2, 2, 'hide'), (4000, 3, 3, 'n')`);
      await agree();
      expect(await predicted()).toBe('59');
      await db.sql('DROP MATERIALIZED TABLE pts_star');
      await db.sql('DROP MATERIALIZED TABLE pts_narrow');
      await db.sql('DROP TABLE pts');
    });

    it('keeps predictions over NUMERIC inputs in step (their digest is the md5 of their text on Postgres)', async () => {
      await db.sql('CREATE TABLE dec_points (id INTEGER PRIMARY KEY, a NUMERIC(10, 2), b NUMERIC(10, 2))');
      await db.sql('INSERT INTO dec_points VALUES (1, 1.5, 2), (2, 3, 4), (3, 5, 6)');
      await db.sql(`CREATE MATERIALIZED TABLE dec_y FRESHNESS = INTERVAL '1' MINUTE AS SELECT id, y FROM ML_PREDICT(TABLE dec_points, MODEL lin, DESCRIPTOR(a, b))`);
      await db.sql('UPDATE dec_points SET a = 7.25 WHERE id = 2');
      await db.sql('DELETE FROM dec_points WHERE id = 3');
      await db.sql('ALTER MATERIALIZED TABLE dec_y REFRESH');
      const rows = (await db.sql('SELECT t.id, t.y, p.a, p.b FROM dec_y AS t JOIN dec_points AS p ON p.id = t.id ORDER BY t.id')).rows;
      expect(rows.map((r) => r[0])).toEqual([1, 2]);
      for (const [, y, a, b] of rows) expect(Math.abs(Number(y) - linearExpected(Number(a), Number(b)))).toBeLessThan(1e-3);
      const described = new Map((await db.sql('DESCRIBE MATERIALIZED TABLE dec_y')).rows.map((r) => [r[0], r[1]]));
      expect(described.get('rows_predicted')).toBe('4');
      await db.sql('DROP MATERIALIZED TABLE dec_y');
      await db.sql('DROP TABLE dec_points');
    });

    it('re-predicts a row whose text input changed only in case, and only that row', async () => {
      await db.sql('CREATE TABLE cased (id INTEGER PRIMARY KEY, body VARCHAR, note VARCHAR)');
      await db.sql(`INSERT INTO cased VALUES (1, 'Cased', 'a'), (2, 'Kept', 'b')`);
      await db.sql(`CREATE MATERIALIZED TABLE cased_labels FRESHNESS = INTERVAL '1' MINUTE AS SELECT id, label FROM ML_PREDICT(TABLE cased, MODEL labeler, DESCRIPTOR(body))`);
      server.reset();
      await db.sql(`UPDATE cased SET body = 'cased' WHERE id = 1`);
      await db.sql(`UPDATE cased SET note = 'B' WHERE id = 2`);
      await db.sql('ALTER MATERIALIZED TABLE cased_labels REFRESH');
      expect(asked(server)).toEqual(['cased']);
      expect((await db.sql('SELECT id, label FROM cased_labels ORDER BY id')).rows).toEqual([
        [1, 'label of cased'],
        [2, 'label of Kept'],
      ]);
      await db.sql('DROP MATERIALIZED TABLE cased_labels');
      await db.sql('DROP TABLE cased');
    });

    it('SUSPEND keeps a table as it is for the worker, RESUME and SET FRESHNESS change its state; a new default model version re-predicts every row', async () => {
      await db.sql('CREATE TABLE notes (id INTEGER PRIMARY KEY, body VARCHAR)');
      await db.sql(`INSERT INTO notes VALUES (1, 'one'), (2, 'two')`);
      await db.sql(`CREATE MATERIALIZED TABLE note_labels FRESHNESS = INTERVAL '1' MINUTE AS SELECT id, label FROM ML_PREDICT(TABLE notes, MODEL labeler, DESCRIPTOR(body))`);
      await db.sql('ALTER MATERIALIZED TABLE note_labels SUSPEND');
      await expectSqlError(db.sql('ALTER MATERIALIZED TABLE note_labels SUSPEND'), '55000', /already suspended/);
      const status = async () => (await db.sql('SHOW MATERIALIZED TABLES')).rows.find((r) => r[1] === 'note_labels')!.slice(3, 5);
      expect(await status()).toEqual(["INTERVAL '1' MINUTE", 'SUSPENDED']);
      await db.sql('ALTER MATERIALIZED TABLE note_labels RESUME');
      await db.sql(`ALTER MATERIALIZED TABLE note_labels SET FRESHNESS = INTERVAL '2' HOUR`);
      expect(await status()).toEqual(["INTERVAL '2' HOUR", 'ACTIVE']);
      server.reset();
      await db.sql(`CREATE OR REPLACE MODEL labeler INPUT (body STRING) OUTPUT (label STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt-test-2', 'api-key' = '${KEY}', 'prompt' = '{body}')`);
      await db.sql('ALTER MATERIALIZED TABLE note_labels REFRESH');
      expect(asked(server)).toEqual(['one', 'two']);
      const described = new Map((await db.sql('DESCRIBE MATERIALIZED TABLE note_labels')).rows.map((r) => [r[0], r[1]]));
      expect(described.get('model_version')).toBe('2');
      await db.sql('DROP MATERIALIZED TABLE note_labels');
      await db.sql('DROP TABLE notes');
    });

    it('refuses bad definitions and leaves the catalog as it was', async () => {
      await db.sql('CREATE TABLE nokey (id INTEGER, body VARCHAR)');
      await db.sql('CREATE TABLE keyed (id INTEGER PRIMARY KEY, body VARCHAR)');
      await db.sql(`CREATE MATERIALIZED TABLE kept FRESHNESS = INTERVAL '1' MINUTE AS SELECT id, label FROM ML_PREDICT(TABLE keyed, MODEL labeler, DESCRIPTOR(body))`);
      const before = await catalogRows();
      await expectSqlError(db.sql(`CREATE MATERIALIZED TABLE x FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = CONTINUOUS AS SELECT id, label FROM ML_PREDICT(TABLE nokey, MODEL labeler, DESCRIPTOR(body))`), '55000', /primary key/);
      await expectSqlError(db.sql(`CREATE MATERIALIZED TABLE x FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = CONTINUOUS AS SELECT count(*) FROM ML_PREDICT(TABLE keyed, MODEL labeler, DESCRIPTOR(body))`), '0A000', /incremental/);
      await expectSqlError(db.sql(`CREATE MATERIALIZED TABLE x FRESHNESS = INTERVAL '0' SECOND AS SELECT id, label FROM ML_PREDICT(TABLE keyed, MODEL labeler, DESCRIPTOR(body))`), '22023', /FRESHNESS/);
      await expectSqlError(db.sql(`CREATE MATERIALIZED TABLE x FRESHNESS = INTERVAL 'soon' SECOND AS SELECT 1`), '42601');
      await expectSqlError(db.sql(`CREATE MATERIALIZED TABLE x FRESHNESS = INTERVAL '1' SECOND AS SELECT label FROM ML_PREDICT(TABLE keyed, MODEL labeler, DESCRIPTOR(body))`), '0A000', /primary key/);
      await expectSqlError(db.sql(`CREATE MATERIALIZED TABLE x FRESHNESS = INTERVAL '1' SECOND AS SELECT id, label FROM ML_PREDICT(TABLE keyed, MODEL nosuch, DESCRIPTOR(body))`), '42704');
      await expectSqlError(db.sql(`CREATE MATERIALIZED TABLE kept FRESHNESS = INTERVAL '1' SECOND AS SELECT id, label FROM ML_PREDICT(TABLE keyed, MODEL labeler, DESCRIPTOR(body))`), '42P07');
      await expectSqlError(db.sql('DROP TABLE keyed'), '2BP01', /kept/);
      await expectSqlError(db.sql('DROP TABLE kept'), '42809');
      expect(await catalogRows()).toEqual(before);
      expect((await db.sql('SELECT count(*) FROM keyed')).rows[0]![0]).toBeDefined();
      await db.sql('DROP MATERIALIZED TABLE kept');
      await db.sql('DROP MATERIALIZED TABLE IF EXISTS kept');
      await expectSqlError(db.sql('DROP MATERIALIZED TABLE kept'), '42P01');
      await db.sql('DROP TABLE keyed');
      await db.sql('DROP TABLE nokey');
    });
  });
}
