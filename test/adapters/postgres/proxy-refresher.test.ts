/**
 * The proxy keeps materialized tables fresh: two proxies (each with a refresher for the
 * database, started by its first client) and a `modelsql worker` process race on one
 * CONTINUOUS table while rows arrive in bursts. The advisory lock keeps them apart: every
 * row is in the result once, each source row is asked of the provider exactly once, and
 * the provider rows the three report (the proxies' `/metrics`, the worker's lines) add up
 * to the rows inserted. A database without a catalog gets none from a refresher.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import pg from 'pg';
import { connectPostgres } from '../../../adapters/postgres/index.js';
import { startProxy, type RunningProxy } from '../../../adapters/postgres/proxy/index.js';
import type { Session } from '../../../core/session/session.js';
import { ADAPTERS } from '../../support/adapters.js';
import { createTestDatabase } from '../../support/postgres-server.js';
import { MAIN, ROOT } from '../../support/run-cli.js';
import type { LoopbackServer } from '../../providers/loopback-server.js';
import { startOpenAIServer } from '../../providers/openai-server.js';

const KEY = 'sk-refreshers';
const BURSTS = 12;
const BURST_ROWS = 50;
const ROWS = BURSTS * BURST_ROWS;

/** Polls `check` every 50 ms until it holds (the test's own timeout bounds the wait). */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
}

/** The value of a Prometheus sample `name{...labels}` in `text` (0 when absent). */
function sample(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((label) => l.includes(label)));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function scrape(proxy: RunningProxy): Promise<string> {
  return (await fetch(`http://${proxy.metrics!.host}:${proxy.metrics!.port}/metrics`)).text();
}

