/**
 * Secrets (SPEC §5): a literal api-key appears in no output of any command — SHOW CREATE
 * MODEL, DESCRIBE MODEL EXTENDED, SHOW MODELS, the readable catalog, error messages (even
 * when the provider echoes the key), positioned errors with their SQL line, and the CLI.
 * The key still reaches the provider, and survives ALTER MODEL and a reopened database.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { formatError, ModelSqlError } from '../../core/errors.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { startOpenAIServer } from '../providers/openai-server.js';

const SECRET = 'sk-live-TOPSECRET-4f9a2c';
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = process.env['MODELSQL_TEST_CLI'] ?? join(ROOT, 'dist', 'cli', 'main.js');

/** Everything a result or error could print, as one string. */
function printed(value: unknown): string {
  if (value instanceof Error) return `${formatError(value)}\n${value.message}\n${value instanceof ModelSqlError ? (value.sqlText ?? '') : ''}`;
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

for (const adapter of ADAPTERS) {
  describe(`secrets on ${adapter.name}`, () => {
    let db: Session;
    let server: LoopbackServer;
    let wrongKeyServer: LoopbackServer;
    beforeAll(async () => {
      server = await startOpenAIServer({ apiKey: SECRET });
      wrongKeyServer = await startOpenAIServer({ apiKey: 'sk-some-other-key' });
      db = await adapter.open();
      await db.sql(`CREATE TABLE t AS SELECT CAST(i AS BIGINT) AS id, 'text ' || CAST(i AS VARCHAR) AS txt FROM generate_series(0, 4) AS r(i)`);
      await db.sql(
        `CREATE MODEL m INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt', 'api-key' = '${SECRET}', 'cache' = 'false')`,
      );
    });
    afterAll(async () => {
      await db.close();
      await server.close();
      await wrongKeyServer.close();
    });

    it('keeps the key out of SHOW, DESCRIBE and the readable catalog, but sends it to the provider', async () => {
      const outputs = [
        await db.sql('SHOW CREATE MODEL m'),
        await db.sql('DESCRIBE MODEL EXTENDED m'),
        await db.sql('SHOW MODELS'),
        await db.sql('SHOW MODEL VERSIONS m'),
        await db.sql('SELECT * FROM ml_catalog.model_versions'),
        await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(txt))`),
      ];
      for (const out of outputs) expect(printed(out)).not.toContain(SECRET);
      expect(printed(outputs[0])).toContain(`'api-key' = '******'`);
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
    });

    it('keeps the key through ALTER MODEL SET of other options', async () => {
      await db.sql(`ALTER MODEL m SET ('temperature' = '0.5')`);
      server.reset();
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(txt))`);
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
      expect(printed(await db.sql('SHOW CREATE MODEL m'))).not.toContain(SECRET);
    });

    it('masks the key in errors, even when the provider echoes it', async () => {
      await db.sql(
        `CREATE MODEL echoing INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${wrongKeyServer.url}/v1', 'model' = 'gpt', 'api-key' = '${SECRET}', 'cache' = 'false')`,
      );
      const error = await failure(db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL echoing, DESCRIPTOR(txt))`));
      expect(printed(error)).toMatch(/401 Incorrect API key provided: \*\*\*\*\*\*/);
      expect(printed(error)).not.toContain(SECRET);
    });

    it('masks the key in the SQL line printed under a positioned error', async () => {
      const error = await failure(
        db.sql(`CREATE MODEL broken INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'api-key' = '${SECRET}', 'colour' = 'blue', 'model' = 'x', 'endpoint' = 'http://127.0.0.1:1/v1')`),
      );
      const text = formatError(error);
      expect(text).toContain(`'api-key' = '******'`);
      expect(text).not.toContain(SECRET);
      // The caret still points at the offending option.
      const [, line, caret] = text.split('\n');
      expect(line!.slice(caret!.indexOf('^'))).toMatch(/^'colour'/);
    });
  });
}

describe('secrets in a database file and in the CLI', () => {
  let dir: string;
  let server: LoopbackServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'modelsql-secrets-'));
    server = await startOpenAIServer({ apiKey: 'sk-expected-by-server' });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores the key apart from the options and finds it after a reopen', async () => {
    const file = join(dir, 'reopen.duckdb');
    const good = await startOpenAIServer({ apiKey: SECRET });
    try {
      let db = await openDuckDB(file);
      await db.sql(`CREATE TABLE t AS SELECT 'hello' AS txt`);
      await db.sql(`CREATE MODEL m INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${good.url}/v1', 'model' = 'gpt', 'api-key' = '${SECRET}')`);
      expect(printed(await db.sql('SELECT options FROM ml_catalog.model_versions'))).not.toContain(SECRET);
      await db.close();
      db = await openDuckDB(file);
      expect((await db.sql(`SELECT a FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(txt))`)).rows).toEqual([['echo: hello']]);
      await db.close();
    } finally {
      await good.close();
    }
  });

  const cliIt = existsSync(MAIN) ? it : it.skip;
  cliIt('prints the key nowhere in `modelsql run` output, results or errors', async () => {
    const script = [
      `CREATE TABLE t AS SELECT 'hello' AS txt;`,
      `CREATE MODEL m INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt', 'api-key' = '${SECRET}');`,
      `SHOW CREATE MODEL m;`,
      `DESCRIBE MODEL EXTENDED m;`,
      `SELECT * FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(txt));`,
    ].join('\n');
    const run = await new Promise<{ status: number | null; out: string }>((done, fail) => {
      const child = spawn(process.execPath, [MAIN, 'run', '-c', script, '--format', 'json'], { cwd: ROOT, stdio: 'pipe' });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
      child.on('error', fail);
      child.on('close', (status) => done({ status, out }));
    });
    expect(run.status).toBe(1);
    expect(run.out).toContain('******');
    expect(run.out).toMatch(/401 Incorrect API key provided/);
    expect(run.out).not.toContain(SECRET);
  });
});
