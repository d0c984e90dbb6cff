/**
 * The native relay (adapters/postgres/proxy/native-relay.ts, native-handover.ts): plain
 * pass-through sessions are carried by its thread, and every path back to JavaScript keeps
 * the session's behaviour: a model statement after plain ones, pipelined and split queries,
 * a message larger than the thread's buffer, errors, ParameterStatus, COPY, a client or an
 * upstream that goes away, graceful shutdown, and exact byte counts. The native relay must
 * be built (`npm install` builds it): the first test fails when it is not.
 */
import pg from 'pg';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import copyStreams from 'pg-copy-streams';
import { loadNativeRelay } from '../../../adapters/postgres/proxy/native-relay.js';
import { bytesMayHoldModelSyntax } from '../../../adapters/postgres/proxy/model-router.js';
import { writeModelFiles } from '../../support/model-files.js';
import { dataRowNumbers, errorCodes, eventually, messageTypes, proxyFixture, queryMessage as query, readyCount, takeOverClient, threadPolicy, type ProxyFixture, type RawClient } from './proxy-helpers.js';

let fx: ProxyFixture;
let linear: string;

/** The value of a metric line `name{labels} value` in the scraped text (0 when absent). */
function metric(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function scrape(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${fx.proxy.metrics!.port}/metrics`)).text();
}

/** Messages the native relay has carried so far. */
async function nativeMessages(): Promise<number> {
  return metric(await scrape(), 'modelsql_proxy_native_relayed_messages_total');
}

/** A logged-in connection through the proxy taken over from pg.Client: the bytes sent and received are the test's own. */
function rawSession(): Promise<RawClient> {
  return takeOverClient(fx);
}

beforeAll(async () => {
  linear = writeModelFiles().linear;
  fx = await proxyFixture({ metrics: 0 });
  const c = await fx.direct();
  await c.query('CREATE TABLE pts (id int PRIMARY KEY, a float8, b float8)');
  await c.query('INSERT INTO pts SELECT i, i * 0.5, 10 - i FROM generate_series(1, 20) i');
});
afterAll(async () => {
  await fx?.close();
});

test('the native relay is built and loads', () => {
  const native = loadNativeRelay();
  expect(native.problem).toBeUndefined();
  expect(native.relay).toBeDefined();
});

test('the native pre-filter for model syntax agrees with the JavaScript one', () => {
  const relay = loadNativeRelay().relay!;
  const words = ['model', 'MODEL', 'MoDeL', 'mode', 'modl', 'models', 'ml_', 'ML_', 'Ml_predict', 'ml', 'mlx', 'm l_', 'materialized', 'MATERIALIZED', 'Materialize', 'materializ', 'aterialized', 'odel', 'l_'];
  const corpus = ['', 'm', 'mo', 'mod', 'mode', 'ml', 'select 1', 'SELECT * FROM t', "select 'model'", '-- ml_predict\nselect 1', 'xmodelx', 'amaterializedb', '\u00e9model', 'm\0odel'];
  for (const a of words) for (const b of ['', ' ', 'x', ';', 'M']) corpus.push(`${b}${a}`, `${a}${b}`, `select ${a}${b} from t`);
  // Split tokens: every prefix and suffix of a few positive strings.
  for (const s of ['SELECT ml_predict FROM x', 'create MODEL m', 'MATERIALIZED table']) for (let i = 0; i <= s.length; i++) corpus.push(s.slice(0, i), s.slice(i));
  // Bytes that differ from the letters only in bit 0x20 (not letters at all).
  corpus.push(Buffer.from([0x4d, 0x0f, 0x04, 0x05, 0x0c]).toString('latin1'), Buffer.from([0x6d, 0x4c, 0x7f]).toString('latin1'), 'M\u004c\u007f');
  let agreed = 0;
  for (const text of corpus) {
    const bytes = Buffer.from(text, 'latin1');
    expect([text, relay.mayHoldModelSyntax(bytes)]).toEqual([text, bytesMayHoldModelSyntax(bytes)]);
    agreed++;
  }
  // Random bytes over the letters that matter.
  const alphabet = Buffer.from('mMoOdDeElL_aAtTrRiIzZ \0\x4d\x0f');
  for (let n = 0; n < 3000; n++) {
    const bytes = Buffer.alloc(1 + (n % 14));
    for (let i = 0; i < bytes.length; i++) bytes[i] = alphabet[(n * 7919 + i * 104729 + ((n * i) >> 3)) % alphabet.length]!;
    expect([bytes.toString('latin1'), relay.mayHoldModelSyntax(bytes)]).toEqual([bytes.toString('latin1'), bytesMayHoldModelSyntax(bytes)]);
    agreed++;
  }
  expect(agreed).toBeGreaterThan(3000);
});

test('plain queries go native, then a model statement on the same session runs in JavaScript, then native again', async () => {
  const c = await fx.client();
  await c.query(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${linear}')`);
  const before = await nativeMessages();
  for (let i = 0; i < 20; i++) expect((await c.query(`SELECT ${i} AS n`)).rows).toEqual([{ n: i }]);
  const afterPlain = await nativeMessages();
  // 20 queries, each answered by RowDescription, DataRow, CommandComplete, ReadyForQuery.
  expect(afterPlain - before).toBeGreaterThanOrEqual(19 * 5);
  const { rows } = await c.query('SELECT id, y FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) ORDER BY id');
  expect(rows).toHaveLength(20);
  expect(rows[0].y).toBeCloseTo(2 * 0.5 + 3 * 9 - 1, 4);
  for (let i = 0; i < 5; i++) expect((await c.query(`SELECT count(*)::int AS n FROM pts WHERE id > ${i}`)).rows).toEqual([{ n: 20 - i }]);
  expect(await nativeMessages()).toBeGreaterThan(afterPlain);
  await c.query('DROP MODEL lin');
});

