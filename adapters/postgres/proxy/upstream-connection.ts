/**
 * The proxy's connection to the upstream Postgres: one socket per client, carrying the
 * client's relayed traffic and, between client messages, the proxy's own queries (model
 * stages, catalog reads). Implements `PgConnection` so the Postgres host runs on it.
 *
 * Two modes on one socket:
 * - relay: upstream messages go to `onRelay` (the proxy forwards them to the client);
 * - exchange: while the proxy runs its own statement, upstream messages go to that
 *   statement's handler, except asynchronous ones (NotificationResponse, ParameterStatus),
 *   which are always relayed.
 * The proxy starts an exchange only when the relay is idle (every relayed Query/Sync has had
 * its ReadyForQuery), so the two never interleave.
 *
 * The connection owns the session's transaction status: it reads the status byte of every
 * ReadyForQuery it receives (relayed, answering the proxy's own queries, or during
 * authentication), and everyone else only reads {@link UpstreamConnection.status}.
 *
 * Protocol: https://www.postgresql.org/docs/current/protocol-flow.html
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { PgConnection, PgQueryResult, TransactionStatus } from '../pg-connection.js';
import { ChunkSummary } from './chunk-summary.js';
import { Framer, type CopyDataSink, type Frame } from './framer.js';
import { TERMINATE, cancelRequest } from './message-builders.js';
import { readSocket } from './socket-reading.js';
import { SocketWriter } from './socket-writing.js';
import { UpstreamError, socketAddress, type UpstreamTarget } from './upstream-target.js';
import { upstreamCopyFrom, upstreamCopyTo, upstreamQuery } from './upstream-queries.js';

/** Receives upstream messages outside an exchange (the relay). */

export type RelaySink = (frames: readonly Frame[]) => void;

/**
 * What became of a chunk offered to {@link UpstreamConnection.onRelayChunk}: declined (it is
 * framed instead), written on, or queued in a write that still refers to its bytes.
 */
export type ChunkRelayed = 'declined' | 'written' | 'queued';

/** Consumes upstream messages during an exchange; returns true when the exchange is over. */
export type ExchangeHandler = (frame: Frame) => boolean;

interface ActiveExchange {
  readonly handler: ExchangeHandler;
  /** Receives CopyData payloads instead of `handler` (see `Framer.push`). */
  readonly copyData: CopyDataSink | undefined;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * One upstream session, shared by the relay and the proxy's own queries.
 *
 * @example
 * const upstream = new UpstreamConnection(socket, target);
 * upstream.onRelay = (frames) => client.write(...);
 */
export class UpstreamConnection implements PgConnection {
  /** Upstream messages outside an exchange. */
  onRelay: RelaySink = () => undefined;
  /**
   * A received chunk of whole messages outside an exchange, offered in one piece before it
   * is cut into frames for {@link onRelay}, with what the connection's one walk over it
   * found. The chunk is a view of the read buffer, valid only during the call; the summary
   * is reused for the next chunk.
   */
  onRelayChunk: (chunk: Buffer, summary: Readonly<ChunkSummary>) => ChunkRelayed = () => 'declined';
  /** Asynchronous messages (NotificationResponse, ParameterStatus) during an exchange. */
  onAsync: (frame: Frame) => void = () => undefined;
  /** Called once when the socket closes; `error` when it failed. */
  onClose: (error?: Error) => void = () => undefined;
  /** The upstream backend's key (from BackendKeyData), for CancelRequest. */
  backendKey: { readonly processId: number; readonly secret: Buffer } | undefined;
  /** Status of the last ReadyForQuery received (see {@link status}). */
  private currentStatus = 'I';
  /** The walk over the chunk just read (the relay's fast path). */
  private readonly summary = new ChunkSummary();
  /** `standard_conforming_strings` as the server last reported it (ParameterStatus). */
  private standardStrings = true;

