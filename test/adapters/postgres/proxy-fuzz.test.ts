/**
 * Protocol fuzzing of the proxy: random and truncated frontend messages, before startup,
 * during authentication and after it, from many connections at once, while a healthy
 * client keeps running plain and model queries. Each bad connection is closed (by the proxy
 * on a protocol violation, at the latest when the client ends its side), the healthy
 * client gets every answer right, and no client connection or upstream session is left.
 * Seeded: the same seed sends the same bytes.
 */
import type { Socket } from 'node:net';
import type pg from 'pg';
import { FRONTEND_TYPES } from '../../../adapters/postgres/proxy/framer.js';
import { prng } from '../../fuzz/parser-fuzzer.js';
import { linearExpected, writeModelFiles } from '../../support/model-files.js';
import { errorCodes, eventually, proxyFixture, rawClient, startupPacket, type ProxyFixture } from './proxy-helpers.js';

const SEED = 5437;
const CONNECTIONS = 120;
const AT_ONCE = 8;

let fx: ProxyFixture;
let db: pg.Client;
const logged: unknown[] = [];

beforeAll(async () => {
  fx = await proxyFixture({ log: (_message, error) => logged.push(error) });
  db = await fx.client();
  await db.query('CREATE TABLE pts AS SELECT i AS id, i * 0.5::float8 AS a, 10.0::float8 - i AS b FROM generate_series(1, 20) i');
  await db.query(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${writeModelFiles().linear}')`);
}, 60_000);

afterAll(async () => {
  await fx?.close();
});

/** Backends connected to the test database. */
async function backends(): Promise<number> {
  const { rows } = await db.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()');
  return rows[0].n as number;
}

/** Typed frontend message bytes. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** One fuzz case: bytes to send, in chunks, for a given phase. */
function garbage(random: () => number): { phase: 'startup' | 'auth' | 'ready'; chunks: Buffer[] } {
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
  const types = [...FRONTEND_TYPES];
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const valid = [
    message('Q', Buffer.from("SELECT * FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))\0")),
    message('P', Buffer.from('\0SELECT $1 FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))\0\0\0')),
    message('Q', Buffer.from('SELECT 1\0')),
  ];
  const phase = pick(['startup', 'auth', 'ready', 'ready', 'ready'] as const);
  let stream: Buffer;
  switch (Math.floor(random() * 6)) {
    case 0: // pure noise
      stream = bytes(1 + Math.floor(random() * 300));
      break;
    case 1: // a known type with a random body and a truthful length
      stream = message(pick(types), bytes(Math.floor(random() * 64)));
      break;
    case 2: {
      // a known type with a lying length (negative, short, huge)
      const m = message(pick(types), bytes(Math.floor(random() * 16)));
      m.writeInt32BE(pick([-1, 0, 3, 0x7fffffff, 0x40000000, Math.floor(random() * 2 ** 31)]), 1);
      stream = m;
      break;
    }
    case 3: {
      // a valid model message cut short, or with its bytes flipped
      const m = Buffer.from(pick(valid));
      if (random() < 0.5) stream = m.subarray(0, 1 + Math.floor(random() * (m.length - 1)));
      else {
        for (let k = 0; k < 3; k++) m[Math.floor(random() * m.length)] = Math.floor(random() * 256);
        stream = m;
      }
      break;
    }
    case 4: // several random messages in a row
      stream = Buffer.concat(Array.from({ length: 2 + Math.floor(random() * 5) }, () => message(pick(types), bytes(Math.floor(random() * 24)))));
      break;
    default: // a startup packet with random parameters
      stream = Buffer.concat([startupPacket(bytes(6).toString('latin1'), bytes(4).toString('latin1')), bytes(Math.floor(random() * 20))]);
  }
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length; ) {
    const size = 1 + Math.floor(random() * Math.max(1, stream.length - at));
    chunks.push(stream.subarray(at, at + size));
    at += size;
  }
  return { phase, chunks };
}

/** Waits for `socket` to close, up to `ms`; true when it did. */
function closedWithin(closed: Promise<void>, ms: number): Promise<boolean> {
  return Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
}

/**
 * Opens a connection in `phase`, sends the chunks, and requires it closed: by the proxy
 * within 1 s, else within 5 s of the client ending its side.
 */
