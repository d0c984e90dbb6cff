/**
 * The set-up of the attacks on the model catalog (catalog-attacks.test.ts,
 * review-attacks.test.ts): roles `admin` (creates and owns the catalog), `alice` (the
 * victim, with her schema `alices`) and `bob` (the attacker), a proxy in front of a fresh
 * database, and one loopback OpenAI server per key. Importing it registers the suite's
 * beforeAll and afterAll.
 */
import type { Socket } from 'node:net';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../../adapters/postgres/proxy/index.js';
import { createTestDatabase } from '../support/postgres-server.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { startOpenAIServer } from '../providers/openai-server.js';
import { serverUrl } from '../adapters/postgres/proxy-helpers.js';

export const ALICE_KEY = 'sk-alice-9f3b27c1e5';
export const BOB_KEY = 'sk-bob-0000aaaa';
export const tag = Math.random().toString(36).slice(2, 8);
export const ROLE = { admin: `cat_admin_${tag}`, alice: `alice_${tag}`, bob: `bob_${tag}` } as const;
export type RoleName = keyof typeof ROLE;
export const PASSWORD = 'pw-of-a-role';

export let dbUrl: string;
export let proxy: RunningProxy;
export let aliceServer: LoopbackServer;
export let bobServer: LoopbackServer;

export function roleUrl(role: RoleName, via: 'direct' | 'proxy'): string {
  const url = new URL(dbUrl);
  url.username = ROLE[role];
  url.password = PASSWORD;
  if (via === 'proxy') url.host = `127.0.0.1:${proxy.port}`;
  return url.toString();
}

/** Runs `fn` with a client of `role` (or the superuser), closed afterwards. */
export async function as<T>(role: RoleName | 'superuser', via: 'direct' | 'proxy', fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: role === 'superuser' ? dbUrl : roleUrl(role, via) });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function rows(c: pg.Client, sql: string, params: unknown[] = []): Promise<unknown[][]> {
  return (await c.query({ text: sql, values: params, rowMode: 'array' })).rows as unknown[][];
}

/** The SQLSTATE `promise` fails with (a driver's `code` or modelsql's `sqlstate`; undefined when it succeeds). */
export async function failure(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (e: { code?: string; sqlstate?: string }) => e.code ?? e.sqlstate ?? 'no code',
  );
}

/** Every catalog row naming `schema.name`, as the superuser sees them, by table. */
export async function catalogRows(schema: string, name: string): Promise<Record<string, number>> {
  return as('superuser', 'direct', async (c) => {
    const out: Record<string, number> = {};
    for (const table of ['models', 'model_versions', 'artifacts', 'training_metrics', 'model_secrets', 'model_grants']) {
      out[table] = Number((await rows(c, `SELECT count(*) FROM ml_catalog.${table} WHERE schema_name = $1 AND model_name = $2`, [schema, name]))[0]![0]);
    }
    return out;
  });
}

export const NONE = { models: 0, model_versions: 0, artifacts: 0, training_metrics: 0, model_secrets: 0, model_grants: 0 };

/** alice's model `schema.name` with her key and endpoint. */
export function aliceModel(schema: string, name: string): string {
  return `CREATE MODEL ${schema}.${name} INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${aliceServer.url}/v1', 'model' = 'gpt', 'api-key' = '${ALICE_KEY}', 'cache' = 'false')`;
}

/** alice's model answers through the proxy with her endpoint and key, and bob's endpoint hears nothing. */
export async function expectAliceModelIntact(schema: string, name: string): Promise<void> {
  aliceServer.reset();
  bobServer.reset();
  await as('alice', 'proxy', async (c) => {
    expect(await rows(c, `SELECT a FROM ML_PREDICT(TABLE notes, MODEL ${schema}.${name}, DESCRIPTOR(txt)) AS p`)).toEqual([['echo: hello']]);
    expect((await rows(c, `SHOW MODEL VERSIONS ${schema}.${name}`)).map((r) => r[0])).toEqual([1]);
  });
  expect(aliceServer.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${ALICE_KEY}`]);
  expect(bobServer.requests).toHaveLength(0);
}

/** A frontend message: type byte, length, body. */
function message(type: string, ...parts: (string | Buffer | number)[]): Buffer {
  const body = Buffer.concat(
    parts.map((p) => {
      if (typeof p === 'number') {
        const b = Buffer.alloc(2);
        b.writeInt16BE(p);
        return b;
      }
      return typeof p === 'string' ? Buffer.from(`${p}\0`) : p;
    }),
  );
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** Parse, Bind and Execute of `sql` on the unnamed statement and portal, no parameters, text results. */
const extended = (sql: string) => [message('P', '', sql, 0), message('B', '', '', 0, 0, 0), message('E', '', Buffer.alloc(4))];

/** Sends `statements` to the proxy as `role` in one extended-protocol pipeline ending in one Sync; what came back. */
export async function pipeline(role: RoleName, statements: readonly string[]): Promise<Buffer> {
  const c = new pg.Client({ connectionString: roleUrl(role, 'proxy') });
  c.on('error', () => undefined);
  await c.connect();
  const socket = (c as unknown as { connection: { stream: Socket } }).connection.stream;
  socket.removeAllListeners('data');
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve) =>
    socket.on('data', (b: Buffer) => {
      chunks.push(b);
      const got = Buffer.concat(chunks);
      // The ReadyForQuery of the one Sync ends the exchange.
      if (got.length >= 6 && got[got.length - 6] === 0x5a) resolve();
    }),
  );
  socket.write(Buffer.concat([...statements.flatMap(extended), message('S')]));
  await done;
  socket.destroy();
  return Buffer.concat(chunks);
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
