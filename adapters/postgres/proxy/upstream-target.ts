/**
 * Where the proxy's upstream Postgres is (a `postgres://` URL) and how a socket to it is
 * opened: TCP or a Unix socket, TLS as `sslmode` says, and the errors of an upstream that
 * cannot be reached or went away.
 *
 * Protocol: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */
import type { NetConnectOpts, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { sslRequest } from './message-builders.js';
import { connectReusingBuffer, readSocket, stopReading } from './socket-reading.js';

/** Where the upstream is, from a `postgres://` URL. */
export interface UpstreamTarget {
  /** Host name or address; a path (starting with `/`) for a Unix socket directory. */
  readonly host: string;
  readonly port: number;
  /** Database used when the client's StartupMessage names none. */
  readonly database?: string;
  /** `disable`, `prefer` (default, as libpq), `require` (TLS, no verification), `verify-full`. */
  readonly sslmode: 'disable' | 'prefer' | 'require' | 'verify-full';
  /** `host:port` for messages. */
  readonly label: string;
}

/**
 * Parses `postgres://host:port/db?sslmode=...` (user and password in the URL are ignored:
 * the proxy uses each client's own credentials). `?host=/run/postgresql` selects a Unix socket.
 *
 * @example parseUpstreamUrl('postgres://db.internal:5432/app') // { host: 'db.internal', port: 5432, database: 'app', ... }
 */
export function parseUpstreamUrl(url: string): UpstreamTarget {
  const u = new URL(url);
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`upstream must be a postgres:// URL, got ${url}`);
  const host = u.searchParams.get('host') ?? (decodeURIComponent(u.hostname.replace(/^\[|\]$/g, '')) || 'localhost');
  const port = Number(u.searchParams.get('port') ?? (u.port || 5432));
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined;
  const mode = u.searchParams.get('sslmode') ?? 'prefer';
  const sslmode = mode === 'verify-ca' ? 'verify-full' : mode === 'allow' ? 'prefer' : mode;
  if (!['disable', 'prefer', 'require', 'verify-full'].includes(sslmode)) throw new Error(`unsupported sslmode ${mode}`);
  return { host, port, database, sslmode: sslmode as UpstreamTarget['sslmode'], label: host.startsWith('/') ? `${host}/.s.PGSQL.${port}` : `${host}:${port}` };
}

/**
 * The upstream could not be reached or went away: 08001 / 08006 for the client. `code`
 * carries the SQLSTATE too, as on a driver's error, so that the Postgres host's error
 * mapping keeps it when the error passes through a model statement.
 */
export class UpstreamError extends Error {
  readonly code: string;

  constructor(
    readonly sqlstate: '08001' | '08006',
    message: string,
  ) {
    super(message);
    this.code = sqlstate;
  }
}

/** Where a raw socket to the target connects (TCP or Unix). */
/** Where a raw socket to the target connects (TCP or Unix). */
export function socketAddress(target: UpstreamTarget): NetConnectOpts {
  return target.host.startsWith('/') ? { path: `${target.host}/.s.PGSQL.${target.port}` } : { port: target.port, host: target.host };
}

/**
 * Connects to the upstream, negotiating TLS as `sslmode` says
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL).
 *
 * @throws UpstreamError 08001 when it cannot be reached.
 */
export async function connectUpstreamSocket(target: UpstreamTarget, timeoutMs = 10_000): Promise<Socket> {
  const fail = (error: Error): UpstreamError =>
    new UpstreamError('08001', `could not connect to upstream server at ${target.label}: ${(error as NodeJS.ErrnoException).code ?? error.message}`);
  const socket = connectReusingBuffer(socketAddress(target));
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(fail(new Error('timeout')));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve();
    });
    const onError = (error: Error): void => {
      clearTimeout(timer);
      reject(fail(error));
    };
    socket.once('error', onError);
  });
  if (target.sslmode === 'disable' || target.host.startsWith('/')) return socket;
  socket.write(sslRequest());
  const answer = await new Promise<string>((resolve, reject) => {
    readSocket(socket, (view) => {
      resolve(String.fromCharCode(view[0] ?? 0));
      return false;
    });
    socket.once('error', (e) => reject(fail(e)));
    socket.once('close', () => reject(fail(new Error('closed during SSL negotiation'))));
  });
  socket.removeAllListeners('error').removeAllListeners('close');
  stopReading(socket);
  if (answer !== 'S') {
    if (target.sslmode === 'prefer') return socket;
    socket.destroy();
    throw new UpstreamError('08001', `upstream server at ${target.label} does not support SSL, but sslmode=${target.sslmode}`);
  }
  const secure = tlsConnect({ socket, servername: target.host, rejectUnauthorized: target.sslmode === 'verify-full' });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', (e) => reject(fail(e)));
  });
  secure.removeAllListeners('error');
  return secure;
}

