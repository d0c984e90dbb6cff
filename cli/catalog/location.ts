/**
 * Catalog locations of `modelsql catalog` commands: `duckdb:path/to/file.duckdb` (a DuckDB
 * database file) or `postgres://user:password@host:5432/db` (also `postgresql://`).
 */
import { existsSync } from 'node:fs';
import { DuckDBHost } from '../../adapters/duckdb/index.js';
import { PgClientConnection, PostgresHost, mapPostgresError } from '../../adapters/postgres/index.js';
import { ModelSqlError } from '../../core/errors.js';
import type { Host } from '../../core/host.js';

/** A parsed location. */
export type Location = { readonly kind: 'duckdb'; readonly path: string } | { readonly kind: 'postgres'; readonly url: string };

/** The shapes a location may take, for usage messages. */
export const LOCATION_HELP = 'duckdb:FILE.duckdb or postgres://user:password@host:5432/db';

/**
 * Parses a location.
 *
 * @throws Error (bad usage) for anything else.
 * @example parseLocation('duckdb:shop.duckdb') // { kind: 'duckdb', path: 'shop.duckdb' }
 */
export function parseLocation(text: string): Location {
  if (text.startsWith('duckdb:') && text.length > 'duckdb:'.length) return { kind: 'duckdb', path: text.slice('duckdb:'.length) };
  if (/^postgres(ql)?:\/\//.test(text)) return { kind: 'postgres', url: text };
  throw new Error(`'${text}' is not a catalog location: give ${LOCATION_HELP}`);
}

/** The location as it may be printed: a Postgres URL without its password. */
export function locationLabel(location: Location): string {
  if (location.kind === 'duckdb') return `duckdb:${location.path}`;
  try {
    const url = new URL(location.url);
    if (url.password) url.password = '';
    return url.toString().replace(/^(postgres(ql)?:\/\/[^:@/]*):@/, '$1@');
  } catch {
    return 'postgres://…';
  }
}

/** How a location is opened. */
export interface OpenOptions {
  /**
   * `read`: the database must exist. `write`: a missing DuckDB file is created.
   * `dry-run`: as `write`, but a missing DuckDB file is stood in for by an empty in-memory
   * database instead of being created.
   */
  readonly mode: 'read' | 'write' | 'dry-run';
}

/**
 * Opens the host of a location.
 *
 * @throws ModelSqlError 58P01 for a missing DuckDB file to read; 08001 (or the server's
 *   SQLSTATE) when Postgres cannot be reached, naming the location without its password.
 */
export async function openLocation(location: Location, options: OpenOptions): Promise<Host> {
  if (location.kind === 'duckdb') {
    const exists = existsSync(location.path);
    if (!exists && options.mode === 'read') throw new ModelSqlError('58P01', `no DuckDB database at ${location.path}`);
    return DuckDBHost.open(!exists && options.mode === 'dry-run' ? ':memory:' : location.path);
  }
  try {
    return new PostgresHost(await PgClientConnection.connect(location.url));
  } catch (error) {
    const mapped = mapPostgresError(error);
    const sqlstate = mapped.sqlstate === '08006' || mapped.sqlstate === 'XX000' ? '08001' : mapped.sqlstate;
    throw new ModelSqlError(sqlstate, `cannot connect to ${locationLabel(location)}: ${mapped.message}`, { cause: error });
  }
}
