/**
 * The startup and authentication of one client connection, up to the session's first
 * ReadyForQuery.
 *
 * SSLRequest is answered `S` (then TLS) when the proxy has a certificate, else `N`;
 * GSSENCRequest `N`; a CancelRequest is handed to the proxy and its connection closed. The
 * StartupMessage goes upstream and authentication is relayed both ways, so the client
 * authenticates against Postgres itself; BackendKeyData is replaced by a proxy-side key (for
 * CancelRequest), and SASL mechanisms with channel binding are hidden. Client messages sent
 * before the session is ready that are not authentication responses are held, and
 * dispatched as statements once it is.
 *
 * Protocol flow: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Frame } from './framer.js';
import { authenticationSasl, backendKeyData, startupMessage } from './message-builders.js';
import { authenticationCode, parseBackendKeyData, parseSaslMechanisms, parseStartupPacket } from './message-readers.js';
import { MessageTooLong, ProtocolViolation } from './protocol-errors.js';
import type { ProxyConnection, Serving } from './proxy-connection.js';
import type { ProxyContext } from './proxy-context.js';
import type { Relay } from './relay.js';

/**
 * Where a connection is: reading the startup packet, connecting upstream, relaying
 * authentication, serving statements, or closed.
 */
export type ConnectionPhase = 'startup' | 'connecting' | 'auth' | 'ready' | 'closed';

/** What the startup needs of its connection. */
export interface StartupOwner {
  /** The connection's phase. */
  phase(): ConnectionPhase;
  /** The client's socket (a TLSSocket once upgraded). */
  client(): Socket;
  /** Whether the client's input ended (half-close, or Terminate). */
  clientEnded(): boolean;
  /** What serves the connection, once the upstream is connected. */
  serving(): Serving | undefined;
  /** Answers an SSLRequest `S` and runs TLS over the client's socket. */
  upgradeToTls(): void;
  /** Handles the client bytes already read and not yet framed. */
  readOn(): void;
  /** The StartupMessage arrived: the phase goes to 'connecting', and `startup` goes upstream once connected. */
  connectUpstream(startup: Buffer): void;
  /** Startup and authentication finished: the phase goes to 'ready'. */
  ready(): void;
  /** Sends a FATAL ErrorResponse and closes. */
  fatal(error: unknown): void;
  /** Closes the connection (see ProxyConnection.close). */
  close(flush?: boolean): Promise<void>;
  /** Closes the connection once nothing runs for it, when its input ended or it drains. */
  endIfDrained(): void;
}

/**
 * The startup and authentication of a connection.
 *
 * @example
 * const startup = new SessionStartup(connection, context, owner);
 * const [packet] = framer.push(chunk, 1);
 * if (packet) startup.onStartupPacket(packet);
 */
export class SessionStartup {
  /** The proxy-side key the client got in BackendKeyData. */
  key: { readonly processId: number; readonly secret: Buffer } | undefined;
  /** The user name of the StartupMessage (the client, for per-client limits). */
  user = '';
  /** The database the client connected to (its StartupMessage's, else the upstream URL's). */
  database = '';
  /** Closes a client that does not finish startup in time (ProxyContext.startupTimeoutMs). */
  private timer: NodeJS.Timeout | undefined;
  /** Authentication responses sent while the upstream connected. */
  private readonly authBacklog: Frame[] = [];
  /**
   * Client messages sent before the session's first ReadyForQuery that are not
   * authentication responses (a client pipelining its first statements behind its
   * password): held, and dispatched as statements once the session is ready, so that they
   * are routed, checked and awaited as every later statement is. At most
   * `maxMessageBytes` bytes of them (54000 past it).
   */
  private readonly earlyMessages: Frame[] = [];
  private earlyBytes = 0;
  /**
   * Authentication requests the upstream sent that want a response (all but
   * AuthenticationOk and SASLFinal), and the responses the client sent: once its input has
   * ended, more requests than responses mean that Postgres reads the next message (or the
   * end of input) as the response.
   */
  private authRequests = 0;
  private authResponses = 0;

  constructor(
    private readonly connection: ProxyConnection,
    private readonly context: ProxyContext,
    private readonly owner: StartupOwner,
  ) {}

  /** Closes the client with a FATAL error if the session is not ready within ProxyContext.startupTimeoutMs. */
  startTimer(): void {
    const ms = this.context.startupTimeoutMs;
    if (ms === undefined) return;
    this.timer = setTimeout(() => {
      if (this.owner.phase() !== 'ready') this.owner.fatal(new ProtocolViolation(`startup and authentication not completed within ${ms} ms`));
    }, ms);
    this.timer.unref();
  }

  /** The connection closed: the timer is cleared. */
  stopTimer(): void {
    clearTimeout(this.timer);
  }

