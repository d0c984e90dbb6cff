/**
 * Writing SQL: identifier and string quoting, model names, and canonical text of the
 * model statements (SHOW CREATE MODEL, round-trip tests).
 */
import { createHash } from 'node:crypto';
import type { ColumnDef, Identifier, ModelName, OptionEntry, Statement } from './ast.js';
import { formatTypeAsWritten } from './types.js';

/**
 * Words that are quoted when used as names: Postgres' reserved key words
 * (https://www.postgresql.org/docs/current/sql-keywords-appendix.html) and the words of
 * the model grammar that could be misread in a name position.
 */
const RESERVED: ReadonlySet<string> = new Set([
  'all', 'analyse', 'analyze', 'and', 'any', 'array', 'as', 'asc', 'asymmetric', 'both', 'case', 'cast', 'check',
  'collate', 'column', 'constraint', 'create', 'current_catalog', 'current_date', 'current_role', 'current_time',
  'current_timestamp', 'current_user', 'default', 'deferrable', 'desc', 'distinct', 'do', 'else', 'end', 'except',
  'false', 'fetch', 'for', 'foreign', 'from', 'grant', 'group', 'having', 'in', 'initially', 'intersect', 'into',
  'lateral', 'leading', 'limit', 'localtime', 'localtimestamp', 'not', 'null', 'offset', 'on', 'only', 'or', 'order',
  'placing', 'primary', 'references', 'returning', 'select', 'session_user', 'some', 'symmetric', 'system_user',
  'table', 'then', 'to', 'trailing', 'true', 'union', 'unique', 'user', 'using', 'variadic', 'when', 'where',
  'window', 'with',
  // model grammar
  'model', 'models', 'if', 'exists', 'extended', 'descriptor', 'map', 'input', 'output', 'comment', 'like',
  'temporary', 'temp', 'replace', 'versions', 'usage', 'set', 'reset', 'rename', 'row', 'struct',
]);

const BARE = /^[a-z_][a-z0-9_$]*$/;

/**
 * Quotes an identifier for Postgres and DuckDB: bare when it is a lower-case plain name
 * that is not a reserved word, else `"double quoted"` with `"` doubled.
 *
 * @example quoteIdentifier('sales') // sales
 * @example quoteIdentifier('Sales') // "Sales"
 */
export function quoteIdentifier(value: string): string {
  return BARE.test(value) && !RESERVED.has(value) ? value : doubleQuote(value);
}

/**
 * Writes an identifier node so that it parses back to the same node: quoted ones always
 * quoted, plain ones bare (their value is already folded).
 */
export function formatIdentifier(id: Identifier): string {
  if (id.quoted || !BARE.test(id.value)) return doubleQuote(id.value);
  return id.value;
}

/** `"name"` with embedded quotes doubled: always quoted, so case and keywords survive on every host. */
export function doubleQuote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Quotes a string literal: `'...'` with `'` doubled (standard-conforming strings). */
export function quoteString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * A number as SQL literal text (`1.5`, `-2`, `1e+21`): a minus sign before a constant is folded
 * into it by the host's parser, no operator is looked up. NaN and infinities are refused.
 */
export function numberText(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`internal error: a generated number is ${value}`);
  return String(value);
}

/** Longest identifier Postgres keeps (NAMEDATALEN - 1 bytes); longer names are truncated. */
const MAX_NAME_BYTES = 63;

/**
 * The host function of a trained model: `ml_predict_<model>`, or, when that is longer than
 * 63 bytes (Postgres would truncate it, and two long model names would share one function),
 * a prefix of it cut at a character boundary and `_` + the first 8 hex digits of the
 * SHA-256 of the model name: deterministic, within 63 bytes, and distinct for distinct names
 * (but for a 2^-32 chance).
 *
 * @example modelFunctionName('price') // 'ml_predict_price'
 */
export function modelFunctionName(model: string): string {
  const name = `ml_predict_${model}`;
  if (Buffer.byteLength(name) <= MAX_NAME_BYTES) return name;
  const suffix = `_${createHash('sha256').update(model).digest('hex').slice(0, 8)}`;
  let prefix = name;
  while (Buffer.byteLength(prefix) + suffix.length > MAX_NAME_BYTES) prefix = Array.from(prefix).slice(0, -1).join('');
  return prefix + suffix;
}

/** Writes a model name node (`schema.model$2`), keeping each part's quoting. */
export function formatModelName(name: ModelName): string {
  const text = name.parts.map(formatIdentifier).join('.');
  return name.version === undefined ? text : `${text}$${name.version}`;
}

/** Writes a qualified name from plain strings (`["s", "M"]` → `s."M"`) with an optional `$version`. */
export function formatQualifiedName(parts: readonly string[], version?: number): string {
  const text = parts.map(quoteIdentifier).join('.');
  return version === undefined ? text : `${text}$${version}`;
}

/** A column of {@link CreateModelParts}: the type is already formatted text. */
export interface CreateModelColumn {
  readonly name: string;
  readonly type: string;
  readonly comment?: string;
}

/** What {@link formatCreateModel} writes. `name` is already formatted (see {@link formatQualifiedName}). */
export interface CreateModelParts {
  readonly name: string;
  readonly temporary?: boolean;
  readonly orReplace?: boolean;
  readonly ifNotExists?: boolean;
  readonly input?: readonly CreateModelColumn[];
  readonly output?: readonly CreateModelColumn[];
  readonly comment?: string;
  /** Must not be empty: `WITH ()` does not parse. */
  readonly options: readonly (readonly [string, string])[];
  readonly asQuery?: string;
}

