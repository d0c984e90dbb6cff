/**
 * `UpstreamConnection.copyTo` (the proxy's COPY TO STDOUT, used by the one-pass model
 * stage) against a scripted server speaking the protocol: the data in order, the socket
 * paused for a slow consumer, and an early stop that sends a CancelRequest, drains to
 * ReadyForQuery and leaves the connection usable.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { UpstreamConnection } from '../../../adapters/postgres/proxy/upstream-connection.js';

/** A backend message (https://www.postgresql.org/docs/current/protocol-message-formats.html). */
function message(type: string, body: Buffer | string): Buffer {
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(payload.length + 4, 1);
  return Buffer.concat([head, payload]);
}

const READY = message('Z', 'I');
const COPY_OUT = message('H', Buffer.from([0, 0, 0]));
const COPY_DONE = message('c', '');
const CANCELED = message('E', 'SERROR\0C57014\0Mcanceling statement due to user request\0\0');

const PAD = 'x'.repeat(1000);

/** Row lengths of `COPY SIZES`: around the byte-by-byte limit (64) and the chunk size (256 KiB). */
const SIZES = [1, 10, 62, 63, 64, 65, 1000, 300_000, 5, 262_143, 262_144, 262_145, 3, 70_000, 64];
const sizedRow = (i: number): string => `${'y'.repeat(SIZES[i]! - 1)}\n`;

/** A server that answers `COPY n` with n rows of 1 kB (`n = 0`: rows until cancelled) and anything else with `SELECT 0`. */
class ScriptedServer {
  cancels = 0;
  private cancelled = false;
  readonly server: Server;

  constructor() {
    this.server = createServer((socket) => {
      let buffer = Buffer.alloc(0);
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        if (buffer.length >= 8 && buffer.readInt32BE(0) === 16 && buffer.readInt32BE(4) === 80877102) {
          this.cancels++;
          this.cancelled = true;
          socket.end();
          return;
        }
        while (buffer.length >= 5 && buffer.length >= 1 + buffer.readInt32BE(1)) {
          const length = buffer.readInt32BE(1);
          const text = buffer.subarray(5, 1 + length - 1).toString();
          buffer = buffer.subarray(1 + length);
          const copy = /^COPY (\d+)$/.exec(text);
          if (copy) void this.stream(socket, Number(copy[1]));
          else if (text === 'COPY SIZES') void this.sizes(socket);
          else socket.write(Buffer.concat([message('C', 'SELECT 0\0'), READY]));
        }
      });
    });
  }

  /** Rows of {@link SIZES} bytes, written in pieces of 7,777 bytes that split messages anywhere. */
  private async sizes(socket: Socket): Promise<void> {
    const all = Buffer.concat([COPY_OUT, ...SIZES.map((_, i) => message('d', sizedRow(i))), COPY_DONE, message('C', `COPY ${SIZES.length}\0`), READY]);
    for (let offset = 0; offset < all.length; offset += 7777) {
      if (!socket.write(all.subarray(offset, offset + 7777))) await new Promise((resolve) => socket.once('drain', resolve));
    }
  }

  private async stream(socket: Socket, rows: number): Promise<void> {
    this.cancelled = false;
    socket.write(COPY_OUT);
    for (let i = 1; rows === 0 || i <= rows; i++) {
      if (this.cancelled) {
        socket.write(Buffer.concat([CANCELED, READY]));
        return;
      }
      if (!socket.write(message('d', `${i}\trow ${i}\t${PAD}\n`))) await new Promise((resolve) => socket.once('drain', resolve));
      if (i % 1000 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    socket.write(Buffer.concat([COPY_DONE, message('C', `COPY ${rows}\0`), READY]));
  }
}

describe('UpstreamConnection.copyTo', () => {
  let fake: ScriptedServer;
  let upstream: UpstreamConnection;
  beforeAll(async () => {
    fake = new ScriptedServer();
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    const port = (fake.server.address() as { port: number }).port;
    const socket = connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    upstream = new UpstreamConnection(socket, { host: '127.0.0.1', port, sslmode: 'disable', label: `127.0.0.1:${port}` });
    upstream.backendKey = { processId: 1, secret: Buffer.alloc(4) };
  });
  afterAll(async () => {
    upstream.destroy();
    await new Promise((resolve) => fake.server.close(resolve));
  });

  it('yields the COPY data in order and ends at ReadyForQuery', async () => {
    let text = '';
    for await (const chunk of upstream.copyTo('COPY 5000')) text += Buffer.from(chunk).toString();
    const lines = text.split('\n').slice(0, -1);
    expect(lines).toHaveLength(5000);
    expect(lines[0]).toBe(`1\trow 1\t${PAD}`);
    expect(lines[4999]).toBe(`5000\trow 5000\t${PAD}`);
    expect(upstream.transactionStatus()).toBe('idle');
  });

  it('packs rows of every size, split anywhere by the network, into chunks of at most 256 KiB unless one row is larger', async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of upstream.copyTo('COPY SIZES')) chunks.push(Buffer.from(chunk));
    expect(Buffer.concat(chunks).toString()).toBe(SIZES.map((_, i) => sizedRow(i)).join(''));
    for (const chunk of chunks) {
      if (chunk.length > 256 * 1024) expect(SIZES).toContain(chunk.length);
    }
    expect(upstream.transactionStatus()).toBe('idle');
  });

  it('pauses the socket for a slow consumer; stopping early cancels, drains, and the connection goes on', async () => {
    const chunks = upstream.copyTo('COPY 0')[Symbol.asyncIterator]();
    const first = await chunks.next();
    expect(Buffer.from(first.value as Uint8Array).toString()).toMatch(new RegExp(`^1\trow 1\t${PAD}\n`));
    for (let waited = 0; !upstream.socket.isPaused() && waited < 5000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(upstream.socket.isPaused()).toBe(true);
    await chunks.return!(undefined);
    expect(fake.cancels).toBe(1);
    expect(upstream.inExchange).toBe(false);
    await expect(upstream.query('SELECT 1')).resolves.toMatchObject({ command: 'SELECT' });
  });
});
