/**
 * Limits of the proxy (docs/security.md, "Limits") with real clients: rows per ML call
 * (54000, positioned), model inferences at once per user and per proxy (53400), and the
 * client's `statement_timeout` over model work and its CancelRequest (57014, requests stop).
 */
import { connect } from 'node:net';
import pg from 'pg';
import type { LoopbackServer } from '../../providers/loopback-server.js';
import { startOpenAIServer } from '../../providers/openai-server.js';
import { writeModelFiles } from '../../support/model-files.js';
import { proxyFixture, type ProxyFixture } from './proxy-helpers.js';

const KEY = 'sk-proxy-limits';
let server: LoopbackServer;
let perClient: ProxyFixture;
let perProxy: ProxyFixture;

/** Creates the table `t` (60 rows), the ONNX model `lin` and the slow remote model `slow`. */
async function setUp(c: pg.Client): Promise<void> {
  const models = writeModelFiles();
  await c.query(`CREATE TABLE t AS SELECT i AS id, i * 0.5::float8 AS a, 10.0::float8 - i AS b, 'row ' || i AS txt FROM generate_series(1, 60) i`);
  await c.query(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.linear}')`);
  await c.query(
    `CREATE MODEL slow INPUT (txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/chat/completions', 'model' = 'm', 'api-key' = '${KEY}', 'max-concurrent-operations' = '1', 'cache' = 'false')`,
  );
}

const SLOW = 'SELECT count(*)::int AS n FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id <= 5), MODEL slow, DESCRIPTOR(txt))';
const FAST = 'SELECT count(*)::int AS n FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id <= 10), MODEL lin, DESCRIPTOR(a, b))';

async function whenInferring(): Promise<void> {
  while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 20));
}

/**
 * Holds every answer of the remote model until the returned function is called, so that an
 * inference stays running for as long as a test needs, however slow the machine.
 */
function holdAnswers(): () => void {
  let release!: () => void;
  const until = new Promise<void>((resolve) => (release = resolve));
  server.setFault(() => ({ kind: 'hold', until }));
  return release;
}

beforeAll(async () => {
  server = await startOpenAIServer({ apiKey: KEY, latencyMs: 200 });
  perClient = await proxyFixture({ limits: { maxRowsPerCall: 50, maxClientInferences: 1 } });
  perProxy = await proxyFixture({ limits: { maxInferences: 1 } });
  await setUp(await perClient.client());
  await setUp(await perProxy.client());
}, 60_000);

afterAll(async () => {
  await perClient?.close();
  await perProxy?.close();
  await server?.close();
});
beforeEach(() => server.reset());

test('rows per call: 54000 at the ML_PREDICT, the connection goes on', async () => {
  const c = await perClient.client();
  const sql = 'SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))';
  await expect(c.query(sql)).rejects.toMatchObject({ code: '54000', position: String(sql.indexOf('ML_PREDICT') + 1), message: expect.stringMatching(/more than 50 rows/) });
  expect((await c.query(FAST)).rows[0].n).toBe(10);
});

test('inferences per user: a second connection of the same user gets 53400 while the first infers', async () => {
  const [a, b] = await Promise.all([perClient.client(), perClient.client()]);
  const release = holdAnswers();
  const first = a.query(SLOW);
  await whenInferring();
  await expect(b.query(FAST)).rejects.toMatchObject({ code: '53400', message: expect.stringMatching(/for this client: 1 of at most 1/) });
  release();
  expect((await first).rows[0].n).toBe(5);
  expect((await b.query(FAST)).rows[0].n).toBe(10);
});

test('inferences per proxy: 53400 while another inference runs; plain SQL is never limited', async () => {
  const [a, b] = await Promise.all([perProxy.client(), perProxy.client()]);
  const release = holdAnswers();
  const first = a.query(SLOW);
  await whenInferring();
  await expect(b.query(FAST)).rejects.toMatchObject({ code: '53400', message: expect.stringMatching(/on this server: 1 of at most 1/) });
  expect((await b.query('SELECT count(*)::int AS n FROM t')).rows[0].n).toBe(60);
  release();
  expect((await first).rows[0].n).toBe(5);
  expect((await b.query(FAST)).rows[0].n).toBe(10);
});

test("the client's statement_timeout cancels model work with 57014; no request starts after it", async () => {
  const c = await perProxy.client();
  await c.query(`SET statement_timeout = '700ms'`);
  // Every answer is held: only the timeout can end the statement.
  const release = holdAnswers();
  await expect(c.query('SELECT * FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id <= 20), MODEL slow, DESCRIPTOR(txt))')).rejects.toMatchObject({
    code: '57014',
    message: 'canceling statement due to statement timeout',
  });
  const sent = server.requests.length;
  await new Promise((r) => setTimeout(r, 600));
  expect(server.requests.length).toBe(sent);
  release();
  server.setFault(undefined);
  await c.query('RESET statement_timeout');
  expect((await c.query(SLOW)).rows[0].n).toBe(5);
});

test("a client's CancelRequest stops remote model work: 57014, and no request starts after it", async () => {
  const c = await perProxy.client();
  const predicting = c.query('SELECT * FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id <= 30), MODEL slow, DESCRIPTOR(txt))');
  await whenInferring();
  // A CancelRequest on a new connection to the proxy, with the key the proxy gave
  // (https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CANCELREQUEST).
  const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
  const proxy = new URL(perProxy.proxyUrl);
  const request = Buffer.alloc(16);
  request.writeInt32BE(16, 0);
  request.writeInt32BE(80877102, 4);
  request.writeInt32BE(processID, 8);
  request.writeInt32BE(secretKey, 12);
  connect(Number(proxy.port), proxy.hostname).end(request);
  await expect(predicting).rejects.toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
  const sent = server.requests.length;
  expect(sent).toBeLessThan(30);
  await new Promise((r) => setTimeout(r, 600));
  expect(server.requests.length).toBe(sent);
  expect((await c.query(FAST)).rows[0].n).toBe(10);
});
