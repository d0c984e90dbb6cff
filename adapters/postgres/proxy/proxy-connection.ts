/**
 * One client connection of the proxy: its lifecycle (phases, the end of the client's input,
 * drain, close), its sockets, and the objects that serve it once it is ready.
 *
 * Startup and authentication, up to the session's first ReadyForQuery, are
 * session-startup.ts's. Then every message is relayed byte for byte (relay.ts), except
 * those carrying model syntax (model-router.ts decides): a Query whose text holds a model
 * statement (simple-query.ts), and Parse with the Bind / Describe / Execute / Close / Sync
 * that refer to it (extended-protocol.ts). message-dispatch.ts keeps client messages in
 * order; the proxy answers a message itself only once every relayed one has been answered.
 * While the connection is idle in plain pass-through, the native relay may carry it
 * (native-handover.ts).
 *
 * Protocol flow: https://www.postgresql.org/docs/current/protocol-flow.html
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { ChunkSummary } from './chunk-summary.js';
import { ExtendedProtocol } from './extended-protocol.js';
import { FRONTEND_TYPES, Framer } from './framer.js';
import { errorResponse } from './message-builders.js';
import { MessageDispatch } from './message-dispatch.js';
import { NativeHandover } from './native-handover.js';
import { AdminShutdown, ProtocolViolation } from './protocol-errors.js';
import type { ProxyContext } from './proxy-context.js';
import type { ConnectionCounts } from './proxy-metrics.js';
import { Relay, type ConnectionTally } from './relay.js';
import { SessionStartup, type ConnectionPhase } from './session-startup.js';
import { SimpleQueries } from './simple-query.js';
import { readSocket, stopReading } from './socket-reading.js';
import { StatementContext } from './statement-context.js';
import { UpstreamConnection, type ChunkRelayed } from './upstream-connection.js';
import { UpstreamError, connectUpstreamSocket } from './upstream-target.js';

/** What serves a connection once its upstream session is open. */
export interface Serving {
  readonly upstream: UpstreamConnection;
  readonly relay: Relay;
  readonly context: StatementContext;
  readonly extended: ExtendedProtocol;
  readonly dispatch: MessageDispatch;
  /** Hands plain traffic to the native relay, when there is one. */
  readonly native: NativeHandover | undefined;
}

/**
 * One client connection.
 *
 * @example
 * server.on('connection', (socket) => new ProxyConnection(socket, context).start());
 */
export class ProxyConnection {
  private client: Socket;
  /** When the connection was accepted (ms since the epoch). */
  readonly acceptedAt = Date.now();
  /** The accepted socket (under TLS too), whose byte counts are the connection's. */
  private readonly raw: Socket;
  /** Statements and errors so far (see {@link counts}). */
  private readonly tally: ConnectionTally = { hostStatements: 0, modelStatements: 0, errors: 0 };
  private readonly framer: Framer;
  private phase: ConnectionPhase = 'startup';
  private serving: Serving | undefined;
  /** Startup and authentication, up to the session's first ReadyForQuery. */
  private readonly startup: SessionStartup;
  /** The proxy is shutting down: the connection ends as soon as nothing runs for it (drain). */
  private draining = false;
  /**
   * The client's input ended: it shut its side (half-close) between messages, or sent
   * Terminate. As Postgres does at the end of its input, every message it sent before is
   * still answered, then the connection closes; nothing after a Terminate is read.
   */
  private clientEnded = false;

  constructor(
    socket: Socket,
    private readonly context: ProxyContext,
  ) {
    this.client = socket;
    this.raw = socket;
    this.framer = new Framer({ startup: true, allowedTypes: FRONTEND_TYPES, maxLength: context.maxMessageBytes });
    this.startup = new SessionStartup(this, context, {
      phase: () => this.phase,
      client: () => this.client,
      clientEnded: () => this.clientEnded,
      serving: () => this.serving,
      upgradeToTls: () => this.upgradeToTls(),
      readOn: () => this.receive(undefined),
      connectUpstream: (startup) => {
        this.framer.startup = false;
        this.phase = 'connecting';
        void this.connectUpstream(startup);
      },
      ready: () => void (this.phase = 'ready'),
      fatal: (error) => this.fatal(error),
      close: (flush) => this.close(flush),
      endIfDrained: () => this.endIfDrained(),
    });
  }

