/**
 * Bind parameters of a model statement prepared through the extended protocol. The core
 * runs model statements from SQL text, so the proxy splices each `$n` as a quoted literal
 * (an untyped `'...'` literal, which Postgres types from its context exactly as it types
 * an untyped parameter; `CAST('...' AS type)` when the client declared the parameter's
 * type in Parse). The lexer finds the `$n` tokens: strings, comments, quoted identifiers
 * and dollar-quoted bodies cannot fool it.
 *
 * Binary parameter formats: https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-FORMAT-CODES
 */
import { ModelSqlError } from '../../../core/errors.js';
import { tokenize } from '../../../core/sql/lexer.js';
import { ProtocolViolation } from './protocol-errors.js';

/** A `$n` occurrence: its 0-based span in the text and its 1-based number. */
export interface ParameterRef {
  readonly start: number;
  readonly end: number;
  readonly index: number;
}

/**
 * The `$n` parameters of `text`, in order. A `$n` glued to a quoted identifier (`"M"$2`,
 * a model version) is not a parameter.
 */
export function findParameters(text: string): ParameterRef[] {
  const tokens = tokenize(text);
  const out: ParameterRef[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'parameter' || !/^\$\d+$/.test(t.text)) continue;
    const prev = tokens[i - 1];
    if (prev && prev.kind === 'quoted-identifier' && prev.span.end === t.span.start) continue;
    out.push({ start: t.span.start, end: t.span.end, index: Number(t.text.slice(1)) });
  }
  return out;
}

/** Number of parameters a statement takes (the highest `$n`). */
export function parameterCount(text: string): number {
  return findParameters(text).reduce((m, p) => Math.max(m, p.index), 0);
}

/** A SQL string literal that means the same whatever `standard_conforming_strings` says. */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new ProtocolViolation('invalid byte sequence: parameter contains a NUL byte');
  return value.includes('\\') ? `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'` : `'${value.replace(/'/g, "''")}'`;
}

/** Byte lengths of the fixed-size binary types the proxy reads. */
const BINARY_SIZES: ReadonlyMap<number, number> = new Map([
  [16, 1], // bool
  [21, 2], // int2
  [23, 4], // int4
  [20, 8], // int8
  [700, 4], // float4
  [701, 8], // float8
  [2950, 16], // uuid
]);

/**
 * The text of binary-format parameter number `index` (1-based) of type `oid`, or undefined
 * when the type is not supported.
 *
 * @throws ModelSqlError 08P01 for a value shorter than its type, 22P03 for a longer one or a
 *   malformed numeric (Postgres's errors for the same Bind).
 */
