/**
 * Which queries of `CREATE MATERIALIZED TABLE ... AS` can be refreshed incrementally
 * (REFRESH_MODE = CONTINUOUS): one ML_PREDICT over one keyed table, read whole
 * (`TABLE src`), with projections and filters on the call's output and nothing else:
 *
 *   SELECT <columns and row-wise expressions> FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(...)) [[AS] alias] [WHERE <condition>]
 *
 * Each result row then depends on one source row alone, so a changed source row changes
 * only its own result row. Pure: tokens in, a shape or a reason out.
 */
import { positionAt, type SourcePosition } from '../errors.js';
import type { CreateMaterializedTableStatement, Identifier, MlCall } from '../sql/ast.js';
import { isSymbol, isWord, tokenize, type Token } from '../sql/lexer.js';
import { bindPredict, type PredictBinding } from '../sql/ml-call.js';

/** An incremental query: its one call, bound, and what surrounds it. */
export interface IncrementalShape {
  readonly call: MlCall;
  readonly binding: PredictBinding;
  /** The source table as written (`TABLE src`). */
  readonly source: readonly Identifier[];
  /** Whether an alias follows the call (else the relation put in its place needs one). */
  readonly aliased: boolean;
  /** The projection's items: their output name and whether they copy a column unchanged (`k`, `p.k`, `k AS k`) or are a star. */
  readonly items: readonly ProjectionItem[];
  /**
   * The names the query mentions around the call (projection and WHERE), in lower case: the
   * columns of the call's rows it may read are among them; `all` when it may read the whole
   * row (`*`, `p.*`, DuckDB's `COLUMNS(...)`, the alias alone as a row value).
   */
  readonly reads: ReadonlySet<string> | 'all';
}

/** One item of the SELECT list. */
export interface ProjectionItem {
  /** `*` or `alias.*`. */
  readonly star: boolean;
  /** The bare column it copies (`k`, `p.k`), if it is one; folded as identifiers are. */
  readonly column?: string;
  /** The name of the result column, when the item names one. */
  readonly name?: string;
}

/** Why a query is not incremental, and where. */
export interface NotIncremental {
  readonly reason: string;
  readonly position: SourcePosition;
}

/** Aggregate functions whose use in the projection merges rows (DuckDB's and Postgres's common ones). */
const AGGREGATES = new Set([
  'count', 'sum', 'avg', 'min', 'max', 'string_agg', 'array_agg', 'list', 'bool_and', 'bool_or', 'every', 'stddev', 'stddev_pop', 'stddev_samp',
  'variance', 'var_pop', 'var_samp', 'median', 'mode', 'first', 'last', 'any_value', 'arg_max', 'arg_min', 'json_agg', 'jsonb_agg', 'json_object_agg',
  'jsonb_object_agg', 'percentile_cont', 'percentile_disc', 'histogram', 'corr', 'covar_pop', 'covar_samp', 'bit_and', 'bit_or', 'product', 'xmlagg',
]);
/** Words that, at the top level of the query after the call, make it more than a filter. */
const CLAUSES = ['group', 'having', 'order', 'limit', 'offset', 'union', 'intersect', 'except', 'window', 'qualify', 'fetch', 'join', 'natural', 'cross', 'using', 'returning'];

/**
 * The shape of an incremental query, or why it is not one. A subquery anywhere after the
 * call (`WHERE id IN (SELECT ...)`) reads other rows and is not incremental.
 */
