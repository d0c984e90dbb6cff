/**
 * Where a Postgres error's position points in the client's text: the proxy sends Postgres
 * statements split out of a script, or rewritten by modelsql, and maps the ErrorResponse's
 * `P` field (1-based, in characters) back to what the client wrote.
 */
import type { PreparedQuery } from '../../../core/session/model-session.js';
import { errorResponseFromFields } from './message-builders.js';
import { parseErrorFields } from './message-readers.js';
import { raisedError } from '../sql-raised-error.js';

/**
 * Maps an ErrorResponse's position (1-based, in characters) in the SQL the proxy sent to a
 * position in the client's text; undefined where it maps nowhere.
 */
export type PositionMap = (position: number) => number | undefined;

/** Positions in a statement sent as written, `characters` into the client's text. */
export function shifted(characters: number): PositionMap {
  return (p) => p + characters;
}

/** Positions in a rewritten statement's SQL, mapped back through its `scriptOffset` to `clientText`. */
export function mappedPosition(prepared: Pick<PreparedQuery, 'sql' | 'scriptOffset'>, clientText: string): PositionMap | undefined {
  const { sql, scriptOffset } = prepared;
  if (!scriptOffset) return undefined;
  return (p) => {
    if (!Number.isInteger(p) || p < 1) return undefined;
    const offset = [...sql].slice(0, p - 1).join('').length;
    return characterOffset(clientText, scriptOffset(offset)) + 1;
  };
}

/** Number of characters (code points) before a UTF-16 offset. */
export function characterOffset(text: string, offset: number): number {
  let n = 0;
  for (let i = 0; i < offset; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n;
}

/**
 * An upstream ErrorResponse for the client: its position mapped by `position` to the client's
 * text, or dropped where it maps nowhere. An error modelsql's SQL raised on purpose
 * (sql-raised-error.ts, e.g. VECTOR_SEARCH's query vector checks) gets the SQLSTATE and
 * message it was raised with, as through the library (postgres-errors.ts).
 */
export function clientErrorResponse(payload: Buffer, position: PositionMap | undefined): Buffer {
  const fields = parseErrorFields(payload);
  const raised = raisedError(fields.get('C'), fields.get('M') ?? '');
  if (raised) {
    fields.set('C', raised.sqlstate);
    fields.set('M', raised.message);
    fields.delete('D');
  }
  const p = fields.get('P');
  if (p !== undefined) {
    const mapped = position?.(Number(p));
    if (mapped === undefined) fields.delete('P');
    else fields.set('P', String(mapped));
  }
  return errorResponseFromFields(fields);
}
