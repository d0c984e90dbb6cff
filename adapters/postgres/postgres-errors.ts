/**
 * Maps the errors of a Postgres connection to `ModelSqlError`, keeping the server's
 * SQLSTATE, message and position. An ErrorResponse's `P` field is a 1-based character
 * offset into the statement text
 * (https://www.postgresql.org/docs/current/protocol-error-fields.html).
 */
import { ModelSqlError, positionAt } from '../../core/errors.js';
import { raisedError } from './sql-raised-error.js';

/** The fields of an ErrorResponse as `pg` (DatabaseError) and pg-protocol expose them. */
interface ServerErrorFields {
  readonly code?: string;
  readonly message?: string;
  readonly position?: string | number;
  readonly detail?: string;
  readonly hint?: string;
}

/**
 * Turns whatever a Postgres connection threw into a ModelSqlError. A server error keeps its
 * SQLSTATE and, when it has one, its position translated to line/column of `sqlText` (the
 * statement that was sent); an error modelsql's SQL raised on purpose (sql-raised-error.ts)
 * gets the SQLSTATE and message it was raised with. Socket errors become 08006 connection_failure; anything else XX000.
 *
 * @example
 * try { await connection.query(sql) } catch (e) { throw mapPostgresError(e, sql) }
 */
export function mapPostgresError(error: unknown, sqlText?: string): ModelSqlError {
  if (error instanceof ModelSqlError) return error;
  const fields = (typeof error === 'object' && error !== null ? error : {}) as ServerErrorFields;
  const message = error instanceof Error ? error.message : String(fields.message ?? error);
  const code = typeof fields.code === 'string' && /^[0-9A-Z]{5}$/.test(fields.code) ? fields.code : undefined;
  if (code === undefined) {
    const connection = typeof fields.code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT)$/.test(fields.code);
    const ended = /Connection terminated|not queryable|Client was closed/i.test(message);
    return new ModelSqlError(connection || ended ? '08006' : 'XX000', message, { cause: error });
  }
  const characters = fields.position === undefined ? NaN : Number(fields.position);
  let position;
  if (sqlText !== undefined && Number.isInteger(characters) && characters > 0) {
    // The server counts characters (code points), JS strings count UTF-16 units.
    const offset = [...sqlText].slice(0, characters - 1).join('').length;
    position = positionAt(sqlText, offset);
  }
  // An error modelsql's own SQL raised (sql-raised-error.ts): its SQLSTATE and message, without the cast's DETAIL.
  const raised = raisedError(code, message);
  if (raised) return new ModelSqlError(raised.sqlstate, raised.message, { cause: error, position, sqlText: position ? sqlText : undefined });
  const text = [message, fields.detail ? `DETAIL: ${fields.detail}` : '', fields.hint ? `HINT: ${fields.hint}` : ''].filter((s) => s !== '').join('\n');
  return new ModelSqlError(code, text, { cause: error, position, sqlText: position ? sqlText : undefined });
}
