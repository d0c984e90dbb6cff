/**
 * The modelsql Postgres proxy: a server speaking the Postgres wire protocol that sits in
 * front of a real Postgres. Plain SQL passes through untouched; model SQL (CREATE MODEL,
 * ML_PREDICT, ...) is run by modelsql on the client's own upstream session. See
 * docs/proxy.md.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ModelSession, type SessionOptions } from '../../../core/session/model-session.js';
import { RuntimeLoader } from '../../../core/runtime/runtime-loader.js';
import { checkLimit, InferenceGate, type InferenceGateLimits } from '../../../core/runtime/inference-limits.js';
import { maskError, maskSecrets } from '../../../core/secrets.js';
import { PostgresHost } from '../postgres-host.js';
import { ProxyConnection, type ProxyContext } from './proxy-connection.js';
import { takeOverAccepted } from './socket-reading.js';
import { MAX_MESSAGE_LENGTH } from './protocol.js';
import { parseUpstreamUrl, type UpstreamConnection } from './upstream-connection.js';

/** Options of {@link startProxy}. */
export interface ProxyOptions {
  /** The Postgres to front: `postgres://host:5432/db` (credentials come from each client). */
  readonly upstream: string;
  /** Where to listen: `host:port`, a port, or `{ host, port }`. Default `127.0.0.1:6432`; port 0 picks a free one. */
  readonly listen?: string | number | { readonly host?: string; readonly port?: number };
  /** TLS toward clients (PEM certificate chain and key); without it SSLRequest is answered `N`. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /**
   * Session options of model statements (SPEC §5). Unlike the library, the proxy is
   * restricted by default: `allowedDirectories` and `allowedUrlPrefixes` default to `[]`
   * (models only from catalog-held bytes, no network); name what is allowed.
   */
  readonly session?: Omit<SessionOptions, 'runtimeLoader' | 'inferenceGate' | 'clientName' | 'maxRowsPerCall'>;
  /** Limits on model work (docs/security.md, "Limits"). */
  readonly limits?: ProxyLimits;
  /**
   * A client that has not finished startup and authentication within this many ms is sent
   * a FATAL `08P01` and closed (Postgres's `authentication_timeout`; default 60,000).
   */
  readonly startupTimeoutMs?: number;
  /**
   * Longest message a client may send, in bytes (default {@link DEFAULT_MAX_MESSAGE_BYTES},
   * 256 MiB; Postgres's own limit is 1 GiB): a longer one gets a FATAL `54000` as soon as
   * its header arrives, and that client's connection is closed. With the read limits of the
   * connection (docs/proxy.md, "Memory"), it bounds the memory one client can hold.
   */
  readonly maxMessageBytes?: number;
  /** Where unexpected errors are logged (default: stderr). */
  readonly log?: (message: string, error?: unknown) => void;
}

/** Default of {@link ProxyOptions.maxMessageBytes}: 256 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/** Limits on model work through the proxy; each unset means no limit. */
export interface ProxyLimits extends InferenceGateLimits {
  /** Rows one ML_PREDICT / ML_EVALUATE call may send to a model (54000 beyond). */
  readonly maxRowsPerCall?: number;
}

/** A running proxy. */
export interface RunningProxy {
  /** The port it listens on. */
  readonly port: number;
  /** The address it listens on. */
  readonly host: string;
  /** Number of client connections open now. */
  readonly connections: number;
  /** Stops listening, closes every client connection and unloads models. */
  close(): Promise<void>;
}

/** Parses the `listen` option. */
function listenAddress(listen: ProxyOptions['listen']): { host: string; port: number } {
  if (listen === undefined) return { host: '127.0.0.1', port: 6432 };
  if (typeof listen === 'number') return { host: '127.0.0.1', port: listen };
  if (typeof listen === 'object') return { host: listen.host ?? '127.0.0.1', port: listen.port ?? 6432 };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  if (m) return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
  if (/^\d+$/.test(listen)) return { host: '127.0.0.1', port: Number(listen) };
  return { host: listen, port: 6432 };
}

/**
 * Starts the proxy.
 *
 * @example
 * const proxy = await startProxy({ upstream: 'postgres://localhost:5432/shop', listen: 0 });
 * // psql "postgresql://me@127.0.0.1:${proxy.port}/shop"
 * await proxy.close();
 */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const target = parseUpstreamUrl(options.upstream);
  const { host, port } = listenAddress(options.listen);
  const tls: SecureContext | undefined = options.tls ? createSecureContext({ cert: options.tls.cert, key: options.tls.key }) : undefined;
  const write = options.log ?? ((message: string, error?: unknown) => process.stderr.write(`modelsql proxy: ${message}${error ? `: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}` : ''}\n`));
  // Literal secrets seen by this process never reach the log (SPEC §5).
  const log = (message: string, error?: unknown): void => write(maskSecrets(message), maskError(error));
  const session: SessionOptions = {
    ...options.session,
    allowedDirectories: options.session?.allowedDirectories ?? [],
    allowedUrlPrefixes: options.session?.allowedUrlPrefixes ?? [],
  };
  const loader = new RuntimeLoader(session);
  const gate = new InferenceGate({ maxInferences: options.limits?.maxInferences, maxClientInferences: options.limits?.maxClientInferences });
  const maxRowsPerCall = options.limits?.maxRowsPerCall;
  checkLimit('limits.maxRowsPerCall', maxRowsPerCall);
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  checkLimit('maxMessageBytes', maxMessageBytes);
  if (maxMessageBytes > MAX_MESSAGE_LENGTH) throw new RangeError(`maxMessageBytes must be at most ${MAX_MESSAGE_LENGTH} (Postgres's limit)`);
  const connections = new Set<ProxyConnection>();
  const keys = new Map<number, ProxyConnection>();

  const context: ProxyContext = {
    target,
    tls,
    register(connection) {
      let processId: number;
      do processId = randomInt(1, 0x7fffffff);
      while (keys.has(processId));
      keys.set(processId, connection);
      return { processId, secret: randomBytes(4) };
    },
    unregister(connection) {
      connections.delete(connection);
      if (connection.key && keys.get(connection.key.processId) === connection) keys.delete(connection.key.processId);
    },
    cancel(processId, secret) {
      const connection = keys.get(processId);
      if (connection?.key && connection.key.secret.equals(secret)) connection.cancel();
    },
    createSession(upstream: UpstreamConnection, user: string) {
      return new ModelSession(new PostgresHost(upstream), { ...session, runtimeLoader: loader, inferenceGate: gate, clientName: user, maxRowsPerCall });
    },
    log,
    startupTimeoutMs: options.startupTimeoutMs ?? 60_000,
    maxMessageBytes,
  };

  // allowHalfOpen: a client that sends half a message and shuts its side still gets the 08P01 answer.
  // pauseOnConnect: nothing is read before the socket is remade to read into a reused buffer.
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (accepted: Socket) => {
    accepted.on('error', () => undefined);
    const socket = takeOverAccepted(accepted, { allowHalfOpen: true });
    socket.on('error', () => undefined);
    const connection = new ProxyConnection(socket, context);
    connections.add(connection);
    try {
      connection.start();
    } catch (error) {
      log('could not start a client connection', error);
      socket.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => log('server error', error));
  const address = server.address();
  const bound = typeof address === 'object' && address ? address : { port, address: host };
  return {
    port: bound.port,
    host: bound.address,
    get connections() {
      return connections.size;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...connections].map((c) => c.close()));
      await closed;
      await loader.close();
    },
  };
}
