/**
 * A hostile table owner against the confinement of a refresher (owner-confinement.ts):
 * code of the owner's that runs inside the refresh's SECURITY DEFINER runner renames the
 * runner and puts a plain function of its own under the runner's name. The runner's call
 * then must not run that function, where `RESET ROLE` would give the owner the
 * refresher's role (a member of bob, whom alice does not own).
 */
import pg from 'pg';
import { connectPostgres } from '../../adapters/postgres/index.js';
import type { ModelSession } from '../../core/session/model-session.js';
import type { MaterializedTable } from '../../core/materialized/materialized-store.js';
import { PASSWORD, ROLE, aliceModel, as, dbUrl, failure, roleUrl, rows, tag } from './attack-fixture.js';

const REFRESHER = `runner_refresher_${tag}`;

function refresherUrl(): string {
  const url = new URL(dbUrl);
  url.username = REFRESHER;
  url.password = PASSWORD;
  return url.toString();
}

/** The refresher's refresh of `name`, as `modelsql worker` runs it. */
async function refreshAsRefresher(name: string): Promise<unknown> {
  const session = (await connectPostgres(refresherUrl())) as ModelSession;
  try {
    const table = (await session.materialized.store.refreshable()).find((t: MaterializedTable) => t.name === name);
    if (!table) throw new Error(`the refresher does not see ${name}`);
    return await session.materialized.refreshAsOwner(table);
  } finally {
    await session.close();
  }
}

async function hijackLog(): Promise<unknown[][]> {
  return as('superuser', 'direct', (c) => rows(c, 'SELECT who, what FROM public.runner_log ORDER BY who, what'));
}

beforeAll(async () => {
  await as('superuser', 'direct', async (c) => {
    await c.query('CREATE TABLE public.runner_log (who text, what text)');
    await c.query('GRANT INSERT ON public.runner_log TO PUBLIC');
    await c.query(`CREATE ROLE ${REFRESHER} LOGIN PASSWORD '${PASSWORD}'`);
    await c.query(`GRANT ${ROLE.alice}, ${ROLE.bob} TO ${REFRESHER}`);
  });
  await as('alice', 'direct', async (c) => {
    await c.query('CREATE TABLE alices.reviews (id integer PRIMARY KEY, txt text)');
    await c.query(`INSERT INTO alices.reviews VALUES (1, 'one')`);
  });
  await as('alice', 'proxy', async (c) => {
    await c.query(aliceModel('alices', 'labeler'));
    await c.query(`CREATE MATERIALIZED TABLE public.alice_labels FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = CONTINUOUS AS SELECT id, a FROM ML_PREDICT(TABLE alices.reviews, MODEL alices.labeler, DESCRIPTOR(txt))`);
  });
}, 120_000);

test('code that renames the runner and takes its name for a plain function of its own stops the refresh, and never runs as the refresher', async () => {
  await as('alice', 'direct', async (c) => {
    await c.query(`CREATE FUNCTION alices.rename_runner() RETURNS boolean LANGUAGE plpgsql AS $$ DECLARE f text; BEGIN
      FOR f IN SELECT proname FROM pg_catalog.pg_proc WHERE pronamespace = pg_catalog.pg_my_temp_schema() AND prosecdef LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION pg_temp.%I(text, text) RENAME TO %I', f, 'moved_' || f);
        EXECUTE pg_catalog.format('CREATE FUNCTION pg_temp.%I(p_sql text, p_into text) RETURNS bigint LANGUAGE plpgsql AS $r$ BEGIN
          BEGIN RESET ROLE; INSERT INTO public.runner_log VALUES (current_user, ''escaped''); EXCEPTION WHEN others THEN INSERT INTO public.runner_log VALUES (current_user, ''refused: '' || SQLSTATE); END;
          RETURN 0; END $r$', f);
      END LOOP; RETURN true; END $$`);
    await c.query('ALTER TABLE alices.reviews ENABLE ROW LEVEL SECURITY');
    await c.query('ALTER TABLE alices.reviews FORCE ROW LEVEL SECURITY');
    await c.query('CREATE POLICY rename ON alices.reviews USING (alices.rename_runner())');
    await c.query(`INSERT INTO alices.reviews VALUES (2, 'two')`);
  });
  const refused = await failure(refreshAsRefresher('alice_labels'));
  expect((await hijackLog()).filter(([who]) => who !== ROLE.alice)).toEqual([]);
  expect(refused).toBe('42501');
  // Without the policy, the refresher catches up.
  await as('alice', 'direct', async (c) => {
    await c.query('DROP POLICY rename ON alices.reviews');
    await c.query('ALTER TABLE alices.reviews NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY');
  });
  expect(await refreshAsRefresher('alice_labels')).toMatchObject({ rowsPredicted: 1 });
  expect(await as('alice', 'direct', (c) => rows(c, 'SELECT id, a FROM public.alice_labels ORDER BY id'))).toEqual([
    [1, 'echo: one'],
    [2, 'echo: two'],
  ]);
});

