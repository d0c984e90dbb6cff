/**
 * The relay's socket reading (adapters/postgres/proxy/socket-reading.ts): reads into a reused
 * buffer keep every byte intact when a write still refers to the last read, accepted
 * sockets taken over keep half-open semantics, and the server still knows when its
 * connections are gone.
 */
import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { connectReusingBuffer, readSocket, takeOverAccepted } from '../../../adapters/postgres/proxy/socket-reading.js';

const CHUNK = 16 * 1024;
const CHUNKS = 512; // 8 MiB: more than loopback buffers hold while the receiver does not read

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function chunk(i: number): Buffer {
  return Buffer.alloc(CHUNK, i % 251);
}

/**
 * Relays CHUNKS distinct chunks from a source to a receiver that reads nothing until all
 * were relayed, through a socket reading into a reused buffer; returns the SHA-256 of what
 * the receiver got and of what was sent. `honest` false: the reader claims its writes have
 * gone out when they have not.
 */
async function relayToSlowReceiver(honest: boolean): Promise<{ got: string; sent: string }> {
  const sent = createHash('sha256');
  const source = createServer(async (socket) => {
    for (let i = 0; i < CHUNKS; i++) {
      const data = chunk(i);
      sent.update(data);
      if (!socket.write(data)) await new Promise((resolve) => socket.once('drain', resolve));
      else await new Promise((resolve) => setImmediate(resolve));
    }
    socket.end();
  });
  let receiver: Socket | undefined;
  let gotReceiver!: (s: Socket) => void;
  const receiverReady = new Promise<Socket>((resolve) => (gotReceiver = resolve));
  const sink = createServer({ pauseOnConnect: true }, (socket) => gotReceiver(socket));
  const [sourcePort, sinkPort] = await Promise.all([listen(source), listen(sink)]);
  try {
    const out = connect(sinkPort, '127.0.0.1');
    receiver = await receiverReady;
    const input = connectReusingBuffer({ port: sourcePort, host: '127.0.0.1' });
    let queued = 0;
    readSocket(input, (view) => {
      out.write(view);
      if (out.writableLength > 0) queued++;
      return honest && out.writableLength > 0;
    });
    await new Promise((resolve) => input.once('end', resolve));
    out.end();
    expect(queued).toBeGreaterThan(0); // the receiver's reluctance did queue writes
    const got = createHash('sha256');
    receiver.on('data', (d: Buffer) => got.update(d));
    receiver.resume();
    await new Promise((resolve) => receiver!.once('end', resolve));
    input.destroy();
    return { got: got.digest('hex'), sent: sent.digest('hex') };
  } finally {
    receiver?.destroy();
    await Promise.all([new Promise((r) => source.close(r)), new Promise((r) => sink.close(r))]);
  }
}

describe('reading into a reused buffer', () => {
  it('keeps every byte when writes of earlier reads are still queued', async () => {
    const { got, sent } = await relayToSlowReceiver(true);
    expect(got).toBe(sent);
  }, 60_000);

  it('(the check above can fail: a reader that hides its queued writes gets its bytes overwritten)', async () => {
    const { got, sent } = await relayToSlowReceiver(false);
    expect(got).not.toBe(sent);
  }, 60_000);
});

describe('takeOverAccepted', () => {
  it('reads the accepted socket, keeps it half-open, and lets the server close when it is gone', async () => {
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (accepted) => {
      const socket = takeOverAccepted(accepted, { allowHalfOpen: true });
      const seen: Buffer[] = [];
      readSocket(socket, (view) => {
        seen.push(Buffer.from(view));
        return false;
      });
      // After the client's end, the socket can still write: the answer goes out, then it closes.
      socket.on('end', () => socket.end(`got ${Buffer.concat(seen).toString()}`));
    });
    const port = await listen(server);
    const client = connect(port, '127.0.0.1');
    const answer: Buffer[] = [];
    client.on('data', (d: Buffer) => answer.push(d));
    client.end('hello, proxy');
    await new Promise((resolve) => client.once('close', resolve));
    expect(Buffer.concat(answer).toString()).toBe('got hello, proxy');
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  });
});
