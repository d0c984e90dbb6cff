/**
 * The proxy reports itself (docs/proxy.md, "Logs and metrics"): logfmt lines with levels
 * (connections opened and closed, model runs; never a parameter value or a query's text),
 * `/healthz` (upstream reachable) and Prometheus `/metrics` scraped over HTTP while real
 * clients use the proxy.
 */
import pg from 'pg';
import type { LoopbackServer } from '../../providers/loopback-server.js';
import { startOpenAIServer } from '../../providers/openai-server.js';
import { writeModelFiles } from '../../support/model-files.js';
import { startProxy } from '../../../adapters/postgres/proxy/index.js';
import { proxyFixture, type ProxyFixture } from './proxy-helpers.js';

const KEY = 'sk-observability-test';
const PARAM = 'p4ram-value-never-logged';
let server: LoopbackServer;
let fx: ProxyFixture;
const lines: string[] = [];

/** Parses one logfmt line into its fields. */
function fields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)) out[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
  return out;
}

/** The value of a metric line `name{labels} value` in the scraped text (0 when absent). */
function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function get(path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${fx.proxy.metrics!.port}${path}`);
  return { status: response.status, body: await response.text() };
}

beforeAll(async () => {
  server = await startOpenAIServer({ apiKey: KEY });
  process.env['OBSERVABILITY_TEST_KEY'] = KEY;
  fx = await proxyFixture({ logLevel: 'info', logSink: (line) => lines.push(line), metrics: 0 });
  const c = await fx.client();
  const models = writeModelFiles();
  await c.query(`CREATE TABLE t AS SELECT i AS id, i * 0.5::float8 AS a, 10.0::float8 - i AS b, 'row ' || i AS txt FROM generate_series(1, 12) i`);
  await c.query(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.linear}')`);
  await c.query(
    `CREATE MODEL chat INPUT (txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/chat/completions', 'model' = 'm', 'api-key' = '\${env:OBSERVABILITY_TEST_KEY}', 'cache' = 'false')`,
  );
}, 60_000);
afterAll(async () => {
  await fx?.close();
  await server?.close();
});

test('metrics count clients, statements, errors, bytes, model runs and rows, and provider latency', async () => {
  const before = (await get('/metrics')).body;
  const c = await fx.client();
  await c.query('SELECT 1');
  const { rows } = await c.query('SELECT count(*)::int AS n FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE txt <> $1), MODEL lin, DESCRIPTOR(a, b))', [PARAM]);
  expect(rows[0].n).toBe(12);
  await c.query('SELECT count(*) FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id <= 3), MODEL chat, DESCRIPTOR(txt))');
  await expect(c.query('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);
  await expect(c.query('SELECT * FROM ML_PREDICT(TABLE t, MODEL nope, DESCRIPTOR(a))')).rejects.toThrow(/nope/);

  const scraped = await get('/metrics');
  expect(scraped.status).toBe(200);
  const after = scraped.body;
  const grew = (name: string, labels = ''): number => metric(after, name, labels) - metric(before, name, labels);
  expect(metric(after, 'modelsql_proxy_clients')).toBeGreaterThanOrEqual(1);
  expect(grew('modelsql_proxy_connections_total')).toBe(1);
  expect(grew('modelsql_proxy_statements_total', 'kind="host"')).toBeGreaterThanOrEqual(1);
  expect(grew('modelsql_proxy_statements_total', 'kind="model"')).toBe(3);
  expect(grew('modelsql_proxy_errors_total')).toBe(2);
  expect(grew('modelsql_proxy_model_runs_total', 'provider="onnx"')).toBe(1);
  expect(grew('modelsql_proxy_model_rows_total', 'provider="onnx"')).toBe(12);
  expect(grew('modelsql_proxy_model_rows_total', 'provider="openai"')).toBe(3);
  expect(grew('modelsql_proxy_provider_request_duration_seconds_count', 'provider="openai",outcome="ok"')).toBe(3);
  expect(grew('modelsql_proxy_bytes_total', 'direction="in"')).toBeGreaterThan(0);
  expect(grew('modelsql_proxy_bytes_total', 'direction="out"')).toBeGreaterThan(0);
  expect(after).toMatch(/^# TYPE modelsql_proxy_provider_request_duration_seconds histogram$/m);
});

test('logfmt lines: connection opened and closed, each model run; no parameter value, no query text, no key', async () => {
  const c = new pg.Client({ connectionString: fx.proxyUrl });
  await c.connect();
  await c.query('SELECT count(*) FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE txt <> $1), MODEL lin, DESCRIPTOR(a, b))', [PARAM]);
  const closed = new Promise((resolve) => c.once('end', resolve));
  await c.end();
  await closed;
  while (!lines.some((l) => /msg="connection closed"/.test(l))) await new Promise((r) => setTimeout(r, 20));
  const parsed = lines.map(fields);
  for (const f of parsed) {
    expect(f['time']).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(['info', 'warn', 'error']).toContain(f['level']);
  }
  const user = new URL(fx.proxyUrl).username;
  expect(parsed).toContainEqual(expect.objectContaining({ level: 'info', msg: 'connection opened', user, client: expect.stringMatching(/^127\.0\.0\.1:\d+$/) }));
  expect(parsed).toContainEqual(expect.objectContaining({ msg: 'model run', user, model: 'public.lin$1', provider: 'onnx', rows: '12', errors: '0', duration_ms: expect.stringMatching(/^\d+$/) }));
  expect(parsed).toContainEqual(expect.objectContaining({ msg: 'connection closed', user, statements: '1', errors: '0', bytes_in: expect.stringMatching(/^[1-9]\d*$/) }));
  const all = lines.join('');
  expect(all).not.toContain(PARAM);
  expect(all).not.toContain('ML_PREDICT');
  expect(all).not.toContain(KEY);
});

test('the connection log counts every byte relayed each way, plain traffic included', async () => {
  const c = new pg.Client({ connectionString: fx.proxyUrl, application_name: 'bytes-counted' });
  await c.connect();
  for (let i = 0; i < 20; i++) await c.query(`SELECT ${i} AS n, repeat('x', ${i * 100}) AS pad`);
  const stream = (c as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream;
  const port = String(stream.localPort);
  const closed = new Promise((resolve) => c.once('end', resolve));
  await c.end();
  await closed;
  const mine = (): Record<string, string> | undefined => lines.map(fields).find((f) => f['msg'] === 'connection closed' && f['client']?.endsWith(`:${port}`));
  for (let i = 0; i < 500 && !mine(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(mine()).toEqual(expect.objectContaining({ bytes_in: String(stream.bytesWritten), bytes_out: String(stream.bytesRead) }));
});

test('/healthz is 200 while the upstream answers and 503 naming the problem when it does not; other paths 404', async () => {
  expect(await get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
  expect((await get('/nope')).status).toBe(404);
  const down = await startProxy({ upstream: 'postgres://127.0.0.1:1/x?sslmode=disable', listen: 0, metrics: '127.0.0.1:0', log: () => undefined });
  try {
    const response = await fetch(`http://127.0.0.1:${down.metrics!.port}/healthz`);
    expect(response.status).toBe(503);
    expect(await response.text()).toMatch(/could not connect to upstream server at 127\.0\.0\.1:1: ECONNREFUSED/);
  } finally {
    await down.close();
  }
});