test('the relay thread is named modelsql-relay, runs under SCHED_BATCH by default, and relayScheduling normal gives SCHED_OTHER', async () => {
  const c = await fx.client();
  const before = await nativeMessages();
  await c.query('SELECT 1');
  await c.query('SELECT 2');
  expect(await nativeMessages()).toBeGreaterThan(before);
  // The relay's thread lives in this process (the fixture's proxy runs in it), named for top -H.
  const tid = loadNativeRelay().relay!.threadId()!;
  expect(readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()).toBe('modelsql-relay');
  expect(threadPolicy(tid)).toBe(3);
  // A proxy started with relayScheduling 'normal' sets the process's thread to SCHED_OTHER at once.
  const lines: string[] = [];
  const normal = await proxyFixture({ relayScheduling: 'normal', logLevel: 'debug', logSink: (line) => lines.push(line) });
  try {
    expect(threadPolicy(tid)).toBe(0);
    expect(lines.join('')).toContain('msg=relay relay=native scheduling=normal');
    const n = await normal.client();
    for (let i = 0; i < 5; i++) expect((await n.query(`SELECT ${i} AS i`)).rows).toEqual([{ i }]);
  } finally {
    await normal.close();
  }
  // And one started with the default sets it back.
  const again = await proxyFixture({});
  await again.close();
  expect(threadPolicy(tid)).toBe(3);
});

