/**
 * The pure text steps of the rewrite: where each ML call's relation goes, and what query
 * feeds a call. No I/O here; the planner (plan-calls.ts) calls these.
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
  return spliceCallsMapped(text, region, calls, relations).text;
}

/** A spliced text, and where its offsets come from in the text it was spliced from. */
export interface SplicedText {
  readonly text: string;
  /**
   * The offset in the original text of an offset in `text`: the same character for text
   * that was copied, the call's start for an offset inside a call's relation.
   */
  originalOffset(offset: number): number;
}

/**
 * {@link spliceCalls}, with the map back to the original text (a host error's position in
 * the rewritten statement is shown at the token the user wrote).
 *
 * @example
 * const spliced = spliceCallsMapped(text, span, [call], ['(SELECT ...)']);
 * spliced.originalOffset(spliced.text.indexOf('WHERE')) === text.indexOf('WHERE') // true
 */
export function spliceCallsMapped(text: string, region: Span, calls: readonly MlCall[], relations: readonly string[]): SplicedText {
  let out = '';
  let position = region.start;
  // Copied segments: out offsets [outStart, outStart + length) come from [from, from + length).
  const copied: { readonly outStart: number; readonly from: number; readonly length: number; readonly call?: number }[] = [];
  const copy = (end: number, call?: number): void => {
    copied.push({ outStart: out.length, from: position, length: end - position, call });
    out += text.slice(position, end);
  };
  calls.forEach((call, i) => {
    copy(call.span.start, call.span.start);
    out += relations[i]! + callAlias(call, i);
    position = call.span.end;
  });
  copy(region.end);
  return {
    text: out,
    originalOffset(offset) {
      for (let i = 0; i < copied.length; i++) {
        const segment = copied[i]!;
        if (offset < segment.outStart + segment.length) return segment.from + Math.max(0, offset - segment.outStart);
        // Inside the relation that follows this segment: the call it replaced.
        if (segment.call !== undefined && offset < copied[i + 1]!.outStart) return segment.call;
      }
      return region.end;
    },
  };
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
