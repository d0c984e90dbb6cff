/**
 * Caps on the resource options a client controls (docs/security.md, "Caps on model
 * options"), on every adapter: each capped option at its cap is accepted and one past it is
 * refused with 22023 naming the option and the cap, at CREATE, ALTER, in CONFIG, and when a
 * stored model runs under a lower cap; a row's prompt over the prompt cap fails with 54000
 * before any request.
 */
import { DEFAULT_RESOURCE_CAPS, RESOURCE_CAPS, type ResourceCaps } from '../../core/runtime/resource-caps.js';
import type { Session } from '../../core/session/session.js';
import { startOpenAIServer } from '../providers/openai-server.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { writeModelFiles, type ModelFiles } from '../support/model-files.js';
import { writeTextModels, type TextModelDirs } from '../support/text-models.js';

const KEY = 'sk-caps-test';
/** Small caps, so that values at and past them are cheap to write and to run. */
const CAPS: ResourceCaps = {
  maxConcurrentOperations: 4,
  maxBatchSize: 8,
  maxTokens: 100,
  maxContextSize: 8,
  maxRetries: 3,
  maxTimeoutMs: 2000,
  maxRetryDelayMs: 1000,
  maxPromptBytes: 64,
  maxDimension: 16,
  maxIterations: 5,
  maxClusters: 3,
  maxCategories: 4,
  maxOptionBytes: 200,
};

let server: LoopbackServer;
let files: ModelFiles;
let text: TextModelDirs;

beforeAll(async () => {
  server = await startOpenAIServer({ apiKey: KEY });
  files = writeModelFiles();
  text = writeTextModels();
});
afterAll(async () => server?.close());
beforeEach(() => server.reset());

/** The value of option `key` at `cap` (`past`: one unit over it), as written in WITH. */
function valueAt(key: string, unit: string, cap: number, past: boolean): string {
  const n = cap + (past ? 1 : 0);
  if (unit === 'duration') return `${n}ms`;
  if (unit === 'bytes') return key === 'prompt' ? `{txt}${'x'.repeat(n - 5)}` : 'x'.repeat(n);
  return String(n);
}

/** A CREATE MODEL whose option `key` is `value`, for the provider that takes `key`. */
function createWith(name: string, key: string, value: string): string {
  const option = `'${key}' = '${value}'`;
  if (['max-retries', 'retry-initial-backoff', 'retry-max-backoff'].includes(key)) {
    return `CREATE MODEL ${name} INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT) WITH ('provider' = 'triton', 'endpoint' = 'http://127.0.0.1:9/v2/models', 'model-name' = 'linear', ${option})`;
  }
  if (key === 'max-length') return `CREATE MODEL ${name} WITH ('provider' = 'onnx', 'path' = '${text.embedding}', ${option})`;
  if (['max-iterations', 'k', 'max-categories'].includes(key)) return `CREATE MODEL ${name} WITH ('algorithm' = 'kmeans', ${option}) AS SELECT a, b FROM t`;
  const output = key === 'dimension' ? 'embedding ARRAY<FLOAT>' : 'answer STRING';
  const endpoint = key === 'dimension' ? 'embeddings' : 'chat/completions';
  return `CREATE MODEL ${name} INPUT (txt STRING) OUTPUT (${output}) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/${endpoint}', 'model' = 'm', 'api-key' = '${KEY}', ${option})`;
}

const CAPPED = RESOURCE_CAPS.flatMap((spec) => spec.options.map((key) => ({ spec, key })));

