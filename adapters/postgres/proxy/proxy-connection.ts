/**
 * One client connection of the proxy and its upstream session.
 *
 * Startup: SSLRequest is answered `S` (then TLS) when the proxy has a certificate, else
 * `N`; GSSENCRequest `N`; the StartupMessage goes upstream and authentication is relayed
 * both ways, so the client authenticates against Postgres itself. BackendKeyData is
 * replaced by a proxy-side key (for CancelRequest).
 *
 * Then every message is relayed byte for byte, except those carrying model syntax: a
 * Query whose text holds a model statement, and Parse (with the Bind / Describe / Execute /
 * Close / Sync that refer to it). The proxy answers those itself, running the model
 * statements through a `ModelSession` whose host works on the same upstream socket; host
 * statements of a mixed script still go upstream as written, and the final SQL of an
 * ML_PREDICT runs upstream too, its answer relayed as Postgres sends it.
 *
 * Ordering: client messages are handled in order. Relayed messages are written upstream at
 * once (pipelining kept); before the proxy answers a message itself it waits until every
 * relayed Query/Sync has had its ReadyForQuery, injecting a Sync (whose ReadyForQuery it
 * swallows) when relayed extended-protocol messages are still open.
 *
 * Protocol flow: https://www.postgresql.org/docs/current/protocol-flow.html
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { ModelSqlError } from '../../../core/errors.js';
import type { ModelSession, PreparedQuery } from '../../../core/session/model-session.js';
import type { QueryStatement, Statement } from '../../../core/sql/ast.js';
import { parseScript, parseScriptAfter } from '../../../core/sql/parser.js';
import type { LexOptions } from '../../../core/sql/lexer.js';
import {
  AdminShutdown,
  BIND_COMPLETE,
  CLOSE_COMPLETE,
  FLUSH,
  FRONTEND_TYPES,
  Framer,
  NO_DATA,
  PARSE_COMPLETE,
  ProtocolViolation,
  SYNC,
  authenticationCode,
  authenticationSasl,
  backendKeyData,
  bind,
  commandComplete,
  describe,
  errorResponse,
  errorResponseFromFields,
  execute,
  messageEnd,
  parameterDescription,
  parse,
  parseBackendKeyData,
  parseBind,
  parseErrorFields,
  parseExecute,
  parseParse,
  parseQuery,
  parseSaslMechanisms,
  parseStartupPacket,
  parseTarget,
  query,
  readyForQuery,
  startupMessage,
  type Frame,
} from './protocol.js';
import { errorMessage, noticeMessages, resultMessages, rowMessages, type ErrorContext } from './result-messages.js';
import { binaryParamToText, parameterCount, substituteParameters } from './statement-params.js';
import { readSocket, stopReading } from './socket-reading.js';
import { HeldStages, declaresCursor } from './held-stages.js';
import { UpstreamConnection, UpstreamError, connectUpstreamSocket, type ChunkRelayed, type UpstreamTarget } from './upstream-connection.js';
import type { ConnectionCounts } from './proxy-metrics.js';
import { bytesMayHoldModelSyntax, modelStatements, modelStatementsSafe } from './model-router.js';
import { bindStatementName, firstString } from './message-peek.js';
import { mappedPosition, shifted, characterOffset, type PositionMap } from './error-positions.js';
import type { QueryResult } from '../../../core/model-types.js';

/** What a connection needs from the proxy server. */
export interface ProxyContext {
  readonly target: UpstreamTarget;
  /** TLS toward clients, when configured. */
  readonly tls?: SecureContext;
  /** A new proxy-side backend key for `connection`. */
  register(connection: ProxyConnection): { readonly processId: number; readonly secret: Buffer };
  /** Forgets the connection's key. */
  unregister(connection: ProxyConnection): void;
  /** Handles a CancelRequest received on another socket. */
  cancel(processId: number, secret: Buffer): void;
  /** A model session over `upstream` for the client's `user` (created on the client's first model statement). */
  createSession(upstream: UpstreamConnection, user: string): ModelSession;
  /** Logs an unexpected error. */
  log(message: string, error?: unknown): void;
  /** The connection finished startup and authentication (connection logs and metrics). */
  opened(connection: ProxyConnection): void;
  /** A client that has not finished startup and authentication by then is closed (ms; unset: never). */
  readonly startupTimeoutMs?: number;
  /** Longest message a client may send (bytes); a longer one gets a FATAL 54000 and the connection is closed. */
  readonly maxMessageBytes: number;
}

/** A model statement prepared through Parse. */
interface LocalStatement {
  readonly text: string;
  readonly statement: Statement;
  readonly paramTypes: readonly number[];
}

/** A portal bound from a local statement. */
interface LocalPortal {
  readonly source: LocalStatement;
  /** The statement with parameters substituted, and its own parse. */
  readonly text: string;
  readonly statement: Statement;
  readonly toOriginal: (offset: number) => number;
  readonly resultFormats: readonly number[];
  prepared?: PreparedQuery;
  /** A model-DDL result computed at Describe time, for Execute. */
  result?: QueryResult;
  described?: boolean;
  /** The upstream portal that an Execute with a row limit left open (PortalSuspended), continued by later Executes. */
  upstreamPortal?: string;
}

