/**
 * What a hostile, broken or compromised model server can do to modelsql, through the real
 * SDKs against loopback servers that misbehave on purpose: answers too large (announced,
 * endless, compressed), waits it chooses (`Retry-After`), answers nested past the stack,
 * error messages of megabytes, embeddings put on the wrong rows, answers cached for another
 * model's OUTPUT, redirects that would carry the key to another host, and bodies that stall.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { formatError } from '../../core/errors.js';
import type { Session } from '../../core/session/session.js';
import { expectSqlError } from '../support/expect-error.js';
import { listenOnLoopback } from './loopback-server.js';

const KEY = 'sk-hostile-0123456789abcdef';
const FAST = `'retry-initial-delay' = '2ms', 'retry-max-delay' = '20ms'`;

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** A loopback server whose every answer `handler` writes (replaced per test). */
async function startHostile(): Promise<{ url: string; seen: { path: string; headers: IncomingHttpHeaders }[]; handle(h: Handler): void; close(): Promise<void> }> {
  let handler: Handler = (_req, res) => res.end();
  const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', headers: req.headers });
      handler(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });
  const listening = await listenOnLoopback(server);
  return {
    url: listening.url,
    seen,
    handle: (h) => {
      handler = h;
      seen.length = 0;
    },
    close: listening.close,
  };
}

/** An OpenAI chat completion answering `content`. */
const completion = (content: string): string =>
  JSON.stringify({ id: 'c', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });

const json = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body);
};

