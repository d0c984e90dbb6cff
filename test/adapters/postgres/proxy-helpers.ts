/**
 * Helpers of the proxy tests: a test database on the run's Postgres server, a proxy in
 * front of it on port 0, clients through the proxy, and a raw protocol socket.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { startProxy, type ProxyOptions, type RunningProxy } from '../../../adapters/postgres/proxy/index.js';
import { createTestDatabase } from '../../support/postgres-server.js';

/** The run's server (globalSetup), or the one `MODELSQL_TEST_POSTGRES_URL` names. */
export function serverUrl(): string {
  const url = process.env.MODELSQL_TEST_POSTGRES_URL;
  if (!url) throw new Error('no Postgres server: run through jest (globalSetup) or set MODELSQL_TEST_POSTGRES_URL');
  return url;
}

/** A fresh database and a proxy in front of it. */
export interface ProxyFixture {
  /** Direct URL of the test database (with credentials). */
  readonly directUrl: string;
  /** URL of the test database through the proxy (with credentials). */
  readonly proxyUrl: string;
  readonly proxy: RunningProxy;
  /** A connected client through the proxy (closed by `close`). */
  client(config?: Partial<pg.ClientConfig>): Promise<pg.Client>;
  /** A connected client straight to the database (closed by `close`). */
  direct(): Promise<pg.Client>;
  close(): Promise<void>;
}

/**
 * Creates a test database and starts a proxy in front of its server on port 0. Unless
 * `options.session` says otherwise, model files and URLs are unrestricted.
 */
export async function proxyFixture(options: Partial<ProxyOptions> = {}): Promise<ProxyFixture> {
  const directUrl = await createTestDatabase(serverUrl());
  const upstream = new URL(directUrl);
  const proxy = await startProxy({ upstream: `postgres://${upstream.host}${upstream.pathname}?sslmode=disable`, listen: 0,
    log: () => undefined,
    // Tests that do not test access control read model files and call loopback servers anywhere.
    session: { allowedDirectories: ['/'], allowedUrlPrefixes: ['*'] },
    ...options,
  });
  const through = new URL(directUrl);
  through.host = `127.0.0.1:${proxy.port}`;
  const clients: pg.Client[] = [];
  const open = async (url: string, config: Partial<pg.ClientConfig> = {}): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url, ...config });
    client.on('error', () => undefined);
    await client.connect();
    clients.push(client);
    return client;
  };
  return {
    directUrl,
    proxyUrl: through.toString(),
    proxy,
    client: (config) => open(through.toString(), config),
    direct: () => open(directUrl),
    async close() {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await proxy.close();
    },
  };
}

/** A raw socket to the proxy that collects what comes back. */
export interface RawClient {
  readonly socket: Socket;
  /** Everything received so far. */
  received(): Buffer;
  /** Resolves when the proxy closes the connection. */
  readonly closed: Promise<void>;
}

/** Opens a raw TCP connection. */
export async function rawClient(port: number): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, received: () => Buffer.concat(chunks), closed };
}

/** The `C` (SQLSTATE) fields of every ErrorResponse in `bytes`. */
export function errorCodes(bytes: Buffer): string[] {
  const codes: string[] = [];
  let i = 0;
  while (i + 5 <= bytes.length) {
    const type = String.fromCharCode(bytes[i]!);
    const length = bytes.readInt32BE(i + 1);
    if (type === 'E') {
      const body = bytes.subarray(i + 5, i + 1 + length);
      let j = 0;
      while (j < body.length && body[j] !== 0) {
        const code = String.fromCharCode(body[j]!);
        const end = body.indexOf(0, j + 1);
        if (code === 'C') codes.push(body.toString('utf8', j + 1, end));
        j = end + 1;
      }
    }
    i += 1 + length;
  }
  return codes;
}

/**
 * A logged-in connection through `fx`'s proxy (or, with `direct`, straight to its database)
 * taken over from pg.Client: the bytes sent and received from here are the test's own (one
 * ReadyForQuery stands for the login).
 */
export async function takeOverClient(fx: ProxyFixture, options: { readonly direct?: boolean } = {}): Promise<RawClient> {
  const client = options.direct ? await fx.direct() : await fx.client();
  const socket = (client as unknown as { connection: { stream: Socket } }).connection.stream;
  socket.removeAllListeners('data');
  const chunks: Buffer[] = [Buffer.from([0x5a, 0, 0, 0, 5, 0x49])];
  socket.on('data', (b: Buffer) => chunks.push(b));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, received: () => Buffer.concat(chunks), closed };
}

/** A StartupMessage for `user` / `database` (protocol 3.0). */
export function startupPacket(user: string, database: string): Buffer {
  const body = Buffer.from(`user\0${user}\0database\0${database}\0\0`);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(3 << 16, 4);
  return Buffer.concat([head, body]);
}

