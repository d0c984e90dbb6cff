/**
 * Literal keys at rest: sealed with the process's key (`MODELSQL_SECRET_KEY` or the
 * `secretKey` option). A process without the key, or with another one, gets a clear error
 * naming the setting, never key material, and the catalog is unchanged; a catalog of
 * layout 3 holding plaintext keys upgrades only with the key, sealing them on the way.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { MIGRATIONS } from '../../core/catalog/catalog-layout.js';
import { ModelSqlError } from '../../core/errors.js';
import type { Session } from '../../core/session/session.js';
import { runCli } from '../support/run-cli.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { startOpenAIServer } from '../providers/openai-server.js';

const KEY = 'sk-sealed-4d2a9e71';
const OTHER_KEY = 'ab'.repeat(32);
const RUN_KEY = process.env['MODELSQL_SECRET_KEY']!;
let server: LoopbackServer;
let dir: string;

beforeAll(async () => {
  server = await startOpenAIServer({ apiKey: KEY });
  dir = mkdtempSync(join(tmpdir(), 'modelsql-secret-key-'));
});
afterAll(() => server.close());

const model = (name: string) => `CREATE MODEL ${name} INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt', 'api-key' = '${KEY}', 'cache' = 'false')`;

/** Runs `fn` with `MODELSQL_SECRET_KEY` unset in this process. */
async function withoutKey<T>(fn: () => Promise<T>): Promise<T> {
  delete process.env['MODELSQL_SECRET_KEY'];
  try {
    return await fn();
  } finally {
    process.env['MODELSQL_SECRET_KEY'] = RUN_KEY;
  }
}

async function failure(promise: Promise<unknown>): Promise<ModelSqlError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelSqlError);
  return error as ModelSqlError;
}

/** The message names the setting and holds no key (neither the model's nor the process's). */
function expectClear(error: ModelSqlError, sqlstate: string): void {
  expect(error.sqlstate).toBe(sqlstate);
  expect(error.message).toContain('MODELSQL_SECRET_KEY');
  for (const material of [KEY, RUN_KEY, OTHER_KEY]) expect(`${error.message}\n${error.stack ?? ''}`).not.toContain(material);
}

test('without the key, CREATE MODEL with a literal key is refused (55000, naming the setting) and the catalog is unchanged', async () => {
  await withoutKey(async () => {
    const db = await openDuckDB();
    try {
      await db.sql('SHOW MODELS');
      expectClear(await failure(db.sql(model('m'))), '55000');
      expect((await db.sql('SHOW MODELS')).rows).toEqual([]);
      expect((await db.sql('SELECT count(*) FROM ml_catalog.model_secrets')).rows).toEqual([[0n]]);
      // A model whose key is a ${env:...} reference stores no literal key, and needs no process key.
      await db.sql(`CREATE MODEL plain INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt', 'api-key' = '\${env:PATH}')`);
      expect((await db.sql('SHOW MODELS')).rows.map((r) => r[0])).toEqual(['plain']);
    } finally {
      await db.close();
    }
  });
});

test('a file at rest holds the key sealed; a process without the key, or with another, cannot use it and changes nothing', async () => {
  const file = join(dir, 'sealed.duckdb');
  const writer = await openDuckDB(file);
  await writer.sql(model('m'));
  await writer.sql(`CREATE TABLE notes AS SELECT 'hi' AS txt`);
  const stored = (await writer.sql('SELECT secret FROM ml_catalog.model_secrets')).rows;
  await writer.close();
  expect(stored).toEqual([[expect.stringMatching(/^modelsql-sealed:v1:/)]]);
  expect(JSON.stringify(stored)).not.toContain(KEY);
  const predict = 'SELECT a FROM ML_PREDICT(TABLE notes, MODEL m, DESCRIPTOR(txt))';
  server.reset();
  await withoutKey(async () => {
    const db = await openDuckDB(file);
    try {
      expectClear(await failure(db.sql(predict)), '55000');
      expectClear(await failure(db.sql(`ALTER MODEL m SET ('temperature' = '0')`)), '55000');
    } finally {
      await db.close();
    }
  });
  const other = await openDuckDB(file, { secretKey: OTHER_KEY });
  try {
    expectClear(await failure(other.sql(predict)), '22023');
  } finally {
    await other.close();
  }
  expect(server.requests).toHaveLength(0);
  // With the key (the option, here the run's own), it runs, and the catalog is as it was.
  const owner = await openDuckDB(file, { secretKey: RUN_KEY });
  try {
    expect((await owner.sql(predict)).rows).toEqual([['echo: hi']]);
    expect((await owner.sql('SELECT secret FROM ml_catalog.model_secrets')).rows).toEqual(stored);
    expect((await owner.sql(`SHOW CREATE MODEL m`)).rows[0]![0]).toContain("'api-key' = '******'");
  } finally {
    await owner.close();
  }
  expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
});

