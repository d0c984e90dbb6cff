/**
 * Postgres values in text format → JS, by type OID, the way modelsql hands results to
 * users on both hosts: int8 → bigint, numeric → number, float4/float8 → number, json/jsonb →
 * objects, arrays → arrays, bytea → Buffer, date/timestamp → Date (read as UTC, as DuckDB's
 * JS values are), timestamptz → Date. Shared by every `PgConnection` (the `pg.Client` one and
 * the proxy's own).
 *
 * Text formats: https://www.postgresql.org/docs/current/datatype.html and array literals
 * https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO
 */
import pgTypes from 'pg-types';

/** Parses the text form of one value (never called with NULL). */
export type TextParser = (text: string) => unknown;

/** Type OIDs modelsql treats specially (https://www.postgresql.org/docs/current/catalog-pg-type.html). */
export const PgOid = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
  boolArray: 1000,
  byteaArray: 1001,
  int2Array: 1005,
  int4Array: 1007,
  int8Array: 1016,
  textArray: 1009,
  varcharArray: 1015,
  float4Array: 1021,
  float8Array: 1022,
  timestampArray: 1115,
  dateArray: 1182,
  timestamptzArray: 1185,
  numericArray: 1231,
  jsonbArray: 3807,
} as const;

/**
 * `format_type(oid, NULL)` of the built-in types, so that describing a query needs no
 * catalog lookup for them. Other OIDs are looked up by the host and cached.
 */
export const PG_TYPE_NAMES: ReadonlyMap<number, string> = new Map<number, string>([
  [16, 'boolean'], [17, 'bytea'], [18, '"char"'], [19, 'name'], [20, 'bigint'], [21, 'smallint'], [23, 'integer'], [25, 'text'], [26, 'oid'],
  [114, 'json'], [142, 'xml'], [700, 'real'], [701, 'double precision'], [1042, 'character'], [1043, 'character varying'],
  [1082, 'date'], [1083, 'time without time zone'], [1114, 'timestamp without time zone'], [1184, 'timestamp with time zone'],
  [1186, 'interval'], [1266, 'time with time zone'], [1700, 'numeric'], [2950, 'uuid'], [3802, 'jsonb'], [705, 'text'],
  [1000, 'boolean[]'], [1001, 'bytea[]'], [1005, 'smallint[]'], [1007, 'integer[]'], [1009, 'text[]'], [1014, 'character[]'],
  [1015, 'character varying[]'], [1016, 'bigint[]'], [1021, 'real[]'], [1022, 'double precision[]'], [1115, 'timestamp without time zone[]'],
  [1182, 'date[]'], [1183, 'time without time zone[]'], [1185, 'timestamp with time zone[]'], [1187, 'interval[]'], [1231, 'numeric[]'],
  [2951, 'uuid[]'], [199, 'json[]'], [3807, 'jsonb[]'],
]);

const timestamptz = pgTypes.getTypeParser(PgOid.timestamptz, 'text') as TextParser;

/** A timestamp without time zone, read as UTC (DuckDB's JS TIMESTAMP values are UTC). */
function parseTimestampUtc(text: string): unknown {
  if (!/^\d/.test(text)) return timestamptz(text); // infinity / -infinity
  return text.endsWith(' BC') ? timestamptz(`${text.slice(0, -3)}+00 BC`) : timestamptz(`${text}+00`);
}

/** A date as UTC midnight. */
function parseDateUtc(text: string): unknown {
  return /^\d{4,}-\d\d-\d\d$/.test(text) ? new Date(`${text}T00:00:00Z`) : parseTimestampUtc(`${text} 00:00:00`);
}

/** Splits a one-dimensional or nested array literal and parses its elements. */
function arrayOf(element: TextParser): TextParser {
  return (text) => parseArrayLiteral(text, element);
}

const OVERRIDES: ReadonlyMap<number, TextParser> = new Map<number, TextParser>([
  [PgOid.int8, (t) => BigInt(t)],
  [PgOid.numeric, (t) => Number(t)],
  [PgOid.timestamp, parseTimestampUtc],
  [PgOid.date, parseDateUtc],
  [PgOid.int8Array, arrayOf((t) => BigInt(t))],
  [PgOid.numericArray, arrayOf((t) => Number(t))],
  [PgOid.timestampArray, arrayOf(parseTimestampUtc)],
  [PgOid.dateArray, arrayOf(parseDateUtc)],
]);

/**
 * The parser for a type OID's text format: modelsql's choices above, else pg-types'
 * default (strings for types it does not know).
 *
 * @example
 * textParser(20)('42') // 42n
 */
export function textParser(oid: number): TextParser {
  return OVERRIDES.get(oid) ?? (pgTypes.getTypeParser(oid, 'text') as TextParser);
}

/**
 * One value in text format → JS (`null` stays `null`).
 *
 * @example
 * parseTextValue(1022, '{1.5,NULL}') // [1.5, null]
 */
export function parseTextValue(oid: number, text: string | null): unknown {
  return text === null ? null : textParser(oid)(text);
}

/**
 * A `types` object for `pg.Client` (https://node-postgres.com/features/queries#types) that
 * parses with {@link textParser}.
 */
export const pgTypeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): TextParser {
    return format === 'binary' ? (pgTypes.getTypeParser(oid, 'binary') as TextParser) : textParser(oid);
  },
} as const;

/**
 * Parses an array literal (`{1,2,NULL}`, `{{1,2},{3,4}}`, `{"a b","c\"d"}`) into nested JS
 * arrays, elements through `element`; an unquoted `NULL` is `null`. A leading dimension
 * decoration (`[0:1]={...}`) is skipped.
 */
export function parseArrayLiteral(text: string, element: TextParser): unknown[] {
  let i = text.startsWith('[') ? text.indexOf('=') + 1 : 0;
  const parse = (): unknown[] => {
    const out: unknown[] = [];
    i++; // '{'
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      const ch = text[i];
      if (ch === '{') out.push(parse());
      else if (ch === '"') {
        let value = '';
        i++;
        while (text[i] !== '"') {
          if (text[i] === '\\') i++;
          value += text[i++];
        }
        i++;
        out.push(element(value));
      } else {
        let end = i;
        while (text[end] !== ',' && text[end] !== '}') end++;
        const raw = text.slice(i, end).trim();
        i = end;
        out.push(raw.toUpperCase() === 'NULL' ? null : element(raw));
      }
      if (text[i] === ',') i++;
      else {
        i++; // '}'
        return out;
      }
    }
  };
  return parse();
}
