/**
 * Model permissions and secrets on Postgres with real roles (SPEC §5), through the proxy and
 * connected directly: the catalog created by an ordinary role; a model's owner, a grantee
 * and another role; every operation allowed for owner and grantee (or owner only) and
 * refused for the other role, also by plain SQL on the catalog tables; the trained model's
 * host function; a literal api-key that the grantee's runs use but no output shows; a
 * catalog of layout 2 upgraded with its models given to the catalog owner.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { connectPostgres } from '../../../adapters/postgres/index.js';
import { PostgresDialect } from '../../../adapters/postgres/postgres-dialect.js';
import { startProxy, type RunningProxy } from '../../../adapters/postgres/proxy/index.js';
import { MIGRATIONS } from '../../../core/catalog/catalog-layout.js';
import { formatError, ModelSqlError } from '../../../core/errors.js';
import type { Session } from '../../../core/session/session.js';
import { createTestDatabase } from '../../support/postgres-server.js';
import type { LoopbackServer } from '../../providers/loopback-server.js';
import { startOpenAIServer } from '../../providers/openai-server.js';
import { serverUrl } from './proxy-helpers.js';

const SECRET = 'sk-live-GRANTS-7d1e90ab';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const tag = Math.random().toString(36).slice(2, 8);
/** Roles of this file (roles are server-wide: a random tag keeps runs apart). */
const ROLE = { admin: `admin_${tag}`, owner: `owner_${tag}`, grantee: `grantee_${tag}`, other: `other_${tag}`, member: `member_${tag}` } as const;
type RoleName = keyof typeof ROLE;
const PASSWORD = 'pw-of-a-role';

/** Everything any command printed or returned, searched for the secret at the end. */
const printed: string[] = [];
const proxyLog: string[] = [];

let dbUrl: string;
let proxy: RunningProxy;
let chatServer: LoopbackServer;
let echoServer: LoopbackServer;

function roleUrl(role: RoleName, via: 'direct' | 'proxy' = 'direct'): string {
  const url = new URL(dbUrl);
  url.username = ROLE[role];
  url.password = PASSWORD;
  if (via === 'proxy') url.host = `127.0.0.1:${proxy.port}`;
  return url.toString();
}

async function superuser<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A client of one role: rows as arrays; errors carry `code` (a SQLSTATE). */
interface RoleClient {
  rows(sql: string): Promise<unknown[][]>;
  close(): Promise<void>;
}

async function openRole(role: RoleName, via: 'direct' | 'proxy'): Promise<RoleClient> {
  const record = (value: unknown) => printed.push(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  const fail = (error: unknown): never => {
    const e = error as Error & { code?: string; sqlstate?: string };
    printed.push(error instanceof ModelSqlError ? `${formatError(error)}\n${error.sqlText ?? ''}` : `${e.message}`);
    throw Object.assign(new Error(e.message), { code: e.sqlstate ?? e.code });
  };
  if (via === 'direct') {
    const session: Session = await connectPostgres(roleUrl(role));
    return {
      rows: async (sql) => {
        const result = await session.sql(sql).catch(fail);
        record(result);
        return result.rows.map((r) => [...r]);
      },
      close: () => session.close(),
    };
  }
  const client = new pg.Client({ connectionString: roleUrl(role, 'proxy') });
  client.on('error', () => undefined);
  await client.connect();
  return {
    rows: async (sql) => {
      const result = await client.query({ text: sql, rowMode: 'array' }).catch(fail);
      record(result.rows);
      return result.rows as unknown[][];
    },
    close: () => client.end(),
  };
}

/** Expects `promise` to fail with `code`. */
async function refused(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: Error & { code?: string }) => e,
  );
  expect(error).toBeDefined();
  expect({ code: error!.code, message: error!.message }).toEqual({ code, message: message ? expect.stringMatching(message) : expect.any(String) });
}

