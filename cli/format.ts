/**
 * Output formats of the `modelsql` CLI: pure functions from a {@link QueryResult} to text.
 *
 * - `table`: a box-drawn table with the column names as headers and a psql-style
 *   `(N rows)` footer; a statement without result columns prints its command tag
 *   (`CREATE MODEL`). NULL prints as `NULL`.
 * - `csv`: RFC 4180 (header line, fields quoted when they hold `,` `"` CR or LF, quotes
 *   doubled, CRLF line ends). NULL is an empty unquoted field, the empty string is `""`.
 * - `json`: one JSON array of row objects per statement, on a single line, so that a script
 *   prints JSON Lines with one array per statement (`jq -c '.[]'` flattens it).
 * - `line`: one `column = value` line per column, rows separated by an empty line (the
 *   DuckDB and SQLite shells' `.mode line`).
 *
 * `table` output may instead be shown expanded (psql's `\x`): one `-[ RECORD n ]` block per
 * row with a `column | value` line per column; `auto` expands a table wider than the screen.
 *
 * Statements without result columns print nothing in `csv` and `json`.
 */
import Table from 'cli-table3';
import stringWidth from 'string-width';
import type { QueryResult } from '../core/model-types.js';

/** The names accepted by `--format`. */
export const OUTPUT_FORMATS = ['table', 'csv', 'json', 'line'] as const;

/** One of {@link OUTPUT_FORMATS}. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * Converts a result value to the value JSON output carries: bigint becomes a number when
 * it is a safe integer, else a string of its digits; non-finite numbers become the strings
 * `NaN`, `Infinity`, `-Infinity` (as Postgres' `to_json`); bytes become `\x`-hex strings;
 * `Date` an ISO string; `Map` an object; arrays and plain objects are converted deeply.
 * Other objects with their own `toString` (e.g. driver decimal or interval values) become
 * that string.
 *
 * @example
 * toJsonValue(12n)            // 12
 * toJsonValue(2n ** 63n - 1n) // '9223372036854775807'
 */
export function toJsonValue(value: unknown): unknown {
  switch (typeof value) {
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : value.toString();
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'string':
    case 'boolean':
      return value;
    case 'undefined':
      return null;
    case 'object':
      break;
    default:
      return String(value);
  }
  if (value === null) return null;
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value instanceof Uint8Array) return bytesToHex(value);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[typeof k === 'string' ? k : cellText(k, '')] = toJsonValue(v);
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toJsonValue(v);
    return out;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return toJsonValue((value as { toJSON(): unknown }).toJSON());
  if ((value as { toString?: unknown }).toString !== Object.prototype.toString) return String(value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = toJsonValue(v);
  return out;
}

/** `\x` followed by two lower-case hex digits per byte, as Postgres prints `bytea`. */
function bytesToHex(bytes: Uint8Array): string {
  let out = '\\x';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/**
 * The text of one cell in `table` and `csv` output: strings as they are, numbers and
 * bigints in full (no loss of digits), booleans as `true`/`false`, nested arrays, structs
 * and maps as compact JSON (see {@link toJsonValue}), and NULL as `nullText`.
 */
export function cellText(value: unknown, nullText: string): string {
  if (value === null || value === undefined) return nullText;
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(value);
    default: {
      const json = toJsonValue(value);
      return typeof json === 'string' ? json : JSON.stringify(json);
    }
  }
}

/** Replaces control characters other than LF by visible escapes, so a cell cannot drive the terminal. */
function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x09\x0b-\x1f\x7f]/g, (c) => {
    switch (c) {
      case '\t':
        return '\\t';
      case '\r':
        return '\\r';
      default:
        return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
    }
  });
}

/** `(1 row)` / `(N rows)`, as psql prints under a table. */
export function rowCountFooter(count: number): string {
  return `(${count} ${count === 1 ? 'row' : 'rows'})`;
}

/**
 * Formats a result as a box-drawn table followed by `(N rows)`, or as its command tag when
 * the statement has no result columns. Numbers are right-aligned, NULL prints as `NULL`,
 * control characters other than newline are shown escaped (`\t`, `\r`, `\x1b`). Column
 * widths account for wide (CJK, emoji) characters. Ends with a newline.
 *
 * @example
 * formatTable({ command: 'SELECT', columns: [{ name: 'x', type: 'INTEGER' }], rows: [[42]] })
 * // ┌────┐
 * // │ x  │
 * // ├────┤
 * // │ 42 │
 * // └────┘
 * // (1 row)
 */
