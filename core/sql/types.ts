/**
 * Data types: the type grammar (Flink and host spellings), canonical Flink text,
 * categories, and the assignability rule of SPEC §1.2.1.
 *
 * Nodes keep the type *as written* (`INTEGER`, `FLOAT[]`, `STRUCT(a INT)`);
 * {@link formatType} gives the canonical Flink text (`INT`, `ARRAY<FLOAT>`, `ROW<a INT>`).
 */
import type { DataType, Identifier, Span } from './ast.js';
import { tokenize, TokenCursor } from './lexer.js';
import type { Token } from './lexer.js';
import { formatIdentifier, quoteIdentifier } from './format.js';

/** Broad family of a type, for compatibility checks and for choosing a batch column kind. */
export type TypeCategory = 'integer' | 'float' | 'decimal' | 'boolean' | 'string' | 'bytes' | 'temporal' | 'array' | 'map' | 'row' | 'other';

/** Multi-word type names: the first word, then the word sequences that may follow it. */
const MULTI_WORD: Readonly<Record<string, readonly (readonly string[])[]>> = {
  double: [['precision']],
  character: [['varying']],
  char: [['varying']],
  bit: [['varying']],
  national: [['character', 'varying'], ['character'], ['char', 'varying'], ['char']],
};

/** Zone suffixes allowed after TIMESTAMP / TIME (and their precision). */
const ZONE_SUFFIXES: readonly (readonly string[])[] = [
  ['with', 'local', 'time', 'zone'],
  ['with', 'time', 'zone'],
  ['without', 'time', 'zone'],
];

function identifierOf(token: Token): Identifier {
  return Object.freeze({ kind: 'identifier', value: token.value, quoted: token.kind === 'quoted-identifier', span: token.span });
}

/** Consumes the longest of `sequences` that follows, returning it. */
function acceptWords(cursor: TokenCursor, sequences: readonly (readonly string[])[]): readonly string[] | undefined {
  for (const words of sequences) {
    if (words.every((w, k) => cursor.isWord(w, k))) {
      cursor.index += words.length;
      return words;
    }
  }
  return undefined;
}

/** Parses `(n [, n ...])` numeric parameters. */
function parseParams(cursor: TokenCursor): number[] {
  const params: number[] = [];
  if (!cursor.acceptSymbol('(')) return params;
  do {
    const token = cursor.next();
    if (token.kind !== 'number' || !/^\d+$/.test(token.text)) throw cursor.error(token);
    params.push(Number(token.text));
  } while (cursor.acceptSymbol(','));
  cursor.expectSymbol(')');
  return params;
}

/** Consumes a closing `>`, splitting `>>` / `>>>` tokens of nested brackets. */
function expectGreater(cursor: TokenCursor): void {
  if (cursor.pendingGreater > 0) {
    cursor.pendingGreater--;
    return;
  }
  const token = cursor.peek();
  if (token && token.kind === 'operator' && /^>+$/.test(token.text)) {
    cursor.index++;
    cursor.pendingGreater = token.text.length - 1;
    return;
  }
  throw cursor.error(token);
}

function atPendingGreater(cursor: TokenCursor): boolean {
  return cursor.pendingGreater > 0;
}

/** `name T, name T` fields of ROW<...>, ROW(...), STRUCT(...). */
function parseFields(cursor: TokenCursor, close: 'angle' | 'paren'): { readonly name: Identifier; readonly type: DataType }[] {
  const fields: { readonly name: Identifier; readonly type: DataType }[] = [];
  if (close === 'angle' && (cursor.isSymbol('>') || atPendingGreater(cursor))) return fields;
  do {
    const token = cursor.next();
    if (token.kind !== 'identifier' && token.kind !== 'quoted-identifier') throw cursor.error(token);
    fields.push(Object.freeze({ name: identifierOf(token), type: parseTypeAt(cursor) }));
  } while (!atPendingGreater(cursor) && cursor.acceptSymbol(','));
  return fields;
}