test('bob cannot hold a row lock on alice’s table by calling a catalog function on it and leaving his transaction failed: her refreshes and ALTERs go on', async () => {
  // The id is in the names of the table's change capture objects, which every role may read.
  const id = await as('bob', 'direct', async (c) => {
    const found = await rows(c, `SELECT substring(proname FROM '^mt_([0-9]+)_capture$') FROM pg_catalog.pg_proc WHERE proname ~ '^mt_[0-9]+_capture$'`);
    expect(found).toHaveLength(1);
    return String(found[0]![0]);
  });
  const bob = new pg.Client({ connectionString: roleUrl('bob', 'direct') });
  bob.on('error', () => undefined);
  await bob.connect();
  try {
    await bob.query('BEGIN');
    // Each fails with 42P01 for him; his transaction stays open, failed, until he ends it.
    expect(await failure(bob.query(`SELECT ml_catalog.claim_refresh(${id})`))).toBe('42P01');
    await as('alice', 'direct', (c) => c.query(`INSERT INTO alices.reviews VALUES (3, 'three')`));
    expect(await refreshAsRefresher('alice_labels')).toMatchObject({ rowsPredicted: 1 });
    await bob.query('ROLLBACK');
    await bob.query('BEGIN');
    expect(await failure(bob.query(`SELECT ml_catalog.alter_materialized(${id}, 'SUSPENDED', NULL, NULL)`))).toBe('42P01');
    await as('alice', 'proxy', async (c) => {
      await c.query('SET statement_timeout = 10000');
      await c.query('ALTER MATERIALIZED TABLE public.alice_labels SUSPEND');
      await c.query('ALTER MATERIALIZED TABLE public.alice_labels RESUME');
    });
  } finally {
    await bob.end();
  }
});

test('code in a refresh that swaps the session’s kept prepared statements for its own (DEALLOCATE, PREPARE of the same name) never runs them as the refresher', async () => {
  await as('alice', 'direct', async (c) => {
    await c.query(`CREATE FUNCTION alices.grab() RETURNS text LANGUAGE plpgsql AS $$ BEGIN
      BEGIN RESET ROLE; INSERT INTO public.runner_log VALUES (current_user, 'prepared escape'); EXCEPTION WHEN others THEN INSERT INTO public.runner_log VALUES (current_user, 'prepared refused: ' || SQLSTATE); END;
      RETURN NULL; END $$`);
    await c.query(`CREATE FUNCTION alices.swap_prepared() RETURNS boolean LANGUAGE plpgsql AS $$ DECLARE n text; t text; BEGIN
      FOR n, t IN SELECT name, pg_catalog.array_to_string(CAST(parameter_types AS text[]), ', ') FROM pg_catalog.pg_prepared_statements LOOP
        EXECUTE pg_catalog.format('DEALLOCATE %I', n);
        EXECUTE pg_catalog.format('PREPARE %I(%s) AS SELECT alices.grab()', n, t);
      END LOOP; RETURN true; END $$`);
    await c.query('ALTER TABLE alices.reviews ENABLE ROW LEVEL SECURITY');
    await c.query('ALTER TABLE alices.reviews FORCE ROW LEVEL SECURITY');
    await c.query('CREATE POLICY swap ON alices.reviews USING (alices.swap_prepared())');
    await c.query(`INSERT INTO alices.reviews VALUES (4, 'four')`);
  });
  await c_truncateLog();
  const outcome = await refreshAsRefresher('alice_labels').then(
    (r) => r,
    (e: { code?: string; sqlstate?: string }) => e.sqlstate ?? e.code,
  );
  expect((await hijackLog()).filter(([who]) => who !== ROLE.alice)).toEqual([]);
  await as('alice', 'direct', async (c) => {
    await c.query('DROP POLICY swap ON alices.reviews');
    await c.query('ALTER TABLE alices.reviews NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY');
  });
  // Whether the swapped statements stopped the refresh or were never used, the next refresh catches up.
  if (typeof outcome === 'string') expect(await refreshAsRefresher('alice_labels')).toMatchObject({ rowsPredicted: 1 });
  expect(await as('alice', 'direct', (c) => rows(c, 'SELECT a FROM public.alice_labels WHERE id = 4'))).toEqual([['echo: four']]);
});

async function c_truncateLog(): Promise<void> {
  await as('superuser', 'direct', (c) => c.query('DELETE FROM public.runner_log'));
}
