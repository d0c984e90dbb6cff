/**
 * Errors raised from plain Postgres SQL with a SQLSTATE of modelsql's choosing. A query has
 * no `RAISE` (that is PL/pgSQL's, https://www.postgresql.org/docs/current/plpgsql-errors-and-messages.html),
 * and modelsql creates no function for it: the message is cast to `float8[]` instead, which
 * fails with 22P02 `malformed array literal: "<message>"`
 * (https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO). The message carries the
 * SQLSTATE meant, and postgres-errors.ts turns such an error back into that SQLSTATE and
 * message.
 */
import { quoteString } from '../../core/sql/format.js';

/** What starts a raised message, before its SQLSTATE. */
const TAG = 'modelsql ';

/**
 * The SQLSTATEs modelsql's SQL raises: only these are read back. A value in the data that
 * happens to read as a raised message (`'modelsql 40001: ...'` cast to `float8[]` by a
 * user's own query) cannot then make an error look like a serialization failure a client
 * retries, or a lost connection.
 */
const RAISED_STATES: ReadonlySet<string> = new Set(['22023', '2202E']);

/**
 * A `float8[]` expression that fails the query with `sqlstate` and the text of `message`
 * (a SQL expression of type text), wherever Postgres evaluates it.
 *
 * @example
 * `CASE WHEN bad THEN ${raiseInSql('22023', "'no good'")} ELSE v END`
 */
export function raiseInSql(sqlstate: string, message: string): string {
  if (!RAISED_STATES.has(sqlstate)) throw new Error(`not a SQLSTATE modelsql raises: ${sqlstate}`);
  return `CAST(${quoteString(`${TAG}${sqlstate}: `)} OPERATOR(pg_catalog.||) (${message}) AS float8[])`;
}

/** The SQLSTATE and message of an error {@link raiseInSql} raised, from the server's 22P02 message; undefined for any other error. */
export function raisedError(code: string | undefined, message: string): { readonly sqlstate: string; readonly message: string } | undefined {
  if (code !== '22P02') return undefined;
  const m = /^malformed array literal: "modelsql ([0-9A-Z]{5}): ([\s\S]*)"$/.exec(message);
  return m && RAISED_STATES.has(m[1]!) ? { sqlstate: m[1]!, message: m[2]! } : undefined;
}