/** Bytes of client messages waiting for the proxy to answer them, past which the client is not read. */
const QUEUE_HIGH_WATER = 4 * 1024 * 1024;
/** Bytes of answers waiting in the client's socket, past which the proxy answers no more of its messages. */
const CLIENT_HIGH_WATER = 4 * 1024 * 1024;

/** Raised upstream to abort a transaction block after a model statement failed in it. */
const ABORT_NOTE = 'modelsql: a model statement failed in this transaction';

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
 * One client connection.
 *
 * @example
 * server.on('connection', (socket) => new ProxyConnection(socket, context).start());
 */
export class ProxyConnection {
  /** The proxy-side key the client got in BackendKeyData. */
  key: { readonly processId: number; readonly secret: Buffer } | undefined;
  private client: Socket;
  /** Closes a client that does not finish startup in time (ProxyContext.startupTimeoutMs). */
  private startupTimer: NodeJS.Timeout | undefined;
  /** The user name of the StartupMessage (the client, for per-client limits). */
  user = '';
  /** The database the client connected to (its StartupMessage's, else the upstream URL's). */
  database = '';
  /** When the connection was accepted (ms since the epoch). */
  readonly acceptedAt = Date.now();
  /** The accepted socket (under TLS too), whose byte counts are the connection's. */
  private readonly raw: Socket;
  /** Statements and errors so far (see {@link counts}). */
  private readonly tally = { hostStatements: 0, modelStatements: 0, errors: 0 };
  private readonly framer: Framer;
  private phase: 'startup' | 'connecting' | 'auth' | 'ready' | 'closed' = 'startup';
  private upstream: UpstreamConnection | undefined;
  private session: ModelSession | undefined;
  private readonly authBacklog: Frame[] = [];
  private readonly queue: Frame[] = [];
  private busy = false;
  /** ReadyForQuery messages still expected for relayed Query / Sync / FunctionCall (and injected Syncs). */
  private pendingRfq = 0;
  /** Injected Syncs whose ReadyForQuery the client must not see. */
  private swallowRfq = 0;
  /** Relayed extended-protocol messages since the last Sync. */
  private batchPassThrough = false;
  /** Messages the proxy answered itself since the last Sync. */
  private batchLocal = false;
  /** An error happened in this extended batch: skip until Sync. */
  private batchFailed = false;
  /** An ErrorResponse was relayed since the last ReadyForQuery. */
  private relayedError = false;
  /** The upstream is in COPY FROM STDIN mode for the client. */
  private copyIn = false;
  private idleWaiters: (() => void)[] = [];
  private readonly statements = new Map<string, LocalStatement>();
  private readonly portals = new Map<string, LocalPortal>();
  /** The statement the proxy is running for the client, for cancel and disconnect. */
  private running: Promise<void> | undefined;
  /** Stages that cursors may still read, dropped once the upstream transaction has ended. */
  private readonly heldStages = new HeldStages();
  /** The proxy sent extended-protocol messages upstream without a Sync (a portal left open): the client's Sync must reach the upstream. */
  private unsynced = false;
  /** Counter of upstream portal names. */
  private portalCounter = 0;
  /** Bytes of the client messages in `queue`. */
  private queuedBytes = 0;
  /** The upstream socket's write buffer is full: the client is not read until it drains. */
  private upstreamFull = false;
  /** Type names of parameter type OIDs (typeNames). */
  private readonly typeNameCache = new Map<number, string>();
  /** The proxy is shutting down: the connection ends as soon as nothing runs for it (drain). */
  private draining = false;

  constructor(
    socket: Socket,
    private readonly context: ProxyContext,
  ) {
    this.client = socket;
    this.raw = socket;
    this.framer = new Framer({ startup: true, allowedTypes: FRONTEND_TYPES, maxLength: context.maxMessageBytes });
  }

  /** What the connection has done so far (metrics). */
  get counts(): ConnectionCounts {
    return { ...this.tally, bytesIn: this.raw.bytesRead, bytesOut: this.raw.bytesWritten };
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
    const ms = this.context.startupTimeoutMs;
    if (ms !== undefined) {
      this.startupTimer = setTimeout(() => {
        if (this.phase !== 'ready') this.fatal(new ProtocolViolation(`startup and authentication not completed within ${ms} ms`));
      }, ms);
      this.startupTimer.unref();
    }
  }

  /** Cancels what runs for this client: the upstream statement and any inference. */
  cancel(): void {
    this.session?.cancel();
    void this.upstream?.cancel();
  }

  /**
   * Ends the connection as soon as nothing runs for it: now when idle, else once the
   * statements in flight have been answered. The client gets Postgres's shutdown error
   * (FATAL `57P01`), as from a server's smart shutdown.
   */
  drain(): void {
    this.draining = true;
    this.endIfDrained();
  }

  private endIfDrained(): void {
    if (!this.draining || this.phase === 'closed') return;
    if (this.phase === 'ready' && (this.busy || this.pendingRfq > 0 || this.queue.length > 0 || this.copyIn || this.batchPassThrough || this.unsynced)) return;
    this.fatal(new AdminShutdown('terminating connection due to administrator command'));
  }

