/**
 * Client messages after startup, in order: each is relayed upstream (with the relay's
 * bookkeeping) unless it is for the proxy (model-router.ts decides for Query and Parse;
 * Bind / Describe / Execute / Close refer to a statement or portal the proxy keeps), in
 * which case it waits in a queue and the proxy answers it once the relay has quiesced;
 * messages after a queued one wait behind it. The client is read only while its messages
 * can go somewhere (backpressure).
 *
 * Protocol flow: https://www.postgresql.org/docs/current/protocol-flow.html
 */
import type { Socket } from 'node:net';
import type { ExtendedProtocol } from './extended-protocol.js';
import type { Frame } from './framer.js';
import { parseParse, parseQuery, parseTarget } from './message-readers.js';
import { bindStatementName, firstString } from './message-peek.js';
import { parseHoldsModelSyntax, queryHoldsModelSyntax } from './model-router.js';
import { ProtocolViolation } from './protocol-errors.js';
import type { SimpleQueries } from './simple-query.js';
import type { StatementContext } from './statement-context.js';
import { UpstreamError } from './upstream-target.js';

/** Bytes of client messages waiting for the proxy to answer them, past which the client is not read. */
const QUEUE_HIGH_WATER = 4 * 1024 * 1024;
/** Bytes of answers waiting in the client's socket, past which the proxy answers no more of its messages. */
const CLIENT_HIGH_WATER = 4 * 1024 * 1024;

/** What the dispatch needs of its connection. */
export interface DispatchOwner {
  /** Whether the connection is still open (ready). */
  isOpen(): boolean;
  /** Sends a FATAL ErrorResponse and closes. */
  fatal(error: unknown): void;
  /** The client sent Terminate: its input ends there, and the connection closes once every message before it is answered. */
  endInput(): void;
  /** Ends a draining connection once nothing runs for it. */
  endIfDrained(): void;
  /** Nothing relayed is in flight and no message waits: the connection may hand its plain traffic to the native relay. */
  settled(): void;
  /** Logs an unexpected error. */
  log(message: string, error?: unknown): void;
}

/**
 * The dispatch of one connection's client messages.
 *
 * @example
 * dispatch.onFrames(framer.push(chunk));
 */
export class MessageDispatch {
  /** The statement the proxy is answering, for cancel and disconnect. */
  running: Promise<void> | undefined;
  private readonly queue: Frame[] = [];
  /** Bytes of the client messages in `queue`. */
  private queuedBytes = 0;
  private processing = false;

  constructor(
    private readonly client: Socket,
    private readonly owner: DispatchOwner,
    private readonly context: StatementContext,
    private readonly simple: SimpleQueries,
    private readonly extended: ExtendedProtocol,
  ) {
    const relay = context.relay;
    relay.onUpstreamFull = () => this.updateClientReading();
    relay.onIdle = () => {
      owner.endIfDrained();
      if (context.heldStages.size > 0 && !this.processing && relay.transactionEnded()) void this.processQueue();
      else owner.settled();
    };
  }

  /** Whether the proxy is answering messages (or releasing held stages). */
  get answering(): boolean {
    return this.processing;
  }

  /** Whether the proxy is answering a message or has messages waiting. */
  get busy(): boolean {
    return this.processing || this.queue.length > 0;
  }

  /** Whether nothing is under way that a chunk of plain queries would have to wait for (the relay's fast path). */
  get idle(): boolean {
    return !this.processing && this.queue.length === 0;
  }

  /** Takes framed client messages. */
  onFrames(frames: readonly Frame[]): void {
    const relay = this.context.relay;
    const out: Buffer[] = [];
    let startLoop = false;
    for (const frame of frames) {
      const t = frame.type;
      if (relay.copyIn && (t === 'd' || t === 'c' || t === 'f')) {
        if (t !== 'd') relay.copyIn = false;
        out.push(frame.raw);
        continue;
      }
      if (this.processing || this.queue.length > 0 || !this.passThrough(frame, out)) {
        this.queue.push(frame);
        this.queuedBytes += frame.raw.length;
        startLoop = true;
      }
    }
    relay.toUpstreamAll(out);
    if (this.queuedBytes > QUEUE_HIGH_WATER) this.updateClientReading();
    if (startLoop && !this.processing) void this.processQueue();
  }

  /**
   * Relays `frame` (appending it to `out`) when it needs no model handling; returns false
   * when the proxy must handle it. Keeps the relay bookkeeping.
   */
  private passThrough(frame: Frame, out: Buffer[]): boolean {
    const relay = this.context.relay;
    const extended = this.extended;
    if (relay.batchFailed && frame.type !== 'S') return false;
    switch (frame.type) {
      case 'Q': {
        if (queryHoldsModelSyntax(frame.payload, this.context.lexOptions())) return false;
        relay.expectReadyForQuery();
        break;
      }
      case 'P': {
        const message = parseParse(frame.payload);
        if (parseHoldsModelSyntax(frame.payload, message.text, this.context.lexOptions())) return false;
        // A name the proxy holds is taken: its Parse answers 42P05, as Postgres would.
        if (message.name !== '' && extended.hasStatement(message.name)) return false;
        extended.forgetStatement(message.name);
        relay.batchPassThrough = true;
        break;
      }
      case 'B': {
        if (extended.holdsStatements && extended.hasStatement(bindStatementName(frame.payload))) return false;
        if (extended.holdsPortals) extended.dropPortal(firstString(frame.payload, 'Bind'));
        relay.batchPassThrough = true;
        break;
      }
      case 'D':
      case 'C': {
        if (extended.holdsStatements || extended.holdsPortals) {
          const target = parseTarget(frame.payload, frame.type === 'D' ? 'Describe' : 'Close');
          if (target.target === 'S' ? extended.hasStatement(target.name) : extended.hasPortal(target.name)) return false;
        }
        relay.batchPassThrough = true;
        break;
      }
      case 'E': {
        if (extended.holdsPortals && extended.hasPortal(firstString(frame.payload, 'Execute'))) return false;
        relay.batchPassThrough = true;
        break;
      }
      case 'H':
        if (!relay.batchPassThrough) return true; // nothing relayed to flush
        break;
      case 'S':
        if (relay.batchLocal || relay.batchFailed) return false;
        relay.batchPassThrough = false;
        relay.expectReadyForQuery();
        break;
      case 'F':
        relay.expectReadyForQuery();
        break;
      case 'X':
        return false;
      default:
        // CopyData/CopyDone/CopyFail outside COPY, PasswordMessage: Postgres answers them.
        break;
    }
    out.push(frame.raw);
    return true;
  }

