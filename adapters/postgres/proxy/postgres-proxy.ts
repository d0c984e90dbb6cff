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
import { ProxyConnection } from './proxy-connection.js';
import type { ProxyContext } from './proxy-context.js';
import { loadNativeRelay, type RelayScheduling } from './native-relay.js';
import { takeOverAccepted } from './socket-reading.js';
import { MAX_MESSAGE_LENGTH } from './framer.js';
import type { UpstreamConnection } from './upstream-connection.js';
import { connectUpstreamSocket, parseUpstreamUrl, type UpstreamTarget } from './upstream-target.js';
import { ProxyLog, type ProxyLogLevel } from './proxy-log.js';
import { ProxyMetrics } from './proxy-metrics.js';
import { startMetricsServer, type MetricsEndpoint } from './metrics-server.js';
import { MaterializedMetrics } from './materialized-metrics.js';
import { ProxyRefreshers } from './proxy-refresher.js';

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
  /** Where unexpected errors go instead of the operations log (tests collect them). */
  readonly log?: (message: string, error?: unknown) => void;
  /**
   * Level of the operations log (logfmt lines, proxy-log.ts): `debug`, `info` (connections
   * opened and closed, model runs), `warn`, `error` (unexpected errors; the default), `silent`.
   */
  readonly logLevel?: ProxyLogLevel;
  /** Where log lines go (default: stderr). */
  readonly logSink?: (line: string) => void;
  /**
   * Where to serve `/healthz` and Prometheus `/metrics` over HTTP (`host:port`, a port, or
   * `{ host, port }`; host default 127.0.0.1, port 0 picks a free one). Default: not served.
   */
  readonly metrics?: string | number | { readonly host?: string; readonly port?: number };
  /**
   * Keeps materialized tables fresh (proxy-refresher.ts, docs/proxy.md): a connection URL
   * whose role, password and address the refreshers use, its database replaced by each
   * database a client logs in to (`postgres://refresher@db:5432/`; a password may come
   * from `PGPASSWORD` or `~/.pgpass`). Default: no refresher.
   */
  readonly refreshUrl?: string;
  /**
   * How plain pass-through traffic is relayed: `auto` (the default) hands idle plain
   * sessions to the native relay when it was built at install (native-relay.ts; Linux, a
   * C++ compiler), else the JavaScript relay; `js` always the JavaScript relay. The debug
   * log says which one runs.
   */
  readonly relay?: 'auto' | 'js';
  /**
   * The native relay thread's scheduling policy on Linux: `batch` (the default, SCHED_BATCH:
   * less CPU per pass-through statement when the proxy's traffic saturates the cores) or
   * `normal` (SCHED_OTHER: lower latency while other CPU-bound processes share the cores).
   * One thread serves every proxy of a process: the last proxy started sets it.
   */
  readonly relayScheduling?: RelayScheduling;
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
  /** Where `/healthz` and `/metrics` are served, when `metrics` was given. */
  readonly metrics?: { readonly host: string; readonly port: number };
  /** Stops listening, closes every client connection and unloads models. */
  close(): Promise<void>;
  /**
   * Graceful shutdown: stops accepting connections, ends each connection once its
   * statements in flight are answered (the client gets FATAL `57P01`), and after `graceMs`
   * closes what is left, cancelling what still runs; then as {@link close}. Resolves to
   * the number of connections closed by force.
   */
  shutdown(graceMs: number): Promise<number>;
}

