/**
 * Socket reading for the relay's hot path. A stream socket hands each read to JavaScript as
 * a new Buffer pushed through the Readable machinery; net's `onread` option instead reads
 * into one buffer, reused from read to read, and calls back directly
 * (https://nodejs.org/api/net.html#socketconnectoptions-connectlistener). For a relay that
 * passes most reads straight on, that is a few microseconds less per message.
 *
 * A reader sees a view of the bytes just read, valid only during the call: it uses the bytes
 * at once (writes them on, parses them) or copies them. It returns true when something still
 * refers to the view after the call, a write that has not gone out yet, and the next read
 * then goes to a fresh buffer.
 *
 * Where Node's `stream_wrap` binding is at hand (stream-binding.ts), the socket's handle
 * calls the reader straight from its read callback: a read of n > 0 bytes skips net's
 * generic callback (its timer refresh, its symbol lookups, the buffer generator called and
 * handed back to the handle after every read); the end of the stream and errors still go
 * through net's callback, as does everything when the binding is missing.
 */
import { Socket, connect, type NetConnectOpts } from 'node:net';
import { streamBinding } from './stream-binding.js';

/** Handles the bytes of one read; true when the view must stay intact after the call. */
export type ViewReader = (view: Buffer) => boolean;

const READ_BUFFER_BYTES = 64 * 1024;

/** The reused read buffer of one socket, and who reads it. */
class ReusedBufferReads {
  reader: ViewReader = () => false;
  private buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  /**
   * The view of the last read, reused for the next read of the same length into the same
   * buffer (a request/response workload reads the same lengths again and again: no Buffer
   * object per read then). A reader that keeps the view past the call says so, and the
   * buffer (and with it the view) is replaced.
   */
  private view: Buffer = this.buffer.subarray(0, 0);
  /** The buffer {@link view} is a view of. */
  private viewOf: Buffer = this.buffer;
  readonly onread = {
    buffer: (): Buffer => this.buffer,
    // Returning false would pause the socket; pausing is left to socket.pause().
    callback: (length: number, buffer: Uint8Array): boolean => {
      let view = this.view;
      if (view.length !== length || view.buffer !== buffer.buffer || view.byteOffset !== buffer.byteOffset) this.view = view = (buffer as Buffer).subarray(0, length);
      if (this.reader(view)) this.buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
      return true;
    },
  };

  /**
   * Makes `socket`'s handle deliver reads of n > 0 bytes to the reader directly (see the
   * file's comment); other reads, and every read where that cannot be done, take net's way.
   */
  hookHandle(socket: Socket): void {
    const binding = streamBinding();
    const handle = (socket as unknown as { _handle?: { onread?: unknown } | null })._handle;
    if (!binding || !handle || typeof handle.onread !== 'function') return;
    const netOnread = handle.onread as (this: unknown, arrayBuffer: unknown) => unknown;
    const state = binding.streamBaseState;
    const index = binding.kReadBytesOrError;
    const reads = this;
    handle.onread = function (this: unknown, arrayBuffer: unknown): unknown {
      const length = state[index]!;
      if (length > 0 && !socket.destroyed) return reads.deliver(length);
      return netOnread.call(this, arrayBuffer);
    };
  }

  /**
   * The read of `length` bytes into {@link buffer}, from the handle: the reader gets its view;
   * returns the buffer the handle reads into next when it changes (the handle takes a returned
   * buffer as its new one), else undefined.
   */
  private deliver(length: number): Buffer | undefined {
    let view = this.view;
    const buffer = this.buffer;
    if (view.length !== length || this.viewOf !== buffer) {
      this.view = view = buffer.subarray(0, length);
      this.viewOf = buffer;
    }
    if (!this.reader(view)) return undefined;
    this.buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    return this.buffer;
  }
}

/** Sockets that read into a reused buffer. */
const reusedBufferSockets = new WeakMap<Socket, ReusedBufferReads>();

/** Opens a socket that reads into a reused buffer ({@link readSocket} says who reads it). */
export function connectReusingBuffer(options: NetConnectOpts): Socket {
  const reads = new ReusedBufferReads();
  const socket = connect({ ...options, onread: reads.onread });
  reads.hookHandle(socket);
  reusedBufferSockets.set(socket, reads);
  return socket;
}

/**
 * A socket accepted by a server created with `pauseOnConnect`, remade to read into a
 * reused buffer: a server has no `onread` option, so a new Socket takes over the accepted
 * socket's handle. The accepted socket keeps no handle and is destroyed when the new one
 * closes, which settles the server's count of connections. Where the handle cannot be
 * taken, the accepted socket itself is returned, reading as a stream.
 */
export function takeOverAccepted(accepted: Socket, options: { readonly allowHalfOpen: boolean }): Socket {
  const inner = accepted as unknown as { _handle?: { readStart?: unknown } | null };
  const handle = inner._handle;
  if (!handle || typeof handle.readStart !== 'function') {
    accepted.resume();
    return accepted;
  }
  const reads = new ReusedBufferReads();
  const socket = new Socket({ handle, allowHalfOpen: options.allowHalfOpen, onread: reads.onread } as ConstructorParameters<typeof Socket>[0]);
  inner._handle = null;
  reads.hookHandle(socket);
  socket.once('close', () => accepted.destroy());
  reusedBufferSockets.set(socket, reads);
  return socket;
}

/**
 * Sends what `socket` reads to `reader`: straight from the reused buffer when the socket
 * reads into one, else from its 'data' events (whose chunks satisfy the reader's contract
 * trivially). A socket has one reader; a later call replaces it.
 */
export function readSocket(socket: Socket, reader: ViewReader): void {
  const reads = reusedBufferSockets.get(socket);
  if (reads) {
    reads.reader = reader;
    return;
  }
  socket.removeAllListeners('data');
  socket.on('data', (chunk: Buffer) => void reader(chunk));
}

/** Stops sending what `socket` reads to its reader (a TLS layer reads it from now on). */
export function stopReading(socket: Socket): void {
  const reads = reusedBufferSockets.get(socket);
  if (reads) reads.reader = () => false;
  else socket.removeAllListeners('data');
}
