/**
 * Results and errors the proxy answers itself (model DDL, its own failures) as protocol
 * messages: RowDescription + DataRow + CommandComplete in text format, ErrorResponse with
 * SQLSTATE and position.
 *
 * Formats: https://www.postgresql.org/docs/current/protocol-message-formats.html
 * Text output of values: https://www.postgresql.org/docs/current/datatype.html
 */
import { asModelSqlError } from '../../../core/errors.js';
import type { QueryResult, ResultColumn } from '../../../core/model-types.js';
import { commandComplete, dataRow, errorResponse, errorResponseFromFields, rowDescription, type ColumnSpec } from './message-builders.js';

/** OID and length of the types model-DDL results use; anything else is sent as text (25). */
const TYPES: ReadonlyMap<string, readonly [number, number]> = new Map<string, readonly [number, number]>([
  ['text', [25, -1]],
  ['varchar', [25, -1]],
  ['character varying', [25, -1]],
  ['name', [25, -1]],
  ['boolean', [16, 1]],
  ['bool', [16, 1]],
  ['smallint', [21, 2]],
  ['int2', [21, 2]],
  ['integer', [23, 4]],
  ['int', [23, 4]],
  ['int4', [23, 4]],
  ['bigint', [20, 8]],
  ['int8', [20, 8]],
  ['real', [700, 4]],
  ['float4', [700, 4]],
  ['double precision', [701, 8]],
  ['double', [701, 8]],
  ['float8', [701, 8]],
  ['numeric', [1700, -1]],
  ['json', [114, -1]],
  ['jsonb', [3802, -1]],
  ['bytea', [17, -1]],
  ['blob', [17, -1]],
  ['timestamp', [1114, 8]],
  ['timestamp without time zone', [1114, 8]],
  ['timestamptz', [1184, 8]],
  ['timestamp with time zone', [1184, 8]],
  ['date', [1082, 4]],
  ['uuid', [2950, 16]],
]);

/** The RowDescription column of a result column (by its type name). */
export function columnSpec(column: ResultColumn): ColumnSpec {
  const [typeOid, typeSize] = TYPES.get(column.type.toLowerCase()) ?? [25, -1];
  return { name: column.name, typeOid, typeSize };
}

/** The text form of one value the core returned. */
export function textValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : value > 0 ? 'Infinity' : value < 0 ? '-Infinity' : 'NaN';
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) {
    return `{${value
      .map((v) => {
        const s = textValue(v);
        return s === null ? 'NULL' : `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
      })
      .join(',')}}`;
  }
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** The CommandComplete tag of a model-DDL result (`CREATE MODEL`, `SHOW MODELS`, ...). */
export function commandTag(result: QueryResult): string {
  return result.command || 'SELECT';
}

/** RowDescription (when the result has columns), then the DataRows. */
export function rowMessages(result: QueryResult, withDescription: boolean): Buffer[] {
  const out: Buffer[] = [];
  if (withDescription && result.columns.length > 0) out.push(rowDescription(result.columns.map(columnSpec)));
  for (const row of result.rows) out.push(dataRow(row.map(textValue)));
  return out;
}

/** The whole answer to one model-DDL statement: its notices, RowDescription, DataRows, CommandComplete. */
export function resultMessages(result: QueryResult): Buffer[] {
  return [...noticeMessages(result), ...rowMessages(result, true), commandComplete(commandTag(result))];
}

/**
 * A NoticeResponse ('N', severity NOTICE, SQLSTATE 00000) per notice of the result.
 *
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-NOTICERESPONSE
 */
export function noticeMessages(result: QueryResult): Buffer[] {
  return (result.notices ?? []).map((message) => errorResponseFromFields([['S', 'NOTICE'], ['V', 'NOTICE'], ['C', '00000'], ['M', message]], 'N'));
}

/** 1-based character (code point) position of a 0-based UTF-16 offset, as ErrorResponse's `P` counts. */
export function characterPosition(text: string, offset: number): number {
  let n = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xdc00 || c > 0xdfff) n++;
  }
  return n + 1;
}

/** Where the text the core saw came from, to turn an error's offset into the client's `P`. */
export interface ErrorContext {
  /** The text the session ran (the client's, or with parameters substituted). */
  readonly sessionText: string;
  /** The client's own text. */
  readonly clientText: string;
  /** Offset in `sessionText` → offset in `clientText`. */
  readonly toOriginal?: (offset: number) => number;
}

/**
 * The ErrorResponse of an error thrown while the proxy ran a statement. A `ModelSqlError`
 * keeps its SQLSTATE, message and position (when it points into the text the session ran,
 * mapped back into the client's text); anything else is worded by `asModelSqlError`
 * (XX000 `internal error: ...`), as the CLI words it.
 */
export function errorMessage(thrown: unknown, context?: ErrorContext): Buffer {
  // Worded as the CLI words it (core/errors.ts).
  const error = asModelSqlError(thrown);
  let position: number | undefined;
  if (error.position && context && (error.sqlText === undefined || error.sqlText === context.sessionText)) {
    const offset = context.toOriginal ? context.toOriginal(error.position.offset) : error.position.offset;
    position = characterPosition(context.clientText, offset);
  }
  const [message, ...rest] = error.message.split('\n');
  const detail = rest.find((l) => l.startsWith('DETAIL: '))?.slice(8);
  const hint = rest.find((l) => l.startsWith('HINT: '))?.slice(6);
  return errorResponse({ code: error.sqlstate, message: message ?? '', detail, hint, position });
}