async function attack(phase: 'startup' | 'auth' | 'ready', chunks: readonly Buffer[]): Promise<{ byProxy: boolean }> {
  let socket: Socket;
  let closed: Promise<void>;
  if (phase === 'ready') {
    const client = await fx.client();
    socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
    closed = new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
  } else {
    const raw = await rawClient(fx.proxy.port);
    socket = raw.socket;
    closed = raw.closed;
    const user = new URL(fx.directUrl);
    if (phase === 'auth') socket.write(startupPacket(user.username, user.pathname.slice(1)));
  }
  for (const chunk of chunks) {
    if (socket.destroyed) break;
    socket.write(chunk);
    await new Promise((r) => setImmediate(r));
  }
  if (await closedWithin(closed, 1000)) return { byProxy: true };
  socket.end();
  if (!(await closedWithin(closed, 5000))) throw new Error(`connection not closed after ${phase} garbage ${Buffer.concat(chunks).toString('hex')}`);
  return { byProxy: false };
}

test(`${CONNECTIONS} connections of seeded garbage: each closed, a concurrent healthy client served throughout, nothing left`, async () => {
  const baseline = { connections: fx.proxy.connections, backends: await backends() };
  const healthy = await fx.client();
  let answered = 0;
  /** The healthy client's `k`-th statement: plain on even `k`, model SQL on odd; each answer checked. */
  const serve = async (k: number): Promise<void> => {
    if (k % 2 === 0) {
      const r = await healthy.query('SELECT $1::int * 2 AS d', [k]);
      expect(r.rows[0].d).toBe(k * 2);
    } else {
      const id = (k % 20) + 1;
      const r = await healthy.query(`SELECT id, y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id = ${id}), MODEL lin, DESCRIPTOR(a, b))`);
      expect(r.rows).toEqual([{ id, y: expect.closeTo(linearExpected(id * 0.5, 10 - id), 4) }]);
    }
    answered++;
  };

  const random = prng(SEED);
  const cases = Array.from({ length: CONNECTIONS }, () => garbage(random));
  let byProxy = 0;
  let batches = 0;
  for (let i = 0; i < cases.length; i += AT_ONCE, batches++) {
    // The healthy client runs a plain and a model statement alongside each batch of garbage:
    // served throughout the fuzz, however fast the machine goes through it.
    const [results] = await Promise.all([Promise.all(cases.slice(i, i + AT_ONCE).map((c) => attack(c.phase, c.chunks))), serve(2 * batches).then(() => serve(2 * batches + 1))]);
    byProxy += results.filter((r) => r.byProxy).length;
  }

  expect(answered).toBe(2 * batches);
  // Most garbage is a protocol violation the proxy (or Postgres behind it) closes on by itself.
  expect(byProxy).toBeGreaterThan(CONNECTIONS / 2);
  await healthy.end();
  await eventually(async () => fx.proxy.connections <= baseline.connections, 15_000, 'client connections to close');
  await eventually(async () => (await backends()) <= baseline.backends, 15_000, 'upstream sessions to end');
  // Nothing unexpected went wrong inside the proxy: no TypeError, RangeError, ... logged.
  expect(logged.filter((e) => e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError)).toEqual([]);
}, 180_000);

test('truncated messages: every prefix of a model Query, then end of input, gets 08P01 and a close', async () => {
  const full = message('Q', Buffer.from('SELECT * FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))\0'));
  for (const cut of [1, 3, 5, 12, full.length - 1]) {
    const client = await fx.client();
    const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
    const received: Buffer[] = [];
    socket.on('data', (b: Buffer) => received.push(b));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.end(full.subarray(0, cut));
    expect(await closedWithin(closed, 5000)).toBe(true);
    expect(errorCodes(Buffer.concat(received))).toContain('08P01');
  }
  expect((await db.query('SELECT 1 AS one')).rows[0].one).toBe(1);
});

test('a client that never finishes startup is closed after startupTimeoutMs; logged-in clients are not', async () => {
  const slow = await proxyFixture({ startupTimeoutMs: 1000 });
  try {
    const silent = await rawClient(slow.proxy.port);
    const half = await rawClient(slow.proxy.port);
    half.socket.write(startupPacket('postgres', 'x').subarray(0, 6));
    const ok = await slow.client();
    const started = Date.now();
    await Promise.all([silent.closed, half.closed]);
    // Closed by the 1 s startup timeout, not by the test's end (a generous bound for a loaded machine).
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(errorCodes(silent.received())).toEqual(['08P01']);
    expect(errorCodes(half.received())).toEqual(['08P01']);
    await new Promise((r) => setTimeout(r, 300));
    expect((await ok.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  } finally {
    await slow.close();
  }
});