/** Parses type arguments between `<` `>` (ARRAY<T>, MAP<K, V>, MULTISET<T>). */
function parseAngleElements(cursor: TokenCursor): DataType[] {
  const elements: DataType[] = [parseTypeAt(cursor)];
  while (!atPendingGreater(cursor) && cursor.acceptSymbol(',')) elements.push(parseTypeAt(cursor));
  expectGreater(cursor);
  return elements;
}

interface BaseType {
  name: string;
  params: number[];
  elements?: DataType[];
  fields?: { readonly name: Identifier; readonly type: DataType }[];
}

/** The base type, before `[]` suffixes and NOT NULL. */
function parseBaseType(cursor: TokenCursor): BaseType {
  const first = cursor.next();
  if (first.kind !== 'identifier') throw cursor.error(first);
  const word = first.value;
  const upper = word.toUpperCase();
  if ((upper === 'ARRAY' || upper === 'MULTISET') && cursor.acceptSymbol('<')) return { name: upper, params: [], elements: parseAngleElements(cursor) };
  if (upper === 'MAP' && cursor.acceptSymbol('<')) return { name: 'MAP', params: [], elements: parseAngleElements(cursor) };
  if (upper === 'MAP' && cursor.acceptSymbol('(')) {
    const elements = [parseTypeAt(cursor)];
    cursor.expectSymbol(',');
    elements.push(parseTypeAt(cursor));
    cursor.expectSymbol(')');
    return { name: 'MAP', params: [], elements };
  }
  if (upper === 'ROW' && cursor.acceptSymbol('<')) {
    const fields = parseFields(cursor, 'angle');
    expectGreater(cursor);
    return { name: 'ROW', params: [], fields };
  }
  if ((upper === 'ROW' || upper === 'STRUCT') && cursor.acceptSymbol('(')) {
    const fields = parseFields(cursor, 'paren');
    cursor.expectSymbol(')');
    return { name: upper, params: [], fields };
  }
  if ((upper === 'ENUM' || upper === 'UNION') && cursor.isSymbol('(')) {
    skipParenthesized(cursor);
    return { name: upper, params: [] };
  }
  const words = [upper];
  const more = MULTI_WORD[word] ? acceptWords(cursor, MULTI_WORD[word]!) : undefined;
  if (more) words.push(...more.map((w) => w.toUpperCase()));
  const params = parseParams(cursor);
  if (upper === 'TIMESTAMP' || upper === 'TIME') {
    const zone = acceptWords(cursor, ZONE_SUFFIXES);
    if (zone) words.push(...zone.map((w) => w.toUpperCase()));
  }
  return { name: words.join(' '), params };
}

/** Skips a balanced `( ... )` (contents of ENUM('a','b') / UNION(...) are not modelled). */
function skipParenthesized(cursor: TokenCursor): void {
  let depth = 0;
  do {
    const token = cursor.next();
    if (token.text === '(' && token.kind === 'punctuation') depth++;
    else if (token.text === ')' && token.kind === 'punctuation') depth--;
  } while (depth > 0);
}

/**
 * Parses one data type at the cursor: a base type, any `[]` / `[n]` suffixes (each makes
 * an `ARRAY` whose `params` hold the fixed length, if any), then `NOT NULL` or `NULL`.
 * Used by the statement parser for INPUT/OUTPUT columns.
 */
export function parseTypeAt(cursor: TokenCursor): DataType {
  const startToken = cursor.peek();
  if (startToken === undefined) throw cursor.error();
  let type: DataType = freezeType(parseBaseType(cursor), false, cursor.spanFrom(startToken));
  while (!atPendingGreater(cursor) && cursor.acceptSymbol('[')) {
    const params: number[] = [];
    const size = cursor.peek();
    if (size && size.kind === 'number') {
      if (!/^\d+$/.test(size.text)) throw cursor.error(size);
      params.push(Number(size.text));
      cursor.index++;
    }
    cursor.expectSymbol(']');
    type = freezeType({ name: 'ARRAY', params, elements: [type] }, false, cursor.spanFrom(startToken));
  }
  if (!atPendingGreater(cursor)) {
    if (cursor.isWord('not') && cursor.isWord('null', 1)) {
      cursor.index += 2;
      type = Object.freeze({ ...type, notNull: true, span: cursor.spanFrom(startToken) });
    } else cursor.acceptWord('null');
  }
  return type;
}