const PREDICT = 'SELECT id, predicted_y FROM ML_PREDICT(TABLE houses, MODEL price, DESCRIPTOR(x)) ORDER BY id LIMIT 3';
const EVALUATE = `SELECT MAE < 0.001 FROM ML_EVALUATE(TABLE houses, MODEL price, DESCRIPTOR(y), DESCRIPTOR(x), 'regression')`;
const CALL_FUNCTION = 'SELECT public.ml_predict_price(x) FROM houses ORDER BY id LIMIT 1';
const CHAT = 'SELECT a FROM ML_PREDICT(TABLE notes, MODEL chat, DESCRIPTOR(txt))';

beforeAll(async () => {
  dbUrl = await createTestDatabase(serverUrl());
  const database = new URL(dbUrl).pathname.slice(1);
  chatServer = await startOpenAIServer({ apiKey: SECRET });
  echoServer = await startOpenAIServer({ apiKey: 'sk-another-key' });
  await superuser(dbUrl, async (c) => {
    for (const name of Object.values(ROLE)) await c.query(`CREATE ROLE ${name} LOGIN PASSWORD '${PASSWORD}'`);
    // The catalog's creator needs CREATE on the database (for the schema); model owners CREATE on public (for host functions).
    await c.query(`GRANT CREATE ON DATABASE ${database} TO ${ROLE.admin}`);
    await c.query(`GRANT CREATE ON SCHEMA public TO ${ROLE.owner}, ${ROLE.other}`);
    await c.query(`GRANT ${ROLE.owner} TO ${ROLE.member}`);
    await c.query('CREATE TABLE houses AS SELECT i AS id, CAST(i AS double precision) AS x, CAST(2 * i + 1 AS double precision) AS y FROM generate_series(1, 20) AS s(i)');
    await c.query(`CREATE TABLE notes AS SELECT 'hello' AS txt`);
    await c.query('GRANT SELECT ON houses, notes TO PUBLIC');
  });
  const upstream = new URL(dbUrl);
  proxy = await startProxy({
    upstream: `postgres://${upstream.host}${upstream.pathname}?sslmode=disable`,
    listen: 0,
    session: { allowedUrlPrefixes: ['*'] }, // the loopback provider servers of these tests
    log: (message, error) => proxyLog.push(`${message} ${error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error ?? '')}`),
  });
  // An ordinary role creates the catalog; another one's models go in it.
  const admin = await openRole('admin', 'direct');
  await admin.rows('SHOW MODELS');
  await admin.close();
  const owner = await openRole('owner', 'direct');
  await owner.rows(`CREATE MODEL price WITH ('task' = 'regression', 'algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM houses`);
  await owner.rows(`CREATE MODEL chat INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${chatServer.url}/v1', 'model' = 'gpt', 'api-key' = '${SECRET}', 'cache' = 'false')`);
  await owner.rows(`CREATE MODEL echoing INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${echoServer.url}/v1', 'model' = 'gpt', 'api-key' = '${SECRET}', 'cache' = 'false')`);
  for (const model of ['price', 'chat', 'echoing']) await owner.rows(`GRANT USAGE ON MODEL ${model} TO ${ROLE.grantee}`);
  await owner.close();
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await chatServer?.close();
  await echoServer?.close();
});

test('the catalog belongs to the ordinary role that created it; the model to its creator', async () => {
  const rows = await superuser(dbUrl, async (c) => (await c.query(`SELECT nspowner::regrole::text AS o FROM pg_namespace WHERE nspname = 'ml_catalog'`)).rows);
  expect(rows).toEqual([{ o: ROLE.admin }]);
  const owner = await openRole('owner', 'direct');
  expect(await owner.rows(`SELECT DISTINCT owner FROM ml_catalog.model_versions`)).toEqual([[ROLE.owner]]);
  const described = await owner.rows('DESCRIBE MODEL EXTENDED price');
  expect(described.find((r) => r[0] === 'owner')?.[1]).toBe(ROLE.owner);
  expect(described.find((r) => r[0] === 'grants')?.[1]).toBe(ROLE.grantee);
  await owner.close();
});

