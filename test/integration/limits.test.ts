/**
 * Limits on model work through the library, on every adapter (docs/security.md, "Limits"):
 * `maxRowsPerCall` (54000, before the model sees a row when the input is materialized), a
 * shared `InferenceGate` (53400 while another session's inference runs), and, on Postgres,
 * `statement_timeout` over model work (57014, requests stop).
 */
import { InferenceGate } from '../../core/runtime/inference-limits.js';
import type { Session } from '../../core/session/session.js';
import { startOpenAIServer } from '../providers/openai-server.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { ADAPTERS, type TestAdapter } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { writeModelFiles, type ModelFiles } from '../support/model-files.js';

const KEY = 'sk-limits-test';
let server: LoopbackServer;
let models: ModelFiles;

beforeAll(async () => {
  server = await startOpenAIServer({ apiKey: KEY, latencyMs: 200 });
  models = writeModelFiles();
});
afterAll(async () => server?.close());
beforeEach(() => server.reset());

/** A session with a 60-row table `t`, an ONNX model `lin` and a slow remote model `slow` (one request at a time). */
async function prepared(adapter: TestAdapter, options: Parameters<TestAdapter['open']>[0]): Promise<Session> {
  const db = await adapter.open(options);
  await db.sql(`CREATE TABLE t AS SELECT i AS id, i * 0.5 AS a, 10.0 - i AS b, 'row ' || CAST(i AS VARCHAR) AS txt FROM generate_series(1, 60) AS s(i)`);
  await db.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.linear}')`);
  await db.sql(
    `CREATE MODEL slow INPUT (txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/chat/completions', 'model' = 'm', 'api-key' = '${KEY}', 'max-concurrent-operations' = '1', 'cache' = 'false')`,
  );
  return db;
}

for (const adapter of ADAPTERS) {
  describe(`limits on ${adapter.name}`, () => {
    test('maxRowsPerCall: over the limit fails with 54000 at the call, leaving nothing behind; at the limit it runs', async () => {
      const db = await prepared(adapter, { maxRowsPerCall: 50 });
      try {
        const sql = 'SELECT count(*) FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))';
        const error = await expectSqlError(db.sql(sql), '54000', /more than 50 rows/);
        expect(error.position?.offset).toBe(sql.indexOf('ML_PREDICT'));
        expect(await adapter.countTempTables(db)).toBe(0n);
        expect((await db.sql('SELECT count(*) FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id <= 50), MODEL lin, DESCRIPTOR(a, b))')).rows[0]![0]).toBe(50n);
        // A remote model's input is materialized first: refused before any request.
        await expectSqlError(db.sql("SELECT * FROM ML_PREDICT(TABLE t, MODEL slow, DESCRIPTOR(txt), MAP['cache', 'true'])"), '54000');
        expect(server.requests).toHaveLength(0);
      } finally {
        await db.close();
      }
    });

    test('a shared InferenceGate: a second session is refused with 53400 while the first one infers, then admitted', async () => {
      const gate = new InferenceGate({ maxInferences: 1 });
      const [a, b] = await Promise.all([prepared(adapter, { inferenceGate: gate }), prepared(adapter, { inferenceGate: gate })]);
      // The first session's first request is held until the second has been refused, so the
      // first is still inferring however slowly the machine runs the second.
      let release!: () => void;
      const refused = new Promise<void>((resolve) => (release = resolve));
      server.setFault((_request, attempt) => (attempt === 0 ? { kind: 'hold', until: refused } : undefined));
      try {
        const first = a.sql('SELECT count(*) FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id <= 5), MODEL slow, DESCRIPTOR(txt))');
        while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 20));
        try {
          await expectSqlError(b.sql('SELECT count(*) FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))'), '53400', /too many model inferences running on this server: 1 of at most 1/);
        } finally {
          release();
        }
        expect((await first).rows[0]![0]).toBe(5n);
        expect(gate.active).toBe(0);
        expect((await b.sql('SELECT count(*) FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))')).rows[0]![0]).toBe(60n);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    if (adapter.name === 'postgres') {
      test('maxRowsPerCall bounds what the one-pass stage reads, not only what the model sees: the server makes at most one row more than the limit', async () => {
        const db = await prepared(adapter, { maxRowsPerCall: 50 });
        try {
          await db.sql('CREATE SEQUENCE made');
          // 200,000 rows asked for; each row the server makes draws a number.
          const input = "SELECT i * 0.5 AS a, CAST(nextval('made') AS double precision) AS b FROM generate_series(1, 200000) AS s(i)";
          await expectSqlError(db.sql(`SELECT count(*) FROM ML_PREDICT(TABLE (${input}), MODEL lin, DESCRIPTOR(a, b))`), '54000', /more than 50 rows/);
          expect(Number((await db.sql('SELECT last_value FROM made')).rows[0]![0])).toBe(51);
          expect(await adapter.countTempTables(db)).toBe(0n);
        } finally {
          await db.close();
        }
      });

      test('statement_timeout bounds model work: 57014, and no request starts after it', async () => {
        const db = await prepared(adapter, {});
        try {
          await db.sql(`SET statement_timeout = '700ms'`);
          // 20 rows one at a time at 200 ms each would take 4 s: the timeout stops it before the
          // last row is requested (counted in requests, not against a clock).
          await expectSqlError(db.sql('SELECT * FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id <= 20), MODEL slow, DESCRIPTOR(txt))'), '57014', /statement timeout/);
          const sent = server.requests.length;
          expect(sent).toBeLessThan(20);
          await new Promise((r) => setTimeout(r, 600));
          expect(server.requests.length).toBe(sent);
          expect(await adapter.countTempTables(db)).toBe(0n);
          await db.sql('SET statement_timeout = 0');
          expect((await db.sql('SELECT count(*) FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id <= 3), MODEL slow, DESCRIPTOR(txt))')).rows[0]![0]).toBe(3n);
        } finally {
          await db.close();
        }
      });
    }
  });
}

describe('InferenceGate', () => {
  test('per client and in total; leaving twice counts once', () => {
    const gate = new InferenceGate({ maxInferences: 3, maxClientInferences: 2 });
    const a1 = gate.enter('alice');
    gate.enter('alice');
    expect(() => gate.enter('alice')).toThrow(/for this client: 2 of at most 2/);
    const b1 = gate.enter('bob');
    expect(() => gate.enter('carol')).toThrow(/on this server: 3 of at most 3/);
    a1();
    a1();
    expect(gate.active).toBe(2);
    gate.enter('carol');
    b1();
    expect(() => new InferenceGate({ maxInferences: 0 })).toThrow(RangeError);
  });
});

test('startProxy refuses a limit that is not a positive integer', async () => {
  const { startProxy } = await import('../../adapters/postgres/proxy/index.js');
  await expect(startProxy({ upstream: 'postgres://127.0.0.1:1/x', listen: 0, limits: { maxRowsPerCall: 0 } })).rejects.toThrow(/maxRowsPerCall must be a positive integer/);
  await expect(startProxy({ upstream: 'postgres://127.0.0.1:1/x', listen: 0, limits: { maxInferences: 2.5 } })).rejects.toThrow(RangeError);
});