  /**
   * Reads the client only while its messages can go somewhere: the upstream takes them, and
   * the messages the proxy answers itself wait for fewer than {@link QUEUE_HIGH_WATER}
   * bytes. A client that pipelines model statements without reading the answers is thus
   * held at that much, plus the answers waiting in its socket (processQueue stops at
   * {@link CLIENT_HIGH_WATER}), plus one message of at most `maxMessageBytes`.
   */
  private updateClientReading(): void {
    const stop = this.context.relay.upstreamFull || this.queuedBytes > QUEUE_HIGH_WATER;
    if (stop && !this.client.isPaused()) this.client.pause();
    else if (!stop && this.client.isPaused() && this.owner.isOpen()) this.client.resume();
  }

  /** Waits until the client has read its answers down to {@link CLIENT_HIGH_WATER} bytes (or is gone). */
  private async clientDrained(): Promise<void> {
    const client = this.client;
    while (client.writableLength > CLIENT_HIGH_WATER && this.owner.isOpen() && !client.destroyed) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          client.off('drain', done);
          client.off('close', done);
          resolve();
        };
        client.once('drain', done);
        client.once('close', done);
      });
    }
  }

  private async processQueue(): Promise<void> {
    const context = this.context;
    const upstream = context.upstream;
    this.processing = true;
    try {
      for (;;) {
        if (!this.owner.isOpen()) break;
        if (context.heldStages.size > 0 && context.relay.transactionEnded()) {
          await context.heldStages.releaseAll();
          continue;
        }
        if (this.queue.length === 0) break;
        const frame = this.queue.shift()!;
        this.queuedBytes -= frame.raw.length;
        if (this.client.isPaused() && this.queuedBytes <= QUEUE_HIGH_WATER / 2) this.updateClientReading();
        const out: Buffer[] = [];
        let handled: boolean;
        try {
          handled = this.passThrough(frame, out);
        } catch (error) {
          this.owner.fatal(error);
          return;
        }
        if (handled) {
          context.relay.toUpstreamAll(out);
          continue;
        }
        await this.clientDrained();
        const work = this.handle(frame);
        this.running = work;
        try {
          await work;
        } finally {
          this.running = undefined;
        }
        // The upstream went away while the proxy answered the message: nothing more can be served.
        if (upstream.isClosed) throw upstream.lostError();
      }
    } catch (error) {
      if (!(error instanceof UpstreamError) && !(error instanceof ProtocolViolation)) this.owner.log('unexpected error while handling a client message', error);
      this.owner.fatal(error);
    } finally {
      this.processing = false;
      this.owner.endIfDrained();
      this.owner.settled();
    }
  }

  /** Answers a message the proxy handles itself. */
  private async handle(frame: Frame): Promise<void> {
    switch (frame.type) {
      case 'Q':
        return this.simple.run(parseQuery(frame.payload));
      case 'X':
        // As in Postgres, the messages before it are answered; none after it is read.
        this.queue.length = 0;
        this.queuedBytes = 0;
        this.owner.endInput();
        return;
      case 'S':
        return this.extended.sync();
      default:
        break;
    }
    // An extended-protocol message for a model statement (or any message after an error, skipped).
    const context = this.context;
    const relay = context.relay;
    await relay.quiesce();
    if (relay.relayedError) relay.batchFailed = true;
    if (relay.batchFailed) return;
    if (!relay.batchLocal && this.extended.holdsPortals && relay.transactionEnded()) {
      // The transaction that held the proxy's portals has ended (a relayed Sync, COMMIT or
      // ROLLBACK): they are gone, as in Postgres, and a message for one is Postgres's to answer.
      this.extended.dropPortals();
      const out: Buffer[] = [];
      if (this.passThrough(frame, out)) {
        relay.toUpstreamAll(out);
        return;
      }
    }
    relay.batchLocal = true;
    try {
      switch (frame.type) {
        case 'P':
          return await this.extended.parse(frame.payload);
        case 'B':
          return await this.extended.bind(frame.payload);
        case 'D':
          return await this.extended.describe(frame.payload);
        case 'E':
          return await this.extended.execute(frame.payload);
        case 'C':
          return this.extended.close(frame.payload);
        default:
          throw new ProtocolViolation(`unexpected message type "${frame.type}"`);
      }
    } catch (error) {
      if (error instanceof ProtocolViolation) throw error;
      context.throwIfUpstreamLost(error);
      relay.batchFailed = true;
      await context.reportError(error, undefined);
    }
  }
}
