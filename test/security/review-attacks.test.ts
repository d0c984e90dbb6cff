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

import { BOB_KEY, ROLE, aliceModel, as, catalogRows, failure, proxy, rows, PASSWORD, tag, type RoleName } from './attack-fixture.js';

test('helpers are not callable by PUBLIC, and role names that are not the caller are refused', async () => {
  const name = 'review_names';
  await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
  const before = await catalogRows('alices', name);
  await as('bob', 'direct', async (c) => {
    expect(await failure(c.query(`SELECT ml_catalog.may_alter($1, $1)`, [ROLE.bob]))).toBe('42501');
    expect(await failure(c.query(`SELECT ml_catalog.acting_role($1)`, [ROLE.bob]))).toBe('42501');
    expect(await failure(c.query(`SELECT ml_catalog.may_use($1, 1, $1)`, [ROLE.bob]))).toBe('42501');
    // Every spelling of another role, PUBLIC, a quoted or upper-cased name, an injection, NULL: refused.
    for (const who of ['public', 'PUBLIC', `"${ROLE.alice}"`, ROLE.alice.toUpperCase(), `${ROLE.alice}'; --`, ROLE.admin, 'postgres', null]) {
      expect(await failure(c.query(`SELECT ml_catalog.set_grant($1, 'alices', '${name}', '${ROLE.bob}', true)`, [who]))).toBe('42501');
    }
    // A grant with a hostile grantee name changes nothing for the owner's model.
    expect(await failure(c.query(`SELECT ml_catalog.set_grant(CAST(current_user AS text), 'alices', '${name}', 'public', true)`))).toBe('42501');
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
    expect(await failure(c.query(`ALTER FUNCTION ml_catalog.set_grant(text, text, text, text, boolean) SECURITY INVOKER`))).toBe('42501');
    expect(await failure(c.query(`CREATE FUNCTION ml_catalog.x() RETURNS int LANGUAGE sql AS 'SELECT 1'`))).toBe('42501');
  });
  expect(await catalogRows('alices', name)).toEqual(before);
});

test('a run bob records as TEMPORARY under alice’s model name is not shown to alice', async () => {
  const name = 'review_runs';
  await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
  await as('bob', 'direct', (c) =>
    c.query(`SELECT ml_catalog.record_run(CAST(current_user AS text), true, 'planted', 'alices', '${name}', 1, 't', 1, 0, 1, NULL, CAST(now() AS timestamp), NULL)`),
  );
  await as('alice', 'direct', async (c) => expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.prediction_runs WHERE run_id = 'planted'`)).toEqual([[0]]));
});

// HOLE: `acting_role` trusts `session_user`. In a security-restricted operation (ANALYZE,
// VACUUM, CREATE INDEX, REFRESH MATERIALIZED VIEW, autovacuum) Postgres runs a table owner's
// index expressions as that owner, but `session_user` stays the role that started the
// operation: a superuser or the database owner. Bob's index function then passes
// `session_user` to the SECURITY DEFINER writers and acts with that role's catalog rights
// (here: grants himself and PUBLIC alice's model, whose key his requests would then use).
test.failing('bob’s index expression acts as the superuser running ANALYZE (session_user trusted): alice’s model granted to bob', async () => {
  const name = 'review_analyze';
  await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
  await as('bob', 'direct', async (c) => {
    await c.query(`CREATE FUNCTION public.bob_trap_${tag}(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF session_user <> current_user THEN
    PERFORM ml_catalog.set_grant(CAST(session_user AS text), 'alices', '${name}', '${ROLE.bob}', true);
    PERFORM ml_catalog.set_grant(CAST(session_user AS text), 'alices', '${name}', 'public', true);
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
    expect(await failure(c.query(`SELECT ml_catalog.set_grant(CAST(current_user AS text), 'public', 'upgraded', 'public', true)`))).toBe('42501');
  });
  upgradedUrl = url;
});

// HOLE (minor, lineage integrity): layout 3 let any role insert prediction_runs rows for
// any model name; migration 4 ties runs to models by (schema, name) alone, so a run bob
// forged under alice's model name before the upgrade becomes part of her model's lineage
// after it (shown to her and every grantee), although bob could never use that model.
test.failing('upgrade 3 → 4: a run bob forged in layout 3 under alice’s model name is not tied to her model', async () => {
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
      `SELECT ml_catalog.set_grant(CAST(current_user AS text), 'alices', '${name}', 'public', true)`,
      `SELECT ml_catalog.update_version(CAST(current_user AS text), 'alices', '${name}', 1, 'openai', NULL, '[]', '{api-key}', '{${BOB_KEY}}', NULL)`,
      `SELECT ml_catalog.drop_model(CAST(current_user AS text), 'alices', '${name}', NULL)`,
      `SELECT ml_catalog.set_grant('${ROLE.alice}', 'alices', '${name}', 'public', true)`,
    ]) {
      expect(await failure(c.query(sql))).toBe('42501');
    }
  });
  expect(await catalogRows('alices', name)).toEqual(before);
});

// HOLE (same root as the ANALYZE one): alice calls a SECURITY DEFINER function of bob's,
// which Postgres runs with bob's rights only; `session_user` is still alice, so bob's code
// writes alice's catalog rows as her.
test.failing('bob’s SECURITY DEFINER function, called by alice, acts on her model as her', async () => {
  const name = 'review_definer';
  await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
  await as('bob', 'direct', (c) =>
    c.query(`CREATE FUNCTION public.bob_helper_${tag}() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  IF session_user <> current_user THEN PERFORM ml_catalog.set_grant(CAST(session_user AS text), 'alices', '${name}', 'public', true); END IF;
  RETURN 1;
END $$`),
  );
  await as('alice', 'direct', (c) => c.query(`SELECT public.bob_helper_${tag}()`));
  expect((await catalogRows('alices', name)).model_grants).toBe(0);
});