function formatColumns(keyword: string, columns: readonly CreateModelColumn[]): string {
  const lines = columns.map((c) => `  ${quoteIdentifier(c.name)} ${c.type}${c.comment === undefined ? '' : ` COMMENT ${quoteString(c.comment)}`}`);
  return `${keyword} (\n${lines.join(',\n')}\n)`;
}

/**
 * Pretty multi-line CREATE MODEL, which {@link parseScript} reads back to the same content.
 *
 * @example
 * CREATE MODEL sentiment
 * INPUT (
 *   text STRING
 * )
 * OUTPUT (
 *   label STRING
 * )
 * WITH (
 *   'provider' = 'openai'
 * )
 */
export function formatCreateModel(parts: CreateModelParts): string {
  const head = ['CREATE', parts.orReplace ? 'OR REPLACE' : '', parts.temporary ? 'TEMPORARY' : '', 'MODEL', parts.ifNotExists ? 'IF NOT EXISTS' : '', parts.name];
  const lines = [head.filter((w) => w !== '').join(' ')];
  if (parts.input) lines.push(formatColumns('INPUT', parts.input));
  if (parts.output) lines.push(formatColumns('OUTPUT', parts.output));
  if (parts.comment !== undefined) lines.push(`COMMENT ${quoteString(parts.comment)}`);
  lines.push(`WITH (\n${parts.options.map(([k, v]) => `  ${quoteString(k)} = ${quoteString(v)}`).join(',\n')}\n)`);
  if (parts.asQuery !== undefined) lines.push(`AS ${parts.asQuery}`);
  return lines.join('\n');
}

function formatColumnDefs(keyword: string, columns: readonly ColumnDef[]): string {
  const lines = columns.map((c) => `  ${formatIdentifier(c.name)} ${formatTypeAsWritten(c.type)}${c.comment === undefined ? '' : ` COMMENT ${quoteString(c.comment)}`}`);
  return `${keyword} (\n${lines.join(',\n')}\n)`;
}

function formatOptions(options: readonly OptionEntry[]): string {
  return `(${options.map((o) => `${quoteString(o.key)} = ${quoteString(o.value)}`).join(', ')})`;
}

/**
 * Canonical text of a statement: model statements are written out in upper-case key
 * words with names and types as written, so that parsing the result gives equal nodes;
 * `query` and `host` statements are returned as their source text.
 */
export function formatStatement(stmt: Statement): string {
  switch (stmt.kind) {
    case 'create-model': {
      const head = ['CREATE', stmt.orReplace ? 'OR REPLACE' : '', stmt.temporary ? 'TEMPORARY' : '', 'MODEL', stmt.ifNotExists ? 'IF NOT EXISTS' : '', formatModelName(stmt.name)];
      const lines = [head.filter((w) => w !== '').join(' ')];
      if (stmt.input) lines.push(formatColumnDefs('INPUT', stmt.input));
      if (stmt.output) lines.push(formatColumnDefs('OUTPUT', stmt.output));
      if (stmt.comment !== undefined) lines.push(`COMMENT ${quoteString(stmt.comment)}`);
      lines.push(`WITH ${formatOptions(stmt.options)}`);
      if (stmt.asQuery) lines.push(`AS ${stmt.asQuery.text}`);
      return lines.join('\n');
    }
    case 'alter-model': {
      const head = `ALTER MODEL ${stmt.ifExists ? 'IF EXISTS ' : ''}${formatModelName(stmt.name)}`;
      const action = stmt.action;
      if (action.kind === 'set') return `${head} SET ${formatOptions(action.options)}`;
      if (action.kind === 'reset') return `${head} RESET (${action.keys.map((k) => quoteString(k.key)).join(', ')})`;
      return `${head} RENAME TO ${formatModelName(action.newName)}`;
    }
    case 'drop-model':
      return `DROP ${stmt.temporary ? 'TEMPORARY ' : ''}MODEL ${stmt.ifExists ? 'IF EXISTS ' : ''}${formatModelName(stmt.name)}`;
    case 'show-models': {
      let text = 'SHOW MODELS';
      if (stmt.schema) text += ` FROM ${stmt.schema.map(formatIdentifier).join('.')}`;
      if (stmt.like) text += ` ${stmt.like.not ? 'NOT ' : ''}LIKE ${quoteString(stmt.like.pattern)}`;
      return text;
    }
    case 'show-create-model':
      return `SHOW CREATE MODEL ${formatModelName(stmt.name)}`;
    case 'describe-model':
      return `DESCRIBE MODEL ${stmt.extended ? 'EXTENDED ' : ''}${formatModelName(stmt.name)}`;
    case 'show-model-versions':
      return `SHOW MODEL VERSIONS ${formatModelName(stmt.name)}`;
    case 'grant-model':
      return `GRANT USAGE ON MODEL ${formatModelName(stmt.name)} TO ${formatIdentifier(stmt.role)}`;
    case 'revoke-model':
      return `REVOKE USAGE ON MODEL ${formatModelName(stmt.name)} FROM ${formatIdentifier(stmt.role)}`;
    case 'query':
    case 'host':
      return stmt.text;
  }
}
