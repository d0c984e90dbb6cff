/**
 * The Postgres proxy with real clients: `pg.Client` (simple and extended protocol, COPY,
 * LISTEN/NOTIFY, cancel) and `psql` as a subprocess, plain SQL and model SQL, bad input.
 */
import { execFile } from 'node:child_process';
import type { Socket } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { startCountingServer } from '../../support/counting-server.js';
import { linearExpected, writeModelFiles, type ModelFiles } from '../../support/model-files.js';
import { createPointsAndModel, errorCodes, eventually, leftoverTempTables, proxyFixture, rawClient, relayThreadPolicies, startupPacket, type ProxyFixture } from './proxy-helpers.js';

const run = promisify(execFile);

let fx: ProxyFixture;
let models: ModelFiles;
let db: pg.Client;

beforeAll(async () => {
  models = writeModelFiles();
  fx = await proxyFixture();
  db = await fx.client();
  await createPointsAndModel(db, models.linear);
}, 60_000);

afterAll(async () => {
  await fx?.close();
});


/** The messages in `bytes`, type and body (https://www.postgresql.org/docs/current/protocol-message-formats.html). */
function messagesOf(bytes: Buffer): { type: string; body: Buffer }[] {
  const out: { type: string; body: Buffer }[] = [];
  for (let at = 0; at + 5 <= bytes.length && at + 1 + bytes.readInt32BE(at + 1) <= bytes.length; at += 1 + bytes.readInt32BE(at + 1)) {
    out.push({ type: String.fromCharCode(bytes[at]!), body: bytes.subarray(at + 5, at + 1 + bytes.readInt32BE(at + 1)) });
  }
  return out;
}

/** Backends connected to the test database. */
async function backends(client: pg.Client): Promise<number> {
  const { rows } = await client.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()');
  return rows[0].n as number;
}