  /** The client's first packet: SSLRequest, GSSENCRequest, CancelRequest or StartupMessage. */
  onStartupPacket(frame: Frame): void {
    const owner = this.owner;
    const packet = parseStartupPacket(frame.payload);
    switch (packet.kind) {
      case 'ssl': {
        if (this.context.tls && !(owner.client() instanceof TLSSocket)) {
          owner.upgradeToTls();
        } else {
          owner.client().write('N');
          owner.readOn();
        }
        return;
      }
      case 'gssenc':
        owner.client().write('N');
        owner.readOn();
        return;
      case 'cancel':
        this.context.cancel(packet.processId, packet.secret);
        // Closed (and unregistered) once the client has its end of stream.
        void owner.close(true);
        return;
      case 'startup': {
        const parameters = new Map(packet.parameters);
        this.user = parameters.get('user') ?? '';
        if (!parameters.has('database') && this.context.target.database) parameters.set('database', this.context.target.database);
        this.database = parameters.get('database') ?? this.user;
        owner.connectUpstream(startupMessage(packet.version, parameters));
        owner.readOn();
        return;
      }
    }
  }

  /**
   * Client messages before the session is ready. Authentication responses (PasswordMessage,
   * SASL and GSS responses are all 'p') go upstream, held while it connects; from the first
   * other message on, everything waits for the session.
   */
  onClientFrames(frames: readonly Frame[]): void {
    const auth: Frame[] = [];
    for (const frame of frames) {
      if (frame.type === 'X') {
        // Terminate before the session is ready: the client gives up; so does the proxy.
        void this.owner.close();
        return;
      }
      if (frame.type === 'p' && this.earlyMessages.length === 0) auth.push(frame);
      else {
        // Counted as their length fields are (the type byte aside), as maxMessageBytes bounds one message.
        this.earlyBytes += frame.raw.length - 1;
        if (this.earlyBytes > this.context.maxMessageBytes) {
          this.owner.fatal(new MessageTooLong(`more than ${this.context.maxMessageBytes} bytes of messages sent before authentication completed`));
          return;
        }
        this.earlyMessages.push(frame);
      }
    }
    if (auth.length === 0) return;
    this.authResponses += auth.length;
    if (this.owner.phase() === 'connecting') this.authBacklog.push(...auth);
    else this.owner.serving()?.relay.toUpstreamAll(auth.map((f) => f.raw));
  }

  /** The upstream got the StartupMessage: the authentication responses held while it connected follow it. */
  sendBacklog(relay: Relay): void {
    const backlog = this.authBacklog.splice(0);
    if (backlog.length > 0) relay.toUpstreamAll(backlog.map((f) => f.raw));
  }

  /**
   * The client's input ended with relayed messages unanswered or authentication under way,
   * and the upstream open. Returns whether the upstream's input may end too: not while
   * statements pipelined behind the authentication responses wait for the session (once it
   * is ready, {@link onUpstreamFrames} dispatches them and asks the connection to end again).
   */
  inputEnded(relay: Relay): boolean {
    if (this.owner.phase() === 'auth' && this.authRequests > this.authResponses && this.earlyMessages.length > 0) {
      // No response will come: as without the proxy, Postgres gets the next message
      // instead, refuses it (FATAL 08P01, relayed), and runs none of them.
      relay.toUpstreamAll(this.earlyMessages.splice(0).map((f) => f.raw));
    }
    return this.earlyMessages.length === 0;
  }

  /** Upstream messages during authentication: relayed, with the backend key swapped and channel binding hidden. */
  onUpstreamFrames(frames: readonly Frame[]): void {
    const owner = this.owner;
    const serving = owner.serving()!;
    const out: Buffer[] = [];
    for (let i = 0; i < frames.length; i++) {
      const frame = frames[i]!;
      if (owner.phase() !== 'auth') {
        serving.relay.relayFrames(frames.slice(i));
        break;
      }
      switch (frame.type) {
        case 'R': {
          const code = authenticationCode(frame.payload);
          if (code !== 0 && code !== 12) {
            this.authRequests++;
            if (owner.clientEnded()) owner.endIfDrained();
          }
          // SCRAM-SHA-256-PLUS binds to the TLS channel of the *server's* connection, which the
          // client cannot see through the proxy: offer only the mechanisms without channel binding.
          if (code === 10) {
            out.push(authenticationSasl(parseSaslMechanisms(frame.payload).filter((m) => !m.endsWith('-PLUS'))));
          } else out.push(frame.raw);
          break;
        }
        case 'K': {
          serving.upstream.backendKey = parseBackendKeyData(frame.payload);
          this.key = this.context.register(this.connection);
          out.push(backendKeyData(this.key.processId, this.key.secret));
          break;
        }
        case 'Z':
          owner.ready();
          this.context.opened(this.connection);
          out.push(frame.raw);
          serving.relay.toClientAll(out);
          out.length = 0;
          if (this.earlyMessages.length > 0) {
            serving.dispatch.onFrames(this.earlyMessages.splice(0));
            // The client's input ended behind them: the session ends once they are answered.
            if (owner.clientEnded()) owner.endIfDrained();
          } else if (i === frames.length - 1) serving.native?.tryHandOver();
          break;
        case 'E':
          out.push(frame.raw);
          serving.relay.toClientAll(out);
          out.length = 0;
          owner.client().end();
          void owner.close();
          return;
        default:
          out.push(frame.raw);
      }
    }
    serving.relay.toClientAll(out);
  }
}