function freezeType(base: BaseType, notNull: boolean, span: Span): DataType {
  const type: DataType = {
    kind: 'type',
    name: base.name,
    params: Object.freeze([...base.params]),
    ...(base.elements ? { elements: Object.freeze([...base.elements]) } : {}),
    ...(base.fields ? { fields: Object.freeze([...base.fields]) } : {}),
    notNull,
    span,
  };
  return Object.freeze(type);
}

/**
 * Parses a type string: Flink (`ARRAY<FLOAT>`, `ROW<a INT>`), DuckDB as DESCRIBE prints it
 * (`FLOAT[]`, `DOUBLE[3]`, `STRUCT(a INTEGER)`, `MAP(VARCHAR, INTEGER)`, `TIMESTAMP WITH
 * TIME ZONE`, `HUGEINT`) and Postgres as format_type prints it (`double precision`,
 * `character varying(10)`, `integer[]`, `numeric(10,2)`). Spans are offsets into `text`.
 *
 * @throws SqlSyntaxError when `text` is not one type.
 * @example parseDataType('DECIMAL(18,3)')  // { name: 'DECIMAL', params: [18, 3], ... }
 */
export function parseDataType(text: string): DataType {
  const tokens = tokenize(text);
  const cursor = new TokenCursor(text, tokens, 0, tokens.length);
  const type = parseTypeAt(cursor);
  if (cursor.pendingGreater > 0) throw cursor.error(cursor.previous());
  cursor.expectEnd();
  return type;
}

/** Canonical Flink base names of host and Flink spellings (without parameters). */
const CANONICAL: Readonly<Record<string, string>> = {
  INT: 'INT', INTEGER: 'INT', INT4: 'INT', SIGNED: 'INT', USMALLINT: 'INT',
  BIGINT: 'BIGINT', INT8: 'BIGINT', LONG: 'BIGINT', UINTEGER: 'BIGINT',
  SMALLINT: 'SMALLINT', INT2: 'SMALLINT', SHORT: 'SMALLINT', UTINYINT: 'SMALLINT',
  TINYINT: 'TINYINT', INT1: 'TINYINT',
  FLOAT: 'FLOAT', REAL: 'FLOAT', FLOAT4: 'FLOAT',
  DOUBLE: 'DOUBLE', FLOAT8: 'DOUBLE', 'DOUBLE PRECISION': 'DOUBLE',
  DECIMAL: 'DECIMAL', NUMERIC: 'DECIMAL', DEC: 'DECIMAL',
  BOOLEAN: 'BOOLEAN', BOOL: 'BOOLEAN', LOGICAL: 'BOOLEAN',
  STRING: 'STRING', TEXT: 'STRING', VARCHAR: 'VARCHAR', 'CHARACTER VARYING': 'VARCHAR', 'CHAR VARYING': 'VARCHAR', NVARCHAR: 'VARCHAR',
  'NATIONAL CHARACTER VARYING': 'VARCHAR', 'NATIONAL CHAR VARYING': 'VARCHAR', BPCHAR: 'CHAR',
  CHAR: 'CHAR', CHARACTER: 'CHAR', NCHAR: 'CHAR', 'NATIONAL CHARACTER': 'CHAR', 'NATIONAL CHAR': 'CHAR',
  BYTES: 'BYTES', BLOB: 'BYTES', BYTEA: 'BYTES', BINARY: 'BINARY', VARBINARY: 'VARBINARY',
  DATE: 'DATE', TIME: 'TIME', 'TIME WITHOUT TIME ZONE': 'TIME',
  TIMESTAMP: 'TIMESTAMP', 'TIMESTAMP WITHOUT TIME ZONE': 'TIMESTAMP', DATETIME: 'TIMESTAMP',
  'TIMESTAMP WITH TIME ZONE': 'TIMESTAMP_LTZ', 'TIMESTAMP WITH LOCAL TIME ZONE': 'TIMESTAMP_LTZ', TIMESTAMPTZ: 'TIMESTAMP_LTZ', TIMESTAMP_LTZ: 'TIMESTAMP_LTZ',
  'TIME WITH TIME ZONE': 'TIME WITH TIME ZONE', TIMETZ: 'TIME WITH TIME ZONE',
  INTERVAL: 'INTERVAL',
  JSON: 'JSON', JSONB: 'JSONB',
};