describe('pass-through', () => {
  test('plain and parameterised queries', async () => {
    expect((await db.query('SELECT 1 AS x, $1::int + 1 AS y', [41])).rows).toEqual([{ x: 1, y: 42 }]);
    expect((await db.query({ text: 'SELECT $1::text AS s', values: ["it's"] })).rows[0].s).toBe("it's");
    const many = await db.query('SELECT i FROM generate_series(1, 50000) i');
    expect(many.rowCount).toBe(50000);
  });

  test('transactions: commit, rollback, failed block', async () => {
    await db.query('CREATE TABLE tx (v int)');
    await db.query('BEGIN');
    await db.query('INSERT INTO tx VALUES (1)');
    await db.query('ROLLBACK');
    await db.query('BEGIN');
    await db.query('INSERT INTO tx VALUES (2)');
    await db.query('COMMIT');
    await db.query('BEGIN');
    await expect(db.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
    await expect(db.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    await db.query('ROLLBACK');
    expect((await db.query('SELECT array_agg(v) AS v FROM tx')).rows[0].v).toEqual([2]);
  });

  test('prepared statements (named, reused)', async () => {
    for (const n of [1, 2, 3]) {
      const r = await db.query({ name: 'twice', text: 'SELECT $1::int * 2 AS d', values: [n] });
      expect(r.rows[0].d).toBe(n * 2);
    }
  });

  test('errors keep SQLSTATE and position', async () => {
    await expect(db.query('SELECT nope FROM pts')).rejects.toMatchObject({ code: '42703', position: '8' });
    await expect(db.query('SELEC 1')).rejects.toMatchObject({ code: '42601', position: '1' });
    expect((await db.query('SELECT 2 AS ok')).rows[0].ok).toBe(2);
  });

  test('NOTICE is relayed', async () => {
    const notices: string[] = [];
    const onNotice = (n: { message?: string }): void => void notices.push(n.message ?? '');
    db.on('notice', onNotice);
    await db.query(`DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$`);
    db.off('notice', onNotice);
    expect(notices).toEqual(['hello from plpgsql']);
  });

  test('LISTEN / NOTIFY between two clients', async () => {
    const listener = await fx.client();
    const notifier = await fx.client();
    await listener.query('LISTEN chan');
    const got = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(n.payload ?? '')));
    await notifier.query(`NOTIFY chan, 'payload-1'`);
    await expect(got).resolves.toBe('payload-1');
  });

  test('COPY FROM STDIN and TO STDOUT', async () => {
    await db.query('CREATE TABLE cp (i int, s text)');
    const lines = Array.from({ length: 5000 }, (_, i) => `${i}\trow ${i}\n`);
    await pipeline(Readable.from(lines), db.query(copyStreams.from('COPY cp FROM STDIN')));
    expect((await db.query('SELECT count(*)::int AS n, sum(i)::int AS s FROM cp')).rows[0]).toEqual({ n: 5000, s: (4999 * 5000) / 2 });
    const chunks: Buffer[] = [];
    await pipeline(
      db.query(copyStreams.to('COPY (SELECT i, s FROM cp ORDER BY i LIMIT 3) TO STDOUT')),
      new Writable({
        write(chunk: Buffer, _e, cb) {
          chunks.push(chunk);
          cb();
        },
      }),
    );
    expect(Buffer.concat(chunks).toString()).toBe('0\trow 0\n1\trow 1\n2\trow 2\n');
  });

  test('raw simple queries: several in one write, one split over writes, one larger than a read, model SQL among them', async () => {
    // A logged-in connection taken over from pg.Client: the bytes sent and received are the test's own.
    const client = await fx.client();
    const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
    socket.removeAllListeners('data');
    const received: Buffer[] = [];
    socket.on('data', (b: Buffer) => received.push(b));
    const q = (sql: string): Buffer => {
      const body = Buffer.from(`${sql}\0`);
      const head = Buffer.alloc(5);
      head.write('Q');
      head.writeInt32BE(body.length + 4, 1);
      return Buffer.concat([head, body]);
    };
    /** The first column of every DataRow once `n` ReadyForQuery have arrived. */
    const answers = async (n: number): Promise<string[]> => {
      await eventually(async () => messagesOf(Buffer.concat(received)).filter((m) => m.type === 'Z').length >= n, 20_000, `${n} ReadyForQuery`);
      const values = messagesOf(Buffer.concat(received.splice(0)))
        .filter((m) => m.type === 'D')
        .map((m) => m.body.toString('utf8', 6, 6 + m.body.readInt32BE(2)));
      return values;
    };
    // The model query arrives while the plain ones still run: it must wait for their answers.
    socket.write(Buffer.concat([q('SELECT 1'), q('SELECT 2'), q('SELECT pg_sleep(0.3)::text || 3')]));
    await new Promise((r) => setTimeout(r, 50));
    socket.write(q('SELECT y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id = 4), MODEL lin, DESCRIPTOR(a, b))'));
    const [one, two, three, predicted] = await answers(4);
    expect([one, two, three]).toEqual(['1', '2', '3']);
    expect(Number(predicted)).toBeCloseTo(linearExpected(2, 6), 4);
    socket.write(Buffer.concat([q('SELECT 4'), q('SELECT y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id = 2), MODEL lin, DESCRIPTOR(a, b))'), q(`SELECT 'model' || 5`)]));
    const [four, y, five] = await answers(3);
    expect([four, five]).toEqual(['4', 'model5']);
    expect(Number(y)).toBeCloseTo(linearExpected(1, 8), 4);
    const split = q('SELECT 6');
    socket.write(split.subarray(0, 7));
    await new Promise((r) => setTimeout(r, 20));
    socket.write(split.subarray(7));
    expect(await answers(1)).toEqual(['6']);
    socket.write(q(`SELECT length('${'x'.repeat(300_000)}')`));
    expect(await answers(1)).toEqual(['300000']);
    socket.write(q('SELECT 7'));
    expect(await answers(1)).toEqual(['7']);
    socket.destroy();
  });

  test('SET and session state stay on the client’s own upstream session', async () => {
    const a = await fx.client();
    const b = await fx.client();
    await a.query(`SET application_name = 'client-a'`);
    expect((await a.query('SHOW application_name')).rows[0].application_name).toBe('client-a');
    expect((await b.query('SHOW application_name')).rows[0].application_name).not.toBe('client-a');
  });
});

