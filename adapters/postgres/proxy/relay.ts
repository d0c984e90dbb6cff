/**
 * The relay between one client and its upstream session, and its pipeline accounting.
 *
 * Client messages that need no model handling go upstream as they are (pipelining kept),
 * upstream answers go back to the client as they are, and the relay counts what is in
 * flight: the ReadyForQuery still expected for each relayed Query / Sync / FunctionCall,
 * those of Syncs the proxy injected (swallowed, the client never sent them), the extended
 * batch open since the last Sync, COPY FROM STDIN, an error relayed since the last
 * ReadyForQuery. Before the proxy answers a message itself it waits ({@link Relay.quiesce})
 * until everything relayed has been answered. Writes both ways keep backpressure: a client
 * that does not read its answers stops the upstream's reading, and a full upstream socket
 * stops the client's.
 *
 * The transaction status is the upstream connection's (it reads every ReadyForQuery); the
 * relay only reads it.
 *
 * Protocol flow: https://www.postgresql.org/docs/current/protocol-flow.html
 */
import type { Socket } from 'node:net';
import type { ChunkSummary } from './chunk-summary.js';
import { clientErrorResponse, type PositionMap } from './error-positions.js';
import type { Frame } from './framer.js';
import { SYNC } from './message-builders.js';
import { messageEnd } from './framer.js';
import { bytesMayHoldModelSyntax } from './model-router.js';
import { SocketWriter } from './socket-writing.js';
import { UpstreamError } from './upstream-target.js';
import type { ChunkRelayed, UpstreamConnection } from './upstream-connection.js';

/** What a connection has done, counted as it goes (metrics and the connection log). */
export interface ConnectionTally {
  hostStatements: number;
  modelStatements: number;
  errors: number;
}

/** How the answer of a statement the proxy sends upstream itself is relayed (see {@link Relay.exchange}). */
export interface ExchangeOptions {
  /** Maps an error's position to the client's text; where it maps nowhere (or unset) it is dropped. */
  readonly position: PositionMap | undefined;
  /** Message types not relayed (ParseComplete, BindComplete of the proxy's own Parse/Bind). */
  readonly swallow?: string;
  /** Without a Sync: the message types that end the exchange (relayed). */
  readonly until?: string;
}

/** Joins buffers that are adjacent views of one underlying memory block, so relaying a chunk copies nothing. */
function coalesce(buffers: readonly Buffer[]): Buffer {
  if (buffers.length === 1) return buffers[0]!;
  let contiguous = true;
  for (let i = 1; i < buffers.length && contiguous; i++) {
    const a = buffers[i - 1]!;
    const b = buffers[i]!;
    contiguous = a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset;
  }
  if (!contiguous) return Buffer.concat(buffers);
  const first = buffers[0]!;
  const last = buffers[buffers.length - 1]!;
  return Buffer.from(first.buffer, first.byteOffset, last.byteOffset + last.length - first.byteOffset);
}

/**
 * The relay of one client connection.
 *
 * @example
 * const relay = new Relay(client, upstream, tally);
 * relay.expectReadyForQuery();
 * relay.toUpstream(queryBytes);
 */
export class Relay {
  /** ReadyForQuery messages still expected for relayed Query / Sync / FunctionCall (and injected Syncs). */
  pendingRfq = 0;
  /** Relayed extended-protocol messages since the last Sync. */
  batchPassThrough = false;
  /** Messages the proxy answered itself since the last Sync. */
  batchLocal = false;
  /** An error happened in this extended batch: skip until Sync. */
  batchFailed = false;
  /** An ErrorResponse was relayed since the last ReadyForQuery. */
  relayedError = false;
  /** The upstream is in COPY FROM STDIN mode for the client. */
  copyIn = false;
  /** The proxy sent extended-protocol messages upstream without a Sync (a portal left open): the client's Sync must reach the upstream. */
  unsynced = false;
  /** Called when every relayed message has been answered. */
  onIdle: () => void = () => undefined;
  /** Called when the upstream socket's write buffer fills or drains ({@link upstreamFull}). */
  onUpstreamFull: () => void = () => undefined;
  /** Injected Syncs whose ReadyForQuery the client must not see. */
  private swallowRfq = 0;
  private idleWaiters: (() => void)[] = [];
  private full = false;
  private closed = false;
  /** Writes to the client (the hot path's writes skip the stream machinery: socket-writing.ts). */
  readonly clientWriter: SocketWriter;