  private readonly framer = new Framer();
  /** The relay's writes (socket-writing.ts); the proxy's own statements write through the stream. */
  private readonly writer: SocketWriter;
  private exchangeState: ActiveExchange | undefined;
  private closed = false;
  private closeError: Error | undefined;

  constructor(
    readonly socket: Socket,
    readonly target: UpstreamTarget,
  ) {
    this.writer = new SocketWriter(socket);
    readSocket(socket, (view) => this.onRead(view));
    socket.on('error', (error) => this.finish(error));
    socket.on('close', () => this.finish());
  }

  /**
   * The session's transaction status, from the last ReadyForQuery received: `I` idle, `T`
   * in a transaction block, `E` in a failed one. Set by this connection alone.
   */
  get status(): string {
    return this.currentStatus;
  }

  /**
   * The status byte (a char code) of the last ReadyForQuery the native relay passed on
   * (native-handover.ts): the relay reports it, the connection keeps it.
   */
  noteStatus(code: number): void {
    this.currentStatus = String.fromCharCode(code);
  }

  /** Whether the socket is open and carries nothing half-read, queued or exchanged (a native hand-over may start). */
  get relayIdle(): boolean {
    return !this.closed && this.exchangeState === undefined && this.framer.pending === 0 && !this.writer.queued;
  }

  /** Handles upstream bytes as if just read (bytes the native relay read and gave back). */
  receive(bytes: Buffer): void {
    this.onRead(bytes);
  }

  /** `standard_conforming_strings` as the server last reported it (ParameterStatus). */
  standardConformingStrings(): boolean {
    return this.standardStrings;
  }

  /**
   * Notes the settings of the ParameterStatus messages among the whole messages of `bytes`
   * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-ASYNC: sent at
   * startup and whenever a reported setting changes, whatever the exchange).
   */
  private noteParameters(bytes: Buffer): void {
    for (let at = 0; at + 5 <= bytes.length; ) {
      const end = at + 1 + bytes.readInt32BE(at + 1);
      if (bytes[at] === 0x53 && end <= bytes.length) this.noteParameter(bytes.subarray(at + 5, end));
      at = end;
    }
  }

  /** One ParameterStatus body: name and value, each NUL-terminated. */
  private noteParameter(body: Buffer): void {
    const nul = body.indexOf(0);
    if (nul < 0 || body.toString('latin1', 0, nul) !== 'standard_conforming_strings') return;
    this.standardStrings = body.toString('latin1', nul + 1, body.indexOf(0, nul + 1)) === 'on';
  }

  /** True once the socket has closed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** True while the proxy runs its own statement on the socket. */
  get inExchange(): boolean {
    return this.exchangeState !== undefined;
  }

  /** Writes raw bytes; returns false when the socket wants the writer to wait for 'drain'. */
  write(data: Buffer): boolean {
    if (this.closed) return true;
    return this.writer.write(data);
  }

  /** Whether written bytes are still queued (see {@link SocketWriter.queued}). */
  get writeQueued(): boolean {
    return this.writer.queued;
  }

  /** Calls `callback` once everything written so far has gone out. */
  onceDrained(callback: () => void): void {
    this.writer.onceDrained(callback);
  }

  /**
   * Sends `out` and routes every upstream message to `handler` until it returns true
   * (CopyData to `copyData` when given).
   *
   * @throws UpstreamError 08006 when the socket closes first.
   */
  exchange(out: Buffer | readonly Buffer[], handler: ExchangeHandler, copyData?: CopyDataSink): Promise<void> {
    if (this.closed) return Promise.reject(this.lostError());
    if (this.exchangeState) return Promise.reject(new Error('modelsql proxy: overlapping upstream exchanges'));
    return new Promise<void>((resolve, reject) => {
      this.exchangeState = { handler, copyData, resolve, reject };
      if (Buffer.isBuffer(out)) this.socket.write(out);
      else {
        this.socket.cork();
        for (const b of out) this.socket.write(b);
        this.socket.uncork();
      }
    });
  }

  // ---- PgConnection ----------------------------------------------------------------

