/**
 * Oracles closed: a restricted server (the proxy's defaults, or a session with allow-lists)
 * answers a refused model definition the same way whatever lies behind it. An endpoint
 * outside the allow-list is refused before any `${env:...}` is looked at (no error tells
 * whether a variable exists); every file outside `--model-dir` gets one refusal (existing,
 * missing, a symbolic-link loop); URLs are compared percent-decoded with dot segments
 * resolved, so `..%2f` cannot climb out of an allowed prefix. Through a session and
 * through the proxy (real Postgres).
 */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { startProxy, type RunningProxy } from '../../adapters/postgres/proxy/index.js';
import { isUrlAllowed } from '../../core/runtime/access-policy.js';
import { ModelSqlError } from '../../core/errors.js';
import type { Session } from '../../core/session/session.js';
import { createTestDatabase } from '../support/postgres-server.js';
import { serverUrl } from '../adapters/postgres/proxy-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'modelsql-oracles-'));
const allowed = join(dir, 'models');
const outside = join(dir, 'outside');
mkdirSync(allowed);
mkdirSync(outside);
writeFileSync(join(outside, 'real.onnx'), 'not a model');
symlinkSync(join(outside, 'loop-b'), join(outside, 'loop-a'));
symlinkSync(join(outside, 'loop-a'), join(outside, 'loop-b'));

const remote = (endpoint: string, key: string) => `CREATE MODEL r INPUT (t STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${endpoint}', 'model' = 'gpt', 'api-key' = '${key}')`;
const onnx = (file: string) => `CREATE MODEL f INPUT (x DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${file}')`;

/** Each statement's error as SQLSTATE and message, with the one part the caller wrote (`shown`) replaced. */
type Refusal = readonly [string | undefined, string];

describe('through a session with allow-lists', () => {
  let db: Session;
  beforeAll(async () => {
    db = await openDuckDB(undefined, { allowedDirectories: [allowed], allowedUrlPrefixes: ['http://127.0.0.1:9/v1/'] });
  });
  afterAll(() => db.close());

  const refusal = async (sql: string, shown?: string): Promise<Refusal> => {
    const error = await db.sql(sql).then(
      () => undefined,
      (e: unknown) => e as ModelSqlError,
    );
    expect(error).toBeInstanceOf(ModelSqlError);
    return [error!.sqlstate, shown === undefined ? error!.message : error!.message.split(shown).join('<file>')];
  };

  test('an endpoint outside the allow-list is refused the same whether the key’s variable exists or not', async () => {
    const set = await refusal(remote('http://10.0.0.1/v1', '${env:PATH}'));
    const unset = await refusal(remote('http://10.0.0.1/v1', '${env:MODELSQL_NO_SUCH_VARIABLE_31}'));
    expect(set[0]).toBe('42501');
    expect(unset).toEqual(set);
    expect(set[1]).not.toMatch(/PATH|variable/);
  });

  test('every file outside the model directory gets one refusal: existing, missing, a symbolic-link loop', async () => {
    const files = ['real.onnx', 'missing.onnx', 'loop-a'].map((f) => join(outside, f));
    const answers: Refusal[] = [];
    for (const f of files) answers.push(await refusal(onnx(f), f));
    expect(answers[0]![0]).toBe('42501');
    expect(answers[0]![1]).toMatch(/outside the allowed model directories/);
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });

  test('`..%2f` and other encodings cannot climb out of an allowed URL prefix', async () => {
    for (const endpoint of ['http://127.0.0.1:9/v1/..%2fadmin', 'http://127.0.0.1:9/v1/%2e%2e/admin', 'http://127.0.0.1:9/v1/..%252fadmin', 'http://127.0.0.1:9/v1/a/..%5c..%5cadmin']) {
      expect(await refusal(remote(endpoint, 'sk-x-1234'))).toEqual(['42501', expect.stringMatching(/outside the allowed endpoints/)]);
    }
  });
});

test('isUrlAllowed compares decoded, normalized paths', () => {
  const prefixes = ['https://api.example.com/v1/'];
  expect(isUrlAllowed('https://api.example.com/v1/chat/completions', prefixes)).toBe(true);
  expect(isUrlAllowed('https://api.example.com/v1/a/../b', prefixes)).toBe(true);
  expect(isUrlAllowed('https://api.example.com/v1/..%2Fadmin', prefixes)).toBe(false);
  expect(isUrlAllowed('https://api.example.com/v1%2F..%2Fadmin', prefixes)).toBe(false);
  expect(isUrlAllowed('https://api.example.com/v1/%E0%A4%A', prefixes)).toBe(false);
  expect(isUrlAllowed('https://api.example.com/v1/%25252525252e%25252525252e/x', prefixes)).toBe(false);
});

describe('through the proxy (its defaults: no model files, no network)', () => {
  let proxy: RunningProxy;
  let client: pg.Client;
  beforeAll(async () => {
    const url = new URL(await createTestDatabase(serverUrl()));
    proxy = await startProxy({ upstream: `postgres://${url.host}${url.pathname}?sslmode=disable`, listen: 0 });
    url.host = `127.0.0.1:${proxy.port}`;
    client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await proxy?.close();
  });

  const refusal = async (sql: string, shown?: string): Promise<Refusal> => {
    const error = await client.query(sql).then(
      () => undefined,
      (e: { code?: string; message: string }) => e,
    );
    expect(error).toBeDefined();
    return [error!.code, shown === undefined ? error!.message : error!.message.split(shown).join('<file>')];
  };

  test('the same answer for a set and an unset variable, and for every file', async () => {
    const set = await refusal(remote('http://10.0.0.1/v1', '${env:PATH}'));
    expect(set[0]).toBe('42501');
    expect(await refusal(remote('http://10.0.0.1/v1', '${env:MODELSQL_NO_SUCH_VARIABLE_31}'))).toEqual(set);
    const files = ['real.onnx', 'missing.onnx', 'loop-a'].map((f) => join(outside, f));
    const answers: Refusal[] = [];
    for (const f of files) answers.push(await refusal(onnx(f), f));
    expect(answers[0]![0]).toBe('42501');
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });
});