test('a malformed key is refused without echoing it', async () => {
  const db = await openDuckDB(undefined, { secretKey: 'not-a-key-but-secret-words' });
  try {
    const error = await failure(db.sql(model('m')));
    expect(error.sqlstate).toBe('22023');
    expect(error.message).toContain('MODELSQL_SECRET_KEY');
    expect(error.message).not.toContain('secret-words');
  } finally {
    await db.close();
  }
});

/** A DuckDB file holding a catalog of layout 3 with a plaintext literal key. */
async function layout3File(name: string): Promise<string> {
  const file = join(dir, name);
  const db = await openDuckDB(file);
  const t = { text: 'VARCHAR', integer: 'INTEGER', bigint: 'BIGINT', double: 'DOUBLE', blob: 'BLOB', timestamp: 'TIMESTAMP' };
  await db.sql('CREATE SCHEMA ml_catalog');
  await db.sql('CREATE TABLE ml_catalog.schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)');
  for (const [i, migration] of MIGRATIONS.slice(0, 3).entries()) {
    for (const statement of migration.statements(t)) await db.sql(statement);
    await db.sql(`INSERT INTO ml_catalog.schema_version VALUES (${i + 1}, CAST(now() AS TIMESTAMP))`);
  }
  const options = JSON.stringify([['provider', 'openai'], ['endpoint', `${server.url}/v1`], ['model', 'gpt'], ['api-key', '******'], ['cache', 'false']]);
  await db.sql(`INSERT INTO ml_catalog.models VALUES ('main', 'old', 1, 'someone', CAST(now() AS TIMESTAMP), CAST(now() AS TIMESTAMP))`);
  await db.sql(`INSERT INTO ml_catalog.model_versions VALUES ('main', 'old', 1, 'openai', NULL, '[{"name":"txt","type":"STRING"}]', '[{"name":"a","type":"STRING"}]', '${options}', NULL, NULL, CAST(now() AS TIMESTAMP), 'someone')`);
  await db.sql(`INSERT INTO ml_catalog.model_secrets VALUES ('main', 'old', 1, 'api-key', '${KEY}', 'someone')`);
  await db.sql(`CREATE TABLE notes AS SELECT 'hi' AS txt`);
  await db.close();
  return file;
}

test('a layout-3 catalog with plaintext keys: the upgrade refuses without the key (layout kept), and seals them with it', async () => {
  const file = await layout3File('layout3.duckdb');
  const upgrade = (env: NodeJS.ProcessEnv) => runCli(['catalog', 'upgrade', `duckdb:${file}`], '', env);
  const refused = await upgrade({ MODELSQL_SECRET_KEY: '' });
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toContain('MODELSQL_SECRET_KEY');
  expect(refused.stdout + refused.stderr).not.toContain(KEY);
  const check = await openDuckDB(file);
  try {
    expect((await check.sql('SELECT max(version) FROM ml_catalog.schema_version')).rows).toEqual([[3]]);
    expect((await check.sql('SELECT secret FROM ml_catalog.model_secrets')).rows).toEqual([[KEY]]);
  } finally {
    await check.close();
  }
  const done = await upgrade({});
  expect(done.stderr).toBe('');
  expect(done.status).toBe(0);
  const db: Session = await openDuckDB(file);
  try {
    expect((await db.sql('SELECT max(version) FROM ml_catalog.schema_version')).rows).toEqual([[MIGRATIONS.length]]);
    const stored = (await db.sql('SELECT secret FROM ml_catalog.model_secrets')).rows;
    expect(stored).toEqual([[expect.stringMatching(/^modelsql-sealed:v1:/)]]);
    server.reset();
    expect((await db.sql('SELECT a FROM ML_PREDICT(TABLE notes, MODEL old, DESCRIPTOR(txt))')).rows).toEqual([['echo: hi']]);
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
  } finally {
    await db.close();
  }
});

test('the proxy reads its key from --secret-key-file, and names the flag (not the file’s content) when it cannot', async () => {
  const run = await runCli(['proxy', '--upstream', 'postgres://127.0.0.1:1/x', '--listen', '127.0.0.1:0', '--secret-key-file', join(dir, 'no-such-key-file')]);
  expect(run.status).toBe(1);
  expect(run.stderr).toBe('modelsql: cannot read --secret-key-file: ENOENT\n');
});