  query(sql: string, params?: readonly unknown[]): Promise<PgQueryResult> {
    return upstreamQuery(this, sql, params);
  }

  copyFrom(sql: string, data: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>): Promise<void> {
    return upstreamCopyFrom(this, sql, data);
  }

  copyTo(sql: string): AsyncIterable<Uint8Array> {
    return upstreamCopyTo(this, sql);
  }

  transactionStatus(): TransactionStatus {
    return this.currentStatus === 'T' ? 'transaction' : this.currentStatus === 'E' ? 'failed' : 'idle';
  }

  /** Sends a CancelRequest with the upstream's key on a new socket. */
  async cancel(): Promise<void> {
    const key = this.backendKey;
    if (!key || this.closed) return;
    await new Promise<void>((resolve) => {
      const socket = netConnect(socketAddress(this.target));
      socket.on('connect', () => socket.end(cancelRequest(key.processId, key.secret)));
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
  }

  /**
   * Shuts the sending side, as the client shut its own: Postgres answers every message it has
   * read, rolls back what no Sync finished, and ends the session (the socket then closes).
   */
  endInput(): void {
    if (!this.closed && !this.socket.writableEnded) this.socket.end();
  }

  /** Sends Terminate and closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      // Cleared on close: a pending timer would keep the connection (and its read buffer) alive.
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 1000).unref();
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end(TERMINATE);
    });
  }

  /** Destroys the socket at once. */
  destroy(): void {
    this.socket.destroy();
  }

  // ---- internals --------------------------------------------------------------------

  /** Takes the bytes of one read (a view, valid only during the call: see socket-reading.ts). */
  private onRead(view: Buffer): boolean {
    // The hot path of plain traffic: an answer that arrives whole goes on as the same bytes.
    const summary = this.summary;
    if (this.exchangeState === undefined && this.framer.pending === 0 && summary.scan(view)) {
      if (summary.readyForQuery > 0) this.currentStatus = String.fromCharCode(summary.status);
      if (summary.parameterStatus > 0) this.noteParameters(view);
      const relayed = this.onRelayChunk(view, summary);
      if (relayed !== 'declined') return relayed === 'queued';
    }
    // Frames, partial messages and COPY payloads outlive the call: they get a copy.
    this.onData(Buffer.from(view));
    return false;
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.framer.push(chunk, Infinity, this.exchangeState?.copyData);
    } catch (error) {
      this.socket.destroy(error as Error);
      return;
    }
    let relay: Frame[] | undefined;
    for (const frame of frames) {
      if (frame.type === 'S') this.noteParameter(frame.payload);
      else if (frame.type === 'Z') this.currentStatus = String.fromCharCode(frame.payload[0] ?? 73);
      const ex = this.exchangeState;
      if (!ex) {
        (relay ??= []).push(frame);
        continue;
      }
      if (relay) {
        this.onRelay(relay);
        relay = undefined;
      }
      if (frame.type === 'A' || frame.type === 'S') {
        this.onAsync(frame);
        continue;
      }
      let done: boolean;
      try {
        done = ex.handler(frame);
      } catch (error) {
        // A malformed message from the upstream: give up on the session.
        this.exchangeState = undefined;
        ex.reject(error as Error);
        this.socket.destroy();
        return;
      }
      if (done) {
        this.exchangeState = undefined;
        ex.resolve();
      }
    }
    if (relay) this.onRelay(relay);
  }

  /** The 08006 error of a lost connection, naming the socket's error when there was one. */
  lostError(): UpstreamError {
    const reason = this.closeError ? `: ${(this.closeError as NodeJS.ErrnoException).code ?? this.closeError.message}` : '';
    return new UpstreamError('08006', `connection to upstream server at ${this.target.label} was lost${reason}`);
  }

  private finish(error?: Error): void {
    if (error) this.closeError ??= error;
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const ex = this.exchangeState;
    this.exchangeState = undefined;
    ex?.reject(this.lostError());
    this.onClose(this.closeError);
  }
}
