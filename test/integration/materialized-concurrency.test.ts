/**
 * Materialized tables on Postgres changed by several sessions at once: two `ALTER ... REFRESH`
 * of one table (each row right after both), and DROP or SET REFRESH_MODE while another
 * session's refresh holds its locks (it waits for that refresh instead of ending in a
 * deadlock, 40P01). A third connection holds a lock on the source to keep the refresh
 * in progress, and lets it go once the other statement is under way.
 */
import pg from 'pg';
import { connectPostgres } from '../../adapters/postgres/index.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { writeModelFiles } from '../support/model-files.js';
import { createTestDatabase } from '../support/postgres-server.js';

const files = writeModelFiles();
/** Polls `check` every 50 ms until it holds (the test's own timeout bounds the wait). */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
}

(ADAPTERS.some((a) => a.name === 'postgres') ? describe : describe.skip)('materialized tables changed by several Postgres sessions at once', () => {
  let url: string;
  let a: Session;
  let b: Session;
  let c: pg.Client;
  let o: pg.Client;
  beforeAll(async () => {
    url = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
    a = await connectPostgres(url);
    b = await connectPostgres(url);
    c = new pg.Client({ connectionString: url });
    await c.connect();
    o = new pg.Client({ connectionString: url });
    await o.connect();
    await a.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await c.end();
    await o.end();
  });
  const waiting = async () => Number((await o.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0].n);

  it('two ALTER ... REFRESH of one table from two sessions at once: every row right after each round', async () => {
    await a.sql('CREATE TABLE s2 (id INTEGER PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION)');
    await a.sql('INSERT INTO s2 SELECT i, i, i FROM generate_series(1, 100) AS r(i)');
    await a.sql(`CREATE MATERIALIZED TABLE s2_y FRESHNESS = INTERVAL '1' SECOND AS SELECT id, y FROM ML_PREDICT(TABLE s2, MODEL lin, DESCRIPTOR(a, b))`);
    for (let round = 0; round < 5; round++) {
      await a.sql(`UPDATE s2 SET a = a + 1 WHERE id % 3 = ${round % 3}`);
      await a.sql(`INSERT INTO s2 VALUES (${1000 + round}, 1, 1)`);
      await Promise.all([a.sql('ALTER MATERIALIZED TABLE s2_y REFRESH'), b.sql('ALTER MATERIALIZED TABLE s2_y REFRESH')]);
      const bad = (await a.sql('SELECT count(*) FROM s2 FULL JOIN s2_y ON s2.id = s2_y.id WHERE s2_y.id IS NULL OR s2.id IS NULL OR abs(s2_y.y - (2 * s2.a + 3 * s2.b - 1)) > 1e-3')).rows[0]![0];
      expect(Number(bad)).toBe(0);
    }
    await a.sql('DROP MATERIALIZED TABLE s2_y');
    await a.sql('DROP TABLE s2');
  });

  for (const [what, statement] of [
    ['DROP MATERIALIZED TABLE', 'DROP MATERIALIZED TABLE s3_y'],
    ['SET REFRESH_MODE = FULL', 'ALTER MATERIALIZED TABLE s3_y SET REFRESH_MODE = FULL'],
  ] as const) {
    it(`${what} while another session's refresh holds its locks waits for it, and both succeed`, async () => {
      await a.sql('CREATE TABLE s3 (id INTEGER PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION)');
      await a.sql('INSERT INTO s3 SELECT i, i, i FROM generate_series(1, 100) AS r(i)');
      const query = 'SELECT id, y FROM ML_PREDICT(TABLE s3, MODEL lin, DESCRIPTOR(a, b))';
      await a.sql(`CREATE MATERIALIZED TABLE s3_y FRESHNESS = INTERVAL '1' SECOND AS ${query}`);
      await a.sql('UPDATE s3 SET a = a + 1');
      await c.query('BEGIN');
      await c.query('LOCK TABLE s3 IN ACCESS EXCLUSIVE MODE');
      const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: { sqlstate?: string; message: string }) => `${e.sqlstate} ${e.message}`);
      const refresh = outcome(a.sql('ALTER MATERIALIZED TABLE s3_y REFRESH'));
      await until(async () => (await waiting()) === 1);
      const bPid = Number((await b.sql('SELECT pg_backend_pid()')).rows[0]![0]);
      const other = outcome(b.sql(statement));
      // Under way: blocked on a lock, or polling the refresh claim.
      await until(async () => (await waiting()) === 2 || String((await o.query('SELECT query FROM pg_stat_activity WHERE pid = $1', [bPid])).rows[0].query).includes('claim_refresh'));
      await c.query('COMMIT');
      expect(await Promise.all([refresh, other])).toEqual(['ok', 'ok']);
      if (what === 'SET REFRESH_MODE = FULL') {
        await a.sql('UPDATE s3 SET b = b + 1');
        await a.sql('ALTER MATERIALIZED TABLE s3_y REFRESH');
        const sorted = async (sql: string) => (await a.sql(`${sql} ORDER BY id`)).rows;
        expect(await sorted('SELECT * FROM s3_y')).toEqual(await sorted(`SELECT * FROM (${query}) AS q`));
      }
      await a.sql('DROP MATERIALIZED TABLE IF EXISTS s3_y');
      await a.sql('DROP TABLE s3');
    });
  }

  it("a statement waiting for another session's refresh stops on cancel() and at statement_timeout (57014), the table unchanged", async () => {
    await a.sql('CREATE TABLE s4 (id INTEGER PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION)');
    await a.sql('INSERT INTO s4 SELECT i, i, i FROM generate_series(1, 100) AS r(i)');
    await a.sql(`CREATE MATERIALIZED TABLE s4_y FRESHNESS = INTERVAL '1' SECOND AS SELECT id, y FROM ML_PREDICT(TABLE s4, MODEL lin, DESCRIPTOR(a, b))`);
    await a.sql('UPDATE s4 SET a = a + 1');
    await c.query('BEGIN');
    await c.query('LOCK TABLE s4 IN ACCESS EXCLUSIVE MODE');
    const refresh = a.sql('ALTER MATERIALIZED TABLE s4_y REFRESH');
    try {
      await until(async () => (await waiting()) === 1);
      const bPid = Number((await b.sql('SELECT pg_backend_pid()')).rows[0]![0]);
      // Polling the claim since `since` (the last statement's polls do not count).
      const polling = async (since: Date) =>
        (await o.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%claim_refresh%' AND query_start > $2`, [bPid, since])).rows.length > 0;
      for (const statement of ['DROP MATERIALIZED TABLE s4_y', 'ALTER MATERIALIZED TABLE s4_y REFRESH', 'ALTER MATERIALIZED TABLE s4_y SET REFRESH_MODE = FULL']) {
        const since = (await o.query('SELECT clock_timestamp() AS t')).rows[0].t as Date;
        const cancelled = b.sql(statement).then(() => 'ran', (e: { sqlstate?: string; message: string }) => `${e.sqlstate} ${e.message}`);
        await until(() => polling(since));
        b.cancel();
        expect([statement, await cancelled]).toEqual([statement, '57014 canceling statement due to user request']);
      }
      await b.sql("SET statement_timeout = '200ms'");
      const timedOut = await b.sql('DROP MATERIALIZED TABLE s4_y').then(() => 'ran', (e: { sqlstate?: string; message: string }) => `${e.sqlstate} ${e.message}`);
      expect(timedOut).toBe('57014 canceling statement due to statement timeout');
      await b.sql('SET statement_timeout = 0');
    } finally {
      await c.query('COMMIT');
      await refresh;
    }
    expect((await a.sql('SHOW MATERIALIZED TABLES')).rows.filter((r) => r[1] === 's4_y').map((r) => r[1])).toEqual(['s4_y']);
    await a.sql('DROP MATERIALIZED TABLE s4_y');
    await a.sql('DROP TABLE s4');
  });
});