test('pipelined queries in one write, a query split across writes, and one larger than the native buffer', async () => {
  const raw = await rawSession();
  // Warm up so the session is native, then several queries in one write.
  raw.socket.write(query('SELECT 1'));
  await readyCount(raw, 2);
  const before = await nativeMessages();
  raw.socket.write(Buffer.concat([query('SELECT 2'), query('SELECT 3'), query('SELECT 4')]));
  await readyCount(raw, 5);
  expect(await nativeMessages()).toBeGreaterThan(before);
  // Split across writes: header, then half the text, then the rest.
  const split = query("SELECT 'split-across-reads' AS s");
  raw.socket.write(split.subarray(0, 3));
  await new Promise((r) => setTimeout(r, 50));
  raw.socket.write(split.subarray(3, 20));
  await new Promise((r) => setTimeout(r, 50));
  raw.socket.write(split.subarray(20));
  await readyCount(raw, 6);
  expect(raw.received().includes('split-across-reads')).toBe(true);
  // 30 KB of query text in two writes: the thread's buffer (4 KB at first) grows to hold it, and relays it itself.
  const medium = query(`SELECT length('${'m'.repeat(30_000)}') AS n`);
  const carried = await nativeMessages();
  raw.socket.write(medium.subarray(0, 10_000));
  await new Promise((r) => setTimeout(r, 50));
  raw.socket.write(medium.subarray(10_000));
  await readyCount(raw, 7);
  expect(raw.received().includes('30000')).toBe(true);
  // Query, then RowDescription, DataRow, CommandComplete, ReadyForQuery: all five by the thread.
  expect((await nativeMessages()) - carried).toBe(5);
  // 200 KB of query text (the thread's buffer is 64 KB at most) and a 300 KB answer.
  const big = `SELECT length('${'x'.repeat(200_000)}') AS n, repeat('y', 300000) AS pad`;
  raw.socket.write(query(big));
  await readyCount(raw, 8);
  expect(raw.received().includes('200000')).toBe(true);
  expect(raw.received().includes('y'.repeat(300_000))).toBe(true);
  raw.socket.write(query('SELECT 5'));
  await readyCount(raw, 9);
  expect(messageTypes(raw.received()).replace(/[^Z]/g, '')).toHaveLength(9);
  expect(errorCodes(raw.received())).toEqual([]);
  raw.socket.end();
  await raw.closed;
});

test('a client that does not read its answers: the native writes block, JavaScript keeps backpressure, every answer arrives in order', async () => {
  const raw = await rawSession();
  raw.socket.write(query('SELECT 1'));
  await readyCount(raw, 2);
  raw.socket.pause();
  // 2,000 answers of ≈ 4 KB: far more than the sockets' buffers hold while the client does not read.
  const count = 2000;
  raw.socket.write(Buffer.concat(Array.from({ length: count }, (_, i) => query(`SELECT ${i} AS n, repeat('x', 4000) AS pad`))));
  await new Promise((r) => setTimeout(r, 300));
  raw.socket.resume();
  await readyCount(raw, 2 + count);
  const bytes = raw.received();
  expect(dataRowNumbers(bytes)).toEqual([1, ...Array.from({ length: count }, (_, i) => i)]);
  expect(errorCodes(bytes)).toEqual([]);
  raw.socket.end();
  await raw.closed;
});

