/**
 * Attacks on materialized tables by a hostile second role on a real Postgres (catalog layout
 * 7), by plain SQL connected directly and through the proxy. `alice` owns a CONTINUOUS
 * materialized table in schema public (where `bob` may create too) over her source in her
 * own schema, with her model; `bob` tries to see it, change it, refresh it, plant state and
 * change records, attach its change capture to a table of his, and make her refreshes run
 * his operators. Every attack fails, and her table stays as it was and keeps refreshing.
 */
import { connectPostgres } from '../../adapters/postgres/index.js';
import { startProxy } from '../../adapters/postgres/proxy/index.js';
import type { ModelSession } from '../../core/session/model-session.js';
import { PASSWORD, ROLE, aliceModel, aliceServer, as, dbUrl, failure, roleUrl, rows, tag } from './attack-fixture.js';
import { hostileObjects } from './hostile-objects.js';

/** alice's materialized table, its id, and what a refresh of it gives. */
const TABLE = 'public.alice_labels';
let id: number;

/** The result rows of alice's table, as alice reads them. */
async function aliceRows(): Promise<unknown[][]> {
  return as('alice', 'direct', (c) => rows(c, `SELECT id, a FROM ${TABLE} ORDER BY id`));
}

/** alice's catalog row's figures, as the superuser reads them. */
async function aliceStats(): Promise<unknown[]> {
  return as('superuser', 'direct', async (c) => (await rows(c, 'SELECT status, freshness_seconds, refresh_mode, refresh_count, rows_refreshed, error_count, owner FROM ml_catalog.materialized_tables WHERE table_id = $1', [id]))[0]!);
}

beforeAll(async () => {
  await as('superuser', 'direct', async (c) => {
    await c.query('CREATE TABLE public.hijack_log (who text, what text)');
    await c.query('GRANT INSERT ON public.hijack_log TO PUBLIC');
  });
  await as('alice', 'direct', async (c) => {
    await c.query('CREATE TABLE alices.reviews (id integer PRIMARY KEY, txt text)');
    await c.query(`INSERT INTO alices.reviews VALUES (1, 'one'), (2, 'two')`);
  });
  await as('alice', 'proxy', async (c) => {
    await c.query(aliceModel('alices', 'labeler'));
    await c.query(`CREATE MATERIALIZED TABLE ${TABLE} FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = CONTINUOUS AS SELECT id, a FROM ML_PREDICT(TABLE alices.reviews, MODEL alices.labeler, DESCRIPTOR(txt))`);
  });
  id = await as('superuser', 'direct', async (c) => Number((await rows(c, `SELECT table_id FROM ml_catalog.materialized_tables WHERE table_name = 'alice_labels'`))[0]![0]));
  // bob's operators, functions and aggregates for every type pair, in public (on alice's search path).
  await as('bob', 'direct', (c) => c.query(hostileObjects().join(';\n')));
}, 120_000);

test('alice owns her result table and sees her materialized table; its private objects are the catalog owner’s', async () => {
  expect(await aliceRows()).toEqual([
    [1, 'echo: one'],
    [2, 'echo: two'],
  ]);
  expect(await aliceStats()).toEqual(['ACTIVE', '3600', 'CONTINUOUS', '1', '2', '0', ROLE.alice]);
  await as('superuser', 'direct', async (c) => {
    expect(await rows(c, `SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'alice_labels'`)).toEqual([[ROLE.alice]]);
    const owners = await rows(c, `SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'ml_catalog' AND tablename LIKE $1 ORDER BY 1`, [`mt_${id}_%`]);
    expect(owners).toEqual([
      [`mt_${id}_changes`, ROLE.admin],
      [`mt_${id}_state`, ROLE.admin],
    ]);
  });
  await as('alice', 'proxy', async (c) => {
    expect((await rows(c, 'SHOW MATERIALIZED TABLES')).map((r) => r[1])).toEqual(['alice_labels']);
    expect(new Map((await rows(c, `DESCRIBE MATERIALIZED TABLE ${TABLE}`)).map((r) => [r[0], r[1]])).get('pending_changes')).toBe('0');
  });
});