describe.each(['direct', 'proxy'] as const)('roles %s', (via) => {
  const clients = {} as Record<RoleName, RoleClient>;
  beforeAll(async () => {
    for (const role of Object.keys(ROLE) as RoleName[]) clients[role] = await openRole(role, via);
  });
  afterAll(async () => {
    for (const c of Object.values(clients)) await c.close();
  });

  test('SHOW MODELS lists a model to its owner and grantee only', async () => {
    const names = async (role: RoleName) => (await clients[role].rows('SHOW MODELS')).map((r) => r[0]);
    expect(await names('owner')).toEqual(['chat', 'echoing', 'price']);
    expect(await names('grantee')).toEqual(['chat', 'echoing', 'price']);
    expect(await names('other')).toEqual([]);
  });

  test('DESCRIBE, SHOW CREATE MODEL and SHOW MODEL VERSIONS for owner and grantee; 42704 for the other role', async () => {
    for (const sql of ['DESCRIBE MODEL price', 'SHOW CREATE MODEL chat', 'SHOW MODEL VERSIONS price']) {
      expect((await clients.owner.rows(sql)).length).toBeGreaterThan(0);
      expect(await clients.grantee.rows(sql)).toEqual(await clients.owner.rows(sql));
      await refused(clients.other.rows(sql), '42704', /does not exist/);
    }
  });

  test('ML_PREDICT and ML_EVALUATE for owner and grantee; 42704 for the other role', async () => {
    const expected = [[1, 3], [2, 5], [3, 7]];
    for (const role of ['owner', 'grantee'] as const) {
      const rows = await clients[role].rows(PREDICT);
      expect(rows.map(([id, y]) => [Number(id), Math.round(Number(y) * 1000) / 1000])).toEqual(expected);
      expect(await clients[role].rows(EVALUATE)).toEqual([[true]]);
    }
    await refused(clients.other.rows(PREDICT), '42704', /model public\.price does not exist/);
    await refused(clients.other.rows(EVALUATE), '42704');
  });

  test('the host function runs for owner and grantee; 42501 for the other role', async () => {
    for (const role of ['owner', 'grantee'] as const) expect(Number((await clients[role].rows(CALL_FUNCTION))[0]![0])).toBeCloseTo(3, 6);
    await refused(clients.other.rows(CALL_FUNCTION), '42501', /permission denied for function ml_predict_price/);
  });

  test('a model with a literal api-key runs for the grantee with the key; 42704 for the other role', async () => {
    chatServer.reset();
    expect(await clients.grantee.rows(CHAT)).toEqual([['echo: hello']]);
    expect(chatServer.requests[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
    chatServer.reset();
    await refused(clients.other.rows(CHAT), '42704');
    expect(chatServer.requests).toHaveLength(0);
  });

  test('plain SQL on the catalog tables shows the other role nothing; the secret column is the catalog owner’s alone', async () => {
    for (const table of ['models', 'model_versions', 'artifacts', 'training_metrics', 'model_grants', 'usable_secrets']) {
      const count = `SELECT count(*)::int FROM ml_catalog.${table}`;
      expect((await clients.grantee.rows(count))[0]![0]).toBeGreaterThan(0);
      expect(await clients.other.rows(count)).toEqual([[0]]);
    }
    expect(Number((await clients.other.rows(`SELECT count(*) FROM ml_catalog.model_secrets`))[0]![0])).toBe(0);
    expect(Number((await clients.other.rows(`SELECT count(*) FROM ml_catalog.prediction_runs WHERE model_name = 'chat'`))[0]![0])).toBe(0);
    expect(Number((await clients.grantee.rows(`SELECT count(*) FROM ml_catalog.prediction_runs WHERE model_name = 'chat'`))[0]![0])).toBeGreaterThan(0);
    for (const role of ['owner', 'grantee', 'other'] as const) {
      await refused(clients[role].rows('SELECT secret FROM ml_catalog.model_secrets'), '42501', /permission denied for table model_secrets/);
    }
    // Even the catalog owner reads the key sealed (layout 4); the grantee reads the same ciphertext through usable_secrets.
    expect(await clients.admin.rows(`SELECT DISTINCT secret LIKE 'modelsql-sealed:v1:%', secret = '${SECRET}' FROM ml_catalog.model_secrets`)).toEqual([[true, false]]);
    expect(JSON.stringify(await clients.grantee.rows(`SELECT secret FROM ml_catalog.usable_secrets`))).not.toContain(SECRET);
  });

  test('ALTER, DROP and GRANT: the owner only (42501 for the grantee, 42704 for the other role)', async () => {
    await clients.owner.rows(`ALTER MODEL chat SET ('temperature' = '0.5')`);
    const statements: [string, string][] = [
      [`ALTER MODEL chat SET ('temperature' = '0.7')`, '42704'],
      ['ALTER MODEL price RENAME TO p2', '42704'],
      ['DROP MODEL price', '42704'],
      [`GRANT USAGE ON MODEL price TO ${ROLE.other}`, '42704'],
      [`REVOKE USAGE ON MODEL price FROM ${ROLE.grantee}`, '42704'],
      // The other role cannot see chat: its CREATE meets the name taken.
      [`CREATE OR REPLACE MODEL chat INPUT (t STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:1/v1', 'model' = 'x', 'api-key' = 'k-1234')`, '42710'],
    ];
    for (const [sql, otherCode] of statements) {
      await refused(clients.grantee.rows(sql), '42501', new RegExp(`must be owner of model public\\.(price|chat) \\(owned by ${ROLE.owner}\\)`));
      await refused(clients.other.rows(sql), otherCode);
    }
    expect((await clients.owner.rows('SHOW MODELS')).map((r) => r[0])).toEqual(['chat', 'echoing', 'price']);
  });

  test('rows written around the statements are refused: ordinary roles may not write the catalog tables', async () => {
    const other = clients.other;
    await refused(
      other.rows(`INSERT INTO ml_catalog.model_versions (schema_name, model_name, version, provider, input_schema, output_schema, options, created_at, owner) VALUES ('public', 'price', 9, 'openai', '[]', '[]', '[]', now(), '${ROLE.other}')`),
      '42501',
      /permission denied for table model_versions/,
    );
    await refused(other.rows(`INSERT INTO ml_catalog.model_grants VALUES ('public', 'price', '${ROLE.other}', '${ROLE.owner}', '${ROLE.other}', now())`), '42501', /permission denied for table model_grants/);
    await refused(other.rows(`UPDATE ml_catalog.models SET default_version = 7`), '42501', /permission denied for table models/);
    await refused(other.rows(`DELETE FROM ml_catalog.model_versions`), '42501', /permission denied for table model_versions/);
    expect((await clients.owner.rows(`SELECT default_version, (SELECT count(*)::int FROM ml_catalog.model_versions) FROM ml_catalog.models WHERE model_name = 'price'`))).toEqual([[1, 3]]);
    await refused(other.rows(`CREATE MODEL price INPUT (x STRING) OUTPUT (y STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:1/v1', 'model' = 'x', 'api-key' = 'k-1234')`), '42710', /already exists \(owned by a role whose models this one may not see\)/);
    await other.rows(`CREATE MODEL IF NOT EXISTS price INPUT (x STRING) OUTPUT (y STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:1/v1', 'model' = 'x', 'api-key' = 'k-1234')`);
    expect(await other.rows('SHOW MODELS')).toEqual([]);
    // The other role's own model is its own.
    await other.rows(`CREATE MODEL mine_${via} INPUT (t STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:1/v1', 'model' = 'x', 'api-key' = 'k-1234')`);
    expect((await other.rows('SHOW MODELS')).map((r) => r[0])).toEqual([`mine_${via}`]);
    expect((await clients.grantee.rows('SHOW MODELS')).map((r) => r[0])).not.toContain(`mine_${via}`);
    await other.rows(`DROP MODEL mine_${via}`);
  });

  test('a provider error echoing the key reaches the grantee masked', async () => {
    await refused(clients.grantee.rows('SELECT a FROM ML_PREDICT(TABLE notes, MODEL echoing, DESCRIPTOR(txt))'), '38000', /Incorrect API key provided: \*\*\*\*\*\*/);
  });
});

test('a member of the owner role alters; REVOKE takes use, sight and the function away; PUBLIC grants to all', async () => {
  const member = await openRole('member', 'direct');
  const owner = await openRole('owner', 'proxy');
  const grantee = await openRole('grantee', 'proxy');
  const other = await openRole('other', 'direct');
  try {
    await member.rows(`ALTER MODEL chat SET ('temperature' = '0.2')`);
    await owner.rows(`REVOKE USAGE ON MODEL price FROM ${ROLE.grantee}`);
    expect((await grantee.rows('SHOW MODELS')).map((r) => r[0])).toEqual(['chat', 'echoing']);
    await refused(grantee.rows(PREDICT), '42704');
    await refused(grantee.rows(CALL_FUNCTION), '42501');
    await owner.rows('GRANT USAGE ON MODEL price TO PUBLIC');
    expect(await other.rows(EVALUATE)).toEqual([[true]]);
    expect(Number((await other.rows(CALL_FUNCTION))[0]![0])).toBeCloseTo(3, 6);
    await owner.rows('REVOKE USAGE ON MODEL price FROM PUBLIC');
    await refused(other.rows(CALL_FUNCTION), '42501');
    await refused(owner.rows('GRANT USAGE ON MODEL price TO no_such_role_here'), '42704', /role no_such_role_here does not exist/);
    // A new version keeps the function's grants (it is recreated).
    await owner.rows(`GRANT USAGE ON MODEL price TO ${ROLE.grantee}`);
    await owner.rows(`CREATE OR REPLACE MODEL price WITH ('task' = 'regression', 'algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM houses`);
    expect(Number((await grantee.rows(CALL_FUNCTION))[0]![0])).toBeCloseTo(3, 6);
    await refused(other.rows(CALL_FUNCTION), '42501');
  } finally {
    for (const c of [member, owner, grantee, other]) await c.close();
  }
});

test('a grantee role dropped since its grant does not stop the owner from recreating the function', async () => {
  const gone = `gone_${tag}`;
  await superuser(dbUrl, (c) => c.query(`CREATE ROLE ${gone}`));
  const owner = await openRole('owner', 'direct');
  try {
    await owner.rows(`GRANT USAGE ON MODEL price TO ${gone}`);
    await superuser(dbUrl, (c) => c.query(`DROP OWNED BY ${gone}; DROP ROLE ${gone}`));
    await owner.rows(`CREATE OR REPLACE MODEL price WITH ('task' = 'regression', 'algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM houses`);
    expect(Number((await owner.rows(CALL_FUNCTION))[0]![0])).toBeCloseTo(3, 6);
    // REVOKE still removes the stale grant.
    await owner.rows(`REVOKE USAGE ON MODEL price FROM ${gone}`);
    expect((await owner.rows('DESCRIBE MODEL EXTENDED price')).find((r) => r[0] === 'grants')?.[1]).toBe(ROLE.grantee);
  } finally {
    await owner.close();
  }
});

test('functions of the caller’s own schema, first on its search_path, do not open the policies', async () => {
  const other = await openRole('other', 'direct');
  try {
    await other.rows(`CREATE FUNCTION public.pg_has_role(name, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'`);
    await other.rows(`CREATE FUNCTION public.pg_has_role(name, name, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'`);
    await other.rows('SET search_path = public, pg_catalog');
    expect(await other.rows('SELECT count(*)::int FROM ml_catalog.models')).toEqual([[0]]);
    expect(await other.rows('SELECT count(*)::int FROM ml_catalog.usable_secrets')).toEqual([[0]]);
    await refused(other.rows(PREDICT), '42704');
  } finally {
    await other.rows('RESET search_path').catch(() => undefined);
    await other.rows('DROP FUNCTION public.pg_has_role(name, oid, text); DROP FUNCTION public.pg_has_role(name, name, text)').catch(() => undefined);
    await other.close();
  }
});

/** `modelsql run -c script` as the grantee, connected directly, in a process of its own. */
function runCliAsGrantee(script: string, env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; out: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, 'run', '--postgres', roleUrl('grantee'), '-c', script, '--format', 'json'], { cwd: ROOT, stdio: 'pipe', env });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('error', fail);
    child.on('close', (status) => done({ status, out }));
  });
}

