/**
 * Where a model catalog lives, as the `modelsql catalog` commands name it: a DuckDB file
 * (`duckdb:path/to/file.duckdb`) or a Postgres database (`postgres://user@host:5432/db`,
 * also `postgresql://`; its missing parts from the `PG*` variables as libpq reads them, and
 * `postgres:` alone for the database `DATABASE_URL` names: cli/connection-settings.ts).
 * Parses such a location and opens it, with a clear error when the database cannot be
 * reached.
 */
import { existsSync } from 'node:fs';
import { DuckDBHost, openDuckDB } from '../../adapters/duckdb/index.js';
import { PgClientConnection, PostgresHost, connectPostgres, mapPostgresError } from '../../adapters/postgres/index.js';
import { ModelSqlError } from '../../core/errors.js';
import { isPostgresUrl, redact, resolvePostgresUrl } from '../connection-settings.js';
import type { Host } from '../../core/host.js';
import type { Session } from '../../core/session/session.js';

/**
 * A parsed catalog location. A Postgres location's `url` is the one connected to, completed
 * from the environment; `shown` is how messages name it (the URL as given, else the one
 * `DATABASE_URL` or the `PG*` variables made), without its password.
 */
export type CatalogLocation = { readonly kind: 'duckdb'; readonly path: string } | { readonly kind: 'postgres'; readonly url: string; readonly shown: string };

/** The shapes a location may take, for usage messages. */
export const LOCATION_HELP = 'duckdb:path/to/file.duckdb, postgres://user@host:5432/db (missing parts from the PG* variables) or postgres: (DATABASE_URL)';

/** How to open a location. */
export interface OpenLocationOptions {
  /**
   * `read` (the default): the database must exist. `write`: a missing DuckDB file is
   * created. `dry-run`: as `write`, but a missing DuckDB file is stood in for by an empty
   * in-memory database instead of being created.
   */
  readonly mode?: 'read' | 'write' | 'dry-run';
}

/**
 * Parses `duckdb:path`, `postgres://...` or `postgres:`. A Postgres URL's missing settings
 * come from the `PG*` variables of `env`; `postgres:` (or `postgresql:`) alone is the URL in
 * `DATABASE_URL`, else the `PG*` variables alone, as `--postgres` without a URL. Anything
 * else, and any setting modelsql does not apply (an unknown URL parameter, a set `PGSERVICE`,
 * ...), is a 22023 error.
 *
 * @example
 * parseLocation('duckdb:data/shop.duckdb'); // { kind: 'duckdb', path: 'data/shop.duckdb' }
 * // PGUSER=ann
 * parseLocation('postgres://db/shop').url; // 'postgresql://ann@db/shop'
 */
export function parseLocation(text: string, env: NodeJS.ProcessEnv = process.env): CatalogLocation {
  if (text.startsWith('duckdb:') && text.length > 'duckdb:'.length) return { kind: 'duckdb', path: text.slice('duckdb:'.length) };
  const fromEnvironment = /^postgres(ql)?:$/i.test(text);
  if (fromEnvironment || isPostgresUrl(text)) {
    try {
      if (!fromEnvironment) new URL(text);
    } catch {
      throw new ModelSqlError('22023', `not a valid Postgres URL: ${redact(text)}`);
    }
    const url = resolvePostgresUrl(fromEnvironment ? undefined : text, env, 'client');
    return { kind: 'postgres', url, shown: masked(fromEnvironment ? url.replace(/[?&]uselibpqcompat=true$/, '') : text) };
  }
  throw new ModelSqlError('22023', `not a catalog location: '${text}'; give ${LOCATION_HELP}`);
}

/** A URL with its password masked. */
function masked(text: string): string {
  const url = new URL(text);
  if (url.password !== '') url.password = '******';
  return url.toString();
}

/** The location as text for messages, with a Postgres password masked. */
export function describeLocation(location: CatalogLocation): string {
  return location.kind === 'duckdb' ? `duckdb:${location.path}` : location.shown;
}

/**
 * Opens the host connection of a location. A missing DuckDB file in `read` mode, a file
 * DuckDB cannot open, or a Postgres server that does not answer is a clear error: 58P01
 * (no such file), 08001 (server not reached), else the host's own SQLSTATE.
 *
 * @example
 * const host = await openLocationHost(parseLocation('postgres://me@db:5432/shop'));
 */
export function openLocationHost(location: CatalogLocation, options: OpenLocationOptions = {}): Promise<Host> {
  return open<Host>(location, options, (path) => DuckDBHost.open(path), async (url) => new PostgresHost(await PgClientConnection.connect(url)));
}

/** Opens a location as a modelsql session (model SQL and host SQL), with the errors of `openLocationHost`. */
export function openLocationSession(location: CatalogLocation, options: OpenLocationOptions = {}): Promise<Session> {
  return open(location, options, (path) => openDuckDB(path), (url) => connectPostgres(url));
}

/** Runs the opener of the location's kind, turning any failure into the error of {@link unreachable}. */
async function open<T>(location: CatalogLocation, options: OpenLocationOptions, duckdb: (path: string) => Promise<T>, postgres: (url: string) => Promise<T>): Promise<T> {
  try {
    if (location.kind === 'postgres') return await postgres(location.url);
    const mode = options.mode ?? 'read';
    if (existsSync(location.path)) return await duckdb(location.path);
    if (mode === 'read') throw new ModelSqlError('58P01', 'no such database file');
    return await duckdb(mode === 'dry-run' ? ':memory:' : location.path);
  } catch (error) {
    throw unreachable(location, error);
  }
}

/** The error of a location that could not be opened, naming it. */
function unreachable(location: CatalogLocation, error: unknown): ModelSqlError {
  const mapped = location.kind === 'postgres' ? mapPostgresError(error) : error instanceof ModelSqlError ? error : new ModelSqlError('XX000', String(error));
  // A socket that never reached a server (refused, reset, unknown host) is 08001.
  const state = location.kind === 'postgres' && (mapped.sqlstate === '08006' || mapped.sqlstate === 'XX000') ? '08001' : mapped.sqlstate;
  return new ModelSqlError(state, `cannot open ${describeLocation(location)}: ${mapped.message}`, { cause: error });
}