export function binaryParamToText(oid: number, bytes: Buffer, index: number): string | undefined {
  const size = BINARY_SIZES.get(oid);
  if (size !== undefined && bytes.length !== size) throw badBinary(bytes.length < size, index);
  switch (oid) {
    case 16:
      return bytes[0] ? 'true' : 'false';
    case 21:
      return String(bytes.readInt16BE(0));
    case 23:
      return String(bytes.readInt32BE(0));
    case 20:
      return String(bytes.readBigInt64BE(0));
    case 700:
      return String(bytes.readFloatBE(0));
    case 701:
      return String(bytes.readDoubleBE(0));
    case 2950: {
      const hex = bytes.toString('hex');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
    case 1700:
      return numericText(bytes, index);
    case 25:
    case 1043:
    case 19:
    case 1042:
      return bytes.toString('utf8');
    case 17:
      return `\\x${bytes.toString('hex')}`;
    default:
      return undefined;
  }
}

/** Postgres's error for a binary parameter of the wrong length. */
function badBinary(short: boolean, index: number): ModelSqlError {
  return short ? new ModelSqlError('08P01', 'insufficient data left in message') : new ModelSqlError('22P03', `incorrect binary data format in bind parameter ${index}`);
}

/** Signs of the binary numeric format. */
const NUMERIC_SIGNS: ReadonlyMap<number, string> = new Map([
  [0x0000, ''],
  [0x4000, '-'],
]);
const NUMERIC_SPECIALS: ReadonlyMap<number, string> = new Map([
  [0xc000, 'NaN'],
  [0xd000, 'Infinity'],
  [0xf000, '-Infinity'],
]);

/**
 * The text of a binary numeric (JDBC's `setBigDecimal`): digit count, weight, sign and display
 * scale, then base-10,000 digits, the first of weight `weight`.
 *
 * @see https://github.com/postgres/postgres/blob/master/src/backend/utils/adt/numeric.c (numeric_recv)
 */
function numericText(bytes: Buffer, index: number): string {
  if (bytes.length < 8) throw badBinary(true, index);
  const count = bytes.readUInt16BE(0);
  const weight = bytes.readInt16BE(2);
  const sign = bytes.readUInt16BE(4);
  const scale = bytes.readUInt16BE(6);
  if (bytes.length !== 8 + 2 * count) throw badBinary(bytes.length < 8 + 2 * count, index);
  const special = NUMERIC_SPECIALS.get(sign);
  if (special !== undefined) return special;
  const prefix = NUMERIC_SIGNS.get(sign);
  if (prefix === undefined) throw new ModelSqlError('22P03', 'invalid sign in external "numeric" value');
  const digit = (i: number): number => {
    if (i < 0 || i >= count) return 0;
    const d = bytes.readUInt16BE(8 + 2 * i);
    if (d > 9999) throw new ModelSqlError('22P03', 'invalid digit in external "numeric" value');
    return d;
  };
  let whole = '';
  for (let i = 0; i <= weight; i++) whole += i === 0 ? String(digit(i)) : String(digit(i)).padStart(4, '0');
  let fraction = '';
  for (let i = weight + 1; fraction.length < scale; i++) fraction += String(digit(i)).padStart(4, '0');
  for (let i = 0; i < count; i++) digit(i);
  return `${prefix}${whole || '0'}${scale > 0 ? `.${fraction.slice(0, scale)}` : ''}`;
}

/** Maps positions in the substituted text back to the original. */
export interface SubstitutedText {
  readonly text: string;
  /** Original offset of an offset in `text`. */
  originalOffset(offset: number): number;
}

/**
 * Replaces every `$n` of `text` with the n-th value's literal (`null` → `NULL`), cast to
 * `typeNames[n-1]` when given.
 *
 * @throws Error when a `$n` has no value.
 * @example substituteParameters("SELECT * FROM t WHERE id = $1", ['7']).text // SELECT * FROM t WHERE id = '7'
 */
export function substituteParameters(text: string, values: readonly (string | null)[], typeNames: readonly (string | undefined)[] = []): SubstitutedText {
  const refs = findParameters(text);
  if (refs.length === 0) return { text, originalOffset: (o) => o };
  let out = '';
  let last = 0;
  const map: { readonly newStart: number; readonly newEnd: number; readonly oldStart: number; readonly oldEnd: number }[] = [];
  for (const ref of refs) {
    if (ref.index < 1 || ref.index > values.length) throw new RangeError(`there is no parameter $${ref.index}`);
    const value = values[ref.index - 1]!;
    const type = typeNames[ref.index - 1];
    let literal = value === null ? 'NULL' : quoteLiteral(value);
    if (type) literal = `CAST(${literal} AS ${type})`;
    out += text.slice(last, ref.start);
    const newStart = out.length;
    out += literal;
    map.push({ newStart, newEnd: out.length, oldStart: ref.start, oldEnd: ref.end });
    last = ref.end;
  }
  out += text.slice(last);
  return {
    text: out,
    originalOffset(offset) {
      let delta = 0;
      for (const m of map) {
        if (offset < m.newStart) break;
        if (offset < m.newEnd) return m.oldStart;
        delta = m.oldEnd - m.newEnd;
      }
      return offset + delta;
    },
  };
}