for (const adapter of ADAPTERS) {
  describe(`resource caps on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open({ resourceCaps: CAPS });
      await db.sql(`CREATE TABLE t AS SELECT i AS id, i * 0.5 AS a, 10.0 - i AS b, 'row ' || CAST(i AS VARCHAR) AS txt FROM generate_series(1, 20) AS s(i)`);
      await db.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
    }, 60_000);
    afterAll(async () => db?.close());

    test.each(CAPPED.map(({ spec, key }) => [key, spec.flag, spec] as const))("CREATE MODEL: '%s' at its cap is accepted, one past it is 22023 naming --%s", async (key, flag, spec) => {
      const cap = CAPS[spec.name];
      const name = `m_${key.replace(/-/g, '_')}`;
      await db.sql(createWith(name, key, valueAt(key, spec.unit, cap, false)));
      const past = createWith(`${name}_past`, key, valueAt(key, spec.unit, cap, true));
      const error = await expectSqlError(db.sql(past), '22023', new RegExp(`option '${key}' is .*over this server's cap of ${cap}( ms| bytes)? \\(--${flag}\\)`));
      // Positioned at the option in the text as shown (the literal api-key masked).
      expect(error.position?.offset).toBe(error.sqlText!.indexOf(`'${key}'`));
      await expectSqlError(db.sql(`DESCRIBE MODEL ${name}_past`), '42704');
    });

    test('ALTER MODEL SET over a cap is refused and leaves the model as it was; at the cap it is applied', async () => {
      await db.sql(createWith('alt', 'batch-size', '2'));
      const before = (await db.sql('SHOW CREATE MODEL alt')).rows[0]![0];
      await expectSqlError(db.sql(`ALTER MODEL alt SET ('batch-size' = '9')`), '22023', /option 'batch-size' is 9, over this server's cap of 8 \(--max-batch-size\)/);
      await expectSqlError(db.sql(`ALTER MODEL alt SET ('max-concurrent-operations' = '1000000000000')`), '22023', /cap of 4 \(--max-concurrent-operations\)/);
      expect((await db.sql('SHOW CREATE MODEL alt')).rows[0]![0]).toBe(before);
      await db.sql(`ALTER MODEL alt SET ('batch-size' = '8')`);
      expect(String((await db.sql('SHOW CREATE MODEL alt')).rows[0]![0])).toMatch(/'batch-size' = '8'/);
    });

    test.each([
      ['max-concurrent-operations', '4', '5', /cap of 4 \(--max-concurrent-operations\)/],
      ['batch-size', '8', '9', /cap of 8 \(--max-batch-size\)/],
      ['timeout', '2s', '2001ms', /option 'timeout' is 2001 ms, over this server's cap of 2000 ms \(--max-timeout\)/],
    ] as const)("CONFIG '%s': at the cap the call runs, one past it is 22023 at the value", async (key, at, past, message) => {
      const call = (value: string) => `SELECT count(*) FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b), MAP['${key}', '${value}'])`;
      expect((await db.sql(call(at))).rows[0]![0]).toBe(20n);
      const error = await expectSqlError(db.sql(call(past)), '22023', message);
      expect(error.position?.offset).toBe(call(past).indexOf(`'${past}'`));
      expect(await adapter.countTempTables(db)).toBe(0n);
    });

    test("a row's text over the prompt cap fails a local text model's call with 54000 before it is tokenized; at the cap it runs", async () => {
      await db.sql(`CREATE MODEL emb WITH ('provider' = 'onnx', 'path' = '${text.embedding}')`);
      const call = (n: number) => `SELECT embedding IS NULL FROM ML_PREDICT(TABLE (SELECT 'é' || repeat('x', ${n - 2}) AS txt UNION ALL SELECT NULL), MODEL emb, DESCRIPTOR(txt))`;
      expect((await db.sql(call(CAPS.maxPromptBytes))).rows.map((r) => r[0]).sort()).toEqual([false, true]);
      await expectSqlError(db.sql(call(CAPS.maxPromptBytes + 1)), '54000', /a row's text is 65 bytes, over this server's cap of 64 bytes \(--max-prompt-bytes\)/);
      expect(await adapter.countTempTables(db)).toBe(0n);
    });

    test.each([
      ['stop', 'openai'],
      ['response-format', 'openai'],
      ['custom-headers', 'triton'],
    ] as const)("every other option's value: '%s' at --max-option-bytes is accepted, one byte past it is 22023 at CREATE and ALTER", async (key, provider) => {
      const cap = CAPS.maxOptionBytes;
      const value = (n: number) => (key === 'custom-headers' ? `{"X-A": "${'x'.repeat(n - 11)}"}` : key === 'response-format' ? 'text'.padEnd(n, ' ') : `é${'x'.repeat(n - 2)}`);
      const name = `o_${key.replace(/-/g, '_')}`;
      const create = (v: string) =>
        provider === 'triton'
          ? `CREATE MODEL ${name} INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT) WITH ('provider' = 'triton', 'endpoint' = 'http://127.0.0.1:9/v2/models', 'model-name' = 'linear', '${key}' = '${v}')`
          : `CREATE MODEL ${name} INPUT (txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/chat/completions', 'model' = 'm', 'api-key' = '${KEY}', '${key}' = '${v}')`;
      expect(Buffer.byteLength(value(cap))).toBe(cap);
      const message = new RegExp(`option '${key}' is ${cap + 1} bytes, over this server's cap of ${cap} bytes \\(--max-option-bytes\\)`);
      const refused = await expectSqlError(db.sql(create(value(cap + 1))), '22023', message);
      expect(refused.position?.offset).toBe(refused.sqlText!.indexOf(`'${key}'`));
      await expectSqlError(db.sql(`DESCRIBE MODEL ${name}`), '42704');
      await db.sql(create(value(cap)));
      const before = (await db.sql(`SHOW CREATE MODEL ${name}`)).rows[0]![0];
      await expectSqlError(db.sql(`ALTER MODEL ${name} SET ('${key}' = '${value(cap + 1)}')`), '22023', message);
      expect((await db.sql(`SHOW CREATE MODEL ${name}`)).rows[0]![0]).toBe(before);
    });

    test('a COMMENT of a model or of a column at --max-option-bytes is accepted, one byte past it is 22023 at its place', async () => {
      const cap = CAPS.maxOptionBytes;
      const text = (n: number) => `é${'x'.repeat(n - 2)}`;
      const create = (name: string, model: number, column: number) =>
        `CREATE MODEL ${name} INPUT (a DOUBLE COMMENT '${text(column)}', b DOUBLE) OUTPUT (y DOUBLE) COMMENT '${text(model)}' WITH ('provider' = 'onnx', 'path' = '${files.linear}')`;
      await db.sql(create('commented', cap, cap));
      expect((await db.sql(`DESCRIBE MODEL commented`)).rows.some((r) => r[4] === text(cap))).toBe(true);
      const model = await expectSqlError(db.sql(create('c_model', cap + 1, cap)), '22023', new RegExp(`the COMMENT of the model is ${cap + 1} bytes, over this server's cap of ${cap} bytes \\(--max-option-bytes\\)`));
      expect(model.position?.offset).toBe(create('c_model', cap + 1, cap).indexOf('c_model'));
      const column = await expectSqlError(db.sql(create('c_column', cap, cap + 1)), '22023', /the COMMENT of column a is 201 bytes/);
      expect(column.position?.offset).toBe(create('c_column', cap, cap + 1).indexOf('a DOUBLE'));
      await expectSqlError(db.sql('DESCRIBE MODEL c_model'), '42704');
      await expectSqlError(db.sql('DESCRIBE MODEL c_column'), '42704');
    });

    test("a row's prompt over the prompt cap fails the call with 54000 before any request; at the cap it is sent", async () => {
      await db.sql(createWith('chat', 'cache', 'false'));
      const rows = (n: number) => `SELECT * FROM ML_PREDICT(TABLE (SELECT repeat('é', ${n / 2}) AS txt), MODEL chat, DESCRIPTOR(txt))`;
      expect((await db.sql(rows(CAPS.maxPromptBytes))).rows).toHaveLength(1);
      expect(server.requests).toHaveLength(1);
      server.reset();
      await expectSqlError(db.sql(rows(CAPS.maxPromptBytes + 2)), '54000', /a row's prompt is 66 bytes, over this server's cap of 64 bytes \(--max-prompt-bytes\)/);
      expect(server.requests).toHaveLength(0);
    });
  });

  describe(`caps lowered after a model was stored, on ${adapter.name}`, () => {
    test('the stored model does not run over the lower cap: 22023 at the model, naming the option; the defaults hold without overrides', async () => {
      const { session, cliArgs } = await adapter.openShared(await tempDir());
      void cliArgs;
      try {
        await session.sql(`CREATE TABLE t AS SELECT 1.0 AS a, 2.0 AS b`);
        await session.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}', 'batch-size' = '${DEFAULT_RESOURCE_CAPS.maxBatchSize}')`);
        await expectSqlError(session.sql(`ALTER MODEL lin SET ('batch-size' = '${DEFAULT_RESOURCE_CAPS.maxBatchSize + 1}')`), '22023', /cap of 65536 \(--max-batch-size\)/);
        const lowered = await reopen(adapter.name, session, cliArgs, { resourceCaps: { maxBatchSize: 100 } });
        try {
          const sql = 'SELECT * FROM ML_PREDICT(TABLE t, MODEL lin, DESCRIPTOR(a, b))';
          const error = await expectSqlError(lowered.sql(sql), '22023', /option 'batch-size' is 65536, over this server's cap of 100 \(--max-batch-size\); lower it with ALTER MODEL \.\.\. SET/);
          expect(error.position?.offset).toBe(sql.indexOf('MODEL lin'));
        } finally {
          if (lowered !== session) await lowered.close();
        }
      } finally {
        await session.close().catch(() => undefined);
      }
    });
  });
}

async function tempDir(): Promise<string> {
  const { mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  return mkdtemp(join(tmpdir(), 'modelsql-caps-'));
}

/** A second session on the database `cliArgs` names, with `options` (DuckDB: the first one is closed, as one process may hold the file). */
async function reopen(adapter: string, first: Session, cliArgs: readonly string[], options: Parameters<typeof import('../../adapters/duckdb/index.js').openDuckDB>[1]): Promise<Session> {
  if (adapter === 'duckdb') {
    await first.close();
    const { openDuckDB } = await import('../../adapters/duckdb/index.js');
    return openDuckDB(cliArgs[1], options);
  }
  const { connectPostgres } = await import('../../adapters/postgres/index.js');
  return connectPostgres(cliArgs[1]!, options);
}