/** DuckDB names with a fixed precision in Flink terms. */
const FIXED: Readonly<Record<string, string>> = {
  HUGEINT: 'DECIMAL(38, 0)', UHUGEINT: 'DECIMAL(38, 0)', UBIGINT: 'DECIMAL(20, 0)', VARINT: 'DECIMAL(38, 0)',
  TIMESTAMP_S: 'TIMESTAMP(0)', TIMESTAMP_MS: 'TIMESTAMP(3)', TIMESTAMP_US: 'TIMESTAMP(6)', TIMESTAMP_NS: 'TIMESTAMP(9)',
};

/** Flink's STRING is VARCHAR(2147483647), BYTES is VARBINARY(2147483647). */
const FLINK_MAX_LENGTH = 2147483647;

function formatFieldName(name: Identifier): string {
  return quoteIdentifier(name.value);
}

function canonicalBase(t: DataType): string {
  if (FIXED[t.name]) return FIXED[t.name]!;
  const name = CANONICAL[t.name] ?? t.name;
  const p = t.params;
  switch (name) {
    case 'FLOAT':
      return t.name === 'FLOAT' && p.length > 0 && p[0]! > 24 ? 'DOUBLE' : 'FLOAT';
    case 'STRING':
      return 'STRING';
    case 'VARCHAR':
      return p.length > 0 && p[0] !== FLINK_MAX_LENGTH ? `VARCHAR(${p[0]})` : 'STRING';
    case 'DECIMAL':
      return p.length === 0 ? 'DECIMAL' : `DECIMAL(${p[0]}, ${p[1] ?? 0})`;
    case 'BYTES':
      return 'BYTES';
    case 'BINARY':
      return p.length > 0 ? `BINARY(${p[0]})` : 'BYTES';
    case 'VARBINARY':
      return p.length > 0 && p[0] !== FLINK_MAX_LENGTH ? `VARBINARY(${p[0]})` : 'BYTES';
    case 'INT':
    case 'BIGINT':
    case 'SMALLINT':
    case 'TINYINT':
    case 'BOOLEAN':
    case 'DATE':
      return name;
    default:
      return p.length > 0 ? `${name}(${p.join(', ')})` : name;
  }
}

/**
 * Canonical Flink type text, the form stored in the catalog (`ModelColumn.type`).
 *
 * - INTEGER/INT4 → INT, INT8 → BIGINT, INT2 → SMALLINT; REAL/FLOAT4 → FLOAT;
 *   FLOAT8/DOUBLE PRECISION → DOUBLE; NUMERIC → DECIMAL(p, s) (a bare DECIMAL stays bare,
 *   which Flink reads as DECIMAL(10, 0)); BOOL → BOOLEAN.
 * - VARCHAR/TEXT/CHARACTER VARYING without a length (or with Flink's maximum,
 *   2147483647) → STRING; with one, VARCHAR(n). Likewise VARBINARY → BYTES.
 * - BLOB/BYTEA → BYTES. DuckDB's unsigned and huge integers map to the smallest Flink type
 *   holding them (UINTEGER → BIGINT, UBIGINT → DECIMAL(20, 0), HUGEINT → DECIMAL(38, 0)).
 * - TIMESTAMP WITH TIME ZONE / TIMESTAMPTZ → TIMESTAMP_LTZ (Flink's instant type);
 *   TIMESTAMP_MS/_NS/_S → TIMESTAMP(3)/(9)/(0).
 * - `T[]` / `T[n]` → ARRAY<T> (a fixed length is dropped), STRUCT(a T) → ROW<a T>,
 *   MAP(K, V) → MAP<K, V>; `NOT NULL` is appended.
 * - Any other name is kept upper-cased with its parameters (UUID, JSON, INTERVAL...).
 */
