/**
 * Remote `openai` models end to end on every adapter, against a loopback server that speaks
 * the OpenAI API, driven by the unmodified `openai` SDK: prompts, embeddings, structured
 * output, packing, option validation, faults under each error-handling strategy,
 * cancellation, and lineage.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Session } from '../../core/session/session.js';
import { ROOT } from '../support/run-cli.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { requestsPerRow, type Fault, type LoopbackServer } from '../providers/loopback-server.js';
import { fakeEmbedding, startOpenAIServer } from '../providers/openai-server.js';

const KEY = 'sk-loopback-0123456789';
const FAST = `'retry-initial-delay' = '2ms', 'retry-max-delay' = '20ms'`;

/** Row id of a prompt made by the `'row {id}: {txt}'` template. */
const idOf = (prompt: string): number => Number(/row (\d+):/.exec(prompt)?.[1] ?? -1);

/** 20% of rows fail on their first attempt, with every kind of transient fault in turn. */
const TRANSIENT: readonly Fault[] = [
  { kind: 'status', status: 429, headers: { 'retry-after-ms': '5' } },
  { kind: 'status', status: 500 },
  { kind: 'status', status: 503 },
  { kind: 'reset' },
  { kind: 'malformed' },
  { kind: 'slow', ms: 5000 },
];