test('an error response goes back through JavaScript, and a failed transaction block keeps its status', async () => {
  const c = await fx.client();
  await c.query('SELECT 1');
  await expect(c.query('SELECT * FROM no_such_table')).rejects.toMatchObject({ code: '42P01' });
  await c.query('BEGIN');
  await c.query('SELECT 1');
  await expect(c.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
  await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' });
  await c.query('ROLLBACK');
  expect((await c.query('SELECT 7 AS n')).rows).toEqual([{ n: 7 }]);
});

test('a SET that changes a reported parameter reaches the client (ParameterStatus)', async () => {
  const raw = await rawSession();
  raw.socket.write(query('SELECT 1'));
  await readyCount(raw, 2);
  raw.socket.write(query("SET application_name = 'native-relay-test'"));
  await readyCount(raw, 3);
  expect(raw.received().includes('native-relay-test')).toBe(true);
  expect(messageTypes(raw.received().subarray(raw.received().lastIndexOf('application_name') - 5))).toContain('S');
  // standard_conforming_strings is reported and read by the proxy's scanner: a model key word in an E'' string with a backslash stays host SQL.
  raw.socket.write(query('SET standard_conforming_strings = off'));
  await readyCount(raw, 4);
  raw.socket.write(query("SELECT 'a\\' model ' AS s"));
  await readyCount(raw, 5);
  expect(errorCodes(raw.received())).toEqual([]);
  expect(raw.received().includes("a' model ")).toBe(true);
  raw.socket.end();
  await raw.closed;
});

test('COPY in and out between native turns', async () => {
  const c = await fx.client();
  await c.query('CREATE TEMP TABLE cp (n int, s text)');
  await c.query('SELECT 1');
  await pipeline(Readable.from(Array.from({ length: 1000 }, (_, i) => `${i}\trow ${i}\n`)), c.query(copyStreams.from('COPY cp FROM STDIN')));
  expect((await c.query('SELECT count(*)::int AS n, sum(n)::int AS s FROM cp')).rows).toEqual([{ n: 1000, s: 499500 }]);
  const chunks: Buffer[] = [];
  const out = c.query(copyStreams.to('COPY (SELECT * FROM cp ORDER BY n) TO STDOUT'));
  for await (const chunk of out) chunks.push(chunk as Buffer);
  expect(Buffer.concat(chunks).toString().split('\n')).toHaveLength(1001);
  expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
});

test('a client that disconnects while native: its upstream session ends', async () => {
  const observer = await fx.direct();
  const raw = await rawSession();
  raw.socket.write(query("SET application_name = 'native-disconnect'"));
  await readyCount(raw, 2);
  raw.socket.write(query('SELECT 1'));
  await readyCount(raw, 3);
  const sessions = async () => (await observer.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'native-disconnect'`)).rows[0].n as number;
  expect(await sessions()).toBe(1);
  raw.socket.destroy();
  await eventually(async () => (await sessions()) === 0, 10_000, 'the upstream session to end');
});

test('an upstream that dies while native: the client gets the server error, others keep working', async () => {
  const observer = await fx.direct();
  const victim = await fx.client({ application_name: 'native-victim' });
  await victim.query('SELECT 1');
  const ended = once(victim, 'error').catch(() => undefined);
  await observer.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'native-victim'`);
  const [error] = (await ended) as [Error & { code?: string }];
  expect(error.code).toBe('57P01');
  const other = await fx.client();
  expect((await other.query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
});

test('metrics count the bytes the native relay carried, exactly', async () => {
  const scrapeBytes = async () => {
    const text = await scrape();
    return { in: metric(text, 'modelsql_proxy_bytes_total', 'direction="in"'), out: metric(text, 'modelsql_proxy_bytes_total', 'direction="out"') };
  };
  // The other clients of the fixture are idle: the counts move with this client alone.
  const before = await scrapeBytes();
  const c = new pg.Client({ connectionString: fx.proxyUrl });
  await c.connect();
  for (let i = 0; i < 30; i++) await c.query(`SELECT ${i} AS n, repeat('x', ${i * 50}) AS pad`);
  const stream = (c as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream;
  const live = await scrapeBytes();
  expect(live.in - before.in).toBe(stream.bytesWritten);
  expect(live.out - before.out).toBe(stream.bytesRead);
  await c.end();
});

test('graceful shutdown reclaims native sessions: a running statement finishes, then 57P01', async () => {
  const own: ProxyFixture = await proxyFixture({ metrics: 0 });
  try {
    const idle = await own.client();
    await idle.query('SELECT 1');
    const busy = await own.client();
    await busy.query('SELECT 1');
    const idleError = once(idle, 'error');
    const busyError = once(busy, 'error');
    const running = busy.query('SELECT pg_sleep(0.5) AS slept');
    await new Promise((r) => setTimeout(r, 100));
    const forced = await own.proxy.shutdown(10_000);
    expect(forced).toBe(0);
    expect((await running).rows).toEqual([{ slept: '' }]);
    expect(((await idleError)[0] as { code?: string }).code).toBe('57P01');
    expect(((await busyError)[0] as { code?: string }).code).toBe('57P01');
  } finally {
    await own.close();
  }
});

test('the debug log says which relay runs, and relay js keeps every message in JavaScript', async () => {
  for (const relay of ['auto', 'js'] as const) {
    const lines: string[] = [];
    const own = await proxyFixture({ metrics: 0, relay, logLevel: 'debug', logSink: (line) => lines.push(line) });
    try {
      const c = await own.client();
      for (let i = 0; i < 10; i++) await c.query('SELECT 1');
      const text = await (await fetch(`http://127.0.0.1:${own.proxy.metrics!.port}/metrics`)).text();
      const carried = metric(text, 'modelsql_proxy_native_relayed_messages_total');
      if (relay === 'js') {
        expect(lines.join('')).toContain('msg=relay relay=js reason="relay js chosen"');
        expect(carried).toBe(0);
      } else {
        expect(lines.join('')).toContain('msg=relay relay=native');
        expect(carried).toBeGreaterThan(0);
      }
    } finally {
      await own.close();
    }
  }
});