export function formatTable(result: QueryResult): string {
  if (result.columns.length === 0) return `${result.command}\n`;
  const head = result.columns.map((c) => ({ content: escapeControls(c.name), hAlign: 'center' as const }));
  const body = result.rows.map((row) =>
    result.columns.map((_, i) => {
      const value = row[i];
      const numeric = typeof value === 'number' || typeof value === 'bigint';
      return { content: escapeControls(cellText(value, 'NULL')), hAlign: numeric ? ('right' as const) : ('left' as const) };
    }),
  );
  const footer = `\n${rowCountFooter(result.rows.length)}\n`;
  if (body.length <= TABLE_CHUNK_ROWS) return `${drawTable(head, body)}${footer}`;
  // In pieces of the widths the whole table needs (cli-table3's own: the widest cell and one space each side), joined where their borders meet.
  const colWidths = head.map((h) => stringWidth(h.content) + 2);
  for (const row of body) row.forEach((cell, i) => (colWidths[i] = Math.max(colWidths[i]!, stringWidth(cell.content) + 2)));
  const pieces: string[] = [];
  for (let start = 0; start < body.length; start += TABLE_CHUNK_ROWS) {
    const lines = drawTable(start === 0 ? head : undefined, body.slice(start, start + TABLE_CHUNK_ROWS), colWidths).split('\n');
    const last = start + TABLE_CHUNK_ROWS >= body.length;
    pieces.push(lines.slice(start === 0 ? 0 : 1, last ? lines.length : -1).join('\n'));
  }
  return `${pieces.join('\n')}${footer}`;
}

/**
 * Rows {@link formatTable} hands cli-table3 at a time: its layout takes time quadratic in
 * the rows (a minute for 100,000), and it spreads them as call arguments (a stack overflow
 * past about 120,000).
 */
const TABLE_CHUNK_ROWS = 500;

type TableCell = { readonly content: string; readonly hAlign: 'left' | 'center' | 'right' };

/** One cli-table3 box: with `head`, its header row and rule; with `colWidths`, columns of those widths. */
function drawTable(head: readonly TableCell[] | undefined, rows: readonly (readonly TableCell[])[], colWidths?: readonly number[]): string {
  const table = new Table({
    // cli-table3 renders header cells like body cells, so they take cell options too; its
    // typings only declare strings.
    ...(head ? { head: head as unknown as string[] } : {}),
    ...(colWidths ? { colWidths: [...colWidths] } : {}),
    style: { head: [], border: [], compact: true },
  });
  for (const row of rows) table.push(row as TableCell[]);
  return table.toString();
}

/** Quotes one CSV field when RFC 4180 requires it (and the empty string, to tell it from NULL). */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = cellText(value, '');
  return text === '' || /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Formats a result as RFC 4180 CSV with a header line and CRLF line ends. NULL is an empty
 * field, the empty string `""`; nested values are compact JSON. Returns `''` for a statement
 * without result columns.
 *
 * @example
 * formatCsv({ command: 'SELECT', columns: [{ name: 'a', type: 'VARCHAR' }], rows: [['x,y'], [null]] })
 * // 'a\r\n"x,y"\r\n\r\n'
 */
export function formatCsv(result: QueryResult): string {
  if (result.columns.length === 0) return '';
  const lines = [result.columns.map((c) => csvField(c.name)).join(',')];
  for (const row of result.rows) lines.push(result.columns.map((_, i) => csvField(row[i])).join(','));
  return lines.map((l) => `${l}\r\n`).join('');
}

/**
 * Object keys for the columns of a result: the column names, with a repeated name made
 * unique by a `_1`, `_2`, ... suffix (as DuckDB names duplicate columns of a table).
 */
export function uniqueKeys(names: readonly string[]): string[] {
  const used = new Set<string>();
  return names.map((name) => {
    let key = name;
    for (let n = 1; used.has(key); n++) key = `${name}_${n}`;
    used.add(key);
    return key;
  });
}

/**
 * Formats a result as one JSON array of row objects on one line, ending with a newline.
 * Values follow {@link toJsonValue}. Returns `''` for a statement without result columns.
 *
 * @example
 * formatJson({ command: 'SELECT', columns: [{ name: 'n', type: 'BIGINT' }], rows: [[1n]] })
 * // '[{"n":1}]\n'
 */
export function formatJson(result: QueryResult): string {
  if (result.columns.length === 0) return '';
  const keys = uniqueKeys(result.columns.map((c) => c.name));
  const rows = result.rows.map((row) => {
    const obj: Record<string, unknown> = {};
    keys.forEach((k, i) => {
      obj[k] = toJsonValue(row[i]);
    });
    return obj;
  });
  return `${JSON.stringify(rows)}\n`;
}

