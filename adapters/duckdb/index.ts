/**
 * modelsql on DuckDB: `openDuckDB(path?)` gives a session that runs DuckDB SQL and model
 * SQL alike, with the model catalog in schema `ml_catalog` of the database file.
 */
import { ModelSession, type SessionOptions } from '../../core/session/model-session.js';
import type { Session } from '../../core/session/session.js';
import { DuckDBHost } from './duckdb-host.js';

export { DuckDBHost } from './duckdb-host.js';
export { DuckDBDialect } from './duckdb-dialect.js';

/**
 * Opens a DuckDB database (a file, created when missing; in memory when `path` is omitted
 * or `:memory:`) as a modelsql session.
 *
 * @example
 * const db = await openDuckDB();
 * const { rows } = await db.sql('SHOW MODELS');
 */
export async function openDuckDB(path?: string, options: SessionOptions = {}): Promise<Session> {
  return new ModelSession(await DuckDBHost.open(path), options);
}
