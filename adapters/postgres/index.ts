/**
 * modelsql on PostgreSQL as a library: `connectPostgres(url)` gives a session that runs
 * Postgres SQL and model SQL alike, with the model catalog in schema `ml_catalog` of the
 * database (created on first use).
 */
import { ModelSession, type SessionOptions } from '../../core/session/model-session.js';
import type { Session } from '../../core/session/session.js';
import { PgClientConnection } from './pg-client-connection.js';
import { PostgresHost } from './postgres-host.js';
import { mapPostgresError } from './postgres-errors.js';

export { PostgresHost } from './postgres-host.js';
export { PostgresDialect } from './postgres-dialect.js';
export { PgClientConnection } from './pg-client-connection.js';
export { mapPostgresError };
export { listenForChanges } from './change-listener.js';
export type { ChangeListener } from './change-listener.js';
export type { PgConnection, PgField, PgQueryResult, TransactionStatus } from './pg-connection.js';

/**
 * Connects to a Postgres database (a libpq-style URL, e.g.
 * `postgres://user:password@localhost:5432/db`) as a modelsql session.
 *
 * @example
 * const db = await connectPostgres('postgres://localhost/shop');
 * const { rows } = await db.sql('SELECT * FROM ML_PREDICT(TABLE houses, MODEL price, DESCRIPTOR(sqft, age))');
 */
export async function connectPostgres(url: string, options: SessionOptions = {}): Promise<Session> {
  let connection: PgClientConnection;
  try {
    connection = await PgClientConnection.connect(url);
  } catch (error) {
    throw mapPostgresError(error);
  }
  return new ModelSession(new PostgresHost(connection), options);
}