/** Display width of the widest line of `text` (wide characters count two columns). */
export function displayWidth(text: string): number {
  let widest = 0;
  for (const line of text.split('\n')) widest = Math.max(widest, stringWidth(line));
  return widest;
}

/** The text of a cell in `line` and expanded output: as in `table`, control characters escaped. */
const shownCell = (value: unknown): string => escapeControls(cellText(value, 'NULL'));

/**
 * Formats a result as the DuckDB shell's `.mode line`: per row, one `name = value` line per
 * column, names right-aligned, rows separated by an empty line. A statement without result
 * columns prints its command tag.
 *
 * @example
 * formatLine({ command: 'SELECT', columns: [{ name: 'id', type: 'INTEGER' }, { name: 'name', type: 'VARCHAR' }], rows: [[1, 'a']] })
 * // '  id = 1\nname = a\n'
 */
export function formatLine(result: QueryResult): string {
  if (result.columns.length === 0) return `${result.command}\n`;
  const names = result.columns.map((c) => escapeControls(c.name));
  const width = Math.max(...names.map(stringWidth));
  return result.rows
    .map((row) => names.map((name, i) => `${' '.repeat(width - stringWidth(name))}${name} = ${shownCell(row[i])}\n`).join(''))
    .join('\n');
}

/**
 * Formats a result as psql's expanded display (`\x`): per row a `-[ RECORD n ]` header line,
 * then one `name | value` line per column. `(0 rows)` when there are none; a statement without
 * result columns prints its command tag.
 *
 * @example
 * formatExpanded({ command: 'SELECT', columns: [{ name: 'id', type: 'INTEGER' }], rows: [[1]] })
 * // '-[ RECORD 1 ]\nid | 1\n'
 */
export function formatExpanded(result: QueryResult): string {
  if (result.columns.length === 0) return `${result.command}\n`;
  if (result.rows.length === 0) return `${rowCountFooter(0)}\n`;
  const names = result.columns.map((c) => escapeControls(c.name));
  const nameWidth = Math.max(...names.map(stringWidth));
  let out = '';
  result.rows.forEach((row, r) => {
    const lines = names.map((name, i) => `${name}${' '.repeat(nameWidth - stringWidth(name))} | ${shownCell(row[i]).replace(/\n/g, `\n${' '.repeat(nameWidth)} | `)}`);
    const header = `-[ RECORD ${r + 1} ]`;
    const width = Math.max(...lines.map(displayWidth));
    out += `${header}${'-'.repeat(Math.max(0, width - header.length))}\n${lines.join('\n')}\n`;
  });
  return out;
}

/** psql's `\x` settings: always, never, or when a table is wider than the screen. */
export const EXPANDED_MODES = ['on', 'off', 'auto'] as const;

/** One of {@link EXPANDED_MODES}. */
export type ExpandedMode = (typeof EXPANDED_MODES)[number];

/** How a {@link ResultPrinter} lays out `table` output. */
export interface TableLayout {
  /** Expanded display; default `off`. */
  readonly expanded?: ExpandedMode;
  /** The screen width that `auto` compares a table with. */
  readonly width?: number;
}

/**
 * Formats one statement's result in `format`. When several results are printed one after
 * another, the CLI separates `table` and `csv` results with an empty line.
 */
export function formatResult(result: QueryResult, format: OutputFormat): string {
  switch (format) {
    case 'table':
      return formatTable(result);
    case 'csv':
      return formatCsv(result);
    case 'json':
      return formatJson(result);
    case 'line':
      return formatLine(result);
  }
}

/**
 * Writes results one after another in a format, separating consecutive `table` and `csv`
 * outputs with an empty line (JSON needs no separator: one array per line). Holds no state
 * but whether something was written before.
 */
export class ResultPrinter {
  private printed = false;

  /** @param write where the text goes (e.g. `(s) => process.stdout.write(s)`). */
  constructor(
    private readonly write: (text: string) => void,
    /** The output format. */
    readonly format: OutputFormat = 'table',
    /** Expanded display of `table` output. */
    readonly layout: TableLayout = {},
  ) {}

  /** The text of one result: `table` output expanded when the layout asks for it. */
  private text(result: QueryResult): string {
    if (this.format !== 'table' || result.columns.length === 0) return formatResult(result, this.format);
    const { expanded = 'off', width } = this.layout;
    if (expanded === 'on') return formatExpanded(result);
    const table = formatTable(result);
    return expanded === 'auto' && width !== undefined && displayWidth(table) > width ? formatExpanded(result) : table;
  }

  /** Prints one statement's result. */
  print(result: QueryResult): void {
    const text = this.text(result);
    if (text === '') return;
    if (this.printed && this.format !== 'json') this.write('\n');
    this.write(text);
    this.printed = true;
  }
}
