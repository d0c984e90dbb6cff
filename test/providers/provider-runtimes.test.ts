/**
 * Each provider's unmodified SDK against its loopback server, through ML_PREDICT on DuckDB:
 * transient faults of every kind retried to exactly one answer per row in input order,
 * structured output and packing, context-overflow halving, the provider's own rate-limit
 * signal honoured, and its errors reported without the key.
 */
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { formatError } from '../../core/errors.js';
import type { Session } from '../../core/session/session.js';
import { expectSqlError } from '../support/expect-error.js';
import { startAnthropicServer } from './anthropic-server.js';
import { geminiRateLimit, startGeminiServer } from './gemini-server.js';
import { requestsPerRow, type Fault, type LoopbackOptions, type LoopbackServer } from './loopback-server.js';
import { fakeEmbedding, startOpenAIServer } from './openai-server.js';

const KEY = 'provider-test-key-123';
const ROWS = 300;
const idOf = (prompt: string): number => Number(/row (\d+):/.exec(prompt)?.[1] ?? -1);

interface Case {
  readonly provider: 'openai' | 'gemini' | 'anthropic';
  readonly start: (options: LoopbackOptions) => Promise<LoopbackServer>;
  readonly endpoint: (url: string) => string;
  readonly overloaded: number;
}

const CASES: readonly Case[] = [
  { provider: 'openai', start: startOpenAIServer, endpoint: (url) => `${url}/v1/chat/completions`, overloaded: 503 },
  { provider: 'gemini', start: startGeminiServer, endpoint: (url) => url, overloaded: 503 },
  { provider: 'anthropic', start: startAnthropicServer, endpoint: (url) => url, overloaded: 529 },
];