export function formatType(t: DataType): string {
  let text: string;
  if (t.name === 'ARRAY' || t.name === 'MULTISET') text = `${t.name}<${formatType(t.elements![0]!)}>`;
  else if (t.name === 'MAP' && t.elements) text = `MAP<${t.elements.map(formatType).join(', ')}>`;
  else if (t.fields) text = `ROW<${t.fields.map((f) => `${formatFieldName(f.name)} ${formatType(f.type)}`).join(', ')}>`;
  else text = canonicalBase(t);
  return t.notNull ? `${text} NOT NULL` : text;
}

/**
 * Writes a type node back in the spelling it was written in (`INTEGER` stays `INTEGER`,
 * `STRUCT(...)` stays STRUCT, `DOUBLE[3]` stays sized), so that re-parsing gives an equal
 * node. `T[]` comes back as `ARRAY<T>`, `MAP(K, V)` as `MAP<K, V>` (the same node).
 */
export function formatTypeAsWritten(t: DataType): string {
  let text: string;
  if (t.name === 'ARRAY' && t.params.length > 0) text = `${formatTypeAsWritten(t.elements![0]!)}[${t.params[0]}]`;
  else if (t.elements) text = `${t.name}<${t.elements.map(formatTypeAsWritten).join(', ')}>`;
  else if (t.fields) {
    const fields = t.fields.map((f) => `${formatIdentifier(f.name)} ${formatTypeAsWritten(f.type)}`).join(', ');
    text = t.name === 'ROW' ? `ROW<${fields}>` : `${t.name}(${fields})`;
  } else {
    const params = t.params.length > 0 ? `(${t.params.join(', ')})` : '';
    const space = t.name.indexOf(' ');
    text = params && space > 0 && /^TIME(STAMP)? /.test(t.name) ? `${t.name.slice(0, space)}${params}${t.name.slice(space)}` : `${t.name}${params}`;
  }
  return t.notNull ? `${text} NOT NULL` : text;
}

const CATEGORY_OF: Readonly<Record<string, TypeCategory>> = {
  INT: 'integer', BIGINT: 'integer', SMALLINT: 'integer', TINYINT: 'integer', HUGEINT: 'integer', UHUGEINT: 'integer',
  UBIGINT: 'integer', UINTEGER: 'integer', USMALLINT: 'integer', UTINYINT: 'integer', VARINT: 'integer',
  FLOAT: 'float', DOUBLE: 'float', DECIMAL: 'decimal', BOOLEAN: 'boolean',
  STRING: 'string', VARCHAR: 'string', CHAR: 'string', JSON: 'string', JSONB: 'string',
  BYTES: 'bytes', BINARY: 'bytes', VARBINARY: 'bytes',
  DATE: 'temporal', TIME: 'temporal', TIMESTAMP: 'temporal', TIMESTAMP_LTZ: 'temporal', 'TIME WITH TIME ZONE': 'temporal',
  TIMESTAMP_S: 'temporal', TIMESTAMP_MS: 'temporal', TIMESTAMP_US: 'temporal', TIMESTAMP_NS: 'temporal', INTERVAL: 'temporal',
  ARRAY: 'array', MULTISET: 'array', MAP: 'map', ROW: 'row', STRUCT: 'row',
};

/** The broad family of a type (see {@link TypeCategory}); unknown names are `other`. */
export function typeCategory(t: DataType): TypeCategory {
  return CATEGORY_OF[CANONICAL[t.name] ?? t.name] ?? 'other';
}