export function incrementalShape(statement: CreateMaterializedTableStatement, text: string): IncrementalShape | NotIncremental {
  const { asQuery } = statement;
  const at = (offset: number): SourcePosition => positionAt(text, offset);
  const calls = asQuery.calls;
  if (calls.length !== 1) return { reason: `the query has ${calls.length} ML calls; an incremental query has exactly one ML_PREDICT`, position: at(asQuery.span.start) };
  const call = calls[0]!;
  if (call.function !== 'ML_PREDICT') return { reason: 'ML_EVALUATE aggregates its input; only ML_PREDICT can be refreshed incrementally', position: at(call.nameSpan.start) };
  const binding = bindPredict(call, text);
  if (binding.input.kind !== 'table') return { reason: 'the input of ML_PREDICT is a subquery; an incremental query reads one table (TABLE name)', position: at(binding.input.span.start) };
  const tokens = tokenize(text).filter((t) => t.span.start >= asQuery.span.start && t.span.end <= asQuery.span.end);
  const callStart = tokens.findIndex((t) => t.span.start === call.span.start);
  const callEnd = tokens.findIndex((t) => t.span.end === call.span.end);
  if (!isWord(tokens[0], 'select')) return { reason: 'the query is not a plain SELECT', position: at(asQuery.span.start) };
  if (isWord(tokens[1], 'distinct')) return { reason: 'SELECT DISTINCT merges rows', position: at(tokens[1]!.span.start) };
  if (callStart < 2 || !isWord(tokens[callStart - 1], 'from')) return { reason: 'ML_PREDICT must be the only item of the FROM clause', position: at(call.span.start) };
  const from = callStart - 1;
  // The projection: between SELECT and FROM, no aggregate, window or subquery.
  const projection = tokens.slice(1, from);
  for (const [i, t] of projection.entries()) {
    if (isWord(t, 'over') || isWord(t, 'select') || (t.kind === 'identifier' && AGGREGATES.has(t.value) && isSymbol(projection[i + 1], '('))) {
      return { reason: `"${t.text}" in the projection combines rows; an incremental query computes each row from its source row alone`, position: at(t.span.start) };
    }
  }
  // After the call: an optional alias, then nothing or WHERE with a row-wise condition.
  let i = callEnd + 1;
  let aliased = false;
  if (isWord(tokens[i], 'as')) i++;
  const alias = tokens[i];
  if (alias && (alias.kind === 'quoted-identifier' || (alias.kind === 'identifier' && !isWord(alias, 'where') && !CLAUSES.includes(alias.value)))) {
    aliased = true;
    i++;
  }
  if (i < tokens.length && !isWord(tokens[i], 'where')) return { reason: `"${tokens[i]!.text}" after ML_PREDICT; an incremental query only filters (WHERE) the call's rows`, position: at(tokens[i]!.span.start) };
  let depth = 0;
  for (const t of tokens.slice(i)) {
    if (isSymbol(t, '(')) depth++;
    else if (isSymbol(t, ')')) depth--;
    else if (isWord(t, 'select') || isWord(t, 'over')) return { reason: `"${t.text}" in the WHERE clause reads other rows; an incremental query filters each row by its own values`, position: at(t.span.start) };
    else if (depth === 0 && t.kind === 'identifier' && CLAUSES.includes(t.value)) return { reason: `"${t.text}" after ML_PREDICT; an incremental query only filters (WHERE) the call's rows`, position: at(t.span.start) };
  }
  const outside = [...projection, ...tokens.slice(i)];
  return { call, binding, source: binding.input.name, aliased, items: projectionItems(projection), reads: namesRead(outside, aliased ? alias!.value : undefined) };
}

/**
 * The lower-case names among `tokens` (the query around the call, without its alias), or
 * `all` when they may read every column of the call's rows. Conservative: every identifier
 * counts (function names and key words too); a `*` counts as a star unless it follows an
 * operand (`price * 2`).
 */
function namesRead(tokens: readonly Token[], alias: string | undefined): ReadonlySet<string> | 'all' {
  const names = new Set<string>();
  for (const [i, t] of tokens.entries()) {
    const before = tokens[i - 1];
    const next = tokens[i + 1];
    if (isSymbol(t, '*')) {
      const operand = before !== undefined && (before.kind === 'number' || before.kind === 'string' || before.kind === 'quoted-identifier' || isSymbol(before, ')') || isSymbol(before, ']') || (before.kind === 'identifier' && !['select', 'distinct', 'all'].includes(before.value)));
      if (!operand) return 'all';
    }
    if (t.kind !== 'identifier' && t.kind !== 'quoted-identifier') continue;
    const name = t.value.toLowerCase();
    if (name === 'columns' && isSymbol(next, '(')) return 'all';
    if (alias !== undefined && name === alias.toLowerCase() && !isSymbol(next, '.')) return 'all';
    names.add(name);
  }
  return names;
}

/** Splits the SELECT list on top-level commas and reads each item's name and whether it copies a column. */
function projectionItems(tokens: readonly Token[]): ProjectionItem[] {
  const items: Token[][] = [[]];
  let depth = 0;
  for (const t of tokens) {
    if (isSymbol(t, '(') || isSymbol(t, '[')) depth++;
    else if (isSymbol(t, ')') || isSymbol(t, ']')) depth--;
    if (depth === 0 && isSymbol(t, ',')) items.push([]);
    else items[items.length - 1]!.push(t);
  }
  const isName = (t: Token | undefined) => t !== undefined && (t.kind === 'identifier' || t.kind === 'quoted-identifier');
  return items.map((item) => {
    let body = item;
    let name: string | undefined;
    const last = item[item.length - 1];
    if (item.length >= 3 && isWord(item[item.length - 2], 'as') && isName(last)) {
      name = last!.value;
      body = item.slice(0, -2);
    } else if (item.length >= 2 && isName(last) && isName(item[item.length - 2])) {
      name = last!.value;
      body = item.slice(0, -1);
    }
    if ((body.length === 1 && isSymbol(body[0], '*')) || (body.length === 3 && isSymbol(body[2], '*') && isSymbol(body[1], '.'))) return { star: true };
    const column = body.length === 1 && isName(body[0]) ? body[0]!.value : body.length === 3 && isName(body[0]) && isSymbol(body[1], '.') && isName(body[2]) ? body[2]!.value : undefined;
    const result = name ?? column;
    return { star: false, ...(column !== undefined ? { column } : {}), ...(result !== undefined ? { name: result } : {}) };
  });
}

/** Whether `column` (a source key column) reaches the result unchanged under its own name. */
export function carriesColumn(items: readonly ProjectionItem[], column: string): boolean {
  return items.some((item) => item.star || (item.column === column && item.name === column));
}
