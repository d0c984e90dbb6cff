/**
 * Attacks on the model catalog by a hostile second role, on a real Postgres with real
 * roles (the run's server: embedded, or the one `MODELSQL_TEST_POSTGRES_URL` names), each
 * by plain SQL connected directly and the same through the proxy. `alice` is the victim,
 * `bob` the attacker; both have CREATE on schema public, only alice on schema `alices`.
 * Every attack must fail, and alice's models, data and key stay as they were: her model
 * answers with her version, her key reaches only her endpoint, her DROP MODEL drops.
 * (ML_PREDICT calls carry an alias: Postgres before 16 requires one on a subquery in FROM,
 * which is what a call becomes.)
 */
import { runCli } from '../support/run-cli.js';

import { ALICE_KEY, BOB_KEY, NONE, ROLE, aliceModel, aliceServer, as, bobServer, catalogRows, expectAliceModelIntact, failure, roleUrl, rows, type RoleName } from './attack-fixture.js';

describe.each(['direct', 'proxy'] as const)('attacks by plain SQL, %s', (via) => {
  test('bob plants versions, grants and secrets for a future model in alice’s schema: 42501, and her later model is clean', async () => {
    const name = `target_${via}`;
    await as('bob', via, async (c) => {
      const plants = [
        `INSERT INTO ml_catalog.models (schema_name, model_name, default_version, owner, created_at, updated_at) VALUES ('alices', '${name}', 1, '${ROLE.bob}', now(), now())`,
        `INSERT INTO ml_catalog.model_versions (schema_name, model_name, version, provider, input_schema, output_schema, options, created_at, owner) VALUES ('alices', '${name}', 1, 'openai', '[]', '[]', '[]', now(), '${ROLE.bob}')`,
        `INSERT INTO ml_catalog.model_grants (schema_name, model_name, grantee, owner, granted_by, granted_at) VALUES ('alices', '${name}', 'public', '${ROLE.bob}', '${ROLE.bob}', now())`,
        `INSERT INTO ml_catalog.model_secrets (schema_name, model_name, version, option_key, secret, owner) VALUES ('alices', '${name}', 1, 'api-key', '${BOB_KEY}', '${ROLE.bob}')`,
      ];
      for (const sql of plants) expect(await failure(c.query(sql))).toBe('42501');
      // Through modelsql's own function: a model in a schema bob may not create in is refused, owned by bob or by alice.
      const write = (owner: string) =>
        c.query(
          `SELECT ml_catalog.write_version('alices', '${name}', $1, NULL, NULL, NULL, 1, 'openai', NULL, '[]', '[]', '[]', NULL, NULL, NULL, '{}', '{}', '{}', '{}', '{}', '{}', '{}')`,
          [owner],
        );
      expect(await failure(write(ROLE.bob))).toBe('42501');
      expect(await failure(write(ROLE.alice))).toBe('42501');
    });
    expect(await catalogRows('alices', name)).toEqual(NONE);
    await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
    expect(await catalogRows('alices', name)).toEqual({ ...NONE, models: 1, model_versions: 1, model_secrets: 1 });
    await as('bob', via, async (c) => expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.models WHERE model_name = '${name}'`)).toEqual([[0]]));
    await as('bob', 'proxy', async (c) => expect(await failure(c.query(`SELECT * FROM ML_PREDICT(TABLE notes, MODEL alices.${name}, DESCRIPTOR(txt)) AS p`))).toBe('42704'));
    await expectAliceModelIntact('alices', name);
  });

  test('bob deletes only the models row of his model: 42501; his DROP takes every row; alice’s model of that name is clean and her DROP drops', async () => {
    const name = `future_${via}`;
    await as('bob', 'proxy', async (c) => {
      await c.query(`CREATE MODEL public.${name} INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${bobServer.url}/v1', 'model' = 'gpt', 'api-key' = '${BOB_KEY}', 'cache' = 'false')`);
      await c.query(`GRANT USAGE ON MODEL public.${name} TO PUBLIC`);
      await c.query(`GRANT USAGE ON MODEL public.${name} TO ${ROLE.bob}`);
    });
    await as('bob', via, async (c) => {
      expect(await failure(c.query(`DELETE FROM ml_catalog.models WHERE model_name = '${name}'`))).toBe('42501');
      expect(await failure(c.query(`UPDATE ml_catalog.models SET model_name = 'elsewhere' WHERE model_name = '${name}'`))).toBe('42501');
      expect((await catalogRows('public', name)).model_grants).toBe(2);
      // Dropping goes through modelsql's function: every row of the model goes with it (foreign keys that cascade).
      await c.query(`SELECT ml_catalog.drop_model('public', '${name}', NULL)`);
    });
    expect(await catalogRows('public', name)).toEqual(NONE);
    await as('alice', 'proxy', (c) => c.query(aliceModel('public', name)));
    expect(await catalogRows('public', name)).toEqual({ ...NONE, models: 1, model_versions: 1, model_secrets: 1 });
    await as('bob', via, async (c) => {
      expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.usable_secrets WHERE model_name = '${name}'`)).toEqual([[0]]);
      expect(await rows(c, `SELECT count(*)::int FROM ml_catalog.model_versions WHERE model_name = '${name}'`)).toEqual([[0]]);
    });
    await expectAliceModelIntact('public', name);
    await as('alice', 'proxy', (c) => c.query(`DROP MODEL public.${name}`));
    expect(await catalogRows('public', name)).toEqual(NONE);
  });

  test('bob writes into alice’s existing model through modelsql’s functions, as himself or posing as her: refused, her model intact', async () => {
    const name = `existing_${via}`;
    await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
    const before = await catalogRows('alices', name);
    await as('bob', via, async (c) => {
      const calls = [
        ['set_grant', `'alices', '${name}', '${ROLE.bob}', true`],
        ['drop_model', `'alices', '${name}', NULL`],
        ['set_default_version', `'alices', '${name}', 1`],
        ['update_version', `'alices', '${name}', 1, 'openai', NULL, '[]', '{api-key}', '{${BOB_KEY}}', NULL`],
        ['rename_model', `'alices', '${name}', 'public', 'stolen_${via}'`],
        ['write_version', `'alices', '${name}', NULL, 2, NULL, NULL, 2, 'openai', NULL, '[]', '[]', '[["endpoint","${bobServer.url}/v1"]]', NULL, NULL, NULL, '{}', '{}', '{}', '{}', '{}', '{}', '{}'`],
      ] as const;
      // A token naming alice cannot be made: the caller column is not writable, its default is the inserting role.
      const token = '7d444840-9dc0-11d1-b245-5ffdce74fad2';
      expect(await failure(c.query(`INSERT INTO ml_catalog.callers (token, caller) VALUES ($1, $2)`, [token, ROLE.alice]))).toBe('42501');
      expect(await failure(c.query(`SELECT * FROM ml_catalog.callers`))).toBe('42501');
      for (const [fn, args] of calls) {
        // As himself, through the function callers use.
        expect(await failure(c.query(`SELECT ml_catalog.${fn}(${args})`))).toBe('42501');
        // Posing: the acting function with a made-up token, and with a token of his own (which names him).
        expect(await failure(c.query(`SELECT ml_catalog.${fn}_as($1, ${args})`, [token]))).toBe('42501');
        await c.query('BEGIN');
        await c.query(`INSERT INTO ml_catalog.callers (token) VALUES ($1)`, [token]);
        expect(await failure(c.query(`SELECT ml_catalog.${fn}_as($1, ${args})`, [token]))).toBe('42501');
        await c.query('ROLLBACK');
      }
    });
    expect(await catalogRows('alices', name)).toEqual(before);
    await expectAliceModelIntact('alices', name);
  });

  test('a grantee reads only ciphertext of the owner’s literal key, and the model still runs for it with the key', async () => {
    const name = `shared_${via}`;
    await as('alice', 'proxy', async (c) => {
      await c.query(aliceModel('alices', name));
      await c.query(`GRANT USAGE ON MODEL alices.${name} TO ${ROLE.bob}`);
    });
    await as('superuser', 'direct', (c) => c.query(`GRANT USAGE ON SCHEMA alices TO ${ROLE.bob}`));
    await as('bob', via, async (c) => {
      const seen = await rows(c, `SELECT secret FROM ml_catalog.usable_secrets WHERE model_name = '${name}'`);
      expect(seen).toEqual([[expect.stringMatching(/^modelsql-sealed:v1:/)]]);
      expect(JSON.stringify(seen)).not.toContain(ALICE_KEY);
      expect(await failure(c.query(`SELECT secret FROM ml_catalog.model_secrets`))).toBe('42501');
    });
    // Through the proxy (which holds the key) the grantee's run uses alice's key, without seeing it.
    aliceServer.reset();
    await as('bob', 'proxy', async (c) => expect(await rows(c, `SELECT a FROM ML_PREDICT(TABLE notes, MODEL alices.${name}, DESCRIPTOR(txt)) AS p`)).toEqual([['echo: hello']]));
    expect(aliceServer.requests[0]!.headers.authorization).toBe(`Bearer ${ALICE_KEY}`);
    await expectAliceModelIntact('alices', name);
  });

  test('bob cannot record prediction runs for models he cannot see', async () => {
    const name = `lineage_${via}`;
    await as('alice', 'proxy', (c) => c.query(aliceModel('alices', name)));
    await as('bob', via, async (c) => {
      expect(
        await failure(c.query(`INSERT INTO ml_catalog.prediction_runs (run_id, schema_name, model_name, version, row_count, error_count, duration_ms, started_at) VALUES ('forged', 'alices', '${name}', 1, 1, 0, 1, now())`)),
      ).toBe('42501');
      const record = `SELECT ml_catalog.record_run(false, 'forged', 'alices', '${name}', 1, 't', 1, 0, 1, NULL, CAST(now() AS timestamp), NULL)`;
      expect(await failure(c.query(record))).toBe('42704');
      // For a name no model has: refused too (only a TEMPORARY model's run names no catalog model, and only its runner sees it).
      expect(await failure(c.query(record.replace(name, 'nothing_here')))).toBe('42704');
    });
    await as('alice', 'proxy', async (c) => {
      await c.query(`SELECT * FROM ML_PREDICT(TABLE notes, MODEL alices.${name}, DESCRIPTOR(txt)) AS p`);
      expect(await rows(c, `SELECT run_id = 'forged', run_by FROM ml_catalog.prediction_runs WHERE model_name = '${name}'`)).toEqual([[false, ROLE.alice]]);
    });
  });
});

test('catalog export --include-secrets: alice gets her key; bob, a grantee, gets only its digest', async () => {
  await as('alice', 'proxy', async (c) => {
    await c.query(aliceModel('alices', 'exported'));
    await c.query(`GRANT USAGE ON MODEL alices.exported TO ${ROLE.bob}`);
  });
  const exported = (role: RoleName) => runCli(['catalog', 'export', '--from', roleUrl(role, 'direct'), '--models', 'alices.exported', '--include-secrets']);
  const alice = await exported('alice');
  expect(alice.status).toBe(0);
  expect(alice.stdout).toContain(`'api-key' = '${ALICE_KEY}'`);
  const bob = await exported('bob');
  expect(bob.status).toBe(0);
  expect(bob.stdout).toContain("'api-key' = '******'");
  expect(bob.stdout + bob.stderr).not.toContain(ALICE_KEY);
});