  /** The proxy-side key the client got in BackendKeyData. */
  get key(): { readonly processId: number; readonly secret: Buffer } | undefined {
    return this.startup.key;
  }

  /** The user name of the StartupMessage (the client, for per-client limits). */
  get user(): string {
    return this.startup.user;
  }

  /** The database the client connected to (its StartupMessage's, else the upstream URL's). */
  get database(): string {
    return this.startup.database;
  }

  /** What the connection has done so far (metrics). */
  get counts(): ConnectionCounts {
    const native = this.serving?.native?.totals() ?? { bytesIn: 0, bytesOut: 0, messages: 0, liveCommands: 0 };
    return { ...this.tally, hostStatements: this.tally.hostStatements + native.liveCommands, bytesIn: this.raw.bytesRead + native.bytesIn, bytesOut: this.raw.bytesWritten + native.bytesOut, nativeMessages: native.messages };
  }

  /** The client's address, `host:port`. */
  get clientAddress(): string {
    const host = this.raw.remoteAddress ?? '';
    return host.includes(':') ? `[${host}]:${this.raw.remotePort}` : `${host}:${this.raw.remotePort}`;
  }

  /** Whether startup and authentication finished. */
  get authenticated(): boolean {
    return this.key !== undefined && this.phase !== 'startup' && this.phase !== 'connecting' && this.phase !== 'auth';
  }

  /** Starts reading the client. */
  start(): void {
    this.client.setNoDelay(true);
    this.attachClient(this.client);
    this.startup.startTimer();
  }

  /** Cancels what runs for this client: the upstream statement and any inference. */
  cancel(): void {
    this.serving?.context.existingSession?.cancel();
    void this.serving?.upstream.cancel();
  }

  /**
   * Ends the connection as soon as nothing runs for it: now when idle, else once the
   * statements in flight have been answered. The client gets Postgres's shutdown error
   * (FATAL `57P01`), as from a server's smart shutdown.
   */
  drain(): void {
    this.draining = true;
    this.serving?.native?.reclaim();
    this.endIfDrained();
  }

  private endIfDrained(): void {
    if (this.phase === 'closed') return;
    const serving = this.serving;
    if (this.clientEnded && !this.draining) {
      // Before the upstream has the startup, or with messages waiting: this is called again.
      if (this.phase === 'connecting' || serving?.dispatch.busy) return;
      // Relayed messages not all answered, or authentication under way: the upstream gets
      // the end of input too, answers what it read and closes (onUpstreamClosed closes the
      // client then). An extended batch without its Sync, or a COPY FROM STDIN, is rolled
      // back there, as Postgres does. Statements pipelined behind the authentication
      // responses wait for the session (the startup calls this again once it is ready).
      if (serving && !serving.upstream.isClosed && (this.phase === 'auth' || !serving.relay.settled)) {
        if (this.startup.inputEnded(serving.relay)) serving.upstream.endInput();
        return;
      }
      void this.close(true);
      return;
    }
    if (!this.draining) return;
    if (this.phase === 'ready' && serving && (serving.dispatch.busy || !serving.relay.settled)) return;
    this.fatal(new AdminShutdown('terminating connection due to administrator command'));
  }

