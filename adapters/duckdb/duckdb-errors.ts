/**
 * Maps DuckDB's errors to SQLSTATEs. DuckDB reports an error type as the message prefix
 * (`Catalog Error: ...`), see https://duckdb.org/docs/stable/dev/internal_errors.
 */
import { ModelSqlError, QueryCanceledError } from '../../core/errors.js';

/** By error type, lower-cased (DuckDB writes `INTERRUPT Error` and `Catalog Error` alike). */
const STATES: Readonly<Record<string, string>> = Object.fromEntries(Object.entries({
  'Parser Error': '42601',
  'Catalog Error': '42P01',
  'Binder Error': '42703',
  'Constraint Error': '23000',
  'Conversion Error': '22018',
  'Invalid Input Error': '22023',
  'Out of Range Error': '22003',
  'Interrupt Error': '57014',
  'TransactionContext Error': '25000',
  'Permission Error': '42501',
  'IO Error': '58030',
  'Not implemented Error': '0A000',
  'Dependency Error': '2BP01',
}).map(([k, v]) => [k.toLowerCase(), v]));

/**
 * Turns whatever the DuckDB driver threw into a ModelSqlError with a SQLSTATE. An
 * interrupted statement becomes {@link QueryCanceledError}, worded as Postgres words it
 * (`canceling statement due to user request`), as every front end reports a cancel.
 */
export function mapDuckDBError(error: unknown): ModelSqlError {
  if (error instanceof ModelSqlError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const type = /^(?:Error: )?([A-Za-z ]+ Error):/.exec(message)?.[1]?.toLowerCase(); // some paths prefix "Error: "
  const sqlstate = (type && STATES[type]) ?? 'XX000';
  if (sqlstate === '57014') return new QueryCanceledError(undefined, { cause: error });
  return new ModelSqlError(sqlstate, message, { cause: error });
}
