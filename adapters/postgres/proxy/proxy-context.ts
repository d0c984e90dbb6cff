/**
 * What a client connection of the proxy needs from the proxy server (postgres-proxy.ts
 * provides it): the upstream target, TLS toward clients, cancel keys, model sessions,
 * logging and the connection limits.
 */
import type { SecureContext } from 'node:tls';
import type { ModelSession } from '../../../core/session/model-session.js';
import type { NativeRelay } from './native-relay.js';
import type { ProxyConnection } from './proxy-connection.js';
import type { UpstreamConnection } from './upstream-connection.js';
import type { UpstreamTarget } from './upstream-target.js';

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
  /** The native relay that carries plain pass-through traffic (native-relay.ts); unset: the JavaScript relay alone. */
  readonly nativeRelay?: NativeRelay;
}