describe.each(['direct', 'proxy'] as const)('bob, %s', (via) => {
  test('cannot see alice’s materialized table, its state or its changes', async () => {
    await as('bob', via, async (c) => {
      expect(await rows(c, 'SELECT count(*)::int FROM ml_catalog.materialized_tables')).toEqual([[0]]);
      expect(await failure(c.query(`SELECT * FROM ml_catalog.mt_${id}_state`))).toBe('42501');
      expect(await failure(c.query(`SELECT * FROM ml_catalog.mt_${id}_changes`))).toBe('42501');
      expect(await failure(c.query(`SELECT * FROM ${TABLE}`))).toBe('42501');
      if (via === 'proxy') {
        expect(await rows(c, 'SHOW MATERIALIZED TABLES')).toEqual([]);
        expect(await failure(c.query(`DESCRIBE MATERIALIZED TABLE ${TABLE}`))).toBe('42P01');
      }
    });
  });

  test('cannot alter, suspend, resume, refresh or drop it, with model statements or modelsql’s functions', async () => {
    const before = await aliceStats();
    await as('bob', via, async (c) => {
      if (via === 'proxy') {
        for (const action of ['SUSPEND', 'RESUME', 'REFRESH', `SET FRESHNESS = INTERVAL '1' SECOND`, 'SET REFRESH_MODE = FULL']) {
          expect([action, await failure(c.query(`ALTER MATERIALIZED TABLE ${TABLE} ${action}`))]).toEqual([action, '42P01']);
        }
        expect(await failure(c.query(`DROP MATERIALIZED TABLE ${TABLE}`))).toBe('42P01');
      }
      const calls = [
        `SELECT ml_catalog.alter_materialized(${id}, 'SUSPENDED', NULL, NULL)`,
        `SELECT ml_catalog.alter_materialized(${id}, NULL, 1, 'FULL')`,
        `SELECT ml_catalog.record_refresh(${id}, now()::timestamp, 1, 1, 1000, 1000, 0, 0, NULL)`,
        `SELECT ml_catalog.record_refresh_error(${id}, 'planted')`,
        `SELECT ml_catalog.uninstall_capture(${id})`,
        `SELECT ml_catalog.install_capture(${id}, ARRAY['id'], ARRAY['a'], ARRAY['text'], 'x', 'y')`,
        `SELECT ml_catalog.drop_materialized(${id})`,
      ];
      for (const sql of calls) expect([sql, await failure(c.query(sql))]).toEqual([sql, '42P01']);
      // The acting functions themselves, with a token of bob's own making or none.
      expect(await failure(c.query(`SELECT ml_catalog.drop_materialized_as(gen_random_uuid(), ${id})`))).toBe('42501');
      // Plain SQL on the catalog and on the private objects.
      for (const sql of [
        `UPDATE ml_catalog.materialized_tables SET status = 'SUSPENDED' WHERE table_id = ${id}`,
        `DELETE FROM ml_catalog.materialized_tables WHERE table_id = ${id}`,
        `INSERT INTO ml_catalog.materialized_tables SELECT * FROM ml_catalog.materialized_tables`,
        `DROP TABLE ${TABLE}`,
        `DROP TABLE ml_catalog.mt_${id}_state`,
      ]) {
        expect([sql, await failure(c.query(sql))]).toEqual([sql, '42501']);
      }
    });
    expect(await aliceStats()).toEqual(before);
  });

  test('cannot plant state or change rows, nor attach alice’s change capture to a table of his', async () => {
    await as('bob', via, async (c) => {
      expect(await failure(c.query(`INSERT INTO ml_catalog.mt_${id}_state (id, __input_hash, __row_hash, a) VALUES (1, 'x', 'y', 'planted')`))).toBe('42501');
      expect(await failure(c.query(`INSERT INTO ml_catalog.mt_${id}_changes (id) VALUES (99)`))).toBe('42501');
      expect(await failure(c.query(`DELETE FROM ml_catalog.mt_${id}_changes`))).toBe('42501');
      await c.query(`CREATE TABLE public.bob_rows_${via} (id integer)`);
      const attach = `CREATE TRIGGER steal AFTER INSERT ON public.bob_rows_${via} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ml_catalog.mt_${id}_capture('insert')`;
      expect(await failure(c.query(attach))).toBe('42501');
    });
    // Even attached by a role that may run it, the function records the changes of alice's source alone.
    await as('alice', 'direct', async (c) => {
      await c.query(`CREATE TABLE alices.other_${via} (id integer)`);
      await c.query(`CREATE TRIGGER misuse AFTER INSERT ON alices.other_${via} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ml_catalog.mt_${id}_capture('insert')`);
      expect(await failure(c.query(`INSERT INTO alices.other_${via} VALUES (99)`))).toBe('42501');
      expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.mt_${id}_changes`)).toEqual([[0]]);
      await c.query(`DROP TABLE alices.other_${via}`);
    });
  });

  test('cannot create a materialized table over alice’s source or with her model', async () => {
    await as('bob', via, async (c) => {
      if (via === 'proxy') {
        expect(await failure(c.query(`CREATE MATERIALIZED TABLE public.bob_copy_${via} FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = FULL AS SELECT * FROM alices.reviews`))).toBe('42501');
        await c.query(`CREATE TABLE public.bob_src_${via} (id integer PRIMARY KEY, txt text)`);
        expect(await failure(c.query(`CREATE MATERIALIZED TABLE public.bob_mt_${via} FRESHNESS = INTERVAL '1' HOUR AS SELECT id, a FROM ML_PREDICT(TABLE public.bob_src_${via}, MODEL alices.labeler, DESCRIPTOR(txt))`))).toBe('42704');
      }
      // With a result table of his own (without one, create_materialized refuses before anything else).
      await c.query(`CREATE TABLE public.bob_direct_${via} (id integer)`);
      const create = (source: string, model: string) =>
        c.query(`SELECT ml_catalog.create_materialized('public', 'bob_direct_${via}', 'x', 'x', 'CONTINUOUS', 60, 'ACTIVE', 'alices', ${source}, '["id"]', 'alices', ${model}, NULL, NULL)`);
      expect(await failure(create(`'reviews'`, 'NULL'))).toBe('42501');
      expect(await failure(create('NULL', `'labeler'`))).toBe('42704');
    });
    await as('superuser', 'direct', async (c) => expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.materialized_tables WHERE owner = '${ROLE.bob}'`)).toEqual([[0]]));
  });
});

