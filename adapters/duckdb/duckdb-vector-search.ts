/**
 * VECTOR_SEARCH on DuckDB (core/host.ts `VectorDialect`): exact top-k with DuckDB's list and
 * array distance functions and its top-n `max_by(arg, val, n)` aggregate, which keeps k
 * rows per query vector instead of sorting every candidate (measured in
 * benchmarks/vector-search.ts: a sort per query, as `ORDER BY score LIMIT k` or a window,
 * is more than ten times slower).
 *
 * Functions: https://duckdb.org/docs/stable/sql/functions/list (`list_cosine_similarity`,
 * `list_inner_product`, `list_distance`), https://duckdb.org/docs/stable/sql/functions/array
 * (their `array_` forms for fixed-size arrays), https://duckdb.org/docs/stable/sql/functions/aggregates
 * (`max_by` with `n`).
 *
 * Ties are broken by the row's position in the searched relation (lower first): DuckDB
 * preserves insertion order, so a base table's `rowid` is that position; for views and
 * subqueries it is the row's number in a scan of them.
 */
import type { VectorDialect, VectorSearchSql } from '../../core/host.js';
import { doubleQuote, quoteString } from '../../core/sql/format.js';

const FUNCTIONS = {
  cosine: 'cosine_similarity',
  inner_product: 'inner_product',
  l2: 'distance',
} as const;

/** The DuckDB `VectorDialect`. */
export const duckdbVectors: VectorDialect = {
  dimensions(source, columns, index) {
    // DuckDB names the columns of a subquery apart (`id`, `id_1`): the name addresses the column.
    const c = doubleQuote(columns[index]!.name);
    // `list_count` counts the non-NULL elements (of arrays too). A `DOUBLE[]` holds one-dimensional lists only.
    return `SELECT min(len(${c})), max(len(${c})), bool_or(list_count(${c}) <> len(${c})), NULL FROM (${source}) AS __vs_dims WHERE ${c} IS NOT NULL`;
  },

  rowIdentityProbe(table) {
    return `SELECT rowid FROM ${table}`;
  },

  search(s: VectorSearchSql) {
    const column = doubleQuote(s.column.name);
    const fixed = /\[\d+\]$/.test(s.column.type.trim());
    const floating = /^(FLOAT|DOUBLE|REAL|FLOAT4|FLOAT8)\b/i.test(s.column.type.trim());
    // The query vector is cast to the column's type (no cast per searched row); integer vectors are compared as DOUBLE.
    const vectorType = floating ? s.column.type : fixed ? s.column.type.replace(/^[^[]+/, 'DOUBLE') : 'DOUBLE[]';
    const fn = `${fixed ? 'array' : 'list'}_${FUNCTIONS[s.metric]}`;
    // The distance functions fail on a NULL component, even on one in a row that a filter or a CASE left out (they
    // check the elements of a whole chunk): NULL components become NaN, which ranks nowhere. For the searched rows,
    // only when the column has such vectors (a lambda per row costs); for the query vector, always.
    const complete = (vector: string): string => `CAST(list_transform(${vector}, lambda __vs_x: coalesce(__vs_x, 'NaN')) AS ${vectorType})`;
    const searched = (row: string): string => {
      const vector = floating ? `${row}.${column}` : `CAST(${row}.${column} AS ${vectorType})`;
      return s.holes ? complete(vector) : vector;
    };
    const queryVector = complete(`CAST(__vs_q0 AS ${vectorType})`);
    const message = `${quoteString('VECTOR_SEARCH: the query vector has ')} || CAST(len(__vs_q0) AS VARCHAR) || ${quoteString(` dimensions, but the vectors of column "${s.column.name}" have ${s.dimension ?? 0}`)}`;
    const check = s.dimension === undefined ? '' : `WHEN len(__vs_q0) <> ${s.dimension} THEN error(${message}) `;
    // DuckDB's cosine of a zero vector is -1 (its NaN clamped), not "no direction": such vectors are left out by
    // their squared length, once per query vector and once per searched row (a filter DuckDB runs in the table scan).
    const squared = (vector: string): string => `${fixed ? 'array' : 'list'}_inner_product(${vector}, ${vector})`;
    const directed = (vector: string): string => `isfinite(${squared(vector)}) AND ${squared(vector)} > 0`;
    const zero = s.metric === 'cosine' ? `WHEN NOT (${directed(queryVector)}) THEN NULL ` : '';
    const query = `(SELECT CASE ${check}${zero}ELSE ${queryVector} END AS __vs_q FROM (SELECT (${s.query}) AS __vs_q0) AS __vs_q1) AS __vs_qv`;
    const rank = s.metric === 'l2' ? '-__vs_v.__vs_score' : '__vs_v.__vs_score';
    const order = `__vs_top.score ${s.metric === 'l2' ? 'ASC' : 'DESC'}, __vs_top.p`;
    const candidates = (row: string, position: string, carry: string): string =>
      `SELECT ${carry}${position} AS __vs_p, ${fn}(__vs_qv.__vs_q, ${searched(row)}) AS __vs_score FROM ${query}, ${s.table ?? `(${s.source})`} AS ${row} WHERE __vs_qv.__vs_q IS NOT NULL AND ${row}.${column} IS NOT NULL${s.metric === 'cosine' ? ` AND ${directed(searched(row))}` : ''}`;
    // A NaN score (NaN or infinite components) ranks nowhere: its ordering value is NULL, which max_by skips. As a
    // WHERE filter instead, DuckDB moves it into the join condition and computes every score twice.
    const best = (payload: string): string =>
      `SELECT unnest(max_by({${payload}'p': __vs_v.__vs_p, 'score': __vs_v.__vs_score}, CASE WHEN NOT isnan(__vs_v.__vs_score) THEN {'k': ${rank}, 'p': -__vs_v.__vs_p} END, ${s.topK})) AS __vs_top FROM (%CANDIDATES%) AS __vs_v`;
    if (s.table !== undefined) {
      // A base table: keep (rowid, score) per candidate, then fetch the k winning rows.
      const top = best('').replace('%CANDIDATES%', candidates('__vs_row', '__vs_row.rowid', ''));
      return `(SELECT __vs_s.*, CAST(__vs_t.__vs_top.score AS DOUBLE) AS score FROM (${top}) AS __vs_t JOIN ${s.table} AS __vs_s ON __vs_s.rowid = __vs_t.__vs_top.p ORDER BY ${order.replace(/__vs_top/g, '__vs_t.__vs_top')})`;
    }
    // A view or subquery: carry each candidate row along.
    const top = best(`'r': __vs_v.__vs_r, `).replace('%CANDIDATES%', candidates('__vs_row', 'row_number() OVER ()', '__vs_row AS __vs_r, '));
    return `(SELECT unnest(__vs_t.__vs_top.r), CAST(__vs_t.__vs_top.score AS DOUBLE) AS score FROM (${top}) AS __vs_t ORDER BY ${order.replace(/__vs_top/g, '__vs_t.__vs_top')})`;
  },
};