  constructor(
    client: Socket,
    readonly upstream: UpstreamConnection,
    private readonly tally: ConnectionTally,
  ) {
    this.clientWriter = new SocketWriter(client);
  }

  /** The upstream socket's write buffer is full: the client should not be read until it drains. */
  get upstreamFull(): boolean {
    return this.full;
  }

  /** Whether nothing relayed is in flight (no answer expected, no batch or COPY open). */
  get settled(): boolean {
    return this.pendingRfq === 0 && !this.copyIn && !this.batchPassThrough && !this.unsynced;
  }

  /**
   * Whether no transaction that may hold a cursor is open upstream: every relayed message
   * answered, no extended batch open, and the last ReadyForQuery said idle.
   */
  transactionEnded(): boolean {
    return this.settled && !this.upstream.isClosed && this.upstream.status === 'I';
  }

  /** The connection closed: nothing more is written to the client, and whoever waits is woken. */
  close(): void {
    this.closed = true;
    this.wakeIdleWaiters();
  }

  /**
   * Folds in what the native relay did (native-handover.ts): `queries` Query messages relayed
   * upstream, `readyForQuery` ReadyForQuery messages relayed to the client.
   */
  foldNative(queries: number, readyForQuery: number): void {
    const pending = this.pendingRfq + queries - readyForQuery;
    this.pendingRfq = pending > 0 ? pending : 0;
    if (readyForQuery > 0) {
      this.copyIn = false;
      this.relayedError = false;
    }
  }

  /** Counts a relayed message that Postgres answers with a ReadyForQuery (Query, Sync, FunctionCall). */
  expectReadyForQuery(): void {
    this.pendingRfq++;
  }

  // ---- upstream to client ------------------------------------------------------------

  /** Upstream messages outside the proxy's own exchanges: to the client, counting ReadyForQuery. */
  relayFrames(frames: readonly Frame[]): void {
    let out: Buffer[] | undefined;
    let idle = false;
    for (const frame of frames) {
      const type = frame.raw[0]!;
      if (this.noteRelayed(type)) (out ??= []).push(frame.raw);
      if (type === 0x5a && this.pendingRfq === 0) idle = true;
    }
    if (out) this.toClient(coalesce(out));
    if (idle) this.onRelayIdle();
  }

  /**
   * {@link relayFrames} for a chunk of whole upstream messages, which goes to the client as
   * the same bytes (the hot path of plain traffic), its bookkeeping taken from the upstream's
   * one walk over it (`summary`). Declines, having changed nothing, when a ReadyForQuery
   * may have to be held back (an injected Sync's): the frame path handles that.
   */
  relayChunk(chunk: Buffer, summary: Readonly<ChunkSummary>): ChunkRelayed {
    if (this.swallowRfq > 0) return 'declined';
    const ready = summary.readyForQuery;
    this.tally.hostStatements += summary.commands;
    this.tally.errors += summary.errors;
    if (ready > 0) {
      this.copyIn = false;
      this.relayedError = false;
      this.pendingRfq = this.pendingRfq > ready ? this.pendingRfq - ready : 0;
    }
    if (summary.errorAfterReady) this.relayedError = true;
    if (summary.copyInAfterReady) this.copyIn = true;
    this.toClient(chunk);
    const relayed = this.clientWriter.queued ? 'queued' : 'written';
    if (ready > 0 && this.pendingRfq === 0) this.onRelayIdle();
    return relayed;
  }

  /**
   * The bookkeeping of one relayed upstream message, by its type byte. Returns false for a
   * ReadyForQuery the client must not see (it answers a Sync the proxy sent).
   */
  private noteRelayed(type: number): boolean {
    if (type === 0x5a /* Z */) {
      this.copyIn = false;
      if (this.pendingRfq > 0) this.pendingRfq--;
      if (this.swallowRfq > 0) {
        this.swallowRfq--;
        return false;
      }
      this.relayedError = false;
    } else if (type === 0x43 /* C */) {
      this.tally.hostStatements++;
    } else if (type === 0x45 /* E */) {
      this.relayedError = true;
      this.tally.errors++;
    } else if (type === 0x47 /* G */) {
      this.copyIn = true;
    }
    return true;
  }

  private onRelayIdle(): void {
    this.wakeIdleWaiters();
    this.onIdle();
  }

  /** Wakes whoever waits for the relayed statements to finish. */
  wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    if (waiters.length === 0) return;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  // ---- client to upstream ------------------------------------------------------------

