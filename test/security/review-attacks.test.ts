/**
 * A second review of the catalog's write functions (catalog layout 4) by a hostile role on a
 * real Postgres, by direct SQL: the same set-up as catalog-attacks.test.ts. `alice` is the
 * victim, `bob` the attacker. A test marked `failing` is a hole found and not yet closed: it
 * asserts the secure behaviour, and passes once the hole is closed (then drop the mark).
 */
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { PostgresDialect } from '../../adapters/postgres/postgres-dialect.js';
import { runCli } from '../support/run-cli.js';
import { createTestDatabase } from '../support/postgres-server.js';
import { serverUrl } from '../adapters/postgres/proxy-helpers.js';

import { BOB_KEY, NONE, ROLE, aliceModel, as, catalogRows, expectAliceModelIntact, failure, rows, PASSWORD, tag, type RoleName } from './attack-fixture.js';

test('helpers are not callable by PUBLIC, and the writers act only as the caller', async () => {
  const name = 'review_names';
  await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
  const before = await catalogRows('alices', name);
  await as('bob', 'direct', async (c) => {
    expect(await failure(c.query(`SELECT ml_catalog.may_alter($1, $1)`, [ROLE.bob]))).toBe('42501');
    expect(await failure(c.query(`SELECT ml_catalog.caller(pg_catalog.gen_random_uuid())`))).toBe('42501');
    expect(await failure(c.query(`SELECT ml_catalog.may_use($1, 1, $1)`, [ROLE.bob]))).toBe('42501');
    // The layout-4 writers that took the acting role as an argument are gone.
    expect(await failure(c.query(`SELECT ml_catalog.set_grant($1, 'alices', '${name}', '${ROLE.bob}', true)`, [ROLE.alice]))).toBe('42883');
    expect(await failure(c.query(`SELECT ml_catalog.acting_role($1)`, [ROLE.bob]))).toBe('42883');
    // Every spelling of a grantee, PUBLIC included: bob acts as bob, who may not alter the model.
    for (const who of ['public', 'PUBLIC', `"${ROLE.alice}"`, ROLE.bob, `${ROLE.alice}'; --`, null]) {
      expect(await failure(c.query(`SELECT ml_catalog.set_grant('alices', '${name}', $1, true)`, [who]))).toBe('42501');
    }
  });
  expect(await catalogRows('alices', name)).toEqual(before);
});

test('every catalog table, the id sequence and the cache refuse direct writes of another role’s rows', async () => {
  const name = 'review_direct';
  await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
  const before = await catalogRows('alices', name);
  await as('bob', 'direct', async (c) => {
    for (const t of ['models', 'model_versions', 'artifacts', 'training_metrics', 'model_secrets', 'model_grants']) {
      expect(await failure(c.query(`UPDATE ml_catalog.${t} SET owner = current_user`))).toBe('42501');
      expect(await failure(c.query(`DELETE FROM ml_catalog.${t}`))).toBe('42501');
      expect(await failure(c.query(`TRUNCATE ml_catalog.${t} CASCADE`))).toBe('42501');
    }
    expect(await failure(c.query(`UPDATE ml_catalog.prediction_runs SET run_by = current_user`))).toBe('42501');
    expect(await failure(c.query(`SELECT setval('ml_catalog.model_ids', 1)`))).toBe('42501');
    expect(await failure(c.query(`SELECT nextval('ml_catalog.model_ids')`))).toBe('42501');
    expect(await failure(c.query(`INSERT INTO ml_catalog.prediction_cache (cache_key, provider, model, answer, created_at, owner) VALUES ('k', 'openai', 'gpt', 'poisoned', now(), '${ROLE.alice}')`))).toBe('42501');
    expect(await failure(c.query(`ALTER FUNCTION ml_catalog.set_grant(text, text, text, boolean) SECURITY DEFINER`))).toBe('42501');
    expect(await failure(c.query(`ALTER FUNCTION ml_catalog.set_grant_as(uuid, text, text, text, boolean) SECURITY INVOKER`))).toBe('42501');
    expect(await failure(c.query(`ALTER TABLE ml_catalog.callers ALTER COLUMN caller SET DEFAULT '${ROLE.alice}'`))).toBe('42501');
    expect(await failure(c.query(`CREATE TRIGGER t BEFORE INSERT ON ml_catalog.callers FOR EACH ROW EXECUTE FUNCTION pg_catalog.suppress_redundant_updates_trigger()`))).toBe('42501');
    expect(await failure(c.query(`CREATE FUNCTION ml_catalog.x() RETURNS int LANGUAGE sql AS 'SELECT 1'`))).toBe('42501');
  });
  expect(await catalogRows('alices', name)).toEqual(before);
});