  /** Closes the connection (client and upstream), cancelling what runs. */
  async close(): Promise<void> {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    clearTimeout(this.startupTimer);
    this.context.unregister(this);
    this.client.destroy();
    const upstream = this.upstream;
    if (this.busy || this.running) {
      this.session?.cancel();
      if (upstream && !upstream.isClosed) void upstream.cancel();
    }
    // Let the statement in flight unwind (its temporary tables are dropped on the way out) before the upstream goes.
    if (this.running) await Promise.race([this.running.catch(() => undefined), delay(5000)]);
    for (const portal of this.portals.values()) await portal.prepared?.release().catch(() => undefined);
    this.portals.clear();
    this.heldStages.clear();
    if (this.session) await this.session.close().catch(() => undefined);
    else if (upstream) await upstream.close().catch(() => undefined);
    upstream?.destroy();
    this.wakeIdleWaiters();
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
    void this.close();
  };

  /** Takes the bytes of one client read (a view, valid only during the call: see socket-reading.ts). */
  private readonly onClientRead = (view: Buffer): boolean => {
    try {
      if (this.phase === 'ready') {
        const relayed = this.relayPlainQueries(view);
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
    const socket = this.client;
    if (!socket.destroyed && socket.writable) socket.end(errorResponse({ severity: 'FATAL', code, message }));
    void this.close();
  }

  private receive(chunk: Buffer | undefined): void {
    if (this.phase === 'startup') {
      const [frame] = this.framer.push(chunk, 1);
      if (!frame) return;
      this.onStartupPacket(frame);
      return;
    }
    const frames = this.framer.push(chunk);
    if (frames.length === 0) return;
    if (this.phase === 'connecting') this.authBacklog.push(...frames);
    else if (this.phase === 'auth') this.forward(frames.map((f) => f.raw));
    else if (this.phase === 'ready') this.onClientFrames(frames);
  }

  private onStartupPacket(frame: Frame): void {
    const packet = parseStartupPacket(frame.payload);
    switch (packet.kind) {
      case 'ssl': {
        if (this.context.tls && !(this.client instanceof TLSSocket)) {
          this.upgradeToTls();
        } else {
          this.client.write('N');
          this.receive(undefined);
        }
        return;
      }
      case 'gssenc':
        this.client.write('N');
        this.receive(undefined);
        return;
      case 'cancel':
        this.context.cancel(packet.processId, packet.secret);
        this.phase = 'closed';
        this.client.end();
        return;
      case 'startup': {
        this.framer.startup = false;
        this.phase = 'connecting';
        const parameters = new Map(packet.parameters);
        this.user = parameters.get('user') ?? '';
        if (!parameters.has('database') && this.context.target.database) parameters.set('database', this.context.target.database);
        this.database = parameters.get('database') ?? this.user;
        void this.connectUpstream(startupMessage(packet.version, parameters));
        this.receive(undefined);
        return;
      }
    }
  }

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
    this.upstream = upstream;
    upstream.onRelay = (frames) => (this.phase === 'auth' ? this.relayAuth(frames) : this.relay(frames));
    upstream.onRelayChunk = (chunk) => (this.phase === 'auth' ? 'declined' : this.relayChunk(chunk));
    upstream.onAsync = (frame) => this.writeClient([frame.raw]);
    upstream.onClose = (error) => this.onUpstreamClosed(error);
    this.phase = 'auth';
    upstream.write(startup);
    const backlog = this.authBacklog.splice(0);
    if (backlog.length > 0) this.forward(backlog.map((f) => f.raw));
  }

  private onUpstreamClosed(error?: Error): void {
    if (this.phase === 'closed') return;
    if (this.phase === 'ready' && !this.busy) {
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
    this.wakeIdleWaiters();
  }

  /** Upstream messages during authentication: relayed, with the backend key swapped and channel binding hidden. */
  private relayAuth(frames: readonly Frame[]): void {
    const out: Buffer[] = [];
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!;
      if (this.phase !== 'auth') {
        this.relay(frames.slice(i));
        break;
      }
      switch (frame.type) {
        case 'R': {
          // SCRAM-SHA-256-PLUS binds to the TLS channel of the *server's* connection, which the
          // client cannot see through the proxy: offer only the mechanisms without channel binding.
          if (authenticationCode(frame.payload) === 10) {
            out.push(authenticationSasl(parseSaslMechanisms(frame.payload).filter((m) => !m.endsWith('-PLUS'))));
          } else out.push(frame.raw);
          break;
        }
        case 'K': {
          this.upstream!.backendKey = parseBackendKeyData(frame.payload);
          this.key = this.context.register(this);
          out.push(backendKeyData(this.key.processId, this.key.secret));
          break;
        }
        case 'Z':
          this.upstream!.status = String.fromCharCode(frame.payload[0] ?? 73);
          this.phase = 'ready';
          this.context.opened(this);
          out.push(frame.raw);
          break;
        case 'E':
          out.push(frame.raw);
          this.writeClient(out);
          out.length = 0;
          this.client.end();
          void this.close();
          return;
        default:
          out.push(frame.raw);
      }
    }
    this.writeClient(out);
  }

  // ---- relay ----------------------------------------------------------------------------

  /** Upstream messages outside the proxy's own exchanges: to the client, counting ReadyForQuery. */
  private relay(frames: readonly Frame[]): void {
    let out: Buffer[] | undefined;
    let idle = false;
    for (const frame of frames) {
      const type = frame.raw[0]!;
      if (this.noteRelayed(type, frame.payload[0])) (out ??= []).push(frame.raw);
      if (type === 0x5a && this.pendingRfq === 0) idle = true;
    }
    if (out) this.writeClient(out);
    if (idle) this.onRelayIdle();
  }

  /**
   * {@link relay} for a chunk of whole upstream messages, which goes to the client as the
   * same bytes (the hot path of plain traffic). Declines, having changed nothing, when a
   * ReadyForQuery may have to be held back (`swallowRfq`): the frame path handles that.
   */
  private relayChunk(chunk: Buffer): ChunkRelayed {
    if (this.swallowRfq > 0) return 'declined';
    let idle = false;
    for (let at = 0; at < chunk.length; at += 1 + chunk.readInt32BE(at + 1)) {
      const type = chunk[at]!;
      this.noteRelayed(type, chunk[at + 5]);
      if (type === 0x5a && this.pendingRfq === 0) idle = true;
    }
    this.writeClient([chunk]);
    const relayed = this.client.writableLength > 0 ? 'queued' : 'written';
    if (idle) this.onRelayIdle();
    return relayed;
  }

  /**
   * The relay's bookkeeping of one upstream message, by its type byte (and the status byte
   * of a ReadyForQuery). Returns false for a ReadyForQuery the client must not see (it
   * answers a Sync the proxy sent).
   */
  private noteRelayed(type: number, status: number | undefined): boolean {
    if (type === 0x5a /* Z */) {
      this.upstream!.status = String.fromCharCode(status ?? 73);
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

  /** Wakes whoever waits for the relayed statements to finish. */
  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * The hot path of plain client traffic: a chunk of whole simple-protocol queries without
   * model syntax, arriving while nothing else is under way, goes upstream as the same bytes.
   * Declines, having changed nothing, anything else (the frame path handles it).
   */
  private relayPlainQueries(chunk: Buffer): ChunkRelayed {
    const upstream = this.upstream;
    if (!upstream || this.busy || this.queue.length > 0 || this.copyIn || this.batchFailed || this.framer.pending > 0) return 'declined';
    if (chunk.length === 0) return 'declined';
    let queries = 0;
    for (let at = 0, end = 0; at < chunk.length; at = end) {
      end = messageEnd(chunk, at);
      if (end < 0 || chunk[at] !== 0x51 /* Q */ || bytesMayHoldModelSyntax(chunk, at + 5, end)) return 'declined';
      queries++;
    }
    this.pendingRfq += queries;
    this.forward([chunk]);
    return upstream.socket.writableLength > 0 ? 'queued' : 'written';
  }

  /** Writes to the client, pausing the upstream while the client cannot keep up. */
  private writeClient(buffers: readonly Buffer[]): void {
    if (this.phase === 'closed' || buffers.length === 0) return;
    const data = coalesce(buffers);
    if (!this.client.write(data) && this.upstream && !this.upstream.socket.isPaused()) {
      const upstream = this.upstream.socket;
      upstream.pause();
      this.client.once('drain', () => upstream.resume());
    }
  }

  /** Writes client messages upstream, pausing the client while the upstream cannot keep up. */
  private forward(buffers: readonly Buffer[]): void {
    const upstream = this.upstream;
    if (!upstream || buffers.length === 0) return;
    const data = coalesce(buffers);
    if (!upstream.write(data) && !this.upstreamFull) {
      this.upstreamFull = true;
      this.updateClientReading();
      upstream.socket.once('drain', () => {
        this.upstreamFull = false;
        this.updateClientReading();
      });
    }
  }

  /**
   * Reads the client only while its messages can go somewhere: the upstream takes them, and
   * the messages the proxy answers itself wait for fewer than {@link QUEUE_HIGH_WATER}
   * bytes. A client that pipelines model statements without reading the answers is thus
   * held at that much, plus the answers waiting in its socket (processQueue stops at
   * {@link CLIENT_HIGH_WATER}), plus one message of at most `maxMessageBytes`.
   */
  private updateClientReading(): void {
    const stop = this.upstreamFull || this.queuedBytes > QUEUE_HIGH_WATER;
    if (stop && !this.client.isPaused()) this.client.pause();
    else if (!stop && this.client.isPaused() && this.phase !== 'closed') this.client.resume();
  }

  /** Waits until the client has read its answers down to {@link CLIENT_HIGH_WATER} bytes (or is gone). */
  private async clientDrained(): Promise<void> {
    const client = this.client;
    while (client.writableLength > CLIENT_HIGH_WATER && this.phase !== 'closed' && !client.destroyed) {
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

  private onClientFrames(frames: readonly Frame[]): void {
    const out: Buffer[] = [];
    let startLoop = false;
    for (const frame of frames) {
      const t = frame.type;
      if (this.copyIn && (t === 'd' || t === 'c' || t === 'f')) {
        if (t !== 'd') this.copyIn = false;
        out.push(frame.raw);
        continue;
      }
      if (this.busy || this.queue.length > 0 || !this.passThrough(frame, out)) {
        this.queue.push(frame);
        this.queuedBytes += frame.raw.length;
        startLoop = true;
      }
    }
    this.forward(out);
    if (this.queuedBytes > QUEUE_HIGH_WATER) this.updateClientReading();
    if (startLoop && !this.busy) void this.processQueue();
  }

  /**
   * Relays `frame` (appending it to `out`) when it needs no model handling; returns false
   * when the proxy must handle it. Keeps the relay bookkeeping.
   */
  private passThrough(frame: Frame, out: Buffer[]): boolean {
    if (this.batchFailed && frame.type !== 'S') return false;
    switch (frame.type) {
      case 'Q': {
        if (bytesMayHoldModelSyntax(frame.payload) && modelStatementsSafe(parseQuery(frame.payload), this.lexOptions())) return false;
        this.pendingRfq++;
        break;
      }
      case 'P': {
        const message = parseParse(frame.payload);
        if (bytesMayHoldModelSyntax(frame.payload) && modelStatementsSafe(message.text, this.lexOptions())) return false;
        this.statements.delete(message.name);
        this.batchPassThrough = true;
        break;
      }
      case 'B': {
        if (this.statements.size > 0 && this.statements.has(bindStatementName(frame.payload))) return false;
        if (this.portals.size > 0) this.dropPortal(firstString(frame.payload, 'Bind'));
        this.batchPassThrough = true;
        break;
      }
      case 'D':
      case 'C': {
        if (this.statements.size > 0 || this.portals.size > 0) {
          const target = parseTarget(frame.payload, frame.type === 'D' ? 'Describe' : 'Close');
          if ((target.target === 'S' ? this.statements : this.portals).has(target.name)) return false;
        }
        this.batchPassThrough = true;
        break;
      }
      case 'E': {
        if (this.portals.size > 0 && this.portals.has(firstString(frame.payload, 'Execute'))) return false;
        this.batchPassThrough = true;
        break;
      }
      case 'H':
        if (!this.batchPassThrough) return true; // nothing relayed to flush
        break;
      case 'S':
        if (this.batchLocal || this.batchFailed) return false;
        this.batchPassThrough = false;
        this.pendingRfq++;
        break;
      case 'F':
        this.pendingRfq++;
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

  private dropPortal(name: string): void {
    const portal = this.portals.get(name);
    if (!portal) return;
    this.portals.delete(name);
    void portal.prepared?.release();
  }

  private async processQueue(): Promise<void> {
    this.busy = true;
    try {
      for (;;) {
        if (this.phase !== 'ready') break;
        if (this.heldStages.size > 0 && this.transactionEnded()) {
          await this.heldStages.releaseAll();
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
          this.fatal(error);
          return;
        }
        if (handled) {
          this.forward(out);
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
        if (this.upstream!.isClosed) throw this.upstream!.lostError();
      }
    } catch (error) {
      if (error instanceof UpstreamError || error instanceof ProtocolViolation) this.fatal(error);
      else {
        this.context.log('unexpected error while handling a client message', error);
        this.fatal(error);
      }
    } finally {
      this.busy = false;
      this.endIfDrained();
    }
  }

  /**
   * Whether no transaction that may hold a cursor is open upstream: every relayed message
   * answered, no extended batch open, and the last ReadyForQuery said idle.
   */
  private transactionEnded(): boolean {
    return this.pendingRfq === 0 && !this.batchPassThrough && !this.unsynced && !this.copyIn && this.upstream !== undefined && !this.upstream.isClosed && this.upstream.status === 'I';
  }

  /** Called when the relayed statements have all been answered: drops held stages once their transaction has ended. */
  private onRelayIdle(): void {
    this.wakeIdleWaiters();
    this.endIfDrained();
    if (this.heldStages.size > 0 && !this.busy && this.transactionEnded()) void this.processQueue();
  }

  /** Waits until every relayed message has been answered, closing an open extended batch with a Sync. */
  private async quiesce(): Promise<void> {
    if (this.batchPassThrough) {
      this.batchPassThrough = false;
      this.unsynced = false;
      this.pendingRfq++;
      this.swallowRfq++;
      this.forward([SYNC]);
    }
    while (this.pendingRfq > 0 && this.phase === 'ready' && !this.upstream!.isClosed) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    if (this.upstream!.isClosed) throw this.upstream!.lostError();
    if (this.phase !== 'ready') throw new UpstreamError('08006', 'connection closed');
  }

  /**
   * Rethrows `error` (from a statement the proxy runs) as an UpstreamError, which ends the
   * connection, when it means the upstream is gone, whatever shape the core gave it on the
   * way; returns when the upstream is still there and the error is the statement's own.
   */
  private throwIfUpstreamLost(error: unknown): void {
    if (error instanceof UpstreamError) throw error;
    if (this.upstream?.isClosed) throw this.upstream.lostError();
  }

  /** How the upstream session reads strings, as it last reported (the scanner must agree with Postgres). */
  private lexOptions(): LexOptions {
    return { standardConformingStrings: this.upstream?.standardConformingStrings() ?? true };
  }

  private sessionFor(): ModelSession {
    this.session ??= this.context.createSession(this.upstream!, this.user);
    return this.session;
  }

  // ---- messages the proxy answers -------------------------------------------------------

  private async handle(frame: Frame): Promise<void> {
    switch (frame.type) {
      case 'Q':
        return this.handleQuery(parseQuery(frame.payload));
      case 'X':
        void this.close();
        return;
      case 'S':
        return this.handleSync();
      default:
        break;
    }
    // An extended-protocol message for a model statement (or any message after an error, skipped).
    await this.quiesce();
    if (this.relayedError) this.batchFailed = true;
    if (this.batchFailed) return;
    this.batchLocal = true;
    try {
      switch (frame.type) {
        case 'P':
          return this.handleParse(frame.payload);
        case 'B':
          return await this.handleBind(frame.payload);
        case 'D':
          return await this.handleDescribe(frame.payload);
        case 'E':
          return await this.handleExecute(frame.payload);
        case 'C':
          return await this.handleClose(frame.payload);
        default:
          throw new ProtocolViolation(`unexpected message type "${frame.type}"`);
      }
    } catch (error) {
      if (error instanceof ProtocolViolation) throw error;
      this.throwIfUpstreamLost(error);
      this.batchFailed = true;
      await this.reportError(error, undefined);
    }
  }

  /** Sends an ErrorResponse for a failed model statement; inside a transaction block, the upstream transaction is aborted too. */
  private async reportError(error: unknown, context: ErrorContext | undefined): Promise<void> {
    if (!(error instanceof ModelSqlError)) this.context.log('unexpected error in a model statement', error);
    this.tally.errors++;
    this.writeClient([errorMessage(error, context)]);
    const upstream = this.upstream!;
    if (upstream.status === 'T' && !upstream.isClosed) {
      // Postgres aborts a transaction block on any error; make the upstream agree, so that
      // the client sees 'E' and the rest of its transaction fails as it would without the proxy.
      await upstream.query(`DO $modelsql$ BEGIN RAISE EXCEPTION '${ABORT_NOTE}'; END $modelsql$`).catch(() => undefined);
    }
  }

  private async handleQuery(text: string): Promise<void> {
    await this.quiesce();
    await this.syncUpstream();
    let statements: Statement[] | undefined;
    try {
      statements = modelStatements(text, this.lexOptions());
    } catch (error) {
      await this.reportError(error, { sessionText: text, clientText: text });
      this.writeClient([readyForQuery(this.upstream!.status)]);
      return;
    }
    if (!statements) {
      // Classified as host SQL after all (cannot happen: passThrough checked it); relay it.
      this.pendingRfq++;
      this.forward([query(text)]);
      return;
    }
    const context: ErrorContext = { sessionText: text, clientText: text };
    let standard = this.lexOptions().standardConformingStrings;
    for (let i = 0; i < statements.length; i++) {
      try {
        // A statement before this one changed how Postgres reads strings: split the rest as it will read it.
        if (i > 0 && this.lexOptions().standardConformingStrings !== standard) {
          standard = this.lexOptions().standardConformingStrings;
          statements = [...statements.slice(0, i), ...parseScriptAfter(text, statements[i - 1]!.span.end, this.lexOptions())];
          if (i >= statements.length) break;
        }
        const statement = statements[i]!;
        let ok: boolean;
        if (statement.kind !== 'host') this.tally.modelStatements++;
        if (statement.kind === 'host') {
          ok = await this.relayStatement(query(statement.text), { position: shifted(characterOffset(text, statement.span.start)) });
        } else if (statement.kind === 'query') {
          ok = await this.runModelQuery(statement, text);
        } else {
          const result = await this.sessionFor().runStatement(statement, text);
          this.writeClient(resultMessages(result));
          ok = true;
        }
        if (!ok) break;
      } catch (error) {
        this.throwIfUpstreamLost(error);
        await this.reportError(error, context);
        break;
      }
    }
    this.writeClient([readyForQuery(this.upstream!.status)]);
  }

  /**
   * Runs an ML query: model stages, then its host SQL upstream with Postgres's answer
   * relayed; or, for a statement that writes straight into its table, the write, answered
   * with its command tag.
   */
  private async runModelQuery(statement: QueryStatement, text: string): Promise<boolean> {
    const session = this.sessionFor();
    const prepared = await session.prepareQuery(statement, text);
    let held = false;
    try {
      if (prepared.run) {
        this.writeClient([commandComplete(await prepared.run())]);
        return true;
      }
      const ok = await this.relayStatement(query(prepared.sql), { position: mappedPosition(prepared, text) });
      held = this.holdForCursor(ok, statement, prepared);
      return ok;
    } finally {
      if (!held) await prepared.release();
    }
  }

  /**
   * Keeps a statement's stage for the cursor it declared, until its transaction ends
   * (held-stages.ts); returns whether it did. Outside a transaction block the cursor is
   * gone already, or materialized (`WITH HOLD`).
   */
  private holdForCursor(ok: boolean, statement: Statement, prepared: PreparedQuery): boolean {
    if (!ok || !declaresCursor(statement.text) || this.upstream!.status !== 'T') return false;
    this.heldStages.hold(prepared);
    return true;
  }

  /**
   * Sends `messages` upstream and relays the answer until ReadyForQuery (not relayed);
   * returns false when Postgres answered with an error. An error's position is mapped by
   * `position` to the client's text, or dropped where it maps nowhere (SQL the client never wrote).
   */
  private async relayStatement(
    messages: Buffer | readonly Buffer[],
    options: { readonly position: PositionMap | undefined; readonly swallow?: string; readonly until?: string },
  ): Promise<boolean> {
    const upstream = this.upstream!;
    let failed = false;
    // Without a Sync the exchange ends at the message that answers the last one sent (`until`).
    const until = options.until;
    this.unsynced = until !== undefined;
    await upstream.exchange(messages, (frame) => {
      if (until?.includes(frame.type)) {
        if (frame.type === 'E') failed = true;
        this.writeClient([frame.type === 'E' ? this.clientError(frame.payload, options.position) : frame.raw]);
        return true;
      }
      switch (frame.type) {
        case 'Z':
          upstream.status = String.fromCharCode(frame.payload[0] ?? 73);
          this.copyIn = false;
          return true;
        case 'E': {
          failed = true;
          this.writeClient([this.clientError(frame.payload, options.position)]);
          return false;
        }
        case 'G':
          this.copyIn = true;
          break;
        default:
          if (options.swallow?.includes(frame.type)) return false;
      }
      this.writeClient([frame.raw]);
      return false;
    });
    return !failed;
  }

  /** An upstream ErrorResponse for the client: its position mapped to the client's text, or dropped where it maps nowhere. */
  private clientError(payload: Buffer, position: PositionMap | undefined): Buffer {
    const fields = parseErrorFields(payload);
    const p = fields.get('P');
    if (p !== undefined) {
      const mapped = position?.(Number(p));
      if (mapped === undefined) fields.delete('P');
      else fields.set('P', String(mapped));
    }
    return errorResponseFromFields(fields);
  }

  private handleParse(payload: Buffer): void {
    const message = parseParse(payload);
    const statements = parseScript(message.text, this.lexOptions());
    if (statements.length !== 1) {
      throw new ModelSqlError('42601', 'cannot insert multiple commands into a prepared statement');
    }
    if (message.name !== '' && this.statements.has(message.name)) {
      throw new ModelSqlError('42P05', `prepared statement "${message.name}" already exists`);
    }
    this.statements.set(message.name, { text: message.text, statement: statements[0]!, paramTypes: message.paramTypes });
    this.writeClient([PARSE_COMPLETE]);
  }

  /**
   * The type names of parameter type OIDs declared in Parse (undefined where none was
   * declared), asked of the upstream once per OID: `CAST('value' AS name)` in place of `$n`
   * types a parameter as Postgres would have.
   */
  private async typeNames(oids: readonly number[]): Promise<(string | undefined)[]> {
    const missing = [...new Set(oids.filter((oid) => oid !== 0 && !this.typeNameCache.has(oid)))];
    if (missing.length > 0) {
      const result = await this.upstream!.query('SELECT t, pg_catalog.format_type(t, NULL) FROM pg_catalog.unnest(CAST($1 AS pg_catalog.oid[])) AS t', [missing]);
      for (const [oid, name] of result.rows) if (typeof name === 'string') this.typeNameCache.set(Number(oid), name);
    }
    return oids.map((oid) => (oid === 0 ? undefined : this.typeNameCache.get(oid)));
  }

  private async handleBind(payload: Buffer): Promise<void> {
    const message = parseBind(payload);
    const source = this.statements.get(message.statement)!;
    const values = message.params.map((p, i) => {
      if (p === null) return null;
      if (message.paramFormats[i] === 0) return p.toString('utf8');
      const text = binaryParamToText(source.paramTypes[i] ?? 0, p);
      if (text === undefined) throw new ModelSqlError('0A000', `binary format for parameter $${i + 1} of type ${source.paramTypes[i] ?? 0} is not supported by the modelsql proxy; send it in text format`);
      return text;
    });
    const needed = parameterCount(source.text);
    if (values.length !== needed) {
      throw new ModelSqlError('08P01', `bind message supplies ${values.length} parameters, but prepared statement "${message.statement}" requires ${needed}`);
    }
    const substituted = substituteParameters(source.text, values, await this.typeNames(source.paramTypes.slice(0, needed)));
    const [statement] = values.length === 0 ? [source.statement] : parseScript(substituted.text, this.lexOptions());
    this.dropPortal(message.portal);
    this.portals.set(message.portal, {
      source,
      text: substituted.text,
      statement: statement!,
      toOriginal: substituted.originalOffset,
      resultFormats: message.resultFormats,
    });
    this.writeClient([BIND_COMPLETE]);
  }

  /** Maps positions in a portal's rewritten SQL to the text of the statement the client prepared. */
  private portalPosition(portal: LocalPortal, prepared: Pick<PreparedQuery, 'sql' | 'scriptOffset'> | undefined = portal.prepared): PositionMap | undefined {
    if (!prepared?.scriptOffset) return undefined;
    return mappedPosition({ sql: prepared.sql, scriptOffset: (o) => portal.toOriginal(prepared.scriptOffset!(o)) }, portal.source.text);
  }

  private errorContext(portal: LocalPortal): ErrorContext {
    return { sessionText: portal.text, clientText: portal.source.text, toOriginal: portal.toOriginal };
  }

  private async handleDescribe(payload: Buffer): Promise<void> {
    const target = parseTarget(payload, 'Describe');
    if (target.target === 'S') {
      const source = this.statements.get(target.name)!;
      const count = parameterCount(source.text);
      const types = Array.from({ length: count }, (_, i) => source.paramTypes[i] || 25);
      this.writeClient([parameterDescription(types)]);
      if (source.statement.kind === 'host' || (count > 0 && source.statement.kind !== 'query')) {
        this.writeClient([NO_DATA]);
        return;
      }
      // The columns of a model query come from its shape (no model runs), its parameters taken as NULLs.
      const substituted = substituteParameters(source.text, new Array<null>(count).fill(null), await this.typeNames(source.paramTypes));
      const [statement] = count === 0 ? [source.statement] : parseScript(substituted.text, this.lexOptions());
      await this.describePortal({ source, text: substituted.text, statement: statement!, toOriginal: substituted.originalOffset, resultFormats: [] });
      return;
    }
    const portal = this.portals.get(target.name)!;
    await this.describePortal(portal);
  }

  /**
   * RowDescription (or NoData) of a portal. An ML query is described from its shape
   * (`ModelSession.describeQuery`: the host describes its input, the model's OUTPUT gives the
   * rest), no model runs; model DDL runs now, its result kept for Execute.
   */
  private async describePortal(portal: LocalPortal): Promise<void> {
    portal.described = true;
    const statement = portal.statement;
    try {
      if (statement.kind === 'query') {
        const described = await this.sessionFor().describeQuery(statement, portal.text);
        const ok = await this.relayStatement([parse('', described.sql), bind('', '', [], [], portal.resultFormats), describe('P', ''), FLUSH], {
          position: this.portalPosition(portal, described),
          swallow: '12',
          until: 'TnE',
        });
        if (!ok) this.batchFailed = true;
        return;
      }
      portal.result ??= await this.sessionFor().runStatement(statement, portal.text);
      this.writeClient(portal.result.columns.length > 0 ? rowMessages({ ...portal.result, rows: [] }, true) : [NO_DATA]);
    } catch (error) {
      this.throwIfUpstreamLost(error);
      this.batchFailed = true;
      await this.reportError(error, this.errorContext(portal));
    }
  }

  private async handleExecute(payload: Buffer): Promise<void> {
    const message = parseExecute(payload);
    const portal = this.portals.get(message.portal)!;
    const statement = portal.statement;
    if (portal.upstreamPortal === undefined) this.tally.modelStatements++;
    let held = false;
    try {
      if (portal.upstreamPortal !== undefined) {
        // A portal suspended by an earlier Execute: the next rows.
        if (!(await this.relayStatement([execute(portal.upstreamPortal, message.maxRows), FLUSH], { position: undefined, until: 'CsEI' }))) this.batchFailed = true;
        return;
      }
      if (statement.kind === 'query') {
        portal.prepared ??= await this.sessionFor().prepareQuery(statement, portal.text);
        if (portal.prepared.run) {
          this.writeClient([commandComplete(await portal.prepared.run())]);
          return;
        }
        if (message.maxRows > 0) {
          // A row limit: an upstream portal of its own, left open in the client's transaction
          // (no Sync until the client's), its stage held until that transaction ends.
          const name = `__modelsql_portal_${++this.portalCounter}`;
          portal.upstreamPortal = name;
          this.heldStages.hold(portal.prepared);
          held = true;
          const messages = [parse('', portal.prepared.sql), bind(name, '', [], [], portal.resultFormats), execute(name, message.maxRows), FLUSH];
          if (!(await this.relayStatement(messages, { position: this.portalPosition(portal), swallow: '12', until: 'CsEI' }))) this.batchFailed = true;
          return;
        }
        const ok = await this.relayStatement([parse('', portal.prepared.sql), bind('', '', [], [], portal.resultFormats), execute('', 0), SYNC], {
          position: this.portalPosition(portal),
          swallow: '12',
        });
        if (!ok) this.batchFailed = true;
        held = this.holdForCursor(ok, statement, portal.prepared);
      } else if (statement.kind === 'host') {
        const ok = await this.relayStatement([parse('', portal.text), bind('', '', [], [], portal.resultFormats), execute('', 0), SYNC], { position: shifted(0), swallow: '12' });
        if (!ok) this.batchFailed = true;
      } else {
        const result = portal.result ?? (await this.sessionFor().runStatement(statement, portal.text));
        portal.result = undefined;
        this.writeClient([...noticeMessages(result), ...rowMessages(result, false), commandComplete(result.command || 'SELECT')]);
      }
    } catch (error) {
      this.throwIfUpstreamLost(error);
      this.batchFailed = true;
      await this.reportError(error, this.errorContext(portal));
    } finally {
      const prepared = portal.prepared;
      portal.prepared = undefined;
      if (!held) await prepared?.release();
    }
  }

  private async handleClose(payload: Buffer): Promise<void> {
    const target = parseTarget(payload, 'Close');
    if (target.target === 'S') this.statements.delete(target.name);
    else this.dropPortal(target.name);
    this.writeClient([CLOSE_COMPLETE]);
  }

  private async handleSync(): Promise<void> {
    const wasLocal = this.batchLocal;
    this.batchLocal = false;
    this.batchFailed = false;
    // The unnamed portal ends with the implicit transaction; release what it holds.
    this.dropPortal('');
    if (this.batchPassThrough || !wasLocal) {
      this.batchPassThrough = false;
      this.unsynced = false;
      this.pendingRfq++;
      this.forward([SYNC]);
      return;
    }
    await this.quiesce();
    await this.syncUpstream();
    this.relayedError = false;
    this.writeClient([readyForQuery(this.upstream!.status)]);
  }

  /** Ends the extended batch the proxy left open upstream (`unsynced`) with a Sync, its ReadyForQuery taken for the status. */
  private async syncUpstream(): Promise<void> {
    if (!this.unsynced) return;
    const upstream = this.upstream!;
    this.unsynced = false;
    await upstream.exchange(SYNC, (frame) => {
      if (frame.type !== 'Z') return false;
      upstream.status = String.fromCharCode(frame.payload[0] ?? 73);
      return true;
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