  /**
   * Closes the connection (client and upstream), cancelling what runs. With `flush` (the
   * client's input ended and everything is answered), the client's socket is ended once its
   * last answers are written, and the connection counts as open until then; a later call
   * (the proxy's own close) destroys it at once.
   */
  async close(flush = false): Promise<void> {
    if (this.phase === 'closed') {
      this.client.destroy();
      this.context.unregister(this);
      return;
    }
    this.serving?.native?.reclaim(false);
    this.phase = 'closed';
    this.startup.stopTimer();
    // Flushing: the socket's 'close' (or endWhenWritten's timeout) comes back here to unregister.
    if (flush) endWhenWritten(this.client);
    else {
      this.context.unregister(this);
      this.client.destroy();
    }
    const serving = this.serving;
    if (!serving) return;
    const { upstream, relay, context, extended, dispatch } = serving;
    relay.close();
    const running = dispatch.running;
    if (dispatch.answering || running) {
      context.existingSession?.cancel();
      if (!upstream.isClosed) void upstream.cancel();
    }
    // Let the statement in flight unwind (its temporary tables are dropped on the way out) before the upstream goes.
    if (running) await Promise.race([running.catch(() => undefined), delay(5000)]);
    await extended.releaseAll();
    context.heldStages.clear();
    const session = context.existingSession;
    if (session) await session.close().catch(() => undefined);
    else await upstream.close().catch(() => undefined);
    upstream.destroy();
    relay.wakeIdleWaiters();
  }

  // ---- client side --------------------------------------------------------------------

  private attachClient(socket: Socket): void {
    readSocket(socket, this.onClientRead);
    socket.on('end', this.onClientEnd);
    socket.on('error', this.onClientClose);
    socket.on('close', this.onClientClose);
  }

  private readonly onClientClose = (): void => void this.close();

  private readonly onClientEnd = (): void => {
    if (this.framer.pending > 0) {
      this.fatal(new ProtocolViolation('incomplete message from client: connection closed mid-message'));
      return;
    }
    if (this.phase === 'startup') {
      void this.close();
      return;
    }
    this.endInput();
  };

  /**
   * The client's input ended (half-close, or Terminate): nothing more is read, and the
   * connection closes once every message before the end has been answered.
   */
  private endInput(): void {
    this.clientEnded = true;
    this.endIfDrained();
  }

  /** Takes the bytes of one client read (a view, valid only during the call: see socket-reading.ts). */
  private readonly onClientRead = (view: Buffer): boolean => {
    // After a Terminate, Postgres reads nothing more.
    if (this.clientEnded) return false;
    try {
      const serving = this.serving;
      if (this.phase === 'ready' && serving && serving.dispatch.idle && this.framer.pending === 0) {
        const relayed = serving.relay.relayPlainQueries(view, this.context.maxMessageBytes);
        if (relayed !== 'declined') return relayed === 'queued';
      }
      // Frames and partial messages outlive the call: they get a copy.
      this.receive(Buffer.from(view));
    } catch (error) {
      this.fatal(error);
    }
    return false;
  };

  /** Sends a FATAL ErrorResponse and closes. */
  private fatal(error: unknown): void {
    if (this.phase === 'closed') return;
    if (!(error instanceof ProtocolViolation) && !(error instanceof UpstreamError)) this.context.log('unexpected error on a client connection', error);
    const code = error instanceof ProtocolViolation || error instanceof UpstreamError ? error.sqlstate : 'XX000';
    this.tally.errors++;
    const message = error instanceof Error ? error.message : String(error);
    this.serving?.native?.reclaim(false);
    const socket = this.client;
    if (!socket.destroyed && socket.writable) socket.end(errorResponse({ severity: 'FATAL', code, message }));
    void this.close();
  }

  private receive(chunk: Buffer | undefined): void {
    if (this.phase === 'startup') {
      const [frame] = this.framer.push(chunk, 1);
      if (!frame) return;
      this.startup.onStartupPacket(frame);
      return;
    }
    const frames = this.framer.push(chunk);
    if (frames.length === 0) return;
    if (this.phase === 'ready') {
      this.serving?.dispatch.onFrames(frames);
      return;
    }
    if (this.phase === 'connecting' || this.phase === 'auth') this.startup.onClientFrames(frames);
  }

  /** Answers an SSLRequest `S` and runs TLS over the client's socket. */
  private upgradeToTls(): void {
    const raw = this.client;
    stopReading(raw);
    raw.off('end', this.onClientEnd);
    raw.off('close', this.onClientClose);
    raw.off('error', this.onClientClose);
    raw.write('S');
    const secure = new TLSSocket(raw, { isServer: true, secureContext: this.context.tls });
    this.client = secure;
    this.attachClient(secure);
  }

  // ---- upstream side ------------------------------------------------------------------