test('a run bob records as TEMPORARY under alice’s model name is not shown to alice', async () => {
  const name = 'review_runs';
  await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
  await as('bob', 'direct', (c) =>
    c.query(`SELECT ml_catalog.record_run(true, 'planted', 'alices', '${name}', 1, 't', 1, 0, 1, NULL, CAST(now() AS timestamp), NULL)`),
  );
  await as('alice', 'direct', async (c) => expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.prediction_runs WHERE run_id = 'planted'`)).toEqual([[0]]));
});

/**
 * The body of a trap of bob's: every way code running as bob could try to act as the role
 * whose session runs it (`session_user`), each attempt's failure swallowed so the
 * session's own statement goes on; `tries` counts the attempts that did not fail.
 */
function trap(name: string): string {
  const attempts = [
    `PERFORM ml_catalog.set_grant('alices', '${name}', '${ROLE.bob}', true)`,
    `PERFORM ml_catalog.set_grant('alices', '${name}', 'public', true)`,
    `INSERT INTO ml_catalog.callers (token, caller) VALUES ('00000000-0000-4000-8000-000000000001', CAST(session_user AS text)); PERFORM ml_catalog.set_grant_as('00000000-0000-4000-8000-000000000001', 'alices', '${name}', 'public', true)`,
    `PERFORM ml_catalog.set_grant_as(pg_catalog.gen_random_uuid(), 'alices', '${name}', 'public', true)`,
    `SET LOCAL ROLE NONE; PERFORM ml_catalog.set_grant('alices', '${name}', 'public', true)`,
    `PERFORM ml_catalog.set_grant(CAST(session_user AS text), 'alices', '${name}', 'public', true)`,
  ];
  return attempts.map((a) => `BEGIN ${a}; tries := tries + 1; EXCEPTION WHEN OTHERS THEN NULL; END;`).join('\n  ');
}

// Postgres runs a table owner's index expressions as that owner in ANALYZE, VACUUM, CREATE
// INDEX, REFRESH MATERIALIZED VIEW and autovacuum, while `session_user` stays the role that
// started the operation: a superuser or the database owner. Code run so is bob, and acts as bob.
test('bob’s index expression evaluated by the superuser’s ANALYZE acts as bob, not as the superuser', async () => {
  const name = 'review_analyze';
  await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
  await as('bob', 'direct', async (c) => {
    await c.query(`CREATE FUNCTION public.bob_trap_${tag}(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE tries int := 0;
BEGIN
  IF session_user <> current_user THEN
  ${trap(name)}
    IF tries > 0 THEN RAISE EXCEPTION 'an attempt of bob''s went through'; END IF;
  END IF;
  RETURN i;
END $$`);
    await c.query(`CREATE TABLE public.bob_bait_${tag} AS SELECT 1 AS i`);
    await c.query(`CREATE INDEX ON public.bob_bait_${tag} (public.bob_trap_${tag}(i))`);
    expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.models WHERE model_name = '${name}'`)).toEqual([[0]]);
  });
  // A routine maintenance run by the superuser (or the database owner, or autovacuum).
  await as('superuser', 'direct', (c) => c.query(`ANALYZE public.bob_bait_${tag}`));
  expect((await catalogRows('alices', name)).model_grants).toBe(0);
  await as('bob', 'direct', async (c) => expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.models WHERE model_name = '${name}'`)).toEqual([[0]]));
});

let upgradedUrl: URL | undefined;

test('upgrade 3 → 4: rows bob left under a name alice later took are dropped, her model and rows kept', async () => {
  const url = new URL(await createTestDatabase(serverUrl()));
  const database = url.pathname.slice(1);
  await as('superuser', 'direct', (c) => c.query(`GRANT CREATE ON DATABASE ${database} TO ${ROLE.admin}`));
  const on = async (role: RoleName | 'superuser', fn: (c: pg.Client) => Promise<unknown>) => {
    const u = new URL(url);
    if (role !== 'superuser') [u.username, u.password] = [ROLE[role], PASSWORD];
    const c = new pg.Client({ connectionString: u.toString() });
    c.on('error', () => undefined);
    await c.connect();
    try {
      await fn(c);
    } finally {
      await c.end();
    }
  };
  await on('superuser', (c) => c.query(`GRANT CREATE ON SCHEMA public TO ${ROLE.admin}, ${ROLE.alice}, ${ROLE.bob}`));
  // A layout-3 catalog owned by the admin, as that release wrote it on Postgres.
  await on('admin', async (c) => {
    await c.query(`CREATE FUNCTION from_hex(text) RETURNS bytea LANGUAGE sql IMMUTABLE AS 'SELECT decode($1, ''hex'')'`);
    await c.query(readFileSync(new URL('../fixtures/catalog-layouts/layout-3.sql', import.meta.url), 'utf8'));
    await c.query('DROP FUNCTION from_hex(text)');
    const roles = new PostgresDialect().roles!;
    for (let v = 1; v <= 3; v++) for (const statement of roles.catalogMigration(v)) await c.query(statement);
  });
  const m = 'public.upgraded';
  await on('bob', async (c) => {
    // Layout 3's hole: bob's rows under a name, then only the models row deleted.
    await c.query(`INSERT INTO ml_catalog.models (schema_name, model_name, default_version, owner, created_at, updated_at) VALUES ('public', 'upgraded', 1, current_user, now(), now())`);
    await c.query(`INSERT INTO ml_catalog.model_versions (schema_name, model_name, version, provider, input_schema, output_schema, options, created_at, owner) VALUES ('public', 'upgraded', 1, 'openai', '[]', '[]', '[]', now(), current_user)`);
    await c.query(`INSERT INTO ml_catalog.model_secrets (schema_name, model_name, version, option_key, secret, owner) VALUES ('public', 'upgraded', 1, 'api-key', '${BOB_KEY}', current_user)`);
    await c.query(`INSERT INTO ml_catalog.model_grants (schema_name, model_name, grantee, owner, granted_by, granted_at) VALUES ('public', 'upgraded', 'public', current_user, current_user, now())`);
    await c.query(`DELETE FROM ml_catalog.models WHERE model_name = 'upgraded'`);
  });
  await on('alice', async (c) => {
    await c.query(`INSERT INTO ml_catalog.models (schema_name, model_name, default_version, owner, created_at, updated_at) VALUES ('public', 'upgraded', 2, current_user, now(), now())`);
    await c.query(`INSERT INTO ml_catalog.model_versions (schema_name, model_name, version, provider, input_schema, output_schema, options, created_at, owner) VALUES ('public', 'upgraded', 2, 'openai', '[]', '[]', '[]', now(), current_user)`);
    await c.query(`INSERT INTO ml_catalog.model_grants (schema_name, model_name, grantee, owner, granted_by, granted_at) VALUES ('public', 'upgraded', '${ROLE.admin}', current_user, current_user, now())`);
  });
  // bob's forged run under alice's model name (layout 3 let any role insert one).
  await on('bob', (c) => c.query(`INSERT INTO ml_catalog.prediction_runs (run_id, schema_name, model_name, version, row_count, error_count, duration_ms, started_at) VALUES ('forged', 'public', 'upgraded', 2, 1, 0, 1, now())`));
  const adminUrl = new URL(url);
  [adminUrl.username, adminUrl.password] = [ROLE.admin, PASSWORD];
  const r = await runCli(['catalog', 'upgrade', adminUrl.toString()]);
  expect([r.status, r.stderr]).toEqual([0, '']);
  await on('superuser', async (c) => {
    const owners = async (t: string) => (await rows(c, `SELECT owner FROM ml_catalog.${t} WHERE schema_name || '.' || model_name = $1 ORDER BY 1`, [m])).map((x) => x[0]);
    expect(await owners('models')).toEqual([ROLE.alice]);
    expect(await owners('model_versions')).toEqual([ROLE.alice]);
    expect(await owners('model_secrets')).toEqual([]);
    expect(await owners('model_grants')).toEqual([ROLE.alice]);
    expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.models WHERE schema_name = 'shop'`)).toEqual([[3]]);
  });
  await on('bob', async (c) => {
    expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.models WHERE model_name = 'upgraded'`)).toEqual([[0]]);
    expect(await failure(c.query(`SELECT ml_catalog.set_grant('public', 'upgraded', 'public', true)`))).toBe('42501');
  });
  upgradedUrl = url;
});

// Layout 3 let any role insert prediction_runs rows for any model name (under its own
// run_by): migration 4 ties a run to a model only when its role may use the model, and
// drops the other runs naming a model, so bob's forged run is not part of her lineage.
test('upgrade 3 → 4: a run bob forged in layout 3 under alice’s model name is not tied to her model', async () => {
  const u = new URL(upgradedUrl!);
  [u.username, u.password] = [ROLE.alice, PASSWORD];
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    expect(await rows(c, `SELECT run_by FROM ml_catalog.prediction_runs WHERE model_name = 'upgraded'`)).toEqual([]);
  } finally {
    await c.end();
  }
});

test('a grantee cannot change the model; bob’s own operators and functions on his search_path do not stand in for the catalog’s', async () => {
  const name = 'review_grantee';
  await as('alice', 'proxy', async (c) => {
    await c.query(aliceModel('alices', name));
    await c.query(`GRANT USAGE ON MODEL alices.${name} TO ${ROLE.bob}`);
  });
  const before = await catalogRows('alices', name);
  await as('bob', 'direct', async (c) => {
    await c.query(`CREATE FUNCTION public.always_${tag}(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'`);
    await c.query(`CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.always_${tag})`);
    await c.query(`CREATE FUNCTION public.pg_has_role(name, regrole, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'`);
    await c.query(`CREATE FUNCTION pg_temp.pg_has_role(name, regrole, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'`);
    await c.query('SET search_path = pg_temp, public, pg_catalog');
    for (const sql of [
      `SELECT ml_catalog.set_grant('alices', '${name}', 'public', true)`,
      `SELECT ml_catalog.update_version('alices', '${name}', 1, 'openai', NULL, '[]', '{api-key}', '{${BOB_KEY}}', NULL)`,
      `SELECT ml_catalog.drop_model('alices', '${name}', NULL)`,
    ]) {
      expect(await failure(c.query(sql))).toBe('42501');
    }
  });
  expect(await catalogRows('alices', name)).toEqual(before);
});