/** A simple-protocol Query message. */
export function queryMessage(sql: string): Buffer {
  const body = Buffer.from(`${sql}\0`);
  const head = Buffer.alloc(5);
  head[0] = 0x51;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** The types of the whole messages in `bytes`, in order. */
export function messageTypes(bytes: Buffer): string {
  let types = '';
  for (let at = 0; at + 5 <= bytes.length; at += 1 + bytes.readInt32BE(at + 1)) types += String.fromCharCode(bytes[at]!);
  return types;
}

/** The first column of every DataRow in `bytes`, as numbers (rows of one integer column). */
export function dataRowNumbers(bytes: Buffer): number[] {
  const numbers: number[] = [];
  for (let at = 0; at + 5 <= bytes.length; at += 1 + bytes.readInt32BE(at + 1)) {
    if (bytes[at] !== 0x44 /* D */) continue;
    const length = bytes.readInt32BE(at + 7);
    numbers.push(Number(bytes.toString('latin1', at + 11, at + 11 + length)));
  }
  return numbers;
}

/** Waits until `raw` has received `count` ReadyForQuery messages in all (a generous bound: the machine may be loaded). */
export async function readyCount(raw: RawClient, count: number, timeoutMs = 30_000): Promise<void> {
  await eventually(async () => (messageTypes(raw.received()).match(/Z/g)?.length ?? 0) >= count, timeoutMs, `${count} ReadyForQuery`);
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Creates table `pts` (20 rows: `id`, `a`, `b`) and the ONNX model `lin` (`a`, `b` to `y`) from `linearModel`, a file path. */
export async function createPointsAndModel(client: pg.Client, linearModel: string): Promise<void> {
  await client.query('CREATE TABLE pts (id int PRIMARY KEY, a float8, b float8)');
  await client.query('INSERT INTO pts SELECT i, i * 0.5, 10 - i FROM generate_series(1, 20) i');
  await client.query(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${linearModel}')`);
}

/** Temporary tables modelsql left in any session of the database `client` is connected to. */
export async function leftoverTempTables(client: pg.Client): Promise<number> {
  const { rows } = await client.query(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'pg_temp%' AND c.relname LIKE '\\_\\_modelsql%'`);
  return rows[0].n as number;
}

/**
 * The messages in `bytes`, one word each, to compare answers with Postgres's: the type, with
 * `E:SQLSTATE`, `Z:status`, `C:tag`, `D:v1,v2` (text values) and `t:oid,oid` spelled out.
 */
export function messageSummary(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at + 5 <= bytes.length; at += 1 + bytes.readInt32BE(at + 1)) {
    const type = String.fromCharCode(bytes[at]!);
    const body = bytes.subarray(at + 5, at + 1 + bytes.readInt32BE(at + 1));
    if (type === 'E') out.push(`E:${errorCodes(bytes.subarray(at, at + 1 + body.length + 4))[0]}`);
    else if (type === 'Z') out.push(`Z:${String.fromCharCode(body[0]!)}`);
    else if (type === 'C') out.push(`C:${body.toString('utf8', 0, body.length - 1)}`);
    else if (type === 't') out.push(`t:${Array.from({ length: body.readInt16BE(0) }, (_, i) => body.readInt32BE(2 + 4 * i)).join(',')}`);
    else if (type === 'D') {
      const values: string[] = [];
      for (let i = 0, j = 2; i < body.readInt16BE(0); i++) {
        const length = body.readInt32BE(j);
        values.push(length < 0 ? 'NULL' : body.toString('utf8', j + 4, j + 4 + length));
        j += 4 + Math.max(length, 0);
      }
      out.push(`D:${values.join(',')}`);
    } else out.push(type);
  }
  return out;
}

/** Sends `messages` on `raw` and returns the summary of what came back once `ready` more ReadyForQuery arrived. */
export async function roundTrip(raw: RawClient, messages: readonly Buffer[], ready = 1): Promise<string[]> {
  const before = raw.received().length;
  const seen = messageTypes(raw.received()).match(/Z/g)?.length ?? 0;
  raw.socket.write(Buffer.concat(messages));
  await readyCount(raw, seen + ready);
  return messageSummary(raw.received().subarray(before));
}

/** The scheduling policy of thread `tid` of process `pid`, from stat(5) field 41: 0 SCHED_OTHER, 3 SCHED_BATCH. */
export function threadPolicy(tid: number, pid: number | 'self' = 'self'): number {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[41 - 3]);
}

/** The scheduling policies of process `pid`'s threads named modelsql-relay (the native relay's). */
export function relayThreadPolicies(pid: number): number[] {
  const policies: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === 'modelsql-relay') policies.push(threadPolicy(Number(tid), pid));
    } catch {
      // a thread that ended meanwhile
    }
  }
  return policies;
}
