/**
 * The proxy while its upstream Postgres restarts under load: a server of the test's own
 * (started here, so that stopping it does not disturb the other suites), a proxy in front
 * of it, ten clients mixing plain statements, ONNX and remote ML_PREDICT (the loopback
 * OpenAI server failing one request in twenty), ML_PREDICTs dropped by their client halfway
 * and a CREATE / DROP MODEL loop, and the server shut down and started again in the middle. In-flight statements must end with an
 * error (never a hang), new connections must be served once the server is back, and
 * nothing may be left behind: no half-written catalog entry, no temporary table, no
 * upstream session.
 */
import type { Socket } from 'node:net';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../../../adapters/postgres/proxy/index.js';
import { startOpenAIServer } from '../../providers/openai-server.js';
import type { LoopbackServer } from '../../providers/loopback-server.js';
import { linearExpected, writeModelFiles } from '../../support/model-files.js';
import { startPostgres, type PostgresServer } from '../../support/postgres-server.js';
import { catalogProblems, leftovers, prepareLoad, runLoad } from '../../support/proxy-load.js';
import { mapPostgresError } from '../../../adapters/postgres/postgres-errors.js';
import { query } from '../../../adapters/postgres/proxy/message-builders.js';
import { UpstreamError } from '../../../adapters/postgres/proxy/upstream-target.js';
import { errorCodes, eventually } from './proxy-helpers.js';

const wanted = process.env.MODELSQL_TEST_ADAPTERS?.split(',').map((s) => s.trim());
const run = !wanted || wanted.includes('postgres') ? describe : describe.skip;

let server: PostgresServer;
let proxy: RunningProxy;
let openai: LoopbackServer;
let directUrl: string;
let proxyUrl: string;
const logged: string[] = [];

/** A connected client; the caller ends it. */
async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

test('a lost upstream keeps its SQLSTATE through the Postgres host (08006, not XX000)', () => {
  const error = mapPostgresError(new UpstreamError('08006', 'connection to upstream server at db:5432 was lost: ECONNRESET'));
  expect([error.sqlstate, error.message]).toEqual(['08006', 'connection to upstream server at db:5432 was lost: ECONNRESET']);
});

/** The socket under a `pg.Client`, and every byte it received from now on. */
function wire(client: pg.Client): { readonly socket: Socket; received(): Buffer } {
  const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  return { socket, received: () => Buffer.concat(chunks) };
}