describe.each(['direct', 'proxy'] as const)('code running as another role inside alice’s session, %s', (via) => {
  // alice calls a SECURITY DEFINER function of bob's: Postgres runs it as bob (`current_user`),
  // while `session_user` is still alice. It acts as bob.
  test('bob’s SECURITY DEFINER function, called by alice, cannot act on her model', async () => {
    const name = `review_definer_${via}`;
    await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
    const before = await catalogRows('alices', name);
    await as('bob', 'direct', (c) =>
      c.query(`CREATE FUNCTION public.bob_helper_${via}_${tag}() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE tries int := 0;
BEGIN
  IF session_user <> current_user THEN
  ${trap(name)}
  END IF;
  RETURN tries;
END $$`),
    );
    await as('alice', via, async (c) => {
      expect(await rows(c, `SELECT public.bob_helper_${via}_${tag}()`)).toEqual([[0]]);
      // Her own statements in the same session still act as her.
      await c.query(`SELECT ml_catalog.set_grant('alices', '${name}', '${ROLE.admin}', true)`);
    });
    expect(await catalogRows('alices', name)).toEqual({ ...before, model_grants: 1 });
    await expectAliceModelIntact('alices', name);
  });

  // SET ROLE to a role with fewer rights: code run after it acts as that role, not as the login role.
  test('after SET ROLE to a role of no rights, alice’s session cannot change her model', async () => {
    const name = `review_setrole_${via}`;
    const nobody = `nobody_${via}_${tag}`;
    await as('superuser', 'direct', async (c) => {
      await c.query(`CREATE ROLE ${nobody}`);
      await c.query(`GRANT ${nobody} TO ${ROLE.alice}`);
    });
    await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
    const before = await catalogRows('alices', name);
    await as('alice', via, async (c) => {
      await c.query(`SET ROLE ${nobody}`);
      expect(await failure(c.query(`SELECT ml_catalog.set_grant('alices', '${name}', 'public', true)`))).toBe('42501');
      expect(await failure(c.query(`SELECT ml_catalog.drop_model('alices', '${name}', NULL)`))).toBe('42501');
      if (via === 'proxy') expect(await failure(c.query(`DROP MODEL alices.${name}`))).toBe('42704');
      await c.query('RESET ROLE');
      await c.query(`SELECT ml_catalog.set_grant('alices', '${name}', '${nobody}', true)`);
      await c.query(`SET ROLE ${nobody}`);
      // A grantee now: it may use the model, and still not change it.
      expect(await failure(c.query(`SELECT ml_catalog.drop_model('alices', '${name}', NULL)`))).toBe('42501');
      if (via === 'proxy') expect(await failure(c.query(`DROP MODEL alices.${name}`))).toBe('42501');
    });
    expect(await catalogRows('alices', name)).toEqual({ ...before, model_grants: 1 });
  });
});

