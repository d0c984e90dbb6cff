/**
 * The proxy's memory per client and its large messages: 64 MB both ways through the
 * proxy, a message over the limit (FATAL 54000 for that client only, refused from its
 * header), and a client that pipelines model statements without reading the answers (the
 * proxy stops reading it). Meanwhile other clients' `SELECT 1` keep being answered; their
 * latency is logged, and asserted only loosely.
 */
import type { Socket } from 'node:net';
import type pg from 'pg';
import { writeModelFiles } from '../../support/model-files.js';
import { errorCodes, eventually, proxyFixture, type ProxyFixture } from './proxy-helpers.js';

let fx: ProxyFixture;

beforeAll(async () => {
  fx = await proxyFixture({ maxMessageBytes: 96 * 1024 * 1024 });
  const c = await fx.client();
  await c.query(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${writeModelFiles().linear}')`);
}, 60_000);

afterAll(async () => {
  await fx?.close();
});

/** The socket under a pg.Client, for raw messages. */
function socketOf(client: pg.Client): Socket {
  return (client as unknown as { connection: { stream: Socket } }).connection.stream;
}

/** A simple-protocol Query message. */
function queryMessage(text: string): Buffer {
  const body = Buffer.from(`${text}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('Q', 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** Counts ReadyForQuery messages in a byte stream, across chunks. */
class ReadyCounter {
  count = 0;
  private pending = Buffer.alloc(0);
  add(chunk: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 5) {
      const end = at + 1 + buf.readInt32BE(at + 1);
      if (end > buf.length) break;
      if (buf[at] === 0x5a) this.count++;
      at = end;
    }
    buf = buf.subarray(at);
    this.pending = Buffer.from(buf);
  }
}

/**
 * Runs `SELECT 1` on its own client until `stop` resolves; returns every latency (ms).
 * Every query must be answered (an error fails the test).
 */
async function probe(stop: Promise<unknown>): Promise<number[]> {
  const client = await fx.client();
  const latencies: number[] = [];
  let done = false;
  void stop.finally(() => (done = true));
  while (!done) {
    const started = performance.now();
    const { rows } = await client.query('SELECT 1 AS one');
    expect(rows[0].one).toBe(1);
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return latencies;
}

/** The 99th percentile of `values`. */
function p99(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0;
}

/** Logs a latency figure of a test (stdout, one line). */
function report(what: string, latencies: readonly number[]): void {
  process.stdout.write(`proxy-memory: ${what}: SELECT 1 on another client, ${latencies.length} queries, p99 ${p99(latencies).toFixed(1)} ms\n`);
}

test('a 64 MB message each way through the proxy; other clients are answered meanwhile', async () => {
  const client = await fx.client();
  const size = 64 * 1024 * 1024;
  const work = (async () => {
    const sent = await client.query('SELECT length($1::text) AS n, md5($1::text) AS h', ['ab'.repeat(size / 2)]);
    expect(sent.rows[0].n).toBe(size);
    const back = await client.query(`SELECT repeat('xy', ${size / 2}) AS s`);
    expect((back.rows[0].s as string).length).toBe(size);
    expect((back.rows[0].s as string).slice(-4)).toBe('xyxy');
  })();
  const latencies = await probe(work);
  await work;
  report('64 MB each way', latencies);
  expect(latencies.length).toBeGreaterThan(0);
  expect(p99(latencies)).toBeLessThan(5000);
}, 180_000);

test('a message over the limit: FATAL 54000 from its header, for that client only', async () => {
  const over = await fx.client();
  const socket = socketOf(over);
  const received: Buffer[] = [];
  socket.on('data', (b: Buffer) => received.push(b));
  const ended = new Promise((resolve) => over.once('end', resolve));
  // The header claims 128 MiB (over the fixture's 96 MiB); only a few bytes of the body follow.
  const header = Buffer.alloc(5);
  header.write('Q', 0);
  header.writeInt32BE(128 * 1024 * 1024, 1);
  socket.write(Buffer.concat([header, Buffer.from('SELECT ')]));
  await ended;
  expect(errorCodes(Buffer.concat(received))).toEqual(['54000']);
  const other = await fx.client();
  expect((await other.query('SELECT 1 AS one')).rows[0].one).toBe(1);
});

test('a client that pipelines model statements and never reads is no longer read; every statement is answered once it reads', async () => {
  const greedy = await fx.client();
  const socket = socketOf(greedy);
  // The answers (1 MiB each) pile up: nothing reads them until the end. However fast the
  // proxy runs the statements, it stops answering with a few MiB unread, then stops reading.
  socket.pause();
  socket.removeAllListeners('data');
  const counter = new ReadyCounter();
  const message = queryMessage(
    `SELECT repeat('x', 1048576) AS big, p.y FROM ML_PREDICT(TABLE (SELECT CAST(1 AS float8) AS a, CAST(2 AS float8) AS b), MODEL lin, DESCRIPTOR(a, b)) AS p /* ${'x'.repeat(1024 * 1024)} */`,
  );
  const count = 48;
  let written = 0;
  const probing = { stop: undefined as undefined | (() => void) };
  const stopped = new Promise<void>((resolve) => (probing.stop = resolve));
  const latencies = probe(stopped);
  for (let i = 0; i < count; i++) {
    socket.write(message);
    written += message.length;
  }
  // The bytes the proxy took from the socket stop growing well short of what was written:
  // a few MiB queued and in the kernel's buffers, not 48.
  let accepted = -1;
  try {
    await eventually(async () => {
      const now = written - socket.writableLength;
      const stable = now === accepted;
      accepted = now;
      await new Promise((resolve) => setTimeout(resolve, 500));
      return stable && written - socket.writableLength === now;
    }, 60_000, 'the proxy to stop reading the client');
  } finally {
    probing.stop!();
  }
  report('a non-reading pipelining client', await latencies);
  expect(accepted).toBeLessThan(written / 2);
  // Once the client reads, the proxy reads it again and answers every statement.
  socket.on('data', (b: Buffer) => counter.add(b));
  socket.resume();
  await eventually(async () => counter.count === count, 120_000, 'every statement to be answered');
  expect(socket.writableLength).toBe(0);
}, 240_000);