test('alice’s refreshes, by direct SQL and through the proxy, run none of bob’s operators, and her table stays right', async () => {
  await as('alice', 'direct', async (c) => {
    await c.query(`INSERT INTO alices.reviews VALUES (3, 'three')`);
    await c.query(`UPDATE alices.reviews SET txt = 'uno' WHERE id = 1`);
    await c.query('DELETE FROM alices.reviews WHERE id = 2');
  });
  aliceServer.reset();
  await as('alice', 'proxy', (c) => c.query(`ALTER MATERIALIZED TABLE ${TABLE} REFRESH`));
  expect(aliceServer.requests.flatMap((r) => r.prompts).sort()).toEqual(['three', 'uno']);
  expect(await aliceRows()).toEqual([
    [1, 'echo: uno'],
    [3, 'echo: three'],
  ]);
  const library = await connectPostgres(roleUrl('alice', 'direct'));
  try {
    await library.sql(`INSERT INTO alices.reviews VALUES (4, 'four')`);
    await library.sql(`ALTER MATERIALIZED TABLE ${TABLE} REFRESH`);
  } finally {
    await library.close();
  }
  expect(await aliceRows()).toEqual([
    [1, 'echo: uno'],
    [3, 'echo: three'],
    [4, 'echo: four'],
  ]);
  await as('alice', 'direct', (c) => c.query('TRUNCATE alices.reviews'));
  await as('alice', 'proxy', async (c) => {
    await c.query(`ALTER MATERIALIZED TABLE ${TABLE} REFRESH`);
    await c.query(`DESCRIBE MATERIALIZED TABLE ${TABLE}`);
    await c.query(`ALTER MATERIALIZED TABLE ${TABLE} SUSPEND`);
    await c.query(`ALTER MATERIALIZED TABLE ${TABLE} RESUME`);
  });
  expect(await aliceRows()).toEqual([]);
  await as('superuser', 'direct', async (c) => expect(await rows(c, 'SELECT who, what FROM public.hijack_log')).toEqual([]));
  const stats = await aliceStats();
  expect(stats.slice(0, 3)).toEqual(['ACTIVE', '3600', 'CONTINUOUS']);
  expect(stats[5]).toBe('0');
});