test('bob’s function named like the function of a model alice creates later: her CREATE MODEL is refused with 42710, nothing written, his function untouched', async () => {
  const name = `review_fn_${tag}`;
  await as('bob', 'direct', async (c) => {
    await c.query(`CREATE FUNCTION public.ml_predict_${name}(x double precision) RETURNS double precision LANGUAGE sql AS 'SELECT 666.0'`);
    await c.query(`GRANT EXECUTE ON FUNCTION public.ml_predict_${name}(double precision) TO PUBLIC`);
  });
  await as('alice', 'direct', (c) => c.query(`CREATE TABLE alices.train_${tag} AS SELECT CAST(i AS double precision) AS x, CAST(2 * i AS double precision) AS y FROM generate_series(1, 20) AS g(i)`));
  await as('alice', 'proxy', async (c) => {
    const error = await c.query(`CREATE MODEL public.${name} WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM alices.train_${tag}`).then(
      () => undefined,
      (e: { code?: string; message: string }) => e,
    );
    expect(error).toMatchObject({ code: '42710', message: expect.stringContaining(`function public.ml_predict_${name}(double precision) already exists and was not created by modelsql`) });
  });
  expect(await catalogRows('public', name)).toEqual(NONE);
  await as('alice', 'direct', async (c) => expect(await rows(c, `SELECT public.ml_predict_${name}(1)`)).toEqual([[666]]));
});
