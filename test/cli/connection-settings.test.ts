/**
 * `--postgres` and `--upstream` take libpq's settings: a URL, completed from the PG*
 * variables; DATABASE_URL when no URL is given; anything modelsql does not apply is an error.
 */
import { spawn } from 'node:child_process';
import pg from 'pg';
import { resolvePostgresUrl } from '../../cli/connection-settings.js';
import { ADAPTERS } from '../support/adapters.js';
import { createTestDatabase } from '../support/postgres-server.js';
import { MAIN, ROOT, runProcess, type CliRun } from '../support/run-cli.js';

/** An environment without the caller's Postgres settings. */
function without(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !/^PG|^DATABASE_URL$/.test(k)));
}

/** The CLI with exactly `env` (not added to this process's environment). */
const runCli = (args: readonly string[], _input: string, env: NodeJS.ProcessEnv): Promise<CliRun> => runProcess(process.execPath, [MAIN, ...args], { cwd: ROOT, env });

describe('resolvePostgresUrl', () => {
  it('fills what the URL leaves out from PG* variables; the URL wins', () => {
    const env = { PGHOST: 'db.internal', PGPORT: '6543', PGUSER: 'ann', PGPASSWORD: 's3cr:t', PGDATABASE: 'shop', PGAPPNAME: 'nightly' };
    expect(resolvePostgresUrl('postgres://', env, 'client')).toBe('postgresql://ann:s3cr%3At@db.internal:6543/shop?application_name=nightly');
    expect(resolvePostgresUrl('postgres://bob@other/sales?sslmode=require', env, 'client')).toBe(
      'postgresql://bob:s3cr%3At@other:6543/sales?sslmode=require&application_name=nightly&uselibpqcompat=true',
    );
    // PGSSLMODE from the environment; a Unix-socket directory goes in ?host=
    expect(resolvePostgresUrl(undefined, { PGHOST: '/run/postgresql', PGDATABASE: 'x', PGSSLMODE: 'disable' }, 'client')).toBe(
      'postgresql:///x?host=%2Frun%2Fpostgresql&sslmode=disable&uselibpqcompat=true',
    );
    // with a socket directory the port goes beside ?host= (a URL has no port without a host)
    const socket = resolvePostgresUrl('postgres:///bench?host=%2Ftmp%2Fpg&port=5433', {}, 'upstream');
    expect(socket).toBe('postgresql:///bench?host=%2Ftmp%2Fpg&port=5433');
    expect(new URL(socket).searchParams.get('port')).toBe('5433');
    expect(resolvePostgresUrl(undefined, { PGHOST: '/tmp/pg', PGPORT: '5433', PGDATABASE: 'x' }, 'client')).toBe('postgresql:///x?host=%2Ftmp%2Fpg&port=5433');
  });

  it('takes DATABASE_URL when no URL is given', () => {
    expect(resolvePostgresUrl(undefined, { DATABASE_URL: 'postgres://u@h:1/d' }, 'client')).toBe('postgresql://u@h:1/d');
    expect(resolvePostgresUrl('', { DATABASE_URL: 'postgresql://u@h/d', PGPORT: '7' }, 'client')).toBe('postgresql://u@h:7/d');
  });

  it('for the upstream, takes only where the server is and its TLS; clients bring the rest', () => {
    const env = { PGHOST: 'db', PGPORT: '5433', PGUSER: 'ann', PGPASSWORD: 'x', PGDATABASE: 'shop', PGSSLMODE: 'prefer', PGAPPNAME: 'a' };
    expect(resolvePostgresUrl('postgres://', env, 'upstream')).toBe('postgresql://db:5433/shop?sslmode=prefer');
    expect(() => resolvePostgresUrl('postgres://db/x?sslrootcert=/ca.pem', {}, 'upstream')).toThrow(/upstream takes only host, port, dbname, sslmode; not sslrootcert/);
  });

  it('refuses what it would not apply, naming it (SQLSTATE 22023)', () => {
    const cases: [string | undefined, NodeJS.ProcessEnv, RegExp][] = [
      ['mysql://h/d', {}, /the URL is not a postgres:\/\/ URL: mysql:\/\/h\/d/],
      [undefined, { DATABASE_URL: 'mysql://u:pw@h/d' }, /DATABASE_URL is not a postgres:\/\/ URL: mysql:\/\/u:\*\*\*\*\*\*@h\/d/],
      ['postgres://h/d?sslmod=require', {}, /unknown connection setting "sslmod" in the URL/],
      ['postgres://h/d', { PGSERVICE: 'prod' }, /PGSERVICE is set, but modelsql does not apply it/],
      ['postgres://h/d', { PGTZ: 'UTC', PGHOSTADDR: '10.0.0.1' }, /PGHOSTADDR, PGTZ are set/],
      ['postgres://h1,h2/d', {}, /several hosts/],
      ['postgres://h/d', { PGPORT: 'abc' }, /invalid port "abc"/],
      ['postgres://h/d?sslmode=prefer', {}, /sslmode "prefer" is not supported by the Postgres client/],
      ['postgres://h/d', { PGSSLMODE: 'bogus' }, /sslmode "bogus" is not supported/],
    ];
    for (const [url, env, message] of cases) {
      let thrown: unknown;
      try {
        resolvePostgresUrl(url, env, 'client');
      } catch (error) {
        thrown = error;
      }
      expect({ url, env, message: (thrown as Error | undefined)?.message }).toEqual({ url, env, message: expect.stringMatching(message) });
      expect((thrown as { sqlstate?: string }).sqlstate).toBe('22023');
    }
  });
});

