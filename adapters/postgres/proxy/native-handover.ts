/**
 * When one client connection's plain traffic goes to the native relay (native-relay.ts),
 * and how it comes back.
 *
 * A session is handed over only while it is in plain pass-through and idle: authenticated,
 * every relayed message answered, nothing queued or half-read in JavaScript, no COPY, no
 * extended batch, no model work pending, no TLS on either side, no write waiting. libuv
 * stops reading both sockets (`handle.readStop`), and the thread reads them instead.
 *
 * When the thread gives the session back (a message it does not relay, end of stream, a
 * write that would block, or {@link NativeHandover.reclaim}), its counters are folded into
 * the connection's objects (statements, the relay's pipeline count, the transaction status,
 * which the upstream connection keeps owning), libuv reads again, the bytes the thread had
 * relayed but not written are written, and the bytes it had read but not relayed are
 * handled exactly as if JavaScript had just read them; only once all of them are, may the
 * thread take the session again.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { MAX_MESSAGE_LENGTH } from './framer.js';
import type { NativeHandBack, NativeRelay } from './native-relay.js';
import type { ConnectionTally, Relay } from './relay.js';
import type { UpstreamConnection } from './upstream-connection.js';

/** A stream socket's native handle (`TCP`, `Pipe`), as far as a hand-over goes. */
interface ReadHandle {
  readonly fd: number;
  /** Node's flag: libuv reads the handle (a paused socket has it false). */
  readonly reading: boolean;
  readStart(): number;
  readStop(): number;
}

function handleOf(socket: Socket): ReadHandle | undefined {
  if (socket instanceof TLSSocket || socket.destroyed) return undefined;
  const handle = (socket as unknown as { _handle?: Partial<ReadHandle> | null })._handle;
  if (!handle || typeof handle.readStart !== 'function' || typeof handle.readStop !== 'function') return undefined;
  return typeof handle.fd === 'number' && handle.fd >= 0 && handle.reading === true ? (handle as ReadHandle) : undefined;
}

/** What a connection offers its hand-over. */
export interface HandoverSession {
  readonly client: Socket;
  readonly upstream: UpstreamConnection;
  readonly relay: Relay;
  readonly tally: ConnectionTally;
  /** Longest message the client may send (a longer one goes back to JavaScript, which refuses it). */
  readonly maxMessageBytes: number;
  /** Whether the connection itself is idle in plain pass-through (ready, not draining, no message queued or half-read, no held stage). */
  passThroughIdle(): boolean;
  /** Handles client bytes as if just read. */
  clientRead(bytes: Buffer): void;
}

/** Bytes and messages the native relay carried for a connection. */
export interface NativeTotals {
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly messages: number;
  /**
   * CommandComplete messages the thread relayed in its current turn: not in the
   * connection's tally yet (folded in at hand-back), and counted with it, so that statement
   * counts read while the thread holds the session are live too.
   */
  readonly liveCommands: number;
}

/**
 * The native turns of one connection.
 *
 * @example
 * const handover = new NativeHandover(native, session);
 * relay.onIdle = () => handover.tryHandOver();
 * // before closing: handover.reclaim();
 */
export class NativeHandover {
  /** The thread's id of the session while it holds it. */
  private id: number | undefined;
  /** The thread saw a stream end or fail: JavaScript handles the rest of the connection. */
  private ended = false;
  /**
   * Set while a hand-back's bytes are being handled: the upstream's may settle the relay
   * (an ErrorResponse and ReadyForQuery) before the client's (half a message) have reached
   * the framer, and a hand-over then would leave that half in JavaScript and its rest to
   * the thread.
   */
  private resuming = false;
  /** Totals of the finished native turns. */
  private done = { bytesIn: 0, bytesOut: 0, messages: 0, liveCommands: 0 };

  constructor(
    private readonly native: NativeRelay,
    private readonly session: HandoverSession,
  ) {}

  /** Whether the thread holds the session now. */
  get active(): boolean {
    return this.id !== undefined;
  }

  /** Hands the session to the thread when it is idle in plain pass-through; true when it did. */
  tryHandOver(): boolean {
    if (this.id !== undefined || this.ended || this.resuming) return false;
    const { client, upstream, relay } = this.session;
    if (!relay.settled || relay.batchFailed || relay.upstreamFull || relay.clientWriter.queued || !upstream.relayIdle) return false;
    if (!this.session.passThroughIdle()) return false;
    const clientHandle = handleOf(client);
    const upstreamHandle = handleOf(upstream.socket);
    if (!clientHandle || !upstreamHandle) return false;
    clientHandle.readStop();
    upstreamHandle.readStop();
    const id = this.native.attach(clientHandle.fd, upstreamHandle.fd, this.session.maxMessageBytes, MAX_MESSAGE_LENGTH, (back) => this.resume(back));
    if (id === undefined) {
      clientHandle.readStart();
      upstreamHandle.readStart();
      return false;
    }
    this.id = id;
    return true;
  }

  /**
   * Takes the session back now, if the thread holds it (before draining, closing, or
   * writing to either socket). With `resumeReading` false (the connection is closing), only
   * the counters are folded in: nothing more is read or written.
   */
  reclaim(resumeReading = true): void {
    if (this.id === undefined) return;
    const back = this.native.release(this.id);
    this.id = undefined;
    if (back) this.resume(back, resumeReading);
  }

  /** Bytes and messages carried natively so far, the current turn included; and that turn's statements. */
  totals(): NativeTotals {
    const live = this.id === undefined ? undefined : this.native.counters(this.id);
    const done = this.done;
    if (!live) return done;
    return { bytesIn: done.bytesIn + live.bytesFromClient, bytesOut: done.bytesOut + live.bytesToClient, messages: done.messages + live.messages, liveCommands: live.commands };
  }

  private resume(back: NativeHandBack, resumeReading = true): void {
    this.id = undefined;
    const { client, upstream, relay, tally } = this.session;
    const c = back.counters;
    this.done = { bytesIn: this.done.bytesIn + c.bytesFromClient, bytesOut: this.done.bytesOut + c.bytesToClient, messages: this.done.messages + c.messages, liveCommands: 0 };
    if (back.reason === 'end' || back.reason === 'error') this.ended = true;
    tally.hostStatements += c.commands;
    relay.foldNative(c.queries, c.readyForQuery);
    if (c.readyForQuery > 0) upstream.noteStatus(c.lastStatus);
    if (!resumeReading) return;
    for (const socket of [client, upstream.socket]) {
      const handle = (socket as unknown as { _handle?: ReadHandle | null })._handle;
      if (handle && !socket.destroyed && handle.reading) handle.readStart();
    }
    this.resuming = true;
    try {
      if (back.toUpstream.length > 0) relay.toUpstream(back.toUpstream);
      if (back.toClient.length > 0) relay.toClient(back.toClient);
      if (back.fromUpstream.length > 0) upstream.receive(back.fromUpstream);
      if (back.fromClient.length > 0) this.session.clientRead(back.fromClient);
    } finally {
      this.resuming = false;
    }
    // Every byte handed back is now where it would be had JavaScript read it: if that left
    // the connection idle (a ParameterStatus relayed, say), the thread takes it again.
    this.tryHandOver();
  }
}