run('upstream restart under load', () => {
  beforeAll(async () => {
    server = await startPostgres();
    const admin = await connect(server.url);
    await admin.query('CREATE DATABASE faults');
    await admin.end();
    const base = new URL(server.url);
    base.pathname = '/faults';
    directUrl = base.toString();
    proxy = await startProxy({ upstream: `postgres://${base.host}/faults?sslmode=disable`, listen: 0, session: { allowedDirectories: ['/'], allowedUrlPrefixes: ['*'] }, log: (m, e) => logged.push(`${m}: ${String(e)}`) });
    const through = new URL(directUrl);
    through.host = `127.0.0.1:${proxy.port}`;
    proxyUrl = through.toString();
    let requests = 0;
    openai = await startOpenAIServer({ apiKey: 'sk-load', fault: () => (++requests % 20 === 0 ? { kind: 'status', status: requests % 40 === 0 ? 429 : 500 } : undefined) });
    const setup = await connect(proxyUrl);
    await prepareLoad(setup, { onnxPath: writeModelFiles().linear, openaiUrl: openai.url });
    await setup.end();
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await openai?.close();
    await server?.stop();
  });

  test('in-flight clients get an error, not a hang; new clients are served; nothing half-written or leaked', async () => {
    const report = await runLoad({
      url: proxyUrl,
      clients: 10,
      seconds: 6,
      kinds: ['plain', 'onnx', 'remote', 'catalog', 'abandon'],
      // Past the six seconds, the load goes on until every kind was answered right once,
      // however slow the machine (a dropped statement comes once in ten of a client).
      untilServed: ['plain', 'onnx', 'remote', 'catalog', 'abandon'],
      maxSeconds: 90,
      restart: { atSeconds: 2, downMs: 1000, shutdown: () => server.shutdown(), start: () => server.start() },
      hangMs: 15_000,
    });
    expect(report.failures).toEqual([]);
    expect(report.restartErrors).toBeGreaterThan(0); // the restart was felt
    expect(report.restart?.firstServedAt).toBeDefined(); // and clients were served after it
    // Every kind was answered right (the load ran until it was).
    for (const kind of ['plain', 'onnx', 'remote', 'catalog', 'abandon'] as const) expect(report.ok[kind]).toBeGreaterThan(0);

    // A new client is served, model SQL included.
    const fresh = await connect(proxyUrl);
    const r = await fresh.query('SELECT id, y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id = 3), MODEL lin, DESCRIPTOR(a, b))');
    expect(r.rows).toEqual([{ id: 3, y: expect.closeTo(linearExpected(1.5, 3), 4) }]);
    await fresh.end();

    const direct = await connect(directUrl);
    try {
      expect(await catalogProblems(direct)).toEqual([]);
      const { rows } = await direct.query('SELECT model_name FROM ml_catalog.models');
      const names = new Set(rows.map((row) => row.model_name as string));
      for (const m of report.modelsLeft) expect(names).toContain(m);
      await eventually(async () => proxy.connections === 0, 10_000, 'proxy connections to close');
      await eventually(async () => (await leftovers(direct)).backends === 0, 10_000, 'upstream sessions to end');
      expect(await leftovers(direct)).toEqual({ backends: 0, tempTables: 0 });
    } finally {
      await direct.end();
    }
    expect(logged).toEqual([]);
  }, 180_000);

  test("upstream session lost while a model stage runs: Postgres's 57P01, then FATAL 08006 and a close (no XX000, no hang)", async () => {
    const slow = await startOpenAIServer({ apiKey: 'sk-load', latencyMs: 1500 });
    const direct = await connect(directUrl);
    const victim = await connect(`${proxyUrl}?application_name=victim`);
    try {
      const { socket, received } = wire(victim);
      await victim.query(`CREATE MODEL slowchat INPUT (txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${slow.url}/v1', 'model' = 'm', 'api-key' = 'sk-load', 'cache' = 'false')`);
      const pending = victim.query("SELECT * FROM ML_PREDICT(TABLE (SELECT 'x' AS txt), MODEL slowchat, DESCRIPTOR(txt))").then(
        () => undefined,
        (e: unknown) => e as { code?: string; message: string },
      );
      await eventually(async () => slow.requests.length > 0, 10_000, 'the remote request');
      await direct.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'");
      // Postgres's own shutdown error (relayed: no exchange was open), then the proxy's FATAL
      // 08006 when the stage found the session gone, never a plain XX000 that leaves the
      // connection open on a dead session.
      expect((await pending)?.code).toBe('57P01');
      await eventually(async () => socket.destroyed, 20_000, 'the connection to close');
      expect(errorCodes(received())).toEqual(['57P01', '08006']);
      // The connection is over: the next statement fails at once instead of waiting forever.
      await expect(Promise.race([victim.query('SELECT 1'), new Promise((resolve) => setTimeout(() => resolve('hang'), 20_000).unref())])).rejects.toThrow();
    } finally {
      await victim.end().catch(() => undefined);
      await direct.query('DROP MODEL IF EXISTS slowchat').catch(() => undefined);
      await direct.end();
      await slow.close();
    }
  });

  test('upstream session lost while a model statement waits behind a relayed one: the connection closes', async () => {
    const direct = await connect(directUrl);
    const victim = await connect(`${proxyUrl}?application_name=waiter`);
    try {
      // Two Queries at once on the wire (pg.Client would send one at a time): a plain one the
      // proxy relays, and a model statement it runs only after the first is answered.
      const { socket, received } = wire(victim);
      const closed = new Promise<string>((resolve) => socket.once('close', () => resolve('closed')));
      socket.write(Buffer.concat([query('SELECT pg_sleep(30)'), query('SHOW MODELS')]));
      await eventually(async () => (await direct.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'waiter' AND state = 'active'")).rows.length > 0, 10_000, 'the relayed statement');
      await direct.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'waiter'");
      expect(await Promise.race([closed, new Promise((resolve) => setTimeout(() => resolve('hang'), 20_000).unref())])).toBe('closed');
      expect(errorCodes(received())).toEqual(['57P01', '08006']);
    } finally {
      await victim.end().catch(() => undefined);
      await direct.end();
    }
  });
});