describe('the CLI on the environment', () => {
  it('DATABASE_URL of another scheme is an error, never a silent DuckDB', async () => {
    const r = await runCli(['run', '-c', 'select 1'], '', { ...without(process.env), DATABASE_URL: 'mysql://h/d' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('ERROR:  22023: DATABASE_URL is not a postgres:// URL: mysql://h/d\n');
    const service = await runCli(['run', '--postgres', '-c', 'select 1'], '', { ...without(process.env), PGSERVICE: 'prod' });
    expect(service.status).toBe(1);
    expect(service.stderr).toMatch(/^ERROR: {2}22023: PGSERVICE is set, but modelsql does not apply it/);
    // --db wins over DATABASE_URL
    const duck = await runCli(['run', '--db', ':memory:', '--format', 'csv', '-c', 'select 1 as one'], '', { ...without(process.env), DATABASE_URL: 'mysql://h/d' });
    expect(duck.stdout).toBe('one\r\n1\r\n');
  });

  const withPostgres = ADAPTERS.some((a) => a.name === 'postgres') ? describe : describe.skip;
  withPostgres('on Postgres', () => {
    let url: URL;
    let env: NodeJS.ProcessEnv;
    beforeAll(async () => {
      const base = process.env.MODELSQL_TEST_POSTGRES_URL;
      if (!base) throw new Error('MODELSQL_TEST_POSTGRES_URL is not set: run the tests through jest');
      url = new URL(await createTestDatabase(base));
      env = {
        ...without(process.env),
        PGHOST: url.hostname,
        PGPORT: url.port,
        PGUSER: decodeURIComponent(url.username),
        PGPASSWORD: decodeURIComponent(url.password),
        PGDATABASE: url.pathname.slice(1),
      };
    });

    it('--postgres without a URL connects with the PG* variables; DATABASE_URL alone selects Postgres', async () => {
      const q = 'select current_database() as db';
      const r = await runCli(['run', '--postgres', '--format', 'csv', '-c', q], '', env);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(`db\r\n${url.pathname.slice(1)}\r\n`);
      // a URL naming only the database: the rest from the variables
      const partial = await runCli(['run', '--postgres', 'postgres:///postgres', '--format', 'csv', '-c', q], '', env);
      expect(partial.stdout).toBe('db\r\npostgres\r\n');
      const fromUrl = await runCli(['run', '--format', 'csv', '-c', q], '', { ...without(process.env), DATABASE_URL: url.toString() });
      expect(fromUrl.stderr).toBe('');
      expect(fromUrl.stdout).toBe(`db\r\n${url.pathname.slice(1)}\r\n`);
    });

    it('proxy --upstream postgres:// takes the server from PGHOST/PGPORT/PGDATABASE', async () => {
      const child = spawn(process.execPath, [MAIN, 'proxy', '--upstream', 'postgres://', '--listen', '127.0.0.1:0'], { cwd: ROOT, env, stdio: 'pipe' });
      try {
        let stderr = '';
        const port = await new Promise<number>((done, fail) => {
          child.stderr.on('data', (c: Buffer) => {
            stderr += c.toString('utf8');
            const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
            if (m) done(Number(m[1]));
          });
          child.on('close', () => fail(new Error(`the proxy exited: ${stderr}`)));
        });
        expect(stderr).toContain(`upstream ${url.hostname}:${url.port}/${url.pathname.slice(1)}`);
        const client = new pg.Client({ host: '127.0.0.1', port, user: env.PGUSER, password: env.PGPASSWORD, database: env.PGDATABASE });
        await client.connect();
        try {
          expect((await client.query('select current_database() as db')).rows).toEqual([{ db: env.PGDATABASE }]);
        } finally {
          await client.end();
        }
      } finally {
        child.kill('SIGTERM');
        await new Promise((done) => child.on('close', done));
      }
    });
  });
});