const INTEGER_RANK: Readonly<Record<string, number>> = { TINYINT: 1, SMALLINT: 2, INT: 3, BIGINT: 4 };

/** Canonical name and parameters, with Flink's defaults filled in. */
function shape(t: DataType): { name: string; params: readonly number[] } {
  const text = formatType({ ...t, notNull: false });
  const open = text.indexOf('(');
  if (open < 0 || text.includes('<')) {
    if (text === 'DECIMAL') return { name: 'DECIMAL', params: [10, 0] };
    if (text === 'TIMESTAMP' || text === 'TIMESTAMP_LTZ') return { name: text, params: [6] };
    return { name: text, params: [] };
  }
  const params = text.slice(open + 1, text.indexOf(')')).split(',').map((s) => Number(s.trim()));
  return { name: text.slice(0, open), params };
}

/**
 * True when a value of type `from` may feed a model column of type `to` (SPEC §1.2.1:
 * the same or a wider type; a narrowing is false). Rules:
 * - TINYINT → SMALLINT → INT → BIGINT; any integer → FLOAT, DOUBLE or DECIMAL;
 *   FLOAT → DOUBLE; DECIMAL → DOUBLE; DECIMAL(p,s) → DECIMAL(p',s') when neither the
 *   integer digits nor the scale shrink (a bare DECIMAL is Flink's DECIMAL(10, 0)).
 * - CHAR/VARCHAR/JSON → STRING; VARCHAR(n) or CHAR(n) → VARCHAR(m) when m ≥ n; BINARY/VARBINARY → BYTES.
 * - DATE → TIMESTAMP; TIMESTAMP(p) → TIMESTAMP(q) when q ≥ p (bare = 6).
 * - NOT NULL → nullable is fine; nullable → NOT NULL is a narrowing.
 * - ARRAY, MAP and ROW compare element-wise (ROW fields by position, names ignored).
 * - Anything else: the same canonical type.
 */
export function isAssignable(from: DataType, to: DataType): boolean {
  if (to.notNull && !from.notNull) return false;
  const fromCategory = typeCategory(from);
  const toCategory = typeCategory(to);
  if (fromCategory === 'array' || fromCategory === 'map') {
    return toCategory === fromCategory && from.elements!.length === to.elements?.length && from.elements!.every((e, i) => isAssignable(e, to.elements![i]!));
  }
  if (fromCategory === 'row') {
    return toCategory === 'row' && from.fields!.length === to.fields?.length && from.fields!.every((f, i) => isAssignable(f.type, to.fields![i]!.type));
  }
  const a = shape(from);
  const b = shape(to);
  if (a.name === b.name && a.params.join() === b.params.join()) return true;
  switch (toCategory) {
    case 'integer':
      return INTEGER_RANK[a.name] !== undefined && INTEGER_RANK[b.name] !== undefined && INTEGER_RANK[a.name]! <= INTEGER_RANK[b.name]!;
    case 'float':
      return fromCategory === 'integer' || (b.name === 'DOUBLE' && (a.name === 'FLOAT' || fromCategory === 'decimal'));
    case 'decimal':
      return fromCategory === 'integer' || (a.name === 'DECIMAL' && a.params[1]! <= b.params[1]! && a.params[0]! - a.params[1]! <= b.params[0]! - b.params[1]!);
    case 'string':
      if (b.name === 'STRING') return fromCategory === 'string';
      return b.name === 'VARCHAR' && (a.name === 'VARCHAR' || a.name === 'CHAR') && (a.params[0] ?? 1) <= b.params[0]!;
    case 'bytes':
      if (b.name === 'BYTES') return fromCategory === 'bytes';
      return b.name === 'VARBINARY' && (a.name === 'VARBINARY' || a.name === 'BINARY') && (a.params[0] ?? 1) <= b.params[0]!;
    case 'temporal':
      if (a.name === 'DATE') return b.name === 'TIMESTAMP';
      return a.name === b.name && (a.params[0] ?? 0) <= (b.params[0] ?? 0);
    default:
      return false;
  }
}