const cliIt = existsSync(MAIN) ? test : test.skip;
cliIt('`modelsql run` as the grantee prints the key nowhere', async () => {
  const script = ['SHOW CREATE MODEL chat;', 'DESCRIBE MODEL EXTENDED chat;', `${CHAT};`, 'SELECT a FROM ML_PREDICT(TABLE notes, MODEL echoing, DESCRIPTOR(txt));'].join('\n');
  const run = await runCliAsGrantee(script);
  printed.push(run.out);
  expect(run.status).toBe(1);
  expect(run.out).toContain('echo: hello');
  expect(run.out).toMatch(/Incorrect API key provided: \*\*\*\*\*\*/);
});

cliIt('a ${env:NAME} reference is resolved in the process that runs the model, and stored nowhere', async () => {
  const value = 'env-key-of-the-cli-process';
  const server = await startOpenAIServer({ apiKey: value });
  const owner = await openRole('owner', 'direct');
  const grantee = await openRole('grantee', 'proxy');
  process.env.MODELSQL_GRANTS_TEST_KEY = 'env-key-of-the-creator';
  try {
    await owner.rows(`CREATE MODEL envchat INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt', 'api-key' = '\${env:MODELSQL_GRANTS_TEST_KEY}', 'cache' = 'false')`);
    await owner.rows(`GRANT USAGE ON MODEL envchat TO ${ROLE.grantee}`);
    delete process.env.MODELSQL_GRANTS_TEST_KEY;
    const stored = await superuser(dbUrl, async (c) => JSON.stringify((await c.query(`SELECT v.options, (SELECT json_agg(s) FROM ml_catalog.model_secrets s WHERE s.model_name = 'envchat') AS secrets FROM ml_catalog.model_versions v WHERE v.model_name = 'envchat'`)).rows));
    expect(stored).toContain('${env:MODELSQL_GRANTS_TEST_KEY}');
    expect(stored).not.toContain('env-key-of');
    // Through the proxy the proxy's process resolves it (unset there), not the client's.
    await refused(grantee.rows('SELECT a FROM ML_PREDICT(TABLE notes, MODEL envchat, DESCRIPTOR(txt))'), '22023', /environment variable MODELSQL_GRANTS_TEST_KEY, which is not set/);
    const run = await runCliAsGrantee('SELECT a FROM ML_PREDICT(TABLE notes, MODEL envchat, DESCRIPTOR(txt));', { ...process.env, MODELSQL_GRANTS_TEST_KEY: value });
    expect(run.out).toContain('echo: hello');
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${value}`]);
    await owner.rows('DROP MODEL envchat');
  } finally {
    delete process.env.MODELSQL_GRANTS_TEST_KEY;
    await owner.close();
    await grantee.close();
    await server.close();
  }
});

test('the owner drops its model: rows, grants, secrets and function go', async () => {
  const owner = await openRole('owner', 'direct');
  await owner.rows('DROP MODEL chat');
  await owner.rows('DROP MODEL price');
  const left = await superuser(dbUrl, async (c) =>
    (await c.query(`SELECT (SELECT count(*)::int FROM ml_catalog.model_grants WHERE model_name IN ('chat', 'price')) AS g, (SELECT count(*)::int FROM ml_catalog.model_secrets WHERE model_name = 'chat') AS s, (SELECT count(*)::int FROM pg_proc WHERE proname = 'ml_predict_price') AS f`)).rows,
  );
  expect(left).toEqual([{ g: 0, s: 0, f: 0 }]);
  await owner.close();
});

test('no output of any command, nor the proxy log, holds the secret', () => {
  expect(printed.length).toBeGreaterThan(50);
  expect(printed.filter((text) => text.includes(SECRET))).toEqual([]);
  expect(proxyLog.filter((text) => text.includes(SECRET))).toEqual([]);
});

test('a catalog of layout 2 is upgraded by its owner: models go to the catalog owner, other roles see none until granted', async () => {
  const url = await createTestDatabase(serverUrl());
  const database = new URL(url).pathname.slice(1);
  const roleIn = (role: RoleName) => Object.assign(new URL(url), { username: ROLE[role], password: PASSWORD }).toString();
  await superuser(url, async (c) => {
    await c.query(`GRANT CREATE ON DATABASE ${database} TO ${ROLE.admin}`);
    await c.query(`SET ROLE ${ROLE.admin}`);
    const t = new PostgresDialect().catalogTypes;
    await c.query('CREATE SCHEMA ml_catalog');
    await c.query(`CREATE TABLE ml_catalog.schema_version (version integer NOT NULL, applied_at timestamp NOT NULL)`);
    for (const [i, migration] of MIGRATIONS.slice(0, 2).entries()) {
      for (const statement of migration.statements(t)) await c.query(statement);
      await c.query('INSERT INTO ml_catalog.schema_version VALUES ($1, now())', [i + 1]);
    }
    await c.query(`INSERT INTO ml_catalog.models VALUES ('public', 'old', 1, 'someone', now(), now())`);
    await c.query(`INSERT INTO ml_catalog.model_versions VALUES ('public', 'old', 1, 'openai', NULL, '[{"name":"txt","type":"STRING"}]', '[{"name":"a","type":"STRING"}]', '[["provider","openai"],["endpoint","${chatServer.url}/v1"],["model","gpt"],["api-key","******"],["cache","false"]]', NULL, NULL, now())`);
    await c.query(`INSERT INTO ml_catalog.model_secrets VALUES ('public', 'old', 1, 'api-key', '${SECRET}')`);
    await c.query('RESET ROLE');
    await c.query('CREATE TABLE notes AS SELECT CAST($1 AS text) AS txt', ['hi']);
    await c.query('GRANT SELECT ON notes TO PUBLIC');
  });
  // Another role first: the upgrade needs the catalog's owner.
  const early = await connectPostgres(roleIn('grantee'));
  const error = await early.sql('SHOW MODELS').catch((e: ModelSqlError) => e);
  expect(error).toMatchObject({ sqlstate: '42501', message: expect.stringMatching(/missing or older than layout \d+, and this role may not create or upgrade it \(permission denied for database/) });
  await early.close();
  const admin = await connectPostgres(roleIn('admin'));
  expect((await admin.sql('SHOW MODELS')).rows.map((r) => r[0])).toEqual(['old']);
  expect((await admin.sql('SELECT max(version) FROM ml_catalog.schema_version')).rows).toEqual([[MIGRATIONS.length]]);
  expect((await admin.sql('DESCRIBE MODEL EXTENDED old')).rows.find((r) => r[0] === 'owner')?.[1]).toBe(ROLE.admin);
  const grantee = await connectPostgres(roleIn('grantee'));
  expect((await grantee.sql('SHOW MODELS')).rows).toEqual([]);
  await admin.sql(`GRANT USAGE ON MODEL old TO ${ROLE.grantee}`);
  chatServer.reset();
  expect((await grantee.sql('SELECT a FROM ML_PREDICT(TABLE notes, MODEL old, DESCRIPTOR(txt))')).rows).toEqual([['echo: hi']]);
  expect(chatServer.requests[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
  await grantee.close();
  await admin.close();
}, 30_000);
