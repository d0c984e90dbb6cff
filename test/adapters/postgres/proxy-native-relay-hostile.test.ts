/**
 * The native relay (native-relay.ts, native-handover.ts) against hostile and unusual
 * clients: bytes split where a hand-back and a hand-over meet, bad and oversized length
 * fields, pipelined messages the thread does not relay, cancels, timeouts, notices and
 * notifications, and the proxy's own accounting (limits, statements, transaction status)
 * while the thread holds a session. Every wait is for an answer, never for a time.
 */
import type { Socket } from 'node:net';
import { errorCodes, eventually, proxyFixture, type ProxyFixture, type RawClient } from './proxy-helpers.js';

let fx: ProxyFixture;

/** The value of a metric line `name{labels} value` on the fixture's /metrics (0 when absent). */
async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${fx.proxy.metrics!.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** A simple-protocol Query message. */
function query(sql: string): Buffer {
  const body = Buffer.from(`${sql}\0`);
  const head = Buffer.alloc(5);
  head[0] = 0x51;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** The types of the whole messages in `bytes`, in order. */
function messageTypes(bytes: Buffer): string {
  let types = '';
  for (let at = 0; at + 5 <= bytes.length; at += 1 + bytes.readInt32BE(at + 1)) types += String.fromCharCode(bytes[at]!);
  return types;
}

/** Waits until `raw` has received `count` ReadyForQuery messages in all. */
async function readyCount(raw: RawClient, count: number): Promise<void> {
  await eventually(async () => (messageTypes(raw.received()).match(/Z/g)?.length ?? 0) >= count, 10_000, `${count} ReadyForQuery`);
}

/**
 * A logged-in connection through `own`'s proxy taken over from pg.Client, whose first plain
 * query has been answered: the session is then the thread's (the hand-over happens in the
 * proxy's callback that writes the ReadyForQuery, before this process reads it).
 */
async function nativeSession(own: ProxyFixture = fx): Promise<RawClient> {
  const client = await own.client();
  const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
  socket.removeAllListeners('data');
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  // Counted from here: one ReadyForQuery stands for the login.
  chunks.push(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]));
  const raw = { socket, received: () => Buffer.concat(chunks), closed };
  socket.write(query('SELECT 1'));
  await readyCount(raw, 2);
  return raw;
}

beforeAll(async () => {
  fx = await proxyFixture({ metrics: 0 });
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