describe('a hostile model server', () => {
  const LIMIT = 64 * 1024;
  let db: Session;
  let server: Awaited<ReturnType<typeof startHostile>>;
  const model = (name: string, output: string, extra = '', path = '/v1/chat/completions'): Promise<unknown> =>
    db.sql(
      `CREATE OR REPLACE MODEL ${name} INPUT (txt STRING) OUTPUT (${output}) WITH ('provider' = 'openai', 'endpoint' = '${server.url}${path}', 'model' = 'm', 'api-key' = '${KEY}', 'cache' = 'false', ${FAST}${extra ? `, ${extra}` : ''})`,
    );

  beforeAll(async () => {
    server = await startHostile();
    db = await openDuckDB();
    await db.sql(`CREATE TABLE t AS SELECT 'text ' || CAST(i AS VARCHAR) AS txt FROM range(3) r(i)`);
    await db.sql(`CREATE TABLE one AS SELECT 'only' AS txt`);
  });
  afterAll(async () => {
    await db.close();
    await server.close();
  });

  it('reads an answer of exactly maxResponseBytes; one byte more, announced, endless or decompressed past it, fails with 54000 and closes the socket', async () => {
    const exact = (extra: number): string => {
      const body = completion('fits');
      return body + ' '.repeat(LIMIT - Buffer.byteLength(body) + extra);
    };
    const small = await openDuckDB(undefined, { maxResponseBytes: LIMIT });
    await small.sql(`CREATE TABLE one AS SELECT 'only' AS txt`);
    await small.sql(`CREATE MODEL big INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/chat/completions', 'model' = 'm', 'api-key' = '${KEY}', 'cache' = 'false', 'retry-num' = '3', ${FAST})`);
    server.handle((_req, res) => json(res, 200, exact(0)));
    expect((await small.sql(`SELECT a FROM ML_PREDICT(TABLE one, MODEL big, DESCRIPTOR(txt))`)).rows).toEqual([['fits']]);

    const over = exact(1);
    const closed: boolean[] = [];
    const cases: Handler[] = [
      // Announced in content-length.
      (_req, res) => json(res, 200, over),
      // Chunked, without end: a chunk every turn until the client hangs up.
      (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(8192, 0x20);
        const more = (): void => {
          if (res.destroyed) return void closed.push(true);
          res.write(chunk, () => setImmediate(more));
        };
        req.socket.on('close', () => closed.push(true));
        more();
      },
      // A gzip bomb: a few KB that decompress to 10 MB.
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20)));
      },
    ];
    for (const handler of cases) {
      server.handle(handler);
      await expectSqlError(small.sql(`SELECT a FROM ML_PREDICT(TABLE one, MODEL big, DESCRIPTOR(txt))`), '54000', /answer of http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions is over this server's limit of 65536 bytes/);
      // Not retried: the same server would send the same answer.
      expect(server.seen).toHaveLength(1);
    }
    await small.close();
    while (closed.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  });

  it('waits out Retry-After past retry-max-delay, but at most the server\'s cap on retry delays (years, a date far ahead), without a timer overflow', async () => {
    const capped = await openDuckDB(undefined, { resourceCaps: { maxRetryDelayMs: 400 } });
    await capped.sql(`CREATE TABLE one AS SELECT 'only' AS txt`);
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const asks = ['99999999999', 'Fri, 31 Dec 9999 23:59:59 GMT'];
      let calls = 0;
      server.handle((_req, res) => {
        const ask = asks[calls++];
        if (ask !== undefined) return json(res, 429, JSON.stringify({ error: { message: 'slow down', type: 'requests', code: 'rate_limit_exceeded' } }), { 'retry-after': ask });
        json(res, 200, completion('after the wait'));
      });
      await capped.sql(`CREATE MODEL patient INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/chat/completions', 'model' = 'm', 'api-key' = '${KEY}', 'cache' = 'false', ${FAST})`);
      expect((await capped.sql(`SELECT a FROM ML_PREDICT(TABLE one, MODEL patient, DESCRIPTOR(txt))`)).rows).toEqual([['after the wait']]);
      expect(calls).toBe(3);
    } finally {
      process.off('warning', onWarning);
      await capped.close();
    }
    expect(warnings).not.toContain('TimeoutOverflowWarning');
  });

  it('keeps a provider\'s error message to 1000 characters, masking the key before the cut', async () => {
    const message = `${'x'.repeat(900)}${KEY}${'y'.repeat(2_000_000)}`;
    server.handle((_req, res) => json(res, 400, JSON.stringify({ error: { message, type: 'invalid_request_error', code: null } })));
    await model('wordy', 'a STRING, `error-string` STRING', `'error-handling-strategy' = 'IGNORE'`);
    const r = await db.sql(`SELECT a, "error-string" FROM ML_PREDICT(TABLE one, MODEL wordy, DESCRIPTOR(txt))`);
    const kept = String(r.rows[0]![1]);
    expect(kept.length).toBeLessThan(1100);
    expect(kept).toMatch(/^400 x+\*{6}y+… \(\d+ characters\)$/);
    expect(kept).not.toContain(KEY.slice(0, 5));
    await model('wordy', 'a STRING');
    const error = await expectSqlError(db.sql(`SELECT a FROM ML_PREDICT(TABLE one, MODEL wordy, DESCRIPTOR(txt))`), '38000', /openai model request failed: 400 x+/);
    expect(error.message.length).toBeLessThan(1200);
    expect(formatError(error)).not.toContain(KEY.slice(0, 5));
  });

  it('makes an answer nested deeper than the stack a row error, not a crash', async () => {
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    server.handle((_req, res) => json(res, 200, completion(deep)));
    await model('nested', 'n INT, s STRING, `error-string` STRING', `'error-handling-strategy' = 'IGNORE'`);
    const r = await db.sql(`SELECT n, s, "error-string" FROM ML_PREDICT(TABLE one, MODEL nested, DESCRIPTOR(txt))`);
    expect(r.rows).toEqual([[null, null, expect.stringMatching(/^the answer could not be read: Maximum call stack size exceeded/)]]);
    await model('nested', 'n INT, s STRING', `'retry-num' = '1'`);
    await expectSqlError(db.sql(`SELECT n FROM ML_PREDICT(TABLE one, MODEL nested, DESCRIPTOR(txt))`), '38000', /answer could not be read/);
  });

  it('puts embeddings on the rows their indexes name, and refuses indexes that repeat, are missing or fall outside the request', async () => {
    let indexes: (n: number) => unknown[] = (n) => [...Array(n).keys()].reverse();
    server.handle((_req, res, body) => {
      const input = (JSON.parse(body) as { input: string[] }).input;
      const order = indexes(input.length);
      // Item k carries index order[k]: the vector of the text at that index.
      const data = order.map((index) => ({ object: 'embedding', index, embedding: [typeof index === 'number' ? input[index]?.length ?? -1 : -1, 0] }));
      json(res, 200, JSON.stringify({ object: 'list', data, model: 'm', usage: { prompt_tokens: 1, total_tokens: 1 } }));
    });
    await db.sql(`CREATE OR REPLACE TABLE words AS SELECT * FROM (VALUES ('a'), ('bb'), ('ccc')) v(txt)`);
    await model('emb', 'v ARRAY<FLOAT>, `error-string` STRING', `'batch-size' = '3', 'error-handling-strategy' = 'IGNORE'`, '/v1/embeddings');
    const answered = await db.sql(`SELECT txt, v FROM ML_PREDICT(TABLE words, MODEL emb, DESCRIPTOR(txt)) ORDER BY txt`);
    expect(answered.rows).toEqual([['a', [1, 0]], ['bb', [2, 0]], ['ccc', [3, 0]]]);
    for (const bad of [() => [1, 1, 0], () => [0, 1, 3], () => [0, 1, -1], () => [0, '1', 2], () => [0, 1, null]]) {
      indexes = bad;
      const r = await db.sql(`SELECT v, "error-string" FROM ML_PREDICT(TABLE words, MODEL emb, DESCRIPTOR(txt))`);
      for (const [v, error] of r.rows) expect([v, error]).toEqual([null, expect.stringMatching(/indexes are not each of 0 to 2 once/)]);
    }
  });

  it('never serves a cached answer to a model whose OUTPUT places the answer in another column', async () => {
    server.handle((_req, res) => json(res, 200, completion('the answer')));
    const options = `WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1/chat/completions', 'model' = 'm', 'api-key' = '${KEY}')`;
    await db.sql(`CREATE OR REPLACE MODEL plain INPUT (txt STRING) OUTPUT (a STRING) ${options}`);
    await db.sql(`CREATE OR REPLACE MODEL flagged INPUT (txt STRING) OUTPUT (\`error-string\` STRING, a STRING) ${options}`);
    expect((await db.sql(`SELECT * FROM ML_PREDICT(TABLE one, MODEL plain, DESCRIPTOR(txt))`)).rows).toEqual([['only', 'the answer']]);
    expect((await db.sql(`SELECT * FROM ML_PREDICT(TABLE one, MODEL flagged, DESCRIPTOR(txt))`)).rows).toEqual([['only', null, 'the answer']]);
    // And each is then answered from its own cache entry.
    expect((await db.sql(`SELECT * FROM ML_PREDICT(TABLE one, MODEL plain, DESCRIPTOR(txt))`)).rows).toEqual([['only', 'the answer']]);
    expect((await db.sql(`SELECT * FROM ML_PREDICT(TABLE one, MODEL flagged, DESCRIPTOR(txt))`)).rows).toEqual([['only', null, 'the answer']]);
    expect(server.seen).toHaveLength(2);
  });

  it('fails a request whose answer stalls (after its headers, or a byte at a time) at its timeout, and a cancel stops it', async () => {
    const stalls: Handler[] = [
      // Accepts and never answers.
      () => undefined,
      // Headers, then nothing.
      (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders(),
      // A byte every 50 ms.
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write(' ')), 50);
      },
    ];
    await model('stalled', 'a STRING', `'timeout' = '300ms', 'retry-num' = '1'`);
    for (const stall of stalls) {
      server.handle(stall);
      await expectSqlError(db.sql(`SELECT a FROM ML_PREDICT(TABLE one, MODEL stalled, DESCRIPTOR(txt))`), '38000', /request timed out after 300 ms \(after 1 retry\)/);
      await model('stalled', 'a STRING', `'timeout' = '10min'`);
      server.handle(stall);
      const running = db.sql(`SELECT a FROM ML_PREDICT(TABLE one, MODEL stalled, DESCRIPTOR(txt))`);
      while (server.seen.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      db.cancel();
      await expectSqlError(running, '57014');
      await model('stalled', 'a STRING', `'timeout' = '300ms', 'retry-num' = '1'`);
    }
  });
});