  /**
   * The hot path of plain client traffic: a chunk of whole simple-protocol queries without
   * model syntax goes upstream as the same bytes, in one walk over it. The caller offers
   * only chunks that arrive while nothing else is under way. Declines, having changed
   * nothing, anything else (the frame path handles it), a message longer than
   * `maxLength` included: the client's limit (`--max-message-bytes`) is the framer's to
   * enforce, whatever the size of the read that brought the message.
   */
  relayPlainQueries(chunk: Buffer, maxLength: number): ChunkRelayed {
    if (this.copyIn || this.batchFailed || chunk.length === 0) return 'declined';
    let queries = 0;
    for (let at = 0, end = 0; at < chunk.length; at = end) {
      end = messageEnd(chunk, at, maxLength);
      if (end < 0 || chunk[at] !== 0x51 /* Q */ || bytesMayHoldModelSyntax(chunk, at + 5, end)) return 'declined';
      queries++;
    }
    this.pendingRfq += queries;
    this.toUpstream(chunk);
    return this.upstream.writeQueued ? 'queued' : 'written';
  }

  /** Writes to the client, pausing the upstream while the client cannot keep up. */
  toClient(data: Buffer): void {
    if (this.closed) return;
    if (!this.clientWriter.write(data)) {
      const upstream = this.upstream.socket;
      if (upstream.isPaused()) return;
      upstream.pause();
      this.clientWriter.onceDrained(() => upstream.resume());
    }
  }

  /** Writes several messages to the client in one write. */
  toClientAll(buffers: readonly Buffer[]): void {
    if (buffers.length > 0) this.toClient(coalesce(buffers));
  }

  /** Writes client messages upstream, telling {@link onUpstreamFull} while the upstream cannot keep up. */
  toUpstream(data: Buffer): void {
    if (!this.upstream.write(data) && !this.full) {
      this.full = true;
      this.onUpstreamFull();
      this.upstream.onceDrained(() => {
        this.full = false;
        this.onUpstreamFull();
      });
    }
  }

  /** Writes several client messages upstream in one write. */
  toUpstreamAll(buffers: readonly Buffer[]): void {
    if (buffers.length > 0) this.toUpstream(coalesce(buffers));
  }

  // ---- the proxy's own turns ---------------------------------------------------------

  /** Waits until every relayed message has been answered, closing an open extended batch with a Sync (its ReadyForQuery swallowed). */
  async quiesce(): Promise<void> {
    if (this.batchPassThrough) {
      this.batchPassThrough = false;
      this.unsynced = false;
      this.pendingRfq++;
      this.swallowRfq++;
      this.toUpstream(SYNC);
    }
    while (this.pendingRfq > 0 && !this.closed && !this.upstream.isClosed) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    if (this.upstream.isClosed) throw this.upstream.lostError();
    if (this.closed) throw new UpstreamError('08006', 'connection closed');
  }

  /** Relays the client's Sync upstream: it ends the batch, and its ReadyForQuery goes to the client. */
  forwardSync(): void {
    this.batchPassThrough = false;
    this.unsynced = false;
    this.pendingRfq++;
    this.toUpstream(SYNC);
  }

  /** Ends the extended batch the proxy left open upstream (`unsynced`) with a Sync of its own. */
  async syncUpstream(): Promise<void> {
    if (!this.unsynced) return;
    this.unsynced = false;
    await this.upstream.exchange(SYNC, (frame) => frame.type === 'Z');
  }

  /**
   * Sends `messages` upstream (the proxy's own statement) and relays the answer until
   * ReadyForQuery (not relayed), or without a Sync until a message of `until`; returns
   * false when Postgres answered with an error.
   */
  async exchange(messages: Buffer | readonly Buffer[], options: ExchangeOptions): Promise<boolean> {
    let failed = false;
    const until = options.until;
    this.unsynced = until !== undefined;
    await this.upstream.exchange(messages, (frame) => {
      if (until?.includes(frame.type)) {
        if (frame.type === 'E') failed = true;
        this.toClient(frame.type === 'E' ? clientErrorResponse(frame.payload, options.position) : frame.raw);
        return true;
      }
      switch (frame.type) {
        case 'Z':
          this.copyIn = false;
          return true;
        case 'E':
          failed = true;
          this.toClient(clientErrorResponse(frame.payload, options.position));
          return false;
        case 'G':
          this.copyIn = true;
          break;
        default:
          if (options.swallow?.includes(frame.type)) return false;
      }
      this.toClient(frame.raw);
      return false;
    });
    return !failed;
  }
}