for (const adapter of ADAPTERS) {
  describe(`remote openai models on ${adapter.name}`, () => {
    let db: Session;
    let server: LoopbackServer;
    const chat = (name: string, extra = '', output = 'answer STRING', input = 'id BIGINT, txt STRING'): Promise<unknown> =>
      db.sql(
        `CREATE OR REPLACE MODEL ${name} INPUT (${input}) OUTPUT (${output}) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/chat/completions', 'model' = 'gpt-loop', 'api-key' = '${KEY}', 'prompt' = 'row {id}: {txt}', ${FAST}${extra ? `, ${extra}` : ''})`,
      );

    beforeAll(async () => {
      server = await startOpenAIServer({ apiKey: KEY });
      db = await adapter.open();
      await db.sql(`CREATE TABLE reviews AS SELECT CAST(i AS BIGINT) AS id, 'lamp ' || CAST(i % 7 AS VARCHAR) AS product, 'text number ' || CAST(i AS VARCHAR) AS txt FROM generate_series(0, 999) AS r(i)`);
      await db.sql(`CREATE TABLE small AS SELECT * FROM reviews WHERE id < 20`);
    });
    afterAll(async () => {
      await db.close();
      await server.close();
    });
    beforeEach(() => server.reset());

    it('answers chat completions from a prompt template over several columns, with the system prompt', async () => {
      await db.sql(
        `CREATE MODEL review INPUT (product STRING, txt STRING) OUTPUT (summary STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/chat/completions', 'model' = 'gpt-loop', 'api-key' = '${KEY}', 'prompt' = 'Review of {product}: {txt}', 'system-prompt' = 'Be brief.', 'temperature' = '0.2', 'cache' = 'false')`,
      );
      const r = await db.sql(`SELECT id, summary FROM ML_PREDICT(TABLE small, MODEL review, DESCRIPTOR(product, txt)) ORDER BY id`);
      expect(r.rows).toHaveLength(20);
      expect(r.rows[3]).toEqual([3n, 'echo: Review of lamp 3: text number 3']);
      const body = server.requests[0]!.body as { model: string; temperature: number; messages: { role: string; content: string }[] };
      expect(body.model).toBe('gpt-loop');
      expect(body.temperature).toBe(0.2);
      expect(body.messages[0]).toEqual({ role: 'system', content: 'Be brief.' });
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    });

    it('uses Flink\'s default system prompt', async () => {
      await chat('plain', `'cache' = 'false'`);
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE small, MODEL plain, DESCRIPTOR(id, txt))`);
      const body = server.requests[0]!.body as { messages: { role: string; content: string }[] };
      expect(body.messages[0]).toEqual({ role: 'system', content: 'You are a helpful assistant.' });
    });

    it('embeds text into ARRAY<FLOAT>, several rows per request', async () => {
      await db.sql(
        `CREATE MODEL emb INPUT (txt STRING) OUTPUT (v ARRAY<FLOAT>) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/embeddings', 'model' = 'text-embedding-loop', 'api-key' = '${KEY}', 'dimension' = '3', 'batch-size' = '8', 'cache' = 'false')`,
      );
      const r = await db.sql(`SELECT id, txt, v FROM ML_PREDICT(TABLE small, MODEL emb, DESCRIPTOR(txt)) ORDER BY id`);
      expect(r.rows).toHaveLength(20);
      for (const [, txt, v] of r.rows) {
        fakeEmbedding(String(txt), 3).forEach((x, i) => expect((v as number[])[i]).toBeCloseTo(x, 5));
      }
      expect(server.requests).toHaveLength(3);
      expect((server.requests[0]!.body as { dimensions: number }).dimensions).toBe(3);
    });

    it('parses structured output into several typed columns, packed 8 rows per request', async () => {
      await chat('extract', `'batch-size' = '8', 'cache' = 'false'`, 'label STRING, score INT, ok BOOLEAN');
      const r = await db.sql(`SELECT id, label, score, ok FROM ML_PREDICT(TABLE small, MODEL extract, DESCRIPTOR(id, txt)) ORDER BY id`);
      expect(r.rows).toHaveLength(20);
      const prompt = 'row 5: text number 5';
      expect(r.rows[5]).toEqual([5n, `label of ${prompt}`, prompt.length, prompt.length % 2 === 0]);
      expect(server.requests).toHaveLength(3);
      const format = (server.requests[0]!.body as { response_format: { type: string; json_schema: { schema: { properties: { answers: { minItems: number } } } } } }).response_format;
      expect(format.type).toBe('json_schema');
      expect(format.json_schema.schema.properties.answers.minItems).toBe(8);
    });

    it('checks options at CREATE, before any request', async () => {
      const base = (options: string, io = 'INPUT (txt STRING) OUTPUT (answer STRING)') => db.sql(`CREATE MODEL bad ${io} WITH ('provider' = 'openai', ${options})`);
      const endpoint = `'endpoint' = '${server.url}/v1/chat/completions'`;
      await expectSqlError(base(`'model' = 'm', 'api-key' = 'k'`), '22023', /needs 'endpoint'/);
      await expectSqlError(base(`${endpoint}, 'model' = 'm'`), '22023', /needs 'api-key'/);
      await expectSqlError(base(`${endpoint}, 'model' = 'm', 'api-key' = 'k', 'colour' = 'blue'`), '22023', /unknown option 'colour'/);
      await expectSqlError(base(`${endpoint}, 'model' = 'm', 'api-key' = 'k', 'temperature' = 'hot'`), '22023', /'temperature' must be a number/);
      await expectSqlError(base(`${endpoint}, 'model' = 'm', 'api-key' = 'k', 'prompt' = 'about {nope}'`), '22023', /names \{nope\}, which is not an INPUT column/);
      await expectSqlError(base(`'endpoint' = '${server.url}/v1/embeddings', 'model' = 'm', 'api-key' = 'k'`), '22023', /embedding model has one OUTPUT column of type ARRAY<FLOAT>/);
      await expectSqlError(base(`${endpoint}, 'model' = 'm', 'api-key' = 'k'`, 'INPUT (txt STRING) OUTPUT (m MAP<STRING, INT>, x INT)'), '22023', /cannot produce/);
      await expectSqlError(base(`${endpoint}, 'model' = 'm', 'api-key' = 'k', 'n' = '3'`), '22023', /'n' must be 1/);
      await expectSqlError(db.sql(`CREATE MODEL bad WITH ('provider' = 'openai', ${endpoint}, 'model' = 'm', 'api-key' = 'k')`), '22023', /needs INPUT and OUTPUT/);
      expect(server.requests).toHaveLength(0);
    });

    it('accepts an unset ${env:...} variable and a missing model at CREATE with a NOTICE; the run fails on them', async () => {
      delete process.env['MODELSQL_SURELY_UNSET_VAR'];
      const created = await db.sql(
        `CREATE MODEL later INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'm', 'api-key' = '\${env:MODELSQL_SURELY_UNSET_VAR}', 'cache' = 'false')`,
      );
      expect(created.command).toBe('CREATE MODEL');
      expect(created.notices).toEqual([expect.stringMatching(/environment variable MODELSQL_SURELY_UNSET_VAR, which is not set/)]);
      await expectSqlError(db.sql(`SELECT a FROM ML_PREDICT(TABLE small, MODEL later, DESCRIPTOR(txt))`), '22023', /MODELSQL_SURELY_UNSET_VAR, which is not set/);
      const modelless = await db.sql(`CREATE MODEL nomodel INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'api-key' = '${KEY}', 'cache' = 'false')`);
      expect(modelless.notices).toEqual([expect.stringMatching(/needs 'model'.*cannot run until ALTER MODEL/)]);
      await expectSqlError(db.sql(`SELECT a FROM ML_PREDICT(TABLE small, MODEL nomodel, DESCRIPTOR(txt))`), '22023', /needs 'model'/);
      const altered = await db.sql(`ALTER MODEL nomodel SET ('openai.model' = 'gpt-loop')`);
      expect(altered.notices).toBeUndefined();
      const r = await db.sql(`SELECT a FROM ML_PREDICT(TABLE small, MODEL nomodel, DESCRIPTOR(txt)) WHERE id = 2`);
      expect(r.rows).toEqual([['echo: text number 2']]);
      expect(server.requests).toHaveLength(20);
      expect((server.requests[0]!.body as { model: string }).model).toBe('gpt-loop');
    });

    it("takes FLIP-437's remote example as written, options prefixed by the provider's name, shown in canonical form", async () => {
      // The statement as FLIP-437 writes it, from the conformance file.
      const flip = readFileSync(join(ROOT, 'test', 'conformance', 'flink-model-statements.sql'), 'utf8')
        .split(/\n\s*\n/)
        .find((block) => block.includes('CREATE MODEL `my_remote_model`'))!;
      await db.sql(flip.split('\n').filter((l) => !l.startsWith('--')).join('\n'));
      const shown = String((await db.sql('SHOW CREATE MODEL my_remote_model')).rows[0]![0]);
      expect(shown).toContain(`'endpoint' = 'https://api.openai.com/v1/llm/v1/chat'`);
      expect(shown).toContain(`'api-key' = '******'`);
      expect(shown).not.toMatch(/'openai\.|abcdefg/);
      await db.sql(
        `CREATE MODEL prefixed INPUT (txt STRING) OUTPUT (a STRING) WITH ('PROVIDER' = 'openai', 'OPENAI.ENDPOINT' = '${server.url}/v1', 'OpenAI.Model' = 'gpt-loop', 'OPENAI.API_KEY' = '${KEY}', 'openai.system_prompt' = 'Be brief.', 'Cache' = 'false')`,
      );
      const options = (await db.sql('DESCRIBE MODEL EXTENDED prefixed')).rows.filter((r) => r[3] === 'option').map((r) => r[0]);
      expect(options).toEqual(['provider', 'endpoint', 'model', 'api-key', 'system-prompt', 'cache']);
      const r = await db.sql(`SELECT a FROM ML_PREDICT(TABLE small, MODEL prefixed, DESCRIPTOR(txt)) WHERE id = 4`);
      expect(r.rows).toEqual([['echo: text number 4']]);
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
      expect((server.requests[0]!.body as { messages: { content: string }[] }).messages[0]!.content).toBe('Be brief.');
    });

    it('refuses an option given both plain and prefixed, naming both, and changes nothing', async () => {
      const before = (await db.sql('SHOW MODELS')).rows.length;
      await expectSqlError(
        db.sql(`CREATE MODEL twice INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'm', 'api-key' = 'k', 'OPENAI.API_KEY' = 'k2')`),
        '22023',
        /options 'api-key' and 'OPENAI.API_KEY' both set 'api-key'/,
      );
      await chat('twice2');
      await expectSqlError(db.sql(`ALTER MODEL twice2 SET ('temperature' = '0.1', 'openai.temperature' = '0.2')`), '22023', /options 'temperature' and 'openai.temperature'/);
      await db.sql(`ALTER MODEL twice2 SET ('openai.temperature' = '0.3')`);
      await db.sql(`ALTER MODEL twice2 SET ('temperature' = '0.4')`);
      const shown = String((await db.sql('SHOW CREATE MODEL twice2')).rows[0]![0]);
      expect(shown.match(/temperature/g)).toHaveLength(1);
      expect(shown).toContain(`'temperature' = '0.4'`);
      await db.sql(`ALTER MODEL twice2 RESET ('OPENAI.TEMPERATURE')`);
      expect(String((await db.sql('SHOW CREATE MODEL twice2')).rows[0]![0])).not.toContain('temperature');
      expect((await db.sql('SHOW MODELS')).rows.length).toBe(before + 1);
    });

    it('resolves ${env:...} api keys at run time', async () => {
      process.env['MODELSQL_TEST_OPENAI_KEY'] = KEY;
      await db.sql(
        `CREATE MODEL envkey INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'm', 'api-key' = '\${env:MODELSQL_TEST_OPENAI_KEY}', 'cache' = 'false')`,
      );
      const shown = (await db.sql('SHOW CREATE MODEL envkey')).rows[0]![0] as string;
      expect(shown).toContain(`'api-key' = '\${env:MODELSQL_TEST_OPENAI_KEY}'`);
      const r = await db.sql(`SELECT a FROM ML_PREDICT(TABLE small, MODEL envkey, DESCRIPTOR(txt)) WHERE id = 1`);
      expect(r.rows).toEqual([['echo: text number 1']]);
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    });

    it('returns exactly 1,000 rows in input order when 20% of requests fail transiently (RETRY)', async () => {
      server.setFault((req, attempt) => {
        const id = idOf(req.prompts[0]!);
        return id % 5 === 0 && attempt === 0 ? TRANSIENT[(id / 5) % TRANSIENT.length] : undefined;
      });
      await chat('robust', `'max-concurrent-operations' = '16', 'cache' = 'false'`);
      const r = await db.sql(`SELECT id, answer FROM ML_PREDICT(TABLE reviews, MODEL robust, DESCRIPTOR(id, txt), MAP['timeout', '1500ms'])`);
      expect(r.rows).toHaveLength(1000);
      r.rows.forEach(([id, answer], i) => {
        expect(id).toBe(BigInt(i));
        expect(answer).toBe(`echo: row ${i}: text number ${i}`);
      });
      // The 200 rows whose first attempt failed were each asked again (requestsPerRow says why not a total).
      const asked = requestsPerRow(server.requests, idOf);
      expect(asked.size).toBe(1000);
      expect([...asked].filter(([id, n]) => id % 5 === 0 && n < 2)).toEqual([]);
    }, 60_000);

    it('marks rows that keep failing with the error columns under IGNORE, nothing lost or duplicated', async () => {
      server.setFault((req, attempt) => {
        const id = idOf(req.prompts[0]!);
        if (id % 10 === 3) return { kind: 'status', status: 400, message: `row ${id} is not allowed` };
        return id % 10 === 7 && attempt === 0 ? { kind: 'status', status: 503 } : undefined;
      });
      await chat('lenient', `'error-handling-strategy' = 'IGNORE', 'cache' = 'false'`, 'answer STRING, `error-string` STRING, `http-status-code` INT');
      const r = await db.sql(`SELECT id, answer, "error-string", "http-status-code" FROM ML_PREDICT(TABLE reviews, MODEL lenient, DESCRIPTOR(id, txt))`);
      expect(r.rows).toHaveLength(1000);
      r.rows.forEach(([id, answer, error, status], i) => {
        expect(id).toBe(BigInt(i));
        if (i % 10 === 3) {
          expect([answer, status]).toEqual([null, 400]);
          expect(error).toBe(`400 row ${i} is not allowed`);
        } else if (i % 10 === 7) {
          // IGNORE does not retry (as in Flink): the transient 503 marks the row.
          expect([answer, status]).toEqual([null, 503]);
        } else {
          expect([answer, error, status]).toEqual([`echo: row ${i}: text number ${i}`, null, null]);
        }
      });
      const run = await db.sql(`SELECT row_count, error_count FROM ml_catalog.prediction_runs WHERE model_name = 'lenient'`);
      expect(run.rows).toEqual([[1000n, 200n]]);
    }, 60_000);

    it('fails the query with the provider error under FAILOVER, leaving no temporary tables', async () => {
      server.setFault((req) => (idOf(req.prompts[0]!) === 11 ? { kind: 'status', status: 500, message: 'the upstream model crashed' } : undefined));
      await chat('strict', `'error-handling-strategy' = 'FAILOVER', 'cache' = 'false'`);
      await expectSqlError(db.sql(`SELECT * FROM ML_PREDICT(TABLE small, MODEL strict, DESCRIPTOR(id, txt))`), '38000', /openai model request failed: 500 the upstream model crashed/);
      expect(await adapter.countTempTables(db)).toBe(0n);
    });

    it('applies retry-fallback-strategy once retry-num is spent', async () => {
      server.setFault((req) => (idOf(req.prompts[0]!) === 4 ? { kind: 'status', status: 503 } : undefined));
      await chat('fallback', `'retry-num' = '2', 'cache' = 'false'`, 'answer STRING, error_string STRING');
      await expectSqlError(db.sql(`SELECT * FROM ML_PREDICT(TABLE small, MODEL fallback, DESCRIPTOR(id, txt))`), '38000', /503 injected 503 \(after 2 retries\)/);
      await chat('fallback', `'retry-num' = '2', 'retry-fallback-strategy' = 'IGNORE', 'cache' = 'false'`, 'answer STRING, error_string STRING');
      server.requests.length = 0;
      const r = await db.sql(`SELECT id, answer, error_string FROM ML_PREDICT(TABLE small, MODEL fallback, DESCRIPTOR(id, txt)) WHERE id = 4`);
      expect(r.rows).toEqual([[4n, null, '503 injected 503 (after 2 retries)']]);
      expect(server.requests.filter((q) => idOf(q.prompts[0]!) === 4)).toHaveLength(3);
    });

    it('honours Retry-After', async () => {
      server.setFault((_req, attempt) => (attempt === 0 ? { kind: 'status', status: 429, headers: { 'retry-after': '1' } } : undefined));
      await chat('patient', `'cache' = 'false'`);
      const started = Date.now();
      const r = await db.sql(`SELECT answer FROM ML_PREDICT(TABLE (SELECT * FROM small WHERE id = 2), MODEL patient, DESCRIPTOR(id, txt))`);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(r.rows).toEqual([['echo: row 2: text number 2']]);
    });

    it('halves a pack on context overflow and on a wrong number of answers, down to one row', async () => {
      // Packs of more than 2 rows overflow; one row's answer always overflows.
      server.setFault((req) => (req.prompts.length > 2 || req.prompts.some((p) => idOf(p) === 9) ? { kind: 'context' } : undefined));
      await chat('packed', `'batch-size' = '16', 'error-handling-strategy' = 'IGNORE', 'cache' = 'false'`, 'answer STRING, `error-string` STRING');
      const r = await db.sql(`SELECT id, answer, "error-string" FROM ML_PREDICT(TABLE small, MODEL packed, DESCRIPTOR(id, txt)) ORDER BY id`);
      expect(r.rows).toHaveLength(20);
      r.rows.forEach(([id, answer, error]) => {
        if (id === 9n) expect([answer, error]).toEqual([null, expect.stringMatching(/^400 This model's maximum context length/)]);
        else expect([answer, error]).toEqual([`echo: row ${id}: text number ${id}`, null]);
      });
      server.setFault((req, attempt) => (req.prompts.length === 8 && attempt === 0 ? { kind: 'wrong-count' } : undefined));
      server.requests.length = 0;
      await chat('packed', `'batch-size' = '8', 'cache' = 'false'`);
      const again = await db.sql(`SELECT id, answer FROM ML_PREDICT(TABLE small, MODEL packed, DESCRIPTOR(id, txt)) ORDER BY id`);
      again.rows.forEach(([id, answer]) => expect(answer).toBe(`echo: row ${id}: text number ${id}`));
      expect(server.requests.map((q) => q.prompts.length)).toEqual(expect.arrayContaining([8, 4, 4]));
    });

    it('makes an answer that does not fit the OUTPUT types a per-row error', async () => {
      const typed = await startOpenAIServer({ apiKey: KEY, answer: (prompt) => ({ label: 'x', score: idOf(prompt) === 6 ? 'high' : 1 }) });
      try {
        await db.sql(
          `CREATE MODEL typed INPUT (id BIGINT, txt STRING) OUTPUT (label STRING, score INT, \`error-string\` STRING) WITH ('provider' = 'openai', 'endpoint' = '${typed.url}/v1', 'model' = 'm', 'api-key' = '${KEY}', 'prompt' = 'row {id}: {txt}', 'error-handling-strategy' = 'IGNORE', 'cache' = 'false')`,
        );
        const r = await db.sql(`SELECT id, label, score, "error-string" FROM ML_PREDICT(TABLE small, MODEL typed, DESCRIPTOR(id, txt)) ORDER BY id`);
        expect(r.rows).toHaveLength(20);
        expect(r.rows[6]).toEqual([6n, null, null, expect.stringMatching(/OUTPUT column score INT does not fit: "high"/)]);
        expect(r.rows[5]).toEqual([5n, 'x', 1, null]);
      } finally {
        await typed.close();
      }
    });

    it('stops sending requests as soon as the query is cancelled', async () => {
      const slow = await startOpenAIServer({ apiKey: KEY, latencyMs: 200 });
      try {
        await db.sql(
          `CREATE MODEL slowpoke INPUT (id BIGINT, txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${slow.url}/v1', 'model' = 'm', 'api-key' = '${KEY}', 'prompt' = 'row {id}: {txt}', 'max-concurrent-operations' = '4', 'cache' = 'false')`,
        );
        const query = db.sql(`SELECT * FROM ML_PREDICT(TABLE reviews, MODEL slowpoke, DESCRIPTOR(id, txt))`);
        while (slow.requests.length === 0) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 300));
        db.cancel();
        await expectSqlError(query, '57014');
        const sent = slow.requests.length;
        expect(sent).toBeGreaterThan(0);
        expect(sent).toBeLessThan(40);
        await new Promise((r) => setTimeout(r, 500));
        expect(slow.requests.length).toBe(sent);
        expect(await adapter.countTempTables(db)).toBe(0n);
      } finally {
        await slow.close();
      }
    });

    it('reports progress with rows, errors and tokens', async () => {
      const events: { rowsDone: number; errors: number; tokens?: number; finished: boolean }[] = [];
      const listener = (e: (typeof events)[number]): void => void events.push(e);
      db.events.on('progress', listener);
      try {
        await chat('progress', `'cache' = 'false'`);
        await db.sql(`SELECT * FROM ML_PREDICT(TABLE reviews, MODEL progress, DESCRIPTOR(id, txt))`);
      } finally {
        db.events.off('progress', listener);
      }
      const last = events[events.length - 1]!;
      expect(last).toMatchObject({ rowsDone: 1000, errors: 0, finished: true });
      expect(last.tokens).toBeGreaterThan(0);
      expect(events.length).toBeGreaterThan(2);
      const done = events.map((e) => e.rowsDone);
      expect([...done].sort((a, b) => a - b)).toEqual(done);
    });
  });
}