test('a proxy refreshing as a member of alice acts as alice for her table, and leaves bob’s alone', async () => {
  const refresher = `refresher_${tag}`;
  await as('superuser', 'direct', async (c) => {
    await c.query(`CREATE ROLE ${refresher} LOGIN PASSWORD '${PASSWORD}'`);
    await c.query(`GRANT ${ROLE.alice} TO ${refresher}`);
  });
  await as('bob', 'direct', async (c) => {
    await c.query('CREATE TABLE public.bob_plain (id integer PRIMARY KEY)');
    await c.query('INSERT INTO public.bob_plain VALUES (1)');
  });
  await as('bob', 'proxy', (c) => c.query(`CREATE MATERIALIZED TABLE public.bob_full FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = FULL AS SELECT id FROM public.bob_plain`));
  await as('bob', 'direct', (c) => c.query('INSERT INTO public.bob_plain VALUES (2)'));
  // Due at every pass: the refresher refreshes it whenever it starts.
  await as('alice', 'proxy', (c) => c.query(`ALTER MATERIALIZED TABLE ${TABLE} SET FRESHNESS = INTERVAL '1' SECOND`));
  const upstream = new URL(dbUrl);
  const refreshUrl = new URL(dbUrl);
  refreshUrl.username = refresher;
  refreshUrl.password = PASSWORD;
  const proxy = await startProxy({ upstream: `postgres://${upstream.host}${upstream.pathname}?sslmode=disable`, listen: 0, refreshUrl: refreshUrl.toString(), session: { allowedUrlPrefixes: ['*'] }, log: () => undefined });
  try {
    await as('alice', 'direct', (c) => c.query(`INSERT INTO alices.reviews VALUES (7, 'seven')`));
    // A client of the database starts the proxy's refresher.
    const url = new URL(roleUrl('alice', 'direct'));
    url.host = `127.0.0.1:${proxy.port}`;
    const pg = await import('pg');
    const client = new pg.default.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      while ((await aliceRows()).length === 0) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await client.end();
    }
  } finally {
    await proxy.close();
  }
  expect(await aliceRows()).toEqual([[7, 'echo: seven']]);
  await as('superuser', 'direct', async (c) => {
    // The refresh's model run was alice's (SET ROLE for the refresh), not the refresher's.
    expect(await rows(c, `SELECT DISTINCT run_by FROM ml_catalog.prediction_runs WHERE model_name = 'labeler'`)).toEqual([[ROLE.alice]]);
    // bob's table, whose owner the refresher is no member of, was not refreshed (its one refresh is CREATE's).
    expect(await rows(c, `SELECT refresh_count FROM ml_catalog.materialized_tables WHERE table_name = 'bob_full'`)).toEqual([['1']]);
  });
  // What the refresher's role may refresh: the tables of the roles whose privileges it has.
  const asRefresher = await connectPostgres(refreshUrl.toString());
  try {
    expect((await (asRefresher as ModelSession).materialized.store.refreshable()).map((t) => t.name)).toEqual(['alice_labels']);
  } finally {
    await asRefresher.close();
  }
  await as('bob', 'proxy', (c) => c.query('DROP MATERIALIZED TABLE public.bob_full'));
});

test('the source cannot be dropped under the table, by its owner either; DROP MATERIALIZED TABLE takes every private object', async () => {
  await as('alice', 'direct', async (c) => {
    expect(await failure(c.query('DROP TABLE alices.reviews'))).toBe('2BP01');
    await c.query(`CREATE TABLE alices.scratch (id integer PRIMARY KEY, txt text)`);
  });
  await as('alice', 'proxy', (c) => c.query(`DROP MATERIALIZED TABLE ${TABLE}`));
  await as('superuser', 'direct', async (c) => {
    expect(await rows(c, `SELECT relname FROM pg_class WHERE relname LIKE $1`, [`mt_${id}_%`])).toEqual([]);
    expect(await rows(c, `SELECT proname FROM pg_proc WHERE proname LIKE $1`, [`mt_${id}_%`])).toEqual([]);
    expect(await rows(c, `SELECT tgname FROM pg_trigger WHERE tgname LIKE $1`, [`modelsql_mt_${id}_%`])).toEqual([]);
    expect(await rows(c, 'SELECT count(*)::int FROM ml_catalog.materialized_tables')).toEqual([[0]]);
  });
  await as('alice', 'direct', (c) => c.query('DROP TABLE alices.reviews'));
});