describe('model SQL', () => {
  test('CREATE MODEL with an unset ${env:...} variable succeeds with a NoticeResponse naming it (simple and extended protocol)', async () => {
    delete process.env['MODELSQL_PROXY_UNSET_KEY'];
    const notices: { message?: string; severity?: string; code?: string }[] = [];
    const onNotice = (n: { message?: string; severity?: string; code?: string }): void => {
      notices.push({ message: n.message, severity: n.severity, code: n.code });
    };
    db.on('notice', onNotice);
    try {
      const create = (name: string) =>
        `CREATE MODEL ${name} INPUT (t STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'm', 'api-key' = '\${env:MODELSQL_PROXY_UNSET_KEY}')`;
      const simple = await db.query(create('later_simple'));
      expect(simple.command).toBe('CREATE');
      await db.query({ text: create('later_extended'), queryMode: 'extended' } as pg.QueryConfig);
      expect(notices).toEqual([
        { message: expect.stringContaining('environment variable MODELSQL_PROXY_UNSET_KEY, which is not set'), severity: 'NOTICE', code: '00000' },
        { message: expect.stringContaining('environment variable MODELSQL_PROXY_UNSET_KEY, which is not set'), severity: 'NOTICE', code: '00000' },
      ]);
    } finally {
      db.off('notice', onNotice);
    }
  });

  test('ML_PREDICT through the simple protocol matches JS arithmetic', async () => {
    const { rows } = await db.query('SELECT id, a, b, y FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) ORDER BY id');
    expect(rows).toHaveLength(20);
    for (const r of rows) expect(r.y).toBeCloseTo(linearExpected(r.a, r.b), 4);
  });

  test('ML_PREDICT through the extended protocol with $1 in the input query', async () => {
    const { rows, fields } = await db.query('SELECT id, y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id <= $1), MODEL lin, DESCRIPTOR(a, b)) ORDER BY id', [3]);
    expect(fields.map((f) => f.name)).toEqual(['id', 'y']);
    expect(rows).toEqual([1, 2, 3].map((id) => ({ id, y: expect.closeTo(linearExpected(id * 0.5, 10 - id), 4) })));
  });

  test('VECTOR_SEARCH through the simple and the extended protocol (a statement with no other model syntax)', async () => {
    await db.query('CREATE TABLE vs_docs (id int, embedding float8[])');
    await db.query('INSERT INTO vs_docs VALUES (1, ARRAY[1.0, 0.0]), (2, ARRAY[0.0, 1.0]), (3, ARRAY[1.0, 1.0])');
    const sql = `SELECT id, round(score::numeric, 6) AS score FROM TABLE(VECTOR_SEARCH(TABLE vs_docs, ARRAY[1.0, 0.1], DESCRIPTOR(embedding), 2, MAP['metric', 'l2']))`;
    const brute = 'SELECT id, round(sqrt((embedding[1] - 1.0) ^ 2 + (embedding[2] - 0.1) ^ 2)::numeric, 6) AS score FROM vs_docs ORDER BY score LIMIT 2';
    const expected = (await db.query(brute)).rows;
    expect((await db.query(sql)).rows).toEqual(expected);
    expect((await db.query({ text: sql.replace('FROM TABLE', 'FROM (SELECT $1::int AS one) AS p, TABLE'), values: [1] })).rows).toEqual(expected);
    await expect(db.query('SELECT * FROM TABLE(VECTOR_SEARCH(TABLE vs_docs, ARRAY[1.0, 0.1], DESCRIPTOR(embedding), 0))')).rejects.toMatchObject({ code: '22023' });
    // Errors the search's own SQL raises reach the client with their SQLSTATE (not the 22P02 of the cast that raises them).
    await expect(db.query('SELECT * FROM TABLE(VECTOR_SEARCH(TABLE vs_docs, ARRAY[1.0, 0.1, 0.2], DESCRIPTOR(embedding), 2))')).rejects.toMatchObject({
      code: '22023',
      message: expect.stringMatching(/^VECTOR_SEARCH: the query vector has 3 dimensions, but the vectors of column "embedding" have 2/),
    });
    await expect(db.query('SELECT * FROM TABLE(VECTOR_SEARCH(TABLE vs_docs, ARRAY[[1.0], [0.1]], DESCRIPTOR(embedding), 2))')).rejects.toMatchObject({ code: '2202E', message: expect.stringMatching(/2-dimensional array/) });
    // Two columns of one name, searched as DuckDB searches them.
    const twice = await db.query(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE (SELECT id, id, embedding FROM vs_docs), ARRAY[1.0, 0.1], DESCRIPTOR(embedding), 1))`);
    expect(twice.fields.map((f) => f.name)).toEqual(['id', 'id', 'embedding', 'score']);
    expect(twice.rows).toHaveLength(1);
  });

  test('a named prepared model statement runs again with other values', async () => {
    for (const limit of [2, 5]) {
      const r = await db.query({ name: 'pred', text: 'SELECT count(*)::int AS n FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id <= $1), MODEL lin, DESCRIPTOR(a, b))', values: [limit] });
      expect(r.rows[0].n).toBe(limit);
    }
  });

  test('SHOW MODELS and DESCRIBE MODEL answer with typed columns', async () => {
    const shown = await db.query('SHOW MODELS');
    expect(shown.rows.map((r) => r.model_name)).toContain('lin');
    expect(shown.fields.find((f) => f.name === 'default_version')?.dataTypeID).toBe(23);
    const described = await db.query('DESCRIBE MODEL lin');
    expect(described.rows.length).toBeGreaterThan(0);
  });

  test('a mixed script: host statements and model statements in order', async () => {
    const results = (await db.query(
      `CREATE TABLE mixed AS SELECT * FROM pts WHERE id <= 4; SELECT count(*) FROM ML_PREDICT(TABLE mixed, MODEL lin, DESCRIPTOR(a, b)); SHOW MODELS; SELECT 'done' AS d`,
    )) as unknown as pg.QueryResult[];
    expect(results).toHaveLength(4);
    expect(results[1]!.rows[0].count).toBe('4');
    expect(results[3]!.rows[0].d).toBe('done');
  });

  test('model errors carry their SQLSTATE and position', async () => {
    await expect(db.query('SELECT * FROM ML_PREDICT(TABLE pts, MODEL missing_model, DESCRIPTOR(a, b))')).rejects.toMatchObject({ code: '42704' });
    const err = await db.query('SELECT 1; CREATE MODEL bad WITH (').catch((e: pg.DatabaseError) => e);
    expect(err).toMatchObject({ code: '42601' });
    expect(Number((err as pg.DatabaseError).position)).toBeGreaterThan(10);
    const pos = await db.query('SELECT * FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(nope))').catch((e: pg.DatabaseError) => e);
    expect((pos as pg.DatabaseError).code).toMatch(/^42/);
    expect((await db.query('SELECT 3 AS still_ok')).rows[0].still_ok).toBe(3);
  });

  test('a failed model statement aborts the transaction block, as Postgres would', async () => {
    await db.query('BEGIN');
    await expect(db.query('SELECT * FROM ML_PREDICT(TABLE pts, MODEL missing_model, DESCRIPTOR(a, b))')).rejects.toMatchObject({ code: '42704' });
    await expect(db.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
    await db.query('ROLLBACK');
  });

  test('an input error in the middle of a stage reaches the client; nothing is left behind', async () => {
    const c = await fx.client();
    const failing = 'SELECT count(*) FROM ML_PREDICT(TABLE (SELECT CAST(i AS float8) AS a, 1.0 / (i - 150000) AS b FROM generate_series(1, 200000) AS i), MODEL lin, DESCRIPTOR(a, b))';
    await expect(c.query(failing)).rejects.toMatchObject({ code: '22012' });
    expect(await leftoverTempTables(c)).toBe(0);
    expect((await c.query('SELECT 1 AS after')).rows[0].after).toBe(1);
  });

  test('ML_PREDICT inside a transaction, rolled back with it', async () => {
    await db.query('BEGIN');
    await db.query('CREATE TABLE in_tx AS SELECT id, y FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))');
    expect((await db.query('SELECT count(*)::int AS n FROM in_tx')).rows[0].n).toBe(20);
    await db.query('ROLLBACK');
    await expect(db.query('SELECT 1 FROM in_tx')).rejects.toMatchObject({ code: '42P01' });
    expect(await leftoverTempTables(db)).toBe(0);
  });
});

describe('psql', () => {
  const psql = (args: readonly string[]) => run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', fx.proxyUrl, ...args], { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } });

  test('-c, \\d and \\copy', async () => {
    expect((await psql(['-Atc', 'SELECT 40 + 2'])).stdout.trim()).toBe('42');
    const d = await psql(['-c', '\\d pts']);
    expect(d.stdout).toMatch(/double precision/);
    const dir = mkdtempSync(join(tmpdir(), 'modelsql-psql-'));
    const file = join(dir, 'pts.csv');
    await psql(['-c', `\\copy pts TO '${file}' CSV`]);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(20);
    await psql(['-c', 'CREATE TABLE pts_copy (LIKE pts)']);
    await psql(['-c', `\\copy pts_copy FROM '${file}' CSV`]);
    expect((await db.query('SELECT count(*)::int AS n FROM pts_copy')).rows[0].n).toBe(20);
  });

  test('a multi-statement script with model SQL (-f)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelsql-psql-'));
    const script = join(dir, 'script.sql');
    writeFileSync(
      script,
      `CREATE MODEL lin2 INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.linear}');
CREATE TABLE scored AS SELECT id, y FROM ML_PREDICT(TABLE pts, MODEL lin2, DESCRIPTOR(a, b));
SELECT count(*) FROM scored;
SHOW MODELS;
DROP MODEL lin2;
`,
    );
    const { stdout } = await psql(['-At', '-f', script]);
    expect(stdout).toMatch(/^CREATE MODEL$/m);
    expect(stdout).toMatch(/^20$/m);
    expect(stdout).toMatch(/lin2/);
    const y = await db.query('SELECT y FROM scored WHERE id = 4');
    expect(y.rows[0].y).toBeCloseTo(linearExpected(2, 6), 4);
  });

  test('a failing statement stops the script with the error and its position', async () => {
    const failed = await psql(['-c', 'SELECT * FROM ML_PREDICT(TABLE pts, MODEL nope, DESCRIPTOR(a))']).catch((e: { stderr: string; code: number }) => e);
    expect((failed as { code: number }).code).not.toBe(0);
    expect((failed as { stderr: string }).stderr).toMatch(/nope/);
  });
});

describe('modelsql proxy (CLI)', () => {
  test("serves psql until SIGTERM; --max-batch-size caps batch-size (22023 one past it); --max-response-bytes bounds a model server's answer (54000); --relay-scheduling normal", async () => {
    const { spawn } = await import('node:child_process');
    const main = join(process.cwd(), 'dist', 'cli', 'main.js');
    const upstream = new URL(fx.directUrl);
    // Its chat completion answers are about 250 bytes.
    const server = await startCountingServer();
    const child = spawn(
      process.execPath,
      [main, 'proxy', '--upstream', `postgres://${upstream.host}${upstream.pathname}?sslmode=disable`, '--listen', '127.0.0.1:0', '--model-dir', '/', '--max-batch-size', '8', '--allow-endpoint', `${server.url}/`, '--max-response-bytes', '100', '--relay-scheduling', 'normal'],
      { stdio: 'pipe', env: { ...process.env, MODELSQL_SECRET_KEY: 'c0de'.repeat(16) } },
    );
    try {
      let stderr = '';
      const port = await new Promise<number>((resolve, reject) => {
        child.stderr.on('data', (b: Buffer) => {
          stderr += b.toString();
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', () => reject(new Error(`proxy exited: ${stderr}`)));
      });
      const through = new URL(fx.directUrl);
      through.host = `127.0.0.1:${port}`;
      const { stdout } = await run('psql', ['-X', '-At', through.toString(), '-c', 'SHOW MODELS']);
      expect(stdout).toMatch(/^lin\|/m);
      // A plain query: the proxy hands the idle session to its native relay, whose thread runs under SCHED_OTHER (policy 0).
      await run('psql', ['-X', '-At', through.toString(), '-c', 'SELECT 1']);
      await eventually(async () => relayThreadPolicies(child.pid!).join() === '0', 10_000, 'the relay thread under SCHED_OTHER');
      const call = (size: number) => `SELECT count(*) FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b), MAP['batch-size', '${size}'])`;
      expect((await run('psql', ['-X', '-At', through.toString(), '-c', call(8)])).stdout).toMatch(/^\d+$/m);
      const past = await run('psql', ['-X', '-At', '-v', 'VERBOSITY=verbose', through.toString(), '-c', call(9)]).catch((e: { stderr: string }) => e);
      expect((past as { stderr: string }).stderr).toMatch(/ERROR: {2}22023: option 'batch-size' is 9, over this server's cap of 8 \(--max-batch-size\)/);
      await run('psql', ['-X', '-At', through.toString(), '-c', `CREATE MODEL chatty INPUT (q STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'm', 'api-key' = 'k')`]);
      const answer = await run('psql', ['-X', '-At', '-v', 'VERBOSITY=verbose', through.toString(), '-c', "SELECT a FROM ML_PREDICT(TABLE (SELECT 'hi' AS q), MODEL chatty, DESCRIPTOR(q))"]).catch((e: { stderr: string }) => e);
      expect((answer as { stderr: string }).stderr).toMatch(/ERROR: {2}54000: the answer of http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions is over this server's limit of 100 bytes/);
      expect(server.count).toBe(1);
      await run('psql', ['-X', '-At', through.toString(), '-c', 'DROP MODEL chatty']);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await expect(exited).resolves.toBe(0);
      await server.close();
    }
  });
});

describe('bad input', () => {
  test('malformed and truncated messages get 08P01 and a close; other clients keep working', async () => {
    // A bad length in the startup packet.
    const bad = await rawClient(fx.proxy.port);
    bad.socket.write(Buffer.from([0, 0, 0, 2, 0, 0]));
    await bad.closed;
    expect(errorCodes(bad.received())).toEqual(['08P01']);

    // An unknown startup code.
    const unknown = await rawClient(fx.proxy.port);
    unknown.socket.write(Buffer.from([0, 0, 0, 8, 0x12, 0x34, 0x56, 0x78]));
    await unknown.closed;
    expect(errorCodes(unknown.received())).toEqual(['08P01']);

    // A truncated startup packet, then end of input.
    const truncated = await rawClient(fx.proxy.port);
    truncated.socket.end(startupPacket('postgres', 'x').subarray(0, 10));
    await truncated.closed;
    expect(errorCodes(truncated.received())).toEqual(['08P01']);

    // After authentication: an unknown message type, and a negative length.
    for (const garbage of [Buffer.from([0x7a, 0, 0, 0, 4]), Buffer.from([0x51, 0xff, 0xff, 0xff, 0xf0])]) {
      const c = await fx.client();
      const socket = (c as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream;
      const received: Buffer[] = [];
      socket.on('data', (b: Buffer) => received.push(b));
      const ended = new Promise((resolve) => c.once('end', resolve));
      socket.write(garbage);
      await ended;
      expect(errorCodes(Buffer.concat(received))).toEqual(['08P01']);
    }

    // An oversized message claims more than the limit.
    const huge = await fx.client();
    const hugeSocket = (huge as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream;
    const hugeEnded = new Promise((resolve) => huge.once('end', resolve));
    hugeSocket.write(Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]));
    await hugeEnded;

    expect((await db.query('SELECT 1 AS alive')).rows[0].alive).toBe(1);
  });

  test('a truncated message mid-session followed by a half-close', async () => {
    const c = await rawClient(fx.proxy.port);
    const url = new URL(fx.directUrl);
    c.socket.write(startupPacket(url.username, url.pathname.slice(1)));
    await eventually(async () => c.received().includes(Buffer.from('R')), 5000, 'auth request');
    // Half a PasswordMessage, then the client shuts its side.
    c.socket.end(Buffer.from([0x70, 0, 0, 0, 40, 0x61]));
    await c.closed;
    expect(errorCodes(c.received())).toContain('08P01');
  });
});

describe('cancel and disconnect', () => {
  beforeAll(async () => {
    await db.query('CREATE TABLE big AS SELECT i AS id, (i % 100)::float8 AS a, (i % 7)::float8 AS b FROM generate_series(1, 1500000) i');
  }, 60_000);

  test('CancelRequest stops a long pg_sleep', async () => {
    const c = await fx.client();
    const started = Date.now();
    const sleeping = c.query('SELECT pg_sleep(30)');
    await new Promise((r) => setTimeout(r, 300));
    await cancelThrough(c);
    await expect(sleeping).rejects.toMatchObject({ code: '57014' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await c.query('SELECT 1 AS after')).rows[0].after).toBe(1);
  });

  test('CancelRequest stops a long ML_PREDICT and its inference', async () => {
    const c = await fx.client();
    const predicting = c.query('SELECT count(*) FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b))');
    await eventually(async () => (await leftoverTempTables(db)) > 0, 30_000, 'the stage to start');
    // Timed from the cancel: how long the input takes to copy depends on the machine.
    const started = Date.now();
    await cancelThrough(c);
    await expect(predicting).rejects.toMatchObject({ code: '57014' });
    expect(Date.now() - started).toBeLessThan(20_000);
    await eventually(async () => (await leftoverTempTables(db)) === 0, 10_000, 'temporary tables to go');
    expect((await c.query('SELECT 1 AS after')).rows[0].after).toBe(1);
  });

  test('a client that disconnects mid ML_PREDICT: inference stops, temp tables go, the session is released', async () => {
    const before = await backends(db);
    const c = await fx.client();
    const failed = c.query('SELECT count(*) FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b))').catch(() => undefined);
    await eventually(async () => (await leftoverTempTables(db)) > 0, 30_000, 'the stage to start');
    (c as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream.destroy();
    await failed;
    await eventually(async () => (await leftoverTempTables(db)) === 0, 15_000, 'temporary tables to go');
    await eventually(async () => (await backends(db)) <= before, 15_000, 'the upstream session to end');
  });
});

/** Cancels the client's statement with a CancelRequest to the proxy (pg sends it with the key the proxy gave). */
async function cancelThrough(client: pg.Client): Promise<void> {
  const internals = client as unknown as { processID: number; secretKey: number };
  const { connect } = await import('node:net');
  await new Promise<void>((resolve) => {
    const socket = connect(fx.proxy.port, '127.0.0.1', () => {
      const m = Buffer.alloc(16);
      m.writeInt32BE(16, 0);
      m.writeInt32BE(80877102, 4);
      m.writeInt32BE(internals.processID, 8);
      m.writeInt32BE(internals.secretKey, 12);
      socket.end(m);
    });
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

describe('concurrency', () => {
  test('50 concurrent clients mixing plain and model queries: right answers, no cross-talk, nothing leaked', async () => {
    const before = await backends(db);
    const clients = await Promise.all(Array.from({ length: 50 }, () => fx.client()));
    await Promise.all(
      clients.map(async (c, k) => {
        await c.query(`SET application_name = 'c${k}'`);
        for (let round = 0; round < 3; round++) {
          if ((k + round) % 2 === 0) {
            const r = await c.query('SELECT current_setting($1) AS app, $2::int AS k', ['application_name', k]);
            expect(r.rows[0]).toEqual({ app: `c${k}`, k });
          } else {
            const id = (k % 20) + 1;
            const r = await c.query(`SELECT id, y, current_setting('application_name') AS app FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id = ${id}), MODEL lin, DESCRIPTOR(a, b))`);
            expect(r.rows).toEqual([{ id, y: expect.closeTo(linearExpected(id * 0.5, 10 - id), 4), app: `c${k}` }]);
          }
        }
      }),
    );
    await Promise.all(clients.map((c) => c.end()));
    await eventually(async () => (await backends(db)) <= before, 20_000, 'sessions to be released');
    expect(await leftoverTempTables(db)).toBe(0);
  }, 120_000);
});
