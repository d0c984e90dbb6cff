/**
 * The pure text steps of the rewrite: where each ML call's relation goes, and what query
 * feeds a call. No I/O here; `ml-rewrite.ts` runs the stages and calls these.
 */
import type { HostColumn, SqlDialect } from '../host.js';
import type { MlArgValue, MlCall, Span } from '../sql/ast.js';

/**
 * The alias a call's relation gets when the user wrote none (`MlCall.aliased`): Postgres
 * before 16 refuses a subquery in FROM without one
 * (https://www.postgresql.org/docs/16/release-16.html, "allow subqueries in FROM to omit
 * aliases"). The user cannot name it, so any unique name does; `index` is the call's place
 * in its region.
 */
export function callAlias(call: MlCall, index: number): string {
  return call.aliased ? '' : ` AS __modelsql_r${index}`;
}

/**
 * The text of `region` with each of `calls` (inside it, in text order) replaced by the
 * relation at the same index of `relations`, followed by an alias where the call had none.
 *
 * @example
 * spliceCalls('SELECT * FROM ML_PREDICT(...) p', { start: 0, end: 31 }, [call], ['(SELECT ...)'])
 * // 'SELECT * FROM (SELECT ...) p'
 */
export function spliceCalls(text: string, region: Span, calls: readonly MlCall[], relations: readonly string[]): string {
  let out = '';
  let position = region.start;
  calls.forEach((call, i) => {
    out += text.slice(position, call.span.start) + relations[i]! + callAlias(call, i);
    position = call.span.end;
  });
  return out + text.slice(position, region.end);
}

/**
 * The query that feeds a call: `TABLE t` reads the table; `TABLE (subquery)` runs the
 * subquery (its own calls already spliced into `subquerySql`); a subquery that is nothing
 * but one ML call, as in `TABLE(ML_PREDICT(...))`, selects from that call's relation.
 */
export function inputQuerySql(input: Extract<MlArgValue, { kind: 'table' | 'subquery' }>, text: string, dialect: SqlDialect, subquerySql?: string): string {
  if (input.kind === 'table') return `SELECT * FROM ${input.name.map((id) => dialect.quoteIdentifier(id.value)).join('.')}`;
  const only = input.calls.length === 1 ? input.calls[0]! : undefined;
  const isOneCall = only !== undefined && text.slice(input.span.start, input.span.end).trim() === text.slice(only.span.start, only.span.end);
  return isOneCall ? `SELECT * FROM ${subquerySql!.trim()}` : subquerySql!;
}

/**
 * The relation a call has when only its shape is wanted (Describe, plain EXPLAIN): every
 * column of its input query, then each OUTPUT column as a NULL of its host type. The host
 * can describe and plan it; running it calls no model.
 *
 * @example
 * describedRelation(dialect, 'SELECT * FROM t', [{ name: 'score', type: 'double precision' }])
 * // '(SELECT described_input.*, CAST(NULL AS double precision) AS "score" FROM (SELECT * FROM t\n) AS described_input)'
 */
export function describedRelation(dialect: SqlDialect, query: string, outputs: readonly HostColumn[]): string {
  const columns = ['described_input.*', ...outputs.map((c) => `CAST(NULL AS ${c.type}) AS ${dialect.quoteIdentifier(c.name)}`)];
  return `(SELECT ${columns.join(', ')} FROM (${query}\n) AS described_input)`;
}
