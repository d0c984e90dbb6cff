/**
 * Training on Postgres runs with JIT compilation off (PostgresDialect.trainingSettings) and
 * gives the session its own setting back afterwards: after a model is trained, after a
 * training statement fails, and inside a transaction.
 */
import type { Session } from '../../../core/session/session.js';
import { ADAPTERS } from '../../support/adapters.js';
import { expectSqlError } from '../../support/expect-error.js';

const postgres = ADAPTERS.find((a) => a.name === 'postgres');

(postgres ? describe : describe.skip)('training settings on Postgres', () => {
  let db: Session;
  const jit = async () => String((await db.sql("SELECT current_setting('jit')")).rows[0]![0]);
  beforeAll(async () => {
    db = await postgres!.open();
    await db.sql('CREATE TABLE t AS SELECT CAST(i AS double precision) AS x, CAST(2 * i + 1 AS double precision) AS y FROM generate_series(1, 50) AS g(i)');
  });
  afterAll(async () => {
    await db.close();
  });

  it('runs every training query with jit off', async () => {
    await db.sql('SET jit = on');
    await db.sql('CREATE TABLE seen (jit text)');
    // A volatile function in the training query records the setting each time a query reads a row.
    await db.sql(
      "CREATE FUNCTION probe(v double precision) RETURNS double precision LANGUAGE plpgsql VOLATILE AS $$ BEGIN INSERT INTO seen VALUES (current_setting('jit')); RETURN v; END $$",
    );
    await db.sql("CREATE MODEL probed WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT probe(x) AS x, y FROM t");
    const seen = await db.sql('SELECT jit, count(*) FROM seen GROUP BY jit');
    expect(seen.rows.map((r) => r[0])).toEqual(['off']);
    expect(await jit()).toBe('on');
  });

  it('restores the session setting after training, after a failed training and in a transaction', async () => {
    await db.sql('SET jit = on');
    await db.sql("CREATE MODEL lin WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t");
    expect(await jit()).toBe('on');
    await expectSqlError(db.sql("CREATE MODEL bad WITH ('algorithm' = 'linear_regression', 'label' = 'nope') AS SELECT x, y FROM t"), '42703');
    expect(await jit()).toBe('on');
    await db.sql('SET jit = off');
    await db.sql('BEGIN');
    await db.sql("CREATE MODEL lin2 WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM t");
    expect(await jit()).toBe('off');
    await db.sql('COMMIT');
    expect(await jit()).toBe('off');
    await db.sql('SET jit = on');
  });
});