/** Parses a `listen` or `metrics` option; `port` is the default port. */
function listenAddress(listen: ProxyOptions['listen'], port = 6432): { host: string; port: number } {
  if (listen === undefined) return { host: '127.0.0.1', port };
  if (typeof listen === 'number') return { host: '127.0.0.1', port: listen };
  if (typeof listen === 'object') return { host: listen.host ?? '127.0.0.1', port: listen.port ?? port };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  if (m) return { host: m[1] ?? (m[2] || '127.0.0.1'), port: Number(m[3]) };
  if (/^\d+$/.test(listen)) return { host: '127.0.0.1', port: Number(listen) };
  return { host: listen, port };
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
  const events = new ProxyLog(options.logLevel ?? 'error', options.logSink ?? ((line) => process.stderr.write(line)));
  const write =
    options.log ??
    ((message: string, error?: unknown) =>
      events.error(message, { error: error instanceof Error ? error.message : error === undefined ? undefined : String(error), stack: events.enabled('debug') && error instanceof Error ? error.stack : undefined }));
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
  const native = options.relay === 'js' ? { problem: 'relay js chosen' } : loadNativeRelay();
  const relayScheduling = options.relayScheduling ?? 'batch';
  if (relayScheduling !== 'batch' && relayScheduling !== 'normal') throw new RangeError(`relayScheduling must be 'batch' or 'normal'`);
  native.relay?.schedule(relayScheduling);
  events.debug('relay', native.relay ? { relay: 'native', scheduling: relayScheduling } : { relay: 'js', reason: native.problem });
  const connections = new Set<ProxyConnection>();
  const keys = new Map<number, ProxyConnection>();
  const metrics = new ProxyMetrics(() => [...connections].map((c) => c.counts));
  /** Connections that finished authentication: their close is logged. */
  const opened = new Set<ProxyConnection>();
  /** Set while a shutdown waits for the last connection to end. */
  let allClosed: (() => void) | undefined;
  /** A session on `host` with this proxy's model settings; its runs and requests are counted. */
  const newSession = (host: PostgresHost, user: string): ModelSession => {
    const created = new ModelSession(host, { ...session, runtimeLoader: loader, inferenceGate: gate, clientName: user, maxRowsPerCall });
    created.events.on('run', (run) => {
      metrics.modelRun(run);
      events.info('model run', { user, model: run.model, provider: run.provider, rows: run.rows, errors: run.errors, duration_ms: run.durationMs, tokens: run.tokens });
    });
    created.events.on('request', (request) => metrics.providerRequest(request));
    return created;
  };
  const refreshers = options.refreshUrl === undefined ? undefined : startRefreshers(options.refreshUrl, new MaterializedMetrics(metrics.registry), events, newSession);

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
    opened(connection) {
      opened.add(connection);
      refreshers?.serve(connection.database);
      events.info('connection opened', { user: connection.user, database: connection.database, client: connection.clientAddress });
    },
    unregister(connection) {
      if (!connections.delete(connection)) return;
      if (connections.size === 0) allClosed?.();
      const counts = connection.counts;
      metrics.connectionClosed(counts);
      if (opened.delete(connection)) {
        events.info('connection closed', {
          user: connection.user,
          database: connection.database,
          client: connection.clientAddress,
          duration_ms: Date.now() - connection.acceptedAt,
          statements: counts.hostStatements + counts.modelStatements,
          errors: counts.errors,
          bytes_in: counts.bytesIn,
          bytes_out: counts.bytesOut,
        });
      }
      if (connection.key && keys.get(connection.key.processId) === connection) keys.delete(connection.key.processId);
    },
    cancel(processId, secret) {
      const connection = keys.get(processId);
      if (connection?.key && connection.key.secret.equals(secret)) connection.cancel();
    },
    createSession(upstream: UpstreamConnection, user: string) {
      return newSession(new PostgresHost(upstream), user);
    },
    log,
    startupTimeoutMs: options.startupTimeoutMs ?? 60_000,
    maxMessageBytes,
    ...(native.relay ? { nativeRelay: native.relay } : {}),
  };

  // allowHalfOpen: a client that sends half a message and shuts its side still gets the 08P01 answer.
  // pauseOnConnect: nothing is read before the socket is remade to read into a reused buffer.
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, (accepted: Socket) => {
    accepted.on('error', () => undefined);
    const socket = takeOverAccepted(accepted, { allowHalfOpen: true });
    socket.on('error', () => undefined);
    const connection = new ProxyConnection(socket, context);
    connections.add(connection);
    metrics.connectionOpened();
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
  let endpoint: MetricsEndpoint | undefined;
  const closeAll = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    await Promise.all([...connections].map((c) => c.close()));
    await refreshers?.close();
    await closed;
    await endpoint?.close();
    await loader.close();
  };
  if (options.metrics !== undefined) {
    const at = listenAddress(options.metrics, 9187);
    try {
      endpoint = await startMetricsServer(at.host, at.port, metrics, () => upstreamProblem(target));
    } catch (error) {
      server.close();
      throw error;
    }
  }
  return {
    port: bound.port,
    host: bound.address,
    get connections() {
      return connections.size;
    },
    ...(endpoint ? { metrics: { host: endpoint.host, port: endpoint.port } } : {}),
    async shutdown(graceMs) {
      if (server.listening) server.close();
      events.info('shutting down', { connections: connections.size, grace_ms: graceMs });
      const all = (): Promise<void> => new Promise((resolve) => (allClosed = resolve));
      const drained = connections.size === 0 ? Promise.resolve() : all();
      for (const c of [...connections]) c.drain();
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([drained.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
      clearTimeout(timer);
      const forced = late ? connections.size : 0;
      if (forced > 0) events.warn('grace period over: closing connections with statements still running', { connections: forced });
      await closeAll();
      events.info('shut down', { forced });
      return forced;
    },
    close: closeAll,
  };
}

/** The refreshers of a proxy (`refreshUrl`): their refreshes counted in `metrics` and logged. */
function startRefreshers(url: string, metrics: MaterializedMetrics, events: ProxyLog, newSession: (host: PostgresHost, user: string) => ModelSession): ProxyRefreshers {
  const user = decodeURIComponent(new URL(url).username) || '(refresher)';
  const name = (table: { schema: string; name: string }) => `${table.schema}.${table.name}`;
  return new ProxyRefreshers(url, {
    createSession: (host) => newSession(host, user),
    onRefresh(database, table, outcome) {
      metrics.refreshed(database, table, outcome);
      if (outcome) events.info('materialized table refreshed', { database, table: name(table), rows: outcome.rowsRefreshed, predicted: outcome.rowsPredicted, provider_rows: outcome.providerRows, duration_ms: Math.round(outcome.durationMs), lag_ms: outcome.lagMs === undefined ? undefined : Math.round(outcome.lagMs) });
    },
    onError(database, table, error) {
      metrics.failed(database, table);
      events.warn('materialized table refresh failed', { database, table: name(table), error: maskSecrets(error instanceof Error ? error.message : String(error)) });
    },
    onFailure(database, error) {
      events.warn('materialized table refresher stopped; the next client of the database starts it again', { database, error: maskSecrets(error instanceof Error ? error.message : String(error)) });
    },
  });
}

/** Why the upstream is not reachable (a connection is opened and closed), or undefined when it is. */
async function upstreamProblem(target: UpstreamTarget): Promise<string | undefined> {
  try {
    (await connectUpstreamSocket(target, 2000)).destroy();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
