/**
 * `'provider' = 'triton'` end to end on every adapter, against a loopback server speaking
 * the Open Inference Protocol v2 (test/providers/triton-server.ts): rows batched into
 * tensors, every option, the metadata check at CREATE, faults (5xx, timeouts, malformed
 * tensors, shape mismatch) under the executor, and the circuit breaker.
 */
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { startTritonServer, type TritonServer } from '../providers/triton-server.js';

const FAST = `'retry-initial-backoff' = '2ms', 'retry-max-backoff' = '10ms'`;
const linear = (x0: number, x1: number) => 2 * x0 + 3 * x1 + 1;

for (const adapter of ADAPTERS) {
  describe(`triton models on ${adapter.name}`, () => {
    let db: Session;
    let server: TritonServer;
    const create = (name: string, extra = '', io = 'INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT)', model = 'linear') =>
      db.sql(`CREATE OR REPLACE MODEL ${name} ${io} WITH ('provider' = 'triton', 'endpoint' = '${server.url}/v2/models', 'model-name' = '${model}', 'cache' = 'false'${extra ? `, ${extra}` : ''})`);
    const ys = async (model: string, table = 'pts') => (await db.sql(`SELECT id, y FROM ML_PREDICT(TABLE ${table}, MODEL ${model}, DESCRIPTOR(x)) ORDER BY id`)).rows;

    beforeAll(async () => {
      server = await startTritonServer();
      db = await adapter.open();
      await db.sql(`CREATE TABLE pts AS SELECT CAST(i AS BIGINT) AS id, CAST(ARRAY[i * 0.5, 10 - i] AS REAL[]) AS x FROM generate_series(0, 99) AS r(i)`);
      await db.sql(`CREATE TABLE words AS SELECT CAST(i AS BIGINT) AS id, 'word' || CAST(i AS VARCHAR) AS txt, CAST(i % 3 + 1 AS BIGINT) AS k FROM generate_series(0, 9) AS r(i)`);
    });
    afterAll(async () => {
      await db.close();
      await server.close();
    });
    beforeEach(() => server.reset());

    it('batches rows into tensors, batch-size rows per request, in order', async () => {
      await create('lin', `'batch-size' = '16'`);
      const rows = await ys('lin');
      expect(rows).toHaveLength(100);
      rows.forEach(([id, y]) => expect(y as number).toBeCloseTo(linear(Number(id) * 0.5, 10 - Number(id)), 4));
      expect(server.inferences.map((r) => r.rows).sort((a, b) => b - a)).toEqual([16, 16, 16, 16, 16, 16, 4]);
      const first = server.inferences[0]!.body;
      expect(first.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [16, 2], data: expect.any(Array) }]);
      expect(first.outputs).toEqual([{ name: 'y' }]);
      expect(server.paths).toContain('GET /v2/models/linear');
    });

    it('maps several INPUT and OUTPUT columns to tensors by name (any case), ARRAY outputs included', async () => {
      await create('txt', `'batch-size' = '4'`, 'INPUT (text STRING, scale BIGINT) OUTPUT (label STRING, score DOUBLE, vec ARRAY<FLOAT>)', 'text');
      const r = await db.sql(`SELECT id, label, score, vec FROM ML_PREDICT(TABLE words, MODEL txt, DESCRIPTOR(txt, k)) ORDER BY id`);
      expect(r.rows).toHaveLength(10);
      expect(r.rows[5]).toEqual([5n, 'WORD5', 5 * 3, [1, 5, 0.5]]);
      expect(server.inferences[0]!.body.inputs.map((t) => [t.name, t.datatype, t.shape])).toEqual([
        ['TEXT', 'BYTES', [4, 1]],
        ['SCALE', 'INT64', [4, 1]],
      ]);
    });

    it('checks the server metadata at CREATE: mismatched tensors and unknown models are errors, the catalog unchanged', async () => {
      const before = (await db.sql('SHOW MODELS')).rows.length;
      await expectSqlError(create('bad1', '', 'INPUT (x STRING) OUTPUT (y FLOAT)'), '42804', /INPUT column x STRING cannot travel as x FP32\[-1,2\]; the model has inputs \(x FP32\[-1,2\]\), outputs \(y FP32\[-1,1\]\)/);
      await expectSqlError(create('bad2', '', 'INPUT (x ARRAY<FLOAT>, z INT) OUTPUT (y FLOAT)'), '42804', /2 INPUT columns .* for 1 input tensor/);
      await expectSqlError(create('bad3', '', 'INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT, extra FLOAT)'), '42804', /OUTPUT column extra FLOAT matches no output tensor/);
      await expectSqlError(create('bad4', '', 'INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT)', 'nosuch'), '42704', /has no model 'nosuch'.*Request for unknown model/);
      await expectSqlError(create('bad5', `'model-version' = '7'`), '42704', /version 7/);
      await expectSqlError(create('bad6', '', 'INPUT (x MAP<STRING, INT>) OUTPUT (y FLOAT)'), '22023', /no tensor type/);
      await expectSqlError(create('bad7', `'priority' = '300'`), '22023', /'priority' must be an integer from 0 to 255/);
      await expectSqlError(create('bad8', `'compression' = 'zstd'`), '22023', /only 'gzip'/);
      await expectSqlError(create('bad9', `'custom-headers' = 'no-colon'`), '22023', /custom-headers/);
      await expectSqlError(create('bad10', `'default-value' = 'abc'`), '22023', /'default-value' 'abc' does not fit OUTPUT column y FLOAT/);
      await expectSqlError(create('bad11', `'circuit-breaker-failure-threshold' = '1.5'`), '22023', /circuit-breaker-failure-threshold/);
      expect((await db.sql('SHOW MODELS')).rows.length).toBe(before);
      expect(server.inferences).toHaveLength(0);
    });

    it('creates a model whose server does not answer, with a NOTICE; the tensors are checked at the first call', async () => {
      const created = await db.sql(`CREATE OR REPLACE MODEL away INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT) WITH ('provider' = 'triton', 'endpoint' = 'http://127.0.0.1:9/v2/models', 'model-name' = 'linear')`);
      expect(created.notices).toEqual([expect.stringMatching(/metadata could not be read from http:\/\/127\.0\.0\.1:9\/v2\/models\/linear .*checked at the first call/)]);
      // Tensors that do not fit OUTPUT fail the call at once, without retries.
      await db.sql(`CREATE OR REPLACE MODEL mismatch INPUT (x ARRAY<DOUBLE>) OUTPUT (y FLOAT) WITH ('provider' = 'triton', 'endpoint' = '${server.url}', 'model-name' = 'linear', 'max-retries' = '3', 'batch-size' = '100', ${FAST})`);
      server.setFault(() => ({ kind: 'wrong-batch' }));
      await expectSqlError(ys('mismatch'), '38000', /output tensor y has shape \[\d+,1\]: \d+ rows for the \d+ rows sent/);
      expect(server.inferences).toHaveLength(1);
    });

    it('takes a model version, an auth token, custom headers (JSON and Flink\'s name:value form), gzip, priority and sequence parameters', async () => {
      const secure = await startTritonServer({ authorization: 'Bearer tok-123456' });
      try {
        await db.sql(
          `CREATE OR REPLACE MODEL sec INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT) WITH ('provider' = 'triton', 'endpoint' = '${secure.url}', 'model-name' = 'linear', 'model-version' = '2', 'auth-token' = 'tok-123456', 'custom-headers' = '{"X-Client-ID": "flink-job-123"}', 'compression' = 'gzip', 'priority' = '200', 'sequence-id' = 'conv-1', 'sequence-start' = 'true', 'timeout' = '10000', 'batch-size' = '50', 'cache' = 'false')`,
        );
        const shown = String((await db.sql('SHOW CREATE MODEL sec')).rows[0]![0]);
        expect(shown).toContain(`'auth-token' = '******'`);
        expect(shown).not.toContain('tok-123456');
        const rows = (await db.sql(`SELECT id, y FROM ML_PREDICT(TABLE pts, MODEL sec, DESCRIPTOR(x)) ORDER BY id`)).rows;
        expect(rows[7]![1] as number).toBeCloseTo(linear(3.5, 3), 4);
        const seen = secure.inferences[0]!;
        expect(seen.path).toBe('/v2/models/linear/versions/2/infer');
        expect(seen.headers['x-client-id']).toBe('flink-job-123');
        expect(seen.headers['content-encoding']).toBe('gzip');
        expect(seen.body.parameters).toEqual({ priority: 200, sequence_id: 'conv-1', sequence_start: true, sequence_end: false });
        expect(secure.paths).toContain('GET /v2/models/linear/versions/2');
        await db.sql(`ALTER MODEL sec SET ('custom-headers' = 'X-Client-ID:other,X-Another:v2', 'auth-token' = 'Bearer tok-123456', 'model-version' = 'latest')`);
        secure.reset();
        await db.sql(`SELECT count(*) FROM ML_PREDICT(TABLE pts, MODEL sec, DESCRIPTOR(x))`);
        expect(secure.inferences[0]!.path).toBe('/v2/models/linear/infer');
        expect([secure.inferences[0]!.headers['x-client-id'], secure.inferences[0]!.headers['x-another']]).toEqual(['other', 'v2']);
        await db.sql(`ALTER MODEL sec SET ('auth-token' = 'wrong-token')`);
        await expectSqlError(db.sql(`SELECT count(*) FROM ML_PREDICT(TABLE pts, MODEL sec, DESCRIPTOR(x))`), '38000', /401 unauthorized/);
      } finally {
        await secure.close();
      }
    });

    it('flatten-batch-dim: a model without a batch dimension gets one row per request', async () => {
      await db.sql(`CREATE TABLE IF NOT EXISTS vecs AS SELECT CAST(i AS BIGINT) AS id, CAST(ARRAY[i, 1, 2, 3] AS DOUBLE PRECISION[]) AS v FROM generate_series(1, 5) AS r(i)`);
      await create('summer', `'flatten-batch-dim' = 'true', 'batch-size' = '8'`, 'INPUT (v ARRAY<DOUBLE>) OUTPUT (total DOUBLE)', 'sum');
      const r = await db.sql(`SELECT id, total FROM ML_PREDICT(TABLE vecs, MODEL summer, DESCRIPTOR(v)) ORDER BY id`);
      expect(r.rows).toEqual([1, 2, 3, 4, 5].map((i) => [BigInt(i), i + 6]));
      expect(server.inferences.map((x) => x.body.inputs[0]!.shape)).toEqual(Array(5).fill([4]));
    });

    it('retries 5xx, resets and malformed tensors with max-retries; a 4xx is not retried', async () => {
      await create('flaky', `'batch-size' = '10', 'max-retries' = '2', ${FAST}`);
      const faults = [{ kind: 'status', status: 503 }, { kind: 'reset' }, { kind: 'malformed' }, { kind: 'short-data' }] as const;
      server.setFault((_r, i) => (i < faults.length ? faults[i] : undefined));
      const rows = await ys('flaky');
      expect(rows).toHaveLength(100);
      rows.forEach(([id, y]) => expect(y as number).toBeCloseTo(linear(Number(id) * 0.5, 10 - Number(id)), 4));
      expect(server.served()).toBe(10 + faults.length);
      server.reset();
      server.setFault(() => ({ kind: 'status', status: 400, message: "inference input 'x' is bad" }));
      await expectSqlError(ys('flaky'), '38000', /triton model request failed: 400 inference input 'x' is bad/);
      // The packs already in flight answer 400 too; none is sent twice.
      expect(server.inferences.length).toBeLessThanOrEqual(10);
      expect(new Set(server.inferences.map((x) => JSON.stringify(x.body.inputs[0]!.data))).size).toBe(server.inferences.length);
    });

    it('fails the query on a 5xx without retries (Flink: max-retries 0); times out slow requests', async () => {
      await create('strict', `'batch-size' = '100'`);
      server.setFault(() => ({ kind: 'status', status: 500, message: 'model crashed' }));
      await expectSqlError(ys('strict'), '38000', /500 model crashed/);
      expect(server.inferences).toHaveLength(1);
      server.reset();
      await create('slowpoke', `'batch-size' = '100', 'timeout' = '150ms'`);
      server.setFault(() => ({ kind: 'slow', ms: 3000 }));
      await expectSqlError(ys('slowpoke'), '38000', /timed out after 150 ms/);
    });

    it('answers failed rows with default-value, the error in the error columns; NULL inputs are not sent', async () => {
      await create('fallback', `'batch-size' = '25', 'default-value' = '-1'`, 'INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT, `error-string` STRING, `http-status-code` INT)');
      server.setFault((_r, i) => (i === 1 ? { kind: 'status', status: 500, message: 'oom' } : undefined));
      const r = await db.sql(`SELECT id, y, "error-string", "http-status-code" FROM ML_PREDICT(TABLE (SELECT id, CASE WHEN id = 99 THEN NULL ELSE x END AS x FROM pts), MODEL fallback, DESCRIPTOR(x)) ORDER BY id`);
      const failed = r.rows.filter((row) => row[2] !== null);
      expect(failed).toHaveLength(25);
      for (const row of failed) expect([row[1], row[2], row[3]]).toEqual([-1, '500 oom', 500]);
      expect(r.rows[99]).toEqual([99n, null, null, null]);
      expect(r.rows.filter((row) => row[2] === null && row[1] !== null)).toHaveLength(74);
      expect(server.inferences.reduce((n, x) => n + x.rows, 0)).toBe(99);
    });

    it('opens the circuit after the failure threshold: later rows fail fast without reaching the server', async () => {
      await create('breaker', `'batch-size' = '1', 'max-concurrent-operations' = '1', 'circuit-breaker-enabled' = 'true', 'circuit-breaker-failure-threshold' = '0.5', 'circuit-breaker-timeout' = '1h', 'default-value' = '0'`, 'INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT, `error-string` STRING)');
      server.setFault(() => ({ kind: 'status', status: 503, message: 'unavailable' }));
      const r = await db.sql(`SELECT id, y, "error-string" FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id < 30), MODEL breaker, DESCRIPTOR(x)) ORDER BY id`);
      expect(server.inferences).toHaveLength(10);
      expect(r.rows.map((row) => row[1])).toEqual(Array(30).fill(0));
      expect(r.rows.slice(0, 10).every((row) => row[2] === '503 unavailable')).toBe(true);
      expect(r.rows.slice(10).every((row) => /circuit breaker is OPEN/.test(String(row[2])))).toBe(true);
    });

    it('checks /v2/health/live with health-check-enabled', async () => {
      await create('healthy', `'health-check-enabled' = 'true', 'health-check-interval' = '1h', 'batch-size' = '100'`);
      server.setLive(false);
      await expectSqlError(ys('healthy'), '38000', /not live/);
      expect(server.inferences).toHaveLength(0);
      server.setLive(true);
      expect(await ys('healthy')).toHaveLength(100);
      expect(server.paths.filter((p) => p === 'GET /v2/health/live')).toHaveLength(2);
    });

    it('answers a rerun from the prediction cache', async () => {
      await db.sql(`CREATE OR REPLACE MODEL cached INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT) WITH ('provider' = 'triton', 'endpoint' = '${server.url}/v2/models', 'model-name' = 'linear', 'batch-size' = '50')`);
      const first = await ys('cached');
      const sent = server.served();
      expect(await ys('cached')).toEqual(first);
      expect(server.served()).toBe(sent);
    });
  });
}
