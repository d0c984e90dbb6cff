/**
 * The relay's socket writing (adapters/postgres/proxy/socket-writing.ts): writes handed to
 * the socket's handle keep their order with writes through the stream, including while the
 * receiver does not read and writes queue; a queued write says so and tells when it has
 * gone out; a write to a socket whose peer is gone fails as `socket.write` would.
 */
import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { SocketWriter } from '../../../adapters/postgres/proxy/socket-writing.js';

const CHUNK = 16 * 1024;
const CHUNKS = 512; // 8 MiB: more than loopback buffers hold while the receiver does not read

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** A connected pair: `out` (the writer's side) and the server's accepted socket, paused. */
async function socketPair(): Promise<{ out: Socket; receiver: Socket; close(): Promise<void> }> {
  let accepted!: (s: Socket) => void;
  const ready = new Promise<Socket>((resolve) => (accepted = resolve));
  const server = createServer({ pauseOnConnect: true }, (socket) => accepted(socket));
  const port = await listen(server);
  const out = connect(port, '127.0.0.1');
  await new Promise((resolve) => out.once('connect', resolve));
  const receiver = await ready;
  return {
    out,
    receiver,
    close: async () => {
      out.destroy();
      receiver.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('SocketWriter', () => {
  it('writes through the handle, in order with stream writes, while the receiver does not read', async () => {
    const { out, receiver, close } = await socketPair();
    try {
      const writer = new SocketWriter(out);
      const sent = createHash('sha256');
      let refused = 0;
      let drains = 0;
      for (let i = 0; i < CHUNKS; i++) {
        const data = Buffer.alloc(CHUNK, i % 251);
        sent.update(data);
        // Every fifth chunk goes through the stream, as the proxy's own messages do.
        const accepted = i % 5 === 4 ? out.write(data) : writer.write(data);
        if (!accepted) refused++;
        if (writer.queued && i % 64 === 63) {
          writer.onceDrained(() => drains++);
        }
      }
      expect(writer.queued).toBe(true); // the receiver's reluctance queued writes
      expect(refused).toBeGreaterThan(0);
      const drained = new Promise<void>((resolve) => writer.onceDrained(resolve));
      const got = createHash('sha256');
      let bytes = 0;
      receiver.on('data', (d: Buffer) => {
        got.update(d);
        bytes += d.length;
      });
      receiver.resume();
      await drained;
      expect(writer.queued).toBe(false);
      expect(drains).toBeGreaterThan(0);
      out.end();
      await new Promise((resolve) => receiver.once('end', resolve));
      expect(bytes).toBe(CHUNK * CHUNKS);
      expect(got.digest('hex')).toBe(sent.digest('hex'));
      // The handle took the writes made while nothing was queued (this runtime has the binding).
      expect(writer.bytes).toBeGreaterThan(0);
      expect(writer.bytes).toBeLessThan(CHUNK * CHUNKS);
    } finally {
      await close();
    }
  }, 60_000);

  it('counts what it wrote and calls a drain waiter at once when nothing is queued', async () => {
    const { out, receiver, close } = await socketPair();
    try {
      const writer = new SocketWriter(out);
      expect(writer.write(Buffer.from('hello, '))).toBe(true);
      expect(writer.write(Buffer.from('relay'))).toBe(true);
      expect(writer.bytes).toBe(12);
      expect(writer.queued).toBe(false);
      let called = false;
      writer.onceDrained(() => (called = true));
      expect(called).toBe(true);
      const got: Buffer[] = [];
      receiver.on('data', (d: Buffer) => got.push(d));
      receiver.resume();
      out.end();
      await new Promise((resolve) => receiver.once('end', resolve));
      expect(Buffer.concat(got).toString()).toBe('hello, relay');
    } finally {
      await close();
    }
  });

  it('fails a write to a peer that is gone with the socket error, as socket.write does', async () => {
    const { out, receiver, close } = await socketPair();
    try {
      const writer = new SocketWriter(out);
      // Not reading: only a write can find out that the peer is gone.
      out.pause();
      const failed = new Promise<NodeJS.ErrnoException>((resolve) => out.once('error', resolve));
      receiver.resetAndDestroy();
      // Until the reset has arrived the kernel still accepts writes; keep writing until one fails.
      for (let i = 0; i < 1000 && !out.destroyed; i++) {
        writer.write(Buffer.alloc(1024));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const error = await failed;
      expect(['EPIPE', 'ECONNRESET']).toContain(error.code);
      expect(out.destroyed).toBe(true);
    } finally {
      await close();
    }
  });
});