  /** Connects the upstream, then sends it the client's StartupMessage (`startup`). */
  private async connectUpstream(startup: Buffer): Promise<void> {
    let upstream: UpstreamConnection;
    try {
      upstream = new UpstreamConnection(await connectUpstreamSocket(this.context.target), this.context.target);
    } catch (error) {
      this.fatal(error);
      return;
    }
    if (this.phase === 'closed') {
      upstream.destroy();
      return;
    }
    this.serving = this.serve(upstream);
    const relay = this.serving.relay;
    upstream.onRelay = (frames) => (this.phase === 'auth' ? this.startup.onUpstreamFrames(frames) : relay.relayFrames(frames));
    upstream.onRelayChunk = (chunk: Buffer, summary: Readonly<ChunkSummary>): ChunkRelayed => (this.phase === 'auth' ? 'declined' : relay.relayChunk(chunk, summary));
    upstream.onAsync = (frame) => relay.toClient(frame.raw);
    upstream.onClose = (error) => this.onUpstreamClosed(error);
    this.phase = 'auth';
    upstream.write(startup);
    this.startup.sendBacklog(relay);
    // The client's input ended while the upstream connected: the upstream's ends now.
    if (this.clientEnded) this.endIfDrained();
  }

  /** The objects that serve the connection over `upstream`. */
  private serve(upstream: UpstreamConnection): Serving {
    const relay = new Relay(this.client, upstream, this.tally);
    const context = new StatementContext(relay, this.tally, (u) => this.context.createSession(u, this.user), (message, error) => this.context.log(message, error));
    const extended = new ExtendedProtocol(context);
    const owner = {
      isOpen: () => this.phase === 'ready',
      fatal: (error: unknown) => this.fatal(error),
      endInput: () => this.endInput(),
      endIfDrained: () => this.endIfDrained(),
      settled: () => void native?.tryHandOver(),
      log: (message: string, error?: unknown) => this.context.log(message, error),
    };
    const nativeRelay = this.context.nativeRelay;
    const native = nativeRelay && new NativeHandover(nativeRelay, { client: this.client, upstream, relay, tally: this.tally, maxMessageBytes: this.context.maxMessageBytes,
      passThroughIdle: () => this.phase === 'ready' && !this.draining && !this.clientEnded && this.framer.pending === 0 && dispatch.idle && context.heldStages.size === 0,
      clientRead: (bytes) => void this.onClientRead(bytes),
    });
    const dispatch = new MessageDispatch(this.client, owner, context, new SimpleQueries(context), extended);
    return { upstream, relay, context, extended, dispatch, native };
  }

  private onUpstreamClosed(error?: Error): void {
    if (this.phase === 'closed') return;
    if (this.clientEnded && !this.serving?.dispatch.answering) {
      // The end of input went upstream (endIfDrained): every answer has been relayed.
      void this.close(true);
      return;
    }
    if (this.phase === 'ready' && !this.serving?.dispatch.answering) {
      // Postgres sends its own FATAL before closing on shutdown; relay it, then say what happened.
      const reason = error ? `: ${(error as NodeJS.ErrnoException).code ?? error.message}` : '';
      this.fatal(new UpstreamError('08006', `connection to upstream server at ${this.context.target.label} was lost${reason}`));
      return;
    }
    if (this.phase === 'auth') {
      this.fatal(new UpstreamError('08006', `upstream server at ${this.context.target.label} closed the connection during authentication`));
      return;
    }
    // A statement in flight fails with 08006 through its exchange and closes the connection
    // then; one waiting for relayed answers that will never come is woken to do the same.
    this.serving?.relay.wakeIdleWaiters();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** How long a client that shut its side has to read the last answers before its socket is destroyed. */
const HALF_CLOSED_FLUSH_MS = 10_000;

/** Ends a half-closed client's socket once what was written to it is sent (destroyed if it does not read them within {@link HALF_CLOSED_FLUSH_MS}). */
function endWhenWritten(client: Socket): void {
  client.end();
  const timer = setTimeout(() => client.destroy(), HALF_CLOSED_FLUSH_MS).unref();
  client.once('close', () => clearTimeout(timer));
}
