/**
 * `modelsql proxy` and signals (docs/proxy.md, "Shutdown and signals"), with real clients
 * against the CLI process: SIGTERM stops accepting, lets a statement in flight finish and
 * answers it, ends idle clients with FATAL 57P01, and exits 0; past `--shutdown-grace` what
 * still runs is closed; SIGHUP and SIGUSR2 never stop it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import type { LoopbackServer } from '../../providers/loopback-server.js';
import { startOpenAIServer } from '../../providers/openai-server.js';
import { proxyFixture, type ProxyFixture } from './proxy-helpers.js';

const KEY = 'sk-shutdown-test';
let server: LoopbackServer;
let fx: ProxyFixture;

beforeAll(async () => {
  server = await startOpenAIServer({ apiKey: KEY });
  fx = await proxyFixture();
  const c = await fx.client();
  await c.query(`CREATE TABLE t AS SELECT i AS id, 'row ' || i AS txt FROM generate_series(1, 3) i`);
  await c.query(
    `CREATE MODEL slow INPUT (txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/chat/completions', 'model' = 'm', 'api-key' = '\${env:SHUTDOWN_TEST_KEY}', 'cache' = 'false', 'max-concurrent-operations' = '1')`,
  );
}, 60_000);
afterAll(async () => {
  await fx?.close();
  await server?.close();
});
beforeEach(() => server.reset());

/** A CLI proxy in front of the fixture's database; `stderr` collects its log. */
interface Child {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  stderr(): string;
  readonly exit: Promise<number | null>;
}

async function startChild(extra: readonly string[]): Promise<Child> {
  const main = join(process.cwd(), 'dist', 'cli', 'main.js');
  const upstream = new URL(fx.directUrl);
  const child = spawn(process.execPath, [main, 'proxy', '--upstream', `postgres://${upstream.host}${upstream.pathname}?sslmode=disable`, '--listen', '127.0.0.1:0', '--allow-endpoint', '*', ...extra], {
    stdio: 'pipe',
    env: { ...process.env, SHUTDOWN_TEST_KEY: KEY },
  });
  let stderr = '';
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    void exit.then(() => reject(new Error(`proxy exited: ${stderr}`)));
  });
  const url = new URL(fx.directUrl);
  url.host = `127.0.0.1:${port}`;
  return { child, url: url.toString(), port, stderr: () => stderr, exit };
}

async function client(url: string): Promise<{ c: pg.Client; errors: string[] }> {
  const c = new pg.Client({ connectionString: url });
  const errors: string[] = [];
  c.on('error', (e: Error & { code?: string }) => errors.push(e.code ?? e.message));
  await c.connect();
  return { c, errors };
}

/** Holds every answer of the loopback model until the returned function is called. */
function holdAnswers(): () => void {
  let release!: () => void;
  const until = new Promise<void>((resolve) => (release = resolve));
  server.setFault(() => ({ kind: 'hold', until }));
  return release;
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 20));
}

/** Whether a TCP connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

const SLOW = 'SELECT count(*)::int AS n FROM ML_PREDICT(TABLE t, MODEL slow, DESCRIPTOR(txt))';

test('SIGTERM: no new connections, the statement in flight finishes and is answered, idle clients get 57P01, exit 0', async () => {
  const proxy = await startChild(['--shutdown-grace', '2min']);
  const release = holdAnswers();
  const busy = await client(proxy.url);
  const idle = await client(proxy.url);
  const running = busy.c.query(SLOW);
  await until(() => server.requests.length > 0);
  proxy.child.kill('SIGTERM');
  await until(() => idle.errors.length > 0);
  expect(idle.errors[0]).toBe('57P01'); // then pg's own 'Connection terminated', as with Postgres's shutdown
  expect(await refused(proxy.port)).toBe(true);
  release();
  expect((await running).rows).toEqual([{ n: 3 }]);
  await until(() => busy.errors.length > 0);
  expect(busy.errors[0]).toBe('57P01');
  expect(await proxy.exit).toBe(0);
  expect(proxy.stderr()).toMatch(/level=info msg="shutting down" connections=2 grace_ms=120000/);
  expect(proxy.stderr()).toMatch(/msg="shut down" forced=0/);
});

test('past --shutdown-grace the statements still running are ended and the proxy exits 0', async () => {
  const proxy = await startChild(['--shutdown-grace', '300ms']);
  const release = holdAnswers();
  try {
    const busy = await client(proxy.url);
    const running = busy.c.query(SLOW);
    await until(() => server.requests.length > 0);
    proxy.child.kill('SIGTERM');
    await expect(running).rejects.toThrow();
    expect(await proxy.exit).toBe(0);
    expect(proxy.stderr()).toMatch(/level=warn msg="grace period over: closing connections with statements still running" connections=1/);
    expect(proxy.stderr()).toMatch(/msg="shut down" forced=1/);
  } finally {
    release();
  }
});

test('SIGHUP and SIGUSR2 are logged and ignored: the proxy keeps serving', async () => {
  const proxy = await startChild([]);
  try {
    proxy.child.kill('SIGHUP');
    proxy.child.kill('SIGUSR2');
    await until(() => (proxy.stderr().match(/msg="signal ignored"/g) ?? []).length === 2);
    const { c } = await client(proxy.url);
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await c.end();
    expect(proxy.child.exitCode).toBeNull();
  } finally {
    proxy.child.kill('SIGTERM');
    expect(await proxy.exit).toBe(0);
  }
});