const postgres = ADAPTERS.find((a) => a.name === 'postgres');
(postgres ? describe : describe.skip)('materialized tables refreshed by proxies and a worker', () => {
  let server: LoopbackServer;
  let url: string;
  let bare: string;
  let db: Session;
  const proxies: RunningProxy[] = [];
  const clients: pg.Client[] = [];
  let worker: ChildProcess | undefined;
  let workerOutput = '';

  beforeAll(async () => {
    server = await startOpenAIServer({ apiKey: KEY, latencyMs: 5, answer: (prompt) => `label of ${prompt}` });
    url = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
    bare = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
    db = await connectPostgres(url);
    await db.sql(`CREATE MODEL labeler INPUT (body STRING) OUTPUT (label STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt-test', 'api-key' = '${KEY}', 'prompt' = '{body}', 'max-concurrent-operations' = '4')`);
    await db.sql('CREATE TABLE reviews (id INTEGER PRIMARY KEY, body VARCHAR)');
    await db.sql(`CREATE MATERIALIZED TABLE labels FRESHNESS = INTERVAL '1' SECOND AS SELECT id, label FROM ML_PREDICT(TABLE reviews, MODEL labeler, DESCRIPTOR(body))`);
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    for (const p of proxies) await p.close();
    await db?.close();
    await server?.close();
  });

  it('two proxies and a worker racing: no row lost or doubled, each row asked of the provider once', async () => {
    const upstream = new URL(url);
    for (let i = 0; i < 2; i++) {
      proxies.push(
        await startProxy({ upstream: `postgres://${upstream.host}${upstream.pathname}?sslmode=disable`, listen: 0, metrics: '127.0.0.1:0', refreshUrl: url, session: { allowedUrlPrefixes: ['*'] }, log: () => undefined }),
      );
    }
    // A client of each database starts that proxy's refresher for it.
    for (const [proxy, database] of [[proxies[0]!, url], [proxies[1]!, url], [proxies[1]!, bare]] as const) {
      const target = new URL(database);
      const client = new pg.Client({ connectionString: `postgres://${target.username}:${target.password}@127.0.0.1:${proxy.port}${target.pathname}` });
      await client.connect();
      await client.query('SELECT 1');
      clients.push(client);
    }
    worker = spawn(process.execPath, [MAIN, 'worker', '--postgres', url], { cwd: ROOT, stdio: 'pipe' });
    worker.stdout!.on('data', (c: Buffer) => (workerOutput += c.toString('utf8')));
    worker.stderr!.on('data', (c: Buffer) => (workerOutput += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => worker!.on('exit', (code) => resolve(code)));
    try {
      await until(() => workerOutput.includes('modelsql worker: started'));
      for (let b = 0; b < BURSTS; b++) {
        await db.sql(`INSERT INTO reviews SELECT i, 'review ' || CAST(i AS VARCHAR) FROM generate_series(${b * BURST_ROWS + 1}, ${(b + 1) * BURST_ROWS}) AS r(i)`);
      }
      const pending = async () => new Map((await db.sql('DESCRIBE MATERIALIZED TABLE labels')).rows.map((r) => [r[0], r[1]])).get('pending_changes');
      await until(async () => Number((await db.sql('SELECT count(*) FROM labels')).rows[0]![0]) === ROWS && (await pending()) === '0');
    } finally {
      worker.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    expect((await db.sql('SELECT id, label FROM labels ORDER BY id')).rows).toEqual(Array.from({ length: ROWS }, (_, i) => [i + 1, `label of review ${i + 1}`]));
    const asked = new Map<string, number>();
    for (const prompt of server.requests.flatMap((r) => r.prompts)) asked.set(prompt, (asked.get(prompt) ?? 0) + 1);
    expect(asked.size).toBe(ROWS);
    expect([...asked.values()].filter((n) => n !== 1)).toEqual([]);
    // What each refresher reports adds up to the rows inserted: the proxies' metrics and the worker's lines.
    const database = `database="${upstream.pathname.slice(1)}"`;
    const texts = await Promise.all(proxies.map(scrape));
    const byProxies = texts.map((t) => sample(t, 'modelsql_materialized_provider_rows_total', `${database},schema="public",table="labels"`));
    const byWorker = [...workerOutput.matchAll(/public\.labels: \d+ rows refreshed \(\d+ predicted, \d+ deleted, (\d+) asked of the provider\)/g)].reduce((n, m) => n + Number(m[1]), 0);
    expect(byProxies[0]! + byProxies[1]! + byWorker).toBe(ROWS);
    for (const text of texts) {
      for (const name of ['modelsql_materialized_refreshes_total', 'modelsql_materialized_rows_total', 'modelsql_materialized_provider_rows_total', 'modelsql_materialized_refresh_errors_total', 'modelsql_materialized_lag_seconds']) {
        expect(text).toContain(`# TYPE ${name} `);
      }
    }
    const predicted = texts.map((t) => sample(t, 'modelsql_materialized_rows_total', `${database},schema="public",table="labels",kind="predicted"`));
    expect(predicted[0]! + predicted[1]! <= ROWS).toBe(true);
    const described = new Map((await db.sql('DESCRIBE MATERIALIZED TABLE labels')).rows.map((r) => [r[0], r[1]]));
    expect(described.get('provider_rows')).toBe(String(ROWS));
    expect(described.get('rows_predicted')).toBe(String(ROWS));
    expect(described.get('error_count')).toBe('0');
    // The refresher of the database without a catalog made none.
    const check = new pg.Client({ connectionString: bare });
    await check.connect();
    try {
      expect((await check.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'ml_catalog'`)).rows[0].n).toBe(0);
    } finally {
      await check.end();
    }
  }, 300_000);

  it('a failing refresh is counted in /metrics and in DESCRIBE, and the next one after the fault catches up', async () => {
    const upstream = new URL(url);
    const labels = `database="${upstream.pathname.slice(1)}",schema="public",table="labels"`;
    const errors = async () => (await Promise.all(proxies.map(scrape))).reduce((n, t) => n + sample(t, 'modelsql_materialized_refresh_errors_total', labels), 0);
    const before = await errors();
    server.setFault(() => ({ kind: 'status', status: 400, message: 'refused by the test' }));
    await db.sql(`INSERT INTO reviews VALUES (${ROWS + 1}, 'late review')`);
    await until(async () => (await errors()) > before);
    const described = new Map((await db.sql('DESCRIBE MATERIALIZED TABLE labels')).rows.map((r) => [r[0], r[1]]));
    expect(Number(described.get('error_count'))).toBeGreaterThan(0);
    expect(described.get('last_error')).toMatch(/refused by the test/);
    const texts = await Promise.all(proxies.map(scrape));
    expect(texts.reduce((n, t) => n + sample(t, 'modelsql_materialized_refreshes_total', `${labels},outcome="error"`), 0)).toBe(await errors());
    server.setFault(undefined);
    // A later change wakes the refreshers; they apply both rows.
    await db.sql(`INSERT INTO reviews VALUES (${ROWS + 2}, 'later review')`);
    await until(async () => Number((await db.sql('SELECT count(*) FROM labels')).rows[0]![0]) === ROWS + 2);
    expect((await db.sql(`SELECT label FROM labels WHERE id > ${ROWS} ORDER BY id`)).rows).toEqual([['label of late review'], ['label of later review']]);
  }, 300_000);
});
