/**
 * Maps DuckDB's errors to SQLSTATEs. DuckDB reports an error type as the message prefix
 * (`Catalog Error: ...`), see https://duckdb.org/docs/stable/dev/internal_errors.
 */
import { ModelSqlError, QueryCanceledError, positionAt, type SourcePosition } from '../../core/errors.js';

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
 * DuckDB ends a positioned message with its own `LINE n: ...` and caret, counted within the
 * text it ran; given that text (`sqlText`), the tail becomes the error's position in it
 * instead, so that the caller can count lines in its own convention (the session: within
 * the whole script).
 */
export function mapDuckDBError(error: unknown, sqlText?: string): ModelSqlError {
  if (error instanceof ModelSqlError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const type = /^(?:Error: )?([A-Za-z ]+ Error):/.exec(message)?.[1]?.toLowerCase(); // some paths prefix "Error: "
  const sqlstate = type === 'catalog error' ? catalogState(message) : ((type && STATES[type]) ?? 'XX000');
  if (sqlstate === '57014') return new QueryCanceledError(undefined, { cause: error });
  const tail = /\n\nLINE (\d+): ([^\n]*)\n( *)\^$/.exec(message);
  const position = tail && sqlText !== undefined ? caretPosition(sqlText, Number(tail[1]), tail[2]!, tail[3]!.length - `LINE ${tail[1]}: `.length) : undefined;
  if (!tail || !position) return new ModelSqlError(sqlstate, message, { cause: error });
  return new ModelSqlError(sqlstate, message.slice(0, tail.index), { cause: error, position, sqlText });
}

/**
 * A catalog error's SQLSTATE by what it says, as Postgres tells them apart
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html): a relation that exists
 * 42P07, a schema 3F000 missing and 42P06 existing, a function 42883 missing, any other
 * object that exists 42710; else (a missing table or view) 42P01.
 */
function catalogState(message: string): string {
  const what = /Catalog Error: ([A-Za-z ]+?) with name .*?(already exists|does not exist)/.exec(message);
  if (!what) return '42P01';
  const [, kind, state] = what as unknown as [string, string, string];
  if (state === 'already exists') {
    if (/^(Table|View|Index|Sequence)$/.test(kind)) return '42P07';
    return kind === 'Schema' ? '42P06' : '42710';
  }
  if (kind === 'Schema') return '3F000';
  return /Function$/.test(kind) ? '42883' : '42P01';
}

/**
 * Where DuckDB's caret points: `column` (0-based) into `snippet`, the part of line `line` of
 * `text` it printed (a long line is cut to a window, with `...` at a cut end).
 */
function caretPosition(text: string, line: number, snippet: string, column: number): SourcePosition | undefined {
  const lines = text.split('\n');
  const lineText = lines[line - 1];
  if (lineText === undefined || column < 0) return undefined;
  const lead = snippet.startsWith('...') ? 3 : 0;
  const shown = snippet.slice(lead).replace(/\.\.\.$/, '');
  const at = lineText.indexOf(shown);
  const lineStart = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  const offset = lineStart + Math.min(lineText.length, Math.max(0, (at < 0 ? 0 : at) + column - lead));
  return positionAt(text, offset);
}

/** Runs a driver call, mapping what it throws with {@link mapDuckDBError}. */
export async function mappedCall<T>(step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw mapDuckDBError(error);
  }
}
