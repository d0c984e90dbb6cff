/**
 * The native relay (native-relay.ts, native-handover.ts) against hostile and unusual
 * clients: bytes split where a hand-back and a hand-over meet, bad and oversized length
 * fields, pipelined messages the thread does not relay, cancels, timeouts, notices and
 * notifications, and the proxy's own accounting (limits, statements, transaction status)
 * while the thread holds a session. Every wait is for an answer, never for a time.
 */
import { connect } from 'node:net';
import { loadNativeRelay } from '../../../adapters/postgres/proxy/native-relay.js';
import { bytesMayHoldModelSyntax } from '../../../adapters/postgres/proxy/model-router.js';
import { writeModelFiles } from '../../support/model-files.js';
import { createPointsAndModel, dataRowNumbers, errorCodes, eventually, messageTypes, proxyFixture, queryMessage as query, readyCount, takeOverClient, type ProxyFixture, type RawClient } from './proxy-helpers.js';

let fx: ProxyFixture;
let linear: string;

/** The value of a metric line `name{labels} value` on the fixture's /metrics (0 when absent). */
async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${fx.proxy.metrics!.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/**
 * A logged-in connection through `own`'s proxy taken over from pg.Client, whose first plain
 * query has been answered: the session is then the thread's (the hand-over happens in the
 * proxy's callback that writes the ReadyForQuery, before this process reads it).
 */
async function nativeSession(own: ProxyFixture = fx): Promise<RawClient> {
  const raw = await takeOverClient(own);
  raw.socket.write(query('SELECT 1'));
  await readyCount(raw, 2);
  return raw;
}

beforeAll(async () => {
  fx = await proxyFixture({ metrics: 0 });
  linear = writeModelFiles().linear;
  await createPointsAndModel(await fx.client(), linear);
});
afterAll(async () => {
  await fx?.close();
});

test('half a query handed back with the answer that settles the session: its rest reaches JavaScript, not the thread', async () => {
  const raw = await nativeSession();
  // One write: a SET (answered ParameterStatus, CommandComplete, ReadyForQuery: the thread
  // gives the session back at the ParameterStatus) and all but the last 2 bytes of a second
  // query, which the thread holds when it gives the session back.
  const second = query("SELECT 'second' AS s");
  raw.socket.write(Buffer.concat([query("SET application_name = 'hostile-split'"), second.subarray(0, second.length - 2)]));
  await readyCount(raw, 3);
  // The last 2 bytes: fewer than a message header. Had the thread taken the session again
  // while the first part waited in JavaScript's framer, it would wait for 3 more bytes forever.
  raw.socket.write(second.subarray(second.length - 2));
  await readyCount(raw, 4);
  expect(raw.received().includes('second')).toBe(true);
  expect(errorCodes(raw.received())).toEqual([]);
  raw.socket.end();
  await raw.closed;
});

test('a query over --max-message-bytes that fits in one read: FATAL 54000 with either relay', async () => {
  for (const relay of ['auto', 'js'] as const) {
    const own = await proxyFixture({ metrics: 0, relay, maxMessageBytes: 1024 });
    try {
      const raw = await nativeSession(own);
      // 2 KB: over the limit, under the thread's buffer and the JavaScript relay's read buffer.
      raw.socket.write(query(`SELECT '${'x'.repeat(2000)}' AS s`));
      // Refused, the connection closes; relayed, an answer comes.
      await Promise.race([raw.closed, readyCount(raw, 3)]);
      expect([relay, errorCodes(raw.received())]).toEqual([relay, ['54000']]);
      const other = await own.client();
      expect((await other.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await own.close();
    }
  }
});

test('statements the thread relays are counted in /metrics while it still holds the session', async () => {
  const c = await fx.client();
  await c.query('SELECT 1');
  // The fixture's other clients are idle: the count moves with this client alone.
  const before = await metric('modelsql_proxy_statements_total', 'kind="host"');
  const carried = await metric('modelsql_proxy_native_relayed_messages_total');
  for (let i = 0; i < 10; i++) await c.query(`SELECT ${i}`);
  expect(await metric('modelsql_proxy_native_relayed_messages_total')).toBeGreaterThan(carried);
  expect((await metric('modelsql_proxy_statements_total', 'kind="host"')) - before).toBe(10);
});

test('model syntax across the thread buffer sizes (4 KiB, grown to 64 KiB) and across writes goes to JavaScript', async () => {
  const raw = await nativeSession();
  const call = 'SELECT count(*)::int AS n FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))';
  let ready = 2;
  for (const boundary of [4096, 8192, 32768, 65536 - call.length + 8]) {
    for (const split of [false, true]) {
      // `ML_PREDICT` starts 4 bytes before `boundary` (counted from the message's type byte).
      const at = boundary - 4 - 5 - call.indexOf('ML_PREDICT') - 4;
      const message = query(`/*${'p'.repeat(at)}*/${call}`);
      expect(message.indexOf('ML_PREDICT')).toBe(boundary - 4);
      if (!split) raw.socket.write(message);
      else {
        raw.socket.write(message.subarray(0, boundary - 2));
        await new Promise((r) => setImmediate(r));
        raw.socket.write(message.subarray(boundary - 2));
      }
      await readyCount(raw, ++ready);
      expect([boundary, split, errorCodes(raw.received())]).toEqual([boundary, split, []]);
    }
  }
  // Plain queries of exactly the thread's largest buffer, and one byte more.
  for (const total of [65536, 65537]) {
    const head = query('SELECT 1 AS one /**/');
    const message = query(`SELECT 1 AS one /*${'q'.repeat(total - head.length)}*/`);
    expect(message.length).toBe(total);
    raw.socket.write(message);
    await readyCount(raw, ++ready);
  }
  const bytes = raw.received();
  expect(errorCodes(bytes)).toEqual([]);
  expect(messageTypes(bytes).replace(/[^Z]/g, '')).toHaveLength(ready);
  raw.socket.end();
  await raw.closed;
});

test('the native pre-filter agrees with the JavaScript one on random bytes of every value', () => {
  const relay = loadNativeRelay().relay!;
  // The letters that matter in both cases, their neighbours in bit 0x20, and any byte.
  const letters = Buffer.from('mMoOdDeElL_aAtTrRiIzZ\0\x4d\x0f\xcd\xed\x8d\x6d\x2d\x7f\xff ');
  let seed = 2026;
  const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let n = 0; n < 20_000; n++) {
    const bytes = Buffer.alloc(Math.floor(next() * 40));
    for (let i = 0; i < bytes.length; i++) bytes[i] = next() < 0.8 ? letters[Math.floor(next() * letters.length)]! : Math.floor(next() * 256);
    expect([bytes.toString('hex'), relay.mayHoldModelSyntax(bytes)]).toEqual([bytes.toString('hex'), bytesMayHoldModelSyntax(bytes)]);
  }
});

test('length fields below 4, past the limit or past 2^31 while native: refused as JavaScript refuses them', async () => {
  for (const [length, code] of [[0, '08P01'], [3, '08P01'], [-1, '08P01'], [-0x80000000, '08P01'], [0x7fffffff, '54000'], [256 * 1024 * 1024 + 1, '54000']] as const) {
    const raw = await nativeSession();
    const head = Buffer.alloc(5);
    head[0] = 0x51;
    head.writeInt32BE(length, 1);
    raw.socket.write(Buffer.concat([head, Buffer.from('SELECT 1\0')]));
    await raw.closed;
    expect([length, errorCodes(raw.received())]).toEqual([length, [code]]);
  }
});

test('a client that closes mid-message while native: 08P01', async () => {
  const raw = await nativeSession();
  raw.socket.end(query('SELECT 2').subarray(0, 8));
  await raw.closed;
  expect(errorCodes(raw.received())).toEqual(['08P01']);
});

test('pipelined in one write: a plain query, a model statement, a plain query, then a query and Terminate', async () => {
  const raw = await nativeSession();
  raw.socket.write(Buffer.concat([query('SELECT 42 AS a'), query('SELECT count(*)::int AS n FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))'), query('SELECT 43 AS b')]));
  await readyCount(raw, 5);
  expect(errorCodes(raw.received())).toEqual([]);
  expect(messageTypes(raw.received())).toBe('ZTDCZTDCZTDCZTDCZ');
  raw.socket.write(Buffer.concat([query('SELECT 44'), Buffer.from([0x58, 0, 0, 0, 4])]));
  await raw.closed;
  expect(errorCodes(raw.received())).toEqual([]);
});

test('a cancel reaches a statement the thread relayed', async () => {
  const c = await fx.client();
  await c.query('SELECT 1');
  const running = c.query('SELECT pg_sleep(60)');
  // The statement is running upstream once Postgres reports it (the proxy relayed it).
  const observer = await fx.direct();
  await eventually(async () => (await observer.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'`)).rows[0].n === 1, 30_000, 'the statement to run');
  const key = c as unknown as { processID: number; secretKey: number };
  const cancel = Buffer.alloc(16);
  cancel.writeInt32BE(16, 0);
  cancel.writeInt32BE(80877102, 4);
  cancel.writeInt32BE(key.processID, 8);
  cancel.writeInt32BE(key.secretKey, 12);
  connect(fx.proxy.port, '127.0.0.1').end(cancel);
  await expect(running).rejects.toMatchObject({ code: '57014' });
  expect((await c.query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
});

test('statement_timeout and idle_in_transaction_session_timeout still end what they end', async () => {
  const c = await fx.client();
  await c.query('SET statement_timeout = 100');
  await c.query('SELECT 1');
  await expect(c.query('SELECT pg_sleep(30)')).rejects.toMatchObject({ code: '57014' });
  expect((await c.query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
  const idle = await fx.client();
  const ended = new Promise<Error & { code?: string }>((resolve) => idle.once('error', resolve));
  await idle.query('SET idle_in_transaction_session_timeout = 100');
  await idle.query('BEGIN');
  await idle.query('SELECT 1');
  expect((await ended).code).toBe('25P03');
});

test('transaction status and search_path as the thread left them: a model statement inside a native BEGIN rolls back with it', async () => {
  const c = await fx.client();
  await c.query('CREATE TABLE IF NOT EXISTS hostile_log (n int)');
  await c.query('BEGIN');
  await c.query('INSERT INTO hostile_log VALUES (1)');
  const { rows } = await c.query('SELECT count(*)::int AS n FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))');
  expect(rows).toEqual([{ n: 20 }]);
  await c.query('ROLLBACK');
  expect((await c.query('SELECT count(*)::int AS n FROM hostile_log')).rows).toEqual([{ n: 0 }]);
  // A failed block (its error through JavaScript), left by a ROLLBACK the thread relays.
  await c.query('BEGIN');
  await expect(c.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' });
  await expect(c.query('SELECT count(*) FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))')).rejects.toMatchObject({ code: '25P02' });
  await c.query('ROLLBACK');
  expect((await c.query('SELECT count(*)::int AS n FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))')).rows).toEqual([{ n: 20 }]);
  // search_path changed by a plain statement the thread relays: the next model statement sees it.
  await c.query('CREATE SCHEMA IF NOT EXISTS hostile_other');
  await c.query('SET search_path = hostile_other');
  await expect(c.query('SELECT count(*) FROM ML_PREDICT(TABLE public.pts, MODEL lin, DESCRIPTOR(a, b))')).rejects.toMatchObject({ code: '42704' });
  await c.query('SET search_path = public');
  expect((await c.query('SELECT count(*)::int AS n FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))')).rows).toEqual([{ n: 20 }]);
});

test('notifications and notices while native reach the client, and the session goes on', async () => {
  const c = await fx.client();
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  const payloads: string[] = [];
  c.on('notification', (n) => payloads.push(n.payload ?? ''));
  await c.query('LISTEN hostile_channel');
  await c.query('SELECT 1');
  await (await fx.direct()).query("NOTIFY hostile_channel, 'hello'");
  await eventually(async () => payloads.length === 1, 30_000, 'the notification');
  await c.query("DO $$ BEGIN RAISE NOTICE 'careful'; END $$");
  expect([payloads, notices]).toEqual([['hello'], ['careful']]);
  expect((await c.query('SELECT 3 AS n')).rows).toEqual([{ n: 3 }]);
});

test('a client that writes queries faster than Postgres reads them: the native writes upstream block, every query is answered in order', async () => {
  const raw = await nativeSession();
  // 3,000 queries of ≈ 8 KB: far more than the sockets toward Postgres hold at once.
  const count = 3000;
  raw.socket.write(Buffer.concat(Array.from({ length: count }, (_, i) => query(`SELECT ${i} AS n /* ${'w'.repeat(8000)} */`))));
  await readyCount(raw, 2 + count, 120_000);
  const bytes = raw.received();
  expect(dataRowNumbers(bytes)).toEqual([1, ...Array.from({ length: count }, (_, i) => i)]);
  expect(errorCodes(bytes)).toEqual([]);
  raw.socket.end();
  await raw.closed;
}, 180_000);

test('graceful shutdown while 20 sessions go back and forth between the thread and JavaScript: none forced, each gets 57P01', async () => {
  const own = await proxyFixture({ metrics: 0 });
  try {
    let answered = 0;
    const loops = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = await own.client();
        const errors: (string | undefined)[] = [];
        c.on('error', (error: Error & { code?: string }) => errors.push(error.code));
        // Wrapped: an async function would wait for the loop it returns.
        const loop = (async () => {
          // A SET (ParameterStatus: back to JavaScript), an error (back to JavaScript), a plain query (native).
          for (let n = 0; ; n++) {
            const sql = n % 3 === 0 ? `SET application_name = 'shutdown-${n}'` : n % 3 === 1 ? 'SELECT 1/0' : `SELECT ${n} AS n, repeat('z', ${(n * 997) % 20_000}) AS pad`;
            try {
              const result = await c.query(sql);
              if (n % 3 === 2) expect(result.rows[0].n).toBe(n);
              answered++;
            } catch (error) {
              const code = (error as { code?: string }).code;
              // The FATAL reaches the statement in flight, or the idle client as an 'error' event.
              if (code !== '22012') return [...errors, code].includes('57P01');
            }
          }
        })();
        return { loop };
      }),
    );
    while (answered < 1000) await new Promise((r) => setTimeout(r, 10));
    expect(await own.proxy.shutdown(60_000)).toBe(0);
    expect(await Promise.all(loops.map((l) => l.loop))).toEqual(Array.from({ length: 20 }, () => true));
  } finally {
    await own.close();
  }
}, 120_000);