describe('a redirect from a model server', () => {
  const PROVIDERS = [
    { provider: 'openai', path: '/v1/chat/completions', header: 'authorization' },
    { provider: 'anthropic', path: '', header: 'authorization' },
    { provider: 'gemini', path: '/v1beta', header: 'x-goog-api-key' },
  ] as const;
  let db: Session;
  let bouncer: Awaited<ReturnType<typeof startHostile>>;
  let elsewhere: Awaited<ReturnType<typeof startHostile>>;

  beforeAll(async () => {
    bouncer = await startHostile();
    elsewhere = await startHostile();
    db = await openDuckDB();
    await db.sql(`CREATE TABLE one AS SELECT 'only' AS txt`);
  });
  afterAll(async () => {
    await db.close();
    await bouncer.close();
    await elsewhere.close();
  });

  for (const p of PROVIDERS) {
    it(`to another origin does not carry the ${p.provider} key (${p.header}); to the same origin it does`, async () => {
      const refuse: Handler = (_req, res) => json(res, 401, JSON.stringify({ error: { message: 'who are you', type: 'authentication_error', code: 401, status: 'UNAUTHENTICATED' } }));
      const bounce: Handler = (req, res) => {
        if (req.url?.startsWith('/same/')) return refuse(req, res, '');
        res.writeHead(307, { location: `${req.url?.startsWith('/stay') ? '/same' : elsewhere.url}${req.url}` });
        res.end();
      };
      elsewhere.handle(refuse);
      bouncer.handle(bounce);
      const create = (endpoint: string): Promise<unknown> =>
        db.sql(`CREATE OR REPLACE MODEL bounced INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = '${p.provider}', 'endpoint' = '${endpoint}', 'model' = 'm', 'api-key' = '${KEY}', 'cache' = 'false', 'retry-num' = '0')`);
      await create(`${bouncer.url}${p.path}`);
      await expectSqlError(db.sql(`SELECT a FROM ML_PREDICT(TABLE one, MODEL bounced, DESCRIPTOR(txt))`), '38000', /401/);
      expect(bouncer.seen[0]!.headers[p.header]).toContain(KEY);
      expect(elsewhere.seen).toHaveLength(1);
      expect(JSON.stringify(elsewhere.seen[0]!.headers)).not.toContain(KEY);

      bouncer.handle(bounce);
      await create(`${bouncer.url}/stay${p.path}`);
      await expectSqlError(db.sql(`SELECT a FROM ML_PREDICT(TABLE one, MODEL bounced, DESCRIPTOR(txt))`), '38000', /401/);
      expect(bouncer.seen.map((s) => s.path.split('/')[1])).toEqual(['stay', 'same']);
      expect(bouncer.seen[1]!.headers[p.header]).toContain(KEY);
    });
  }
});
