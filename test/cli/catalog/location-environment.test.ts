/**
 * `modelsql catalog` locations on a real Postgres server, its settings from the environment
 * as libpq takes them: `postgres:` is `DATABASE_URL`, a `postgres://` URL's missing parts
 * come from `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`; a setting modelsql
 * does not apply stops the command before it touches any catalog.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDuckDB } from '../../../adapters/duckdb/index.js';
import { connectPostgres } from '../../../adapters/postgres/index.js';
import { ADAPTERS } from '../../support/adapters.js';
import { createTestDatabase } from '../../support/postgres-server.js';
import { runCli as cli } from '../../support/run-cli.js';

const withPostgres = ADAPTERS.some((a) => a.name === 'postgres') ? it : it.skip;

let dir: string;
let source: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'modelsql-location-env-'));
  source = join(dir, 'source.duckdb');
  const db = await openDuckDB(source);
  try {
    await db.sql(`CREATE MODEL chat INPUT (q STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'small', 'api-key' = '\${env:SOME_KEY}')`);
  } finally {
    await db.close();
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The PG* variables that name the database of `url`. */
function libpqVariables(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return { PGHOST: u.hostname, PGPORT: u.port, PGUSER: decodeURIComponent(u.username), PGPASSWORD: decodeURIComponent(u.password), PGDATABASE: u.pathname.slice(1) };
}

/** The model names of the Postgres catalog at `url`. */
async function models(url: string): Promise<unknown[]> {
  const db = await connectPostgres(url);
  try {
    return (await db.sql('SHOW MODELS')).rows.map((r) => r[0]);
  } finally {
    await db.close();
  }
}

withPostgres('postgres: names the database in DATABASE_URL; postgres:// takes its parts from the PG* variables', async () => {
  const target = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
  const there = await cli(['catalog', 'migrate', '--from', `duckdb:${source}`, '--to', 'postgres:'], '', { DATABASE_URL: target });
  expect(there.stderr).toMatch(/1 of 1 models written to postgresql:\/\/postgres:\*{6}@127\.0\.0\.1:\d+\/modelsql_t_/);
  expect(there.status).toBe(0);
  expect(await models(target)).toEqual(['chat']);

  // Nothing in the URL: every part from the variables (libpq's `postgres://`).
  const diff = await cli(['catalog', 'diff', `duckdb:${source}`, 'postgres://'], '', libpqVariables(target));
  expect(diff).toMatchObject({ status: 0, stdout: 'no differences\n' });
  // The URL names the database; host, port, user and password come from the variables.
  const name = new URL(target).pathname.slice(1);
  const exported = await cli(['catalog', 'export', '--from', `postgres:///${name}`, '--format', 'sql'], '', { ...libpqVariables(target), PGDATABASE: 'not_this_one' });
  expect(exported.stderr).toBe('');
  expect(exported.status).toBe(0);
  expect(exported.stdout).toMatch(/CREATE MODEL .*chat/);
});

withPostgres('a setting modelsql does not apply is an error before any catalog is touched', async () => {
  const target = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
  const cases: [string, NodeJS.ProcessEnv, RegExp][] = [
    ['postgres://', { ...libpqVariables(target), PGSERVICE: 'shop' }, /PGSERVICE is set, but modelsql does not apply it/],
    ['postgres:', { DATABASE_URL: `${target}?sslmod=require` }, /unknown connection setting "sslmod" in DATABASE_URL/],
    ['postgres:', { DATABASE_URL: 'mysql://127.0.0.1/shop' }, /DATABASE_URL is not a postgres:\/\/ URL/],
  ];
  for (const [location, env, message] of cases) {
    const r = await cli(['catalog', 'migrate', '--from', `duckdb:${source}`, '--to', location], '', env);
    expect(r.stderr).toMatch(message);
    expect(r.status).toBe(2);
  }
  expect(await models(target)).toEqual([]);
});
