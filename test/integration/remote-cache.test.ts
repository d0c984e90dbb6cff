/**
 * The persistent prediction cache (SPEC §4) and the lineage log, on every adapter: a rerun
 * asks the provider nothing, a run cancelled half-way and rerun asks only for the rows not
 * answered yet, `'cache'='false'` per model or per call turns it off.
 */
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { startOpenAIServer } from '../providers/openai-server.js';

const KEY = 'sk-cache-test';

for (const adapter of ADAPTERS) {
  describe(`prediction cache on ${adapter.name}`, () => {
    let db: Session;
    let server: LoopbackServer;
    const model = (name: string, extra = ''): Promise<unknown> =>
      db.sql(
        `CREATE OR REPLACE MODEL ${name} INPUT (id BIGINT, txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt-cache', 'api-key' = '${KEY}', 'prompt' = 'row {id}: {txt}'${extra ? `, ${extra}` : ''})`,
      );

    beforeAll(async () => {
      server = await startOpenAIServer({ apiKey: KEY, latencyMs: 20 });
      db = await adapter.open();
      await db.sql(`CREATE TABLE t AS SELECT CAST(i AS BIGINT) AS id, 'text ' || CAST(i AS VARCHAR) AS txt FROM generate_series(0, 199) AS r(i)`);
    });
    afterAll(async () => {
      await db.close();
      await server.close();
    });
    beforeEach(() => server.reset());

    it('answers a repeated query from the cache, and records cache hits, errors and tokens', async () => {
      await model('cached');
      const query = `SELECT id, answer FROM ML_PREDICT(TABLE t, MODEL cached, DESCRIPTOR(id, txt)) ORDER BY id`;
      const first = await db.sql(query);
      expect(server.requests).toHaveLength(200);
      const second = await db.sql(query);
      expect(server.requests).toHaveLength(200);
      expect(second.rows).toEqual(first.rows);
      const runs = await db.sql(`SELECT row_count, error_count, cache_hits, tokens FROM ml_catalog.prediction_runs WHERE model_name = 'cached' ORDER BY started_at`);
      expect(runs.rows.map((r) => r.slice(0, 3))).toEqual([
        [200n, 0n, 0n],
        [200n, 0n, 200n],
      ]);
      expect(Number(runs.rows[0]![3])).toBeGreaterThan(0);
      expect(Number(runs.rows[1]![3])).toBe(0);
    });

    it('keys the cache by the options that change answers', async () => {
      await model('keyed', `'temperature' = '0.1'`);
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL keyed, DESCRIPTOR(id, txt))`);
      expect(server.requests).toHaveLength(200);
      // Timeouts and concurrency do not change answers...
      await model('keyed', `'temperature' = '0.1', 'timeout' = '20s', 'max-concurrent-operations' = '3'`);
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL keyed, DESCRIPTOR(id, txt))`);
      expect(server.requests).toHaveLength(200);
      // ...the temperature does.
      await model('keyed', `'temperature' = '0.9'`);
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL keyed, DESCRIPTOR(id, txt))`);
      expect(server.requests).toHaveLength(400);
    });

    it("turns off with 'cache' = 'false' per model or per call", async () => {
      await model('uncached', `'cache' = 'false'`);
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL uncached, DESCRIPTOR(id, txt))`);
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL uncached, DESCRIPTOR(id, txt))`);
      expect(server.requests).toHaveLength(400);
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL uncached, DESCRIPTOR(id, txt), MAP['cache', 'true'])`);
      server.reset();
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL uncached, DESCRIPTOR(id, txt), MAP['cache', 'true'])`);
      expect(server.requests).toHaveLength(0);
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL uncached, DESCRIPTOR(id, txt), MAP['cache', 'false'])`);
      expect(server.requests).toHaveLength(200);
    });

    it('after a run cancelled half-way, a rerun asks only for the rows not answered yet', async () => {
      // Another system prompt: the answers cached by the tests above do not apply.
      await model('resumable', `'max-concurrent-operations' = '4', 'system-prompt' = 'Resume me.'`);
      const query = `SELECT id, answer FROM ML_PREDICT(TABLE t, MODEL resumable, DESCRIPTOR(id, txt)) ORDER BY id`;
      const cached = async (): Promise<number> => Number((await db.sql('SELECT count(*) FROM ml_catalog.prediction_cache')).rows[0]![0]);
      const before = await cached();
      const running = db.sql(query);
      for (let waited = 0; server.answered.length < 60 && waited < 10_000; waited += 5) await new Promise((r) => setTimeout(r, 5));
      db.cancel();
      await expectSqlError(running, '57014');
      // Requests already on the wire at the cancel may reach the server a moment later, on
      // a loaded machine after the reset below: wait until the server has seen them all.
      for (let seen = -1; seen !== server.requests.length; ) {
        seen = server.requests.length;
        await new Promise((r) => setTimeout(r, 200));
      }
      // Every answer received before the cancel was kept (the server may have sent a few
      // more that the cancel cut off on the way).
      const kept = (await cached()) - before;
      expect(kept).toBeGreaterThanOrEqual(55);
      expect(kept).toBeLessThanOrEqual(server.answered.length);
      expect(kept).toBeLessThan(200);
      server.reset();
      const r = await db.sql(query);
      expect(r.rows).toHaveLength(200);
      r.rows.forEach(([id, answer]) => expect(answer).toBe(`echo: row ${id}: text ${id}`));
      const askedAgain = server.requests.flatMap((q) => q.prompts);
      expect(askedAgain).toHaveLength(200 - kept);
      expect(new Set(askedAgain).size).toBe(askedAgain.length);
      expect(await cached()).toBe(before + 200);
    });

    it('never caches failed rows', async () => {
      server.setFault((req, attempt) => (req.prompts[0] === 'row 3: text 3' && attempt === 0 ? { kind: 'status', status: 400, message: 'no' } : undefined));
      await model('partial', `'error-handling-strategy' = 'IGNORE', 'system-prompt' = 'Partial.'`);
      const first = await db.sql(`SELECT answer FROM ML_PREDICT(TABLE t, MODEL partial, DESCRIPTOR(id, txt)) WHERE id = 3`);
      expect(first.rows).toEqual([[null]]);
      server.requests.length = 0;
      const second = await db.sql(`SELECT answer FROM ML_PREDICT(TABLE t, MODEL partial, DESCRIPTOR(id, txt)) WHERE id = 3`);
      expect(second.rows).toEqual([['echo: row 3: text 3']]);
      expect(server.requests).toHaveLength(1);
    });
  });
}