for (const c of CASES) {
  describe(`provider ${c.provider}`, () => {
    let db: Session;
    let server: LoopbackServer;
    const create = (name: string, output: string, extra = '', url = server.url): Promise<unknown> =>
      db.sql(
        `CREATE OR REPLACE MODEL ${name} INPUT (id BIGINT, txt STRING) OUTPUT (${output}) WITH ('provider' = '${c.provider}', 'endpoint' = '${c.endpoint(url)}', 'model' = 'loop-model', 'api-key' = '${KEY}', 'prompt' = 'row {id}: {txt}', 'retry-initial-delay' = '2ms', 'cache' = 'false'${extra ? `, ${extra}` : ''})`,
      );

    beforeAll(async () => {
      server = await c.start({ apiKey: KEY });
      db = await openDuckDB();
      await db.sql(`CREATE TABLE t AS SELECT CAST(i AS BIGINT) AS id, 'text ' || CAST(i AS VARCHAR) AS txt FROM range(${ROWS}) r(i)`);
    });
    afterAll(async () => {
      await db.close();
      await server.close();
    });
    beforeEach(() => server.reset());

    it('retries every kind of transient fault to exactly one answer per row, in order', async () => {
      const faults: readonly Fault[] = [
        { kind: 'status', status: 429, headers: { 'retry-after': '0' } },
        { kind: 'status', status: 500 },
        { kind: 'status', status: c.overloaded },
        { kind: 'reset' },
        { kind: 'malformed' },
        { kind: 'slow', ms: 5000 },
      ];
      server.setFault((req, attempt) => {
        const id = idOf(req.prompts[0]!);
        return id % 5 === 0 && attempt === 0 ? faults[(id / 5) % faults.length] : undefined;
      });
      await create('chat', 'answer STRING', `'max-concurrent-operations' = '16', 'timeout' = '1500ms'`);
      const r = await db.sql(`SELECT id, answer FROM ML_PREDICT(TABLE t, MODEL chat, DESCRIPTOR(id, txt))`);
      expect(r.rows).toHaveLength(ROWS);
      r.rows.forEach(([id, answer], i) => expect([id, answer]).toEqual([BigInt(i), `echo: row ${i}: text ${i}`]));
      // Every faulted row was asked again after its fault (requestsPerRow says why not a total).
      const asked = requestsPerRow(server.requests, idOf);
      expect(asked.size).toBe(ROWS);
      expect([...asked].filter(([id, n]) => id % 5 === 0 && n < 2)).toEqual([]);
    }, 60_000);

    it('sends the system prompt and generation options the provider\'s way', async () => {
      await create('opts', 'answer STRING', `'system-prompt' = 'Answer in French.', 'temperature' = '0.3', 'max-tokens' = '64', 'stop' = 'END,STOP'`);
      await db.sql(`SELECT * FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id = 1), MODEL opts, DESCRIPTOR(id, txt))`);
      const body = server.requests[0]!.body as Record<string, unknown>;
      if (c.provider === 'openai') expect(body).toMatchObject({ temperature: 0.3, max_tokens: 64, stop: ['END', 'STOP'], messages: [{ role: 'system', content: 'Answer in French.' }, { role: 'user', content: 'row 1: text 1' }] });
      if (c.provider === 'gemini') expect(body).toMatchObject({ systemInstruction: { parts: [{ text: 'Answer in French.' }] }, generationConfig: { temperature: 0.3, maxOutputTokens: 64, stopSequences: ['END', 'STOP'] } });
      if (c.provider === 'anthropic') expect(body).toMatchObject({ system: 'Answer in French.', temperature: 0.3, max_tokens: 64, stop_sequences: ['END', 'STOP'] });
    });

    it('requests structured output as a JSON schema, packed, and halves packs that overflow the context', async () => {
      server.setFault((req) => (req.prompts.length > 4 ? { kind: 'context' } : undefined));
      await create('extract', 'label STRING, score DOUBLE', `'batch-size' = '16'`);
      const r = await db.sql(`SELECT id, label, score FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id < 40), MODEL extract, DESCRIPTOR(id, txt)) ORDER BY id`);
      expect(r.rows).toHaveLength(40);
      r.rows.forEach(([id, label, score]) => {
        const prompt = `row ${id}: text ${id}`;
        expect([label, score]).toEqual([`label of ${prompt}`, prompt.length / 2]);
      });
      const answered = server.requests.filter((q) => q.prompts.length <= 4);
      expect(answered.map((q) => q.prompts.length).reduce((a, b) => a + b, 0)).toBe(40);
    });

    it('reports an invalid key as a query error, without the key', async () => {
      await create('wrongkey', 'answer STRING', '', server.url);
      const other = await c.start({ apiKey: 'not-the-same-key' });
      try {
        await create('wrongkey', 'answer STRING', '', other.url);
        const error = await expectSqlError(db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL wrongkey, DESCRIPTOR(id, txt))`), '38000', new RegExp(`${c.provider} model request failed: (400|401)`));
        expect(formatError(error)).not.toContain(KEY);
        // Requests already in flight finish; none start after the failure (10 at once by default).
        expect(other.requests.length).toBeLessThanOrEqual(10);
      } finally {
        await other.close();
      }
    });
  });
}

describe('provider gemini specifics', () => {
  let db: Session;
  beforeAll(async () => {
    db = await openDuckDB();
    await db.sql(`CREATE TABLE t AS SELECT CAST(i AS BIGINT) AS id, 'text ' || CAST(i AS VARCHAR) AS txt FROM range(20) r(i)`);
  });
  afterAll(() => db.close());

  it('embeds with batchEmbedContents and outputDimensionality', async () => {
    const server = await startGeminiServer({ apiKey: KEY });
    try {
      await db.sql(
        `CREATE MODEL emb INPUT (txt STRING) OUTPUT (v ARRAY<FLOAT>) WITH ('provider' = 'gemini', 'endpoint' = '${server.url}', 'model' = 'text-embedding-loop', 'api-key' = '${KEY}', 'dimension' = '5', 'batch-size' = '10')`,
      );
      const r = await db.sql(`SELECT txt, v FROM ML_PREDICT(TABLE t, MODEL emb, DESCRIPTOR(txt))`);
      expect(r.rows).toHaveLength(20);
      for (const [txt, v] of r.rows) fakeEmbedding(String(txt), 5).forEach((x, i) => expect((v as number[])[i]).toBeCloseTo(x, 5));
      expect(server.requests.map((q) => q.path)).toEqual(['/v1beta/models/text-embedding-loop:batchEmbedContents', '/v1beta/models/text-embedding-loop:batchEmbedContents']);
    } finally {
      await server.close();
    }
  });

  it('honours the RetryInfo delay of a 429', async () => {
    const server = await startGeminiServer({ apiKey: KEY, retryDelaySeconds: 1, fault: (_req, attempt) => (attempt === 0 ? geminiRateLimit(1) : undefined) });
    try {
      await db.sql(`CREATE MODEL g INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'gemini', 'endpoint' = '${server.url}/v1beta', 'model' = 'gemini-loop', 'api-key' = '${KEY}', 'cache' = 'false')`);
      const started = Date.now();
      const r = await db.sql(`SELECT a FROM ML_PREDICT(TABLE (SELECT * FROM t WHERE id = 0), MODEL g, DESCRIPTOR(txt))`);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(r.rows).toEqual([['echo: text 0']]);
    } finally {
      await server.close();
    }
  });
});

describe('provider anthropic specifics', () => {
  it('refuses an embedding OUTPUT at CREATE', async () => {
    const db = await openDuckDB();
    try {
      await expectSqlError(
        db.sql(`CREATE MODEL e INPUT (txt STRING) OUTPUT (v ARRAY<FLOAT>) WITH ('provider' = 'anthropic', 'endpoint' = 'http://127.0.0.1:1', 'model' = 'claude', 'api-key' = 'k')`),
        '22023',
        /anthropic' has no embeddings API/,
      );
    } finally {
      await db.close();
    }
  });
});
