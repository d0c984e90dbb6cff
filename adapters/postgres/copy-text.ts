/**
 * Values in COPY text format (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2):
 * tab-separated fields, one row a line, `\N` for NULL, backslash escapes for backslash,
 * newline, carriage return and tab.
 */

/** Integer column types: a JS number appended to one is rounded, as DuckDB's appender does. */
const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint', 'int2', 'int4', 'int8']);

/** Whether a host type (`format_type` spelling) is an integer type. */
export function isIntegerType(type: string): boolean {
  return INTEGER_TYPES.has(type.toLowerCase());
}

/**
 * The text of one field of `COPY ... TO STDOUT` output: the backslash sequences COPY TO
 * writes (`\\`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v`) decoded. NULL (`\N`) is the caller's
 * to check first.
 *
 * @example
 * unescapeCopy('a\\tb') // 'a\tb'
 */
export function unescapeCopy(field: string): string {
  if (!field.includes('\\')) return field;
  return field.replace(/\\(.)/gs, (_m, ch: string) => COPY_ESCAPES[ch] ?? ch);
}

const COPY_ESCAPES: Readonly<Record<string, string>> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/**
 * One value in COPY text format: `\N` for NULL, backslash escapes for `\`, newline, carriage
 * return and tab; arrays as array literals, objects as JSON, bytes as `\x` hex.
 *
 * @example
 * copyField('a\tb', false) // 'a\\tb'
 */
export function copyField(value: unknown, integer = false): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'number') return numberText(integer ? Math.round(value) : value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `\\\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}`;
  if (Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView))) return escapeCopy(arrayLiteral(value as ArrayLike<unknown>, integer));
  if (typeof value === 'string') return escapeCopy(value);
  return escapeCopy(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
}

/** A number as a COPY field (rounded for an integer column). */
export function copyNumber(value: number, integer: boolean): string {
  return numberText(integer ? Math.round(value) : value);
}

function numberText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return String(value);
}

function escapeCopy(text: string): string {
  return /[\\\n\r\t]/.test(text) ? text.replace(/[\\\n\r\t]/g, (ch) => (ch === '\\' ? '\\\\' : ch === '\n' ? '\\n' : ch === '\r' ? '\\r' : '\\t')) : text;
}

/** An array literal, `{1,2,NULL}` / `{"a b","c\"d"}` (https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO). */
function arrayLiteral(values: ArrayLike<unknown>, integer: boolean): string {
  const parts: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) parts.push('NULL');
    else if (typeof v === 'number') parts.push(numberText(integer ? Math.round(v) : v));
    else if (typeof v === 'bigint') parts.push(v.toString());
    else if (typeof v === 'boolean') parts.push(v ? 't' : 'f');
    else if (Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof Uint8Array))) parts.push(arrayLiteral(v as ArrayLike<unknown>, integer));
    else {
      const text = v instanceof Date ? v.toISOString() : v instanceof Uint8Array ? `\\x${Buffer.from(v).toString('hex')}` : typeof v === 'string' ? v : JSON.stringify(v);
      parts.push(`"${text.replace(/[\\"]/g, (ch) => `\\${ch}`)}"`);
    }
  }
  return `{${parts.join(',')}}`;
}
