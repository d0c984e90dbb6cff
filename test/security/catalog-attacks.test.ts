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
import pg from 'pg';
import { startProxy, type RunningProxy } from '../../adapters/postgres/proxy/index.js';
import { createTestDatabase } from '../support/postgres-server.js';
import { runCli } from '../support/run-cli.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { startOpenAIServer } from '../providers/openai-server.js';
import { serverUrl } from '../adapters/postgres/proxy-helpers.js';

const ALICE_KEY = 'sk-alice-9f3b27c1e5';
const BOB_KEY = 'sk-bob-0000aaaa';
const tag = Math.random().toString(36).slice(2, 8);
const ROLE = { admin: `cat_admin_${tag}`, alice: `alice_${tag}`, bob: `bob_${tag}` } as const;
type RoleName = keyof typeof ROLE;
const PASSWORD = 'pw-of-a-role';

let dbUrl: string;
let proxy: RunningProxy;
let aliceServer: LoopbackServer;
let bobServer: LoopbackServer;

function roleUrl(role: RoleName, via: 'direct' | 'proxy'): string {
  const url = new URL(dbUrl);
  url.username = ROLE[role];
  url.password = PASSWORD;
  if (via === 'proxy') url.host = `127.0.0.1:${proxy.port}`;
  return url.toString();
}

/** Runs `fn` with a client of `role` (or the superuser), closed afterwards. */
async function as<T>(role: RoleName | 'superuser', via: 'direct' | 'proxy', fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: role === 'superuser' ? dbUrl : roleUrl(role, via) });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function rows(c: pg.Client, sql: string, params: unknown[] = []): Promise<unknown[][]> {
  return (await c.query({ text: sql, values: params, rowMode: 'array' })).rows as unknown[][];
}

/** The SQLSTATE `promise` fails with (undefined when it succeeds). */
async function failure(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (e: { code?: string }) => e.code ?? 'no code',
  );
}

/** Every catalog row naming `schema.name`, as the superuser sees them, by table. */
async function catalogRows(schema: string, name: string): Promise<Record<string, number>> {
  return as('superuser', 'direct', async (c) => {
    const out: Record<string, number> = {};
    for (const table of ['models', 'model_versions', 'artifacts', 'training_metrics', 'model_secrets', 'model_grants']) {
      out[table] = Number((await rows(c, `SELECT count(*) FROM ml_catalog.${table} WHERE schema_name = $1 AND model_name = $2`, [schema, name]))[0]![0]);
    }
    return out;
  });
}

const NONE = { models: 0, model_versions: 0, artifacts: 0, training_metrics: 0, model_secrets: 0, model_grants: 0 };

/** alice's model `schema.name` with her key and endpoint. */
function aliceModel(schema: string, name: string): string {
  return `CREATE MODEL ${schema}.${name} INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${aliceServer.url}/v1', 'model' = 'gpt', 'api-key' = '${ALICE_KEY}', 'cache' = 'false')`;
}

/** alice's model answers through the proxy with her endpoint and key, and bob's endpoint hears nothing. */
async function expectAliceModelIntact(schema: string, name: string): Promise<void> {
  aliceServer.reset();
  bobServer.reset();
  await as('alice', 'proxy', async (c) => {
    expect(await rows(c, `SELECT a FROM ML_PREDICT(TABLE notes, MODEL ${schema}.${name}, DESCRIPTOR(txt)) AS p`)).toEqual([['echo: hello']]);
    expect((await rows(c, `SHOW MODEL VERSIONS ${schema}.${name}`)).map((r) => r[0])).toEqual([1]);
  });
  expect(aliceServer.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${ALICE_KEY}`]);
  expect(bobServer.requests).toHaveLength(0);
}

beforeAll(async () => {
  dbUrl = await createTestDatabase(serverUrl());
  const database = new URL(dbUrl).pathname.slice(1);
  aliceServer = await startOpenAIServer({ apiKey: ALICE_KEY });
  bobServer = await startOpenAIServer({ apiKey: BOB_KEY });
  await as('superuser', 'direct', async (c) => {
    for (const name of Object.values(ROLE)) await c.query(`CREATE ROLE ${name} LOGIN PASSWORD '${PASSWORD}'`);
    await c.query(`GRANT CREATE ON DATABASE ${database} TO ${ROLE.admin}`);
    await c.query(`GRANT CREATE ON SCHEMA public TO ${ROLE.alice}, ${ROLE.bob}`);
    await c.query(`CREATE SCHEMA alices AUTHORIZATION ${ROLE.alice}`);
    await c.query(`CREATE TABLE notes AS SELECT 'hello' AS txt`);
    await c.query('GRANT SELECT ON notes TO PUBLIC');
  });
  const upstream = new URL(dbUrl);
  proxy = await startProxy({ upstream: `postgres://${upstream.host}${upstream.pathname}?sslmode=disable`, listen: 0, session: { allowedUrlPrefixes: ['*'] } });
  // An ordinary role creates the catalog (and owns it).
  await as('admin', 'proxy', (c) => c.query('SHOW MODELS'));
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await aliceServer?.close();
  await bobServer?.close();
});

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
      // Through modelsql's own function: a model in a schema bob may not create in is refused, as bob and posing as alice.
      const write = (role: string) =>
        c.query(
          `SELECT ml_catalog.write_version($1, 'alices', '${name}', NULL, NULL, NULL, NULL, 1, 'openai', NULL, '[]', '[]', '[]', NULL, NULL, NULL, '{}', '{}', '{}', '{}', '{}', '{}', '{}')`,
          [role],
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
      await c.query(`SELECT ml_catalog.drop_model(CAST(current_user AS text), 'public', '${name}', NULL)`);
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
        [`SELECT ml_catalog.set_grant($1, 'alices', '${name}', '${ROLE.bob}', true)`],
        [`SELECT ml_catalog.drop_model($1, 'alices', '${name}', NULL)`],
        [`SELECT ml_catalog.set_default_version($1, 'alices', '${name}', 1)`],
        [`SELECT ml_catalog.update_version($1, 'alices', '${name}', 1, 'openai', NULL, '[]', '{api-key}', '{${BOB_KEY}}', NULL)`],
        [`SELECT ml_catalog.rename_model($1, 'alices', '${name}', 'public', 'stolen_${via}')`],
        [
          `SELECT ml_catalog.write_version($1, 'alices', '${name}', NULL, 2, NULL, NULL, 2, 'openai', NULL, '[]', '[]', '[["endpoint","${bobServer.url}/v1"]]', NULL, NULL, NULL, '{}', '{}', '{}', '{}', '{}', '{}', '{}')`,
        ],
      ];
      for (const [sql] of calls) {
        expect(await failure(c.query(sql!, [ROLE.bob]))).toBe('42501');
        expect(await failure(c.query(sql!, [ROLE.alice]))).toBe('42501');
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
      const record = `SELECT ml_catalog.record_run(CAST(current_user AS text), false, 'forged', 'alices', '${name}', 1, 't', 1, 0, 1, NULL, CAST(now() AS timestamp), NULL)`;
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
