/**
 * VECTOR_SEARCH on Postgres (core/host.ts `VectorDialect`): exact top-k in plain SQL over
 * `float8[]` (any numeric array column is cast to it): per candidate row, the two vectors
 * are unnested side by side and reduced with `sum` (https://www.postgresql.org/docs/current/functions-array.html,
 * `ROWS FROM (unnest(a), unnest(b))`, https://www.postgresql.org/docs/current/queries-table-expressions.html#QUERIES-TABLEFUNCTIONS), then `ORDER BY score LIMIT k`. pgvector is not used.
 *
 * As all SQL modelsql generates for Postgres, functions and operators are schema-qualified
 * (`pg_catalog.sum`, `OPERATOR(pg_catalog.*)`), so that the caller's `search_path` cannot
 * redirect them. Ties are broken by the searched relation's columns, in order, ascending: a
 * column of a type with no default ordering (json, xml, point, a user type; `ORDER BY` fails
 * on it with 42883) by its text form instead.
 * A vector with a NULL component (searched or query) has no score, so it ranks nowhere.
 * A query vector of another dimension fails with 22023 as on DuckDB, and a multidimensional
 * one (`float8[]` holds `{{1,2},{3,4}}` too; `unnest` and `cardinality` would flatten it)
 * with 2202E, as Postgres's own functions that take one-dimensional arrays only
 * (`width_bucket`); both raised from plain SQL by sql-raised-error.ts. Searched vectors of
 * several array dimensions are found by the `dimensions` query, before the search runs.
 *
 * The searched relation's columns are renamed by position (`AS __vs_row(__vs_c0, ...)`,
 * https://www.postgresql.org/docs/current/queries-table-expressions.html#QUERIES-TABLE-ALIASES)
 * and named back in the result: a subquery may repeat a name (`SELECT a.id, b.id ...`),
 * which Postgres answers but would not let the search address (42702).
 */
import type { HostColumn, VectorDialect, VectorSearchSql } from '../../core/host.js';
import { doubleQuote, quoteString } from '../../core/sql/format.js';
import { raiseInSql } from './sql-raised-error.js';

const op = (symbol: string): string => ` OPERATOR(pg_catalog.${symbol}) `;
const sum = (expression: string): string => `pg_catalog.sum(${expression})`;

/**
 * Built-in types with a default btree operator class, and arrays of them (`ORDER BY` takes
 * them as they are; https://www.postgresql.org/docs/current/btree-behavior.html). The
 * names are as `format_type` spells them, which is how the host describes columns.
 */
const ORDERED = /^(smallint|integer|bigint|real|double precision|numeric|money|text|character varying|character|"char"|name|citext|boolean|date|time|timestamp|interval|bytea|uuid|oid|jsonb|inet|cidr|macaddr|macaddr8|bit|bit varying|tsvector|pg_lsn)(\(.*\))?( with(out)? time zone)?(\[\])*$/;

/** The tie-breaking key of one column: the column, or its text where its type has no ordering. */
function tieKey(column: string, type: string): string {
  return ORDERED.test(type.trim().toLowerCase()) ? column : `CAST(${column} AS text)`;
}

/** The score of one candidate: `a` the query element, `b` the searched element. */
function score(metric: VectorSearchSql['metric']): string {
  const dot = sum(`__vs_u.a${op('*')}__vs_u.b`);
  if (metric === 'inner_product') return dot;
  if (metric === 'l2') return `pg_catalog.sqrt(${sum(`(__vs_u.a${op('-')}__vs_u.b)${op('*')}(__vs_u.a${op('-')}__vs_u.b)`)})`;
  const norms = `pg_catalog.sqrt(${sum(`__vs_u.a${op('*')}__vs_u.a`)})${op('*')}pg_catalog.sqrt(${sum(`__vs_u.b${op('*')}__vs_u.b`)})`;
  // A zero vector has no direction: NULL, so it never matches.
  return `CASE WHEN ${norms}${op('=')}CAST(0 AS float8) THEN NULL ELSE ${dot}${op('/')}(${norms}) END`;
}

/** `score`, NULL (ranks nowhere) when a component of the searched vector is NULL, which `sum` would skip (used when some vector has one). */
function complete(score: string): string {
  return `CASE WHEN pg_catalog.count(__vs_u.a${op('*')}__vs_u.b)${op('<>')}pg_catalog.count(*) THEN NULL ELSE ${score} END`;
}

/** The name of the searched relation's column at `index` once renamed by position. */
const positional = (index: number): string => `__vs_c${index}`;

/** `alias` with the column list that renames every column of the searched relation by position. */
function renamed(alias: string, columns: readonly HostColumn[]): string {
  return `${alias}(${columns.map((_, i) => positional(i)).join(', ')})`;
}

/** The Postgres `VectorDialect`. */
export const postgresVectors: VectorDialect = {
  dimensions(source, columns, index) {
    const c = `__vs_dims.${positional(index)}`;
    // Whether a vector has a NULL component: the search then checks each candidate for one
    // (`complete`), and costs nothing more where none has (array_position only over the
    // one-dimensional arrays: it refuses others, which the last column reports).
    const holes = `pg_catalog.bool_or(CASE WHEN pg_catalog.array_ndims(${c})${op('=')}1 THEN pg_catalog.array_position(${c}, NULL) IS NOT NULL END)`;
    return `SELECT pg_catalog.min(pg_catalog.cardinality(${c})), pg_catalog.max(pg_catalog.cardinality(${c})), ${holes}, pg_catalog.max(pg_catalog.array_ndims(${c})) FROM (${source}) AS ${renamed('__vs_dims', columns)} WHERE ${c} IS NOT NULL`;
  },

  search(s: VectorSearchSql) {
    const column = positional(s.columnIndex);
    const q0 = '__vs_q1.__vs_q0';
    const cardinality = `pg_catalog.cardinality(${q0})`;
    const ndims = `pg_catalog.array_ndims(${q0})`;
    const text = (value: string): string => `CAST(${value} AS text)`;
    const cat = (...parts: string[]): string => parts.join(op('||'));
    const flat = `WHEN ${ndims}${op('>')}1 THEN ${raiseInSql('2202E', cat(quoteString('VECTOR_SEARCH: the query vector is a '), text(ndims), quoteString(`-dimensional array; a vector is a one-dimensional array, as the vectors of column "${s.column.name}"`)))} `;
    const sized =
      s.dimension === undefined ? '' : `WHEN ${cardinality}${op('<>')}${s.dimension} THEN ${raiseInSql('22023', cat(quoteString('VECTOR_SEARCH: the query vector has '), text(cardinality), quoteString(` dimensions, but the vectors of column "${s.column.name}" have ${s.dimension}`)))} `;
    // A query vector with a NULL component finds nothing, told once per query vector.
    const hole = `WHEN pg_catalog.array_position(${q0}, NULL) IS NOT NULL THEN NULL `;
    const query = `(SELECT CASE ${flat}${sized}${hole}ELSE ${q0} END AS __vs_q FROM (SELECT CAST((${s.query}) AS float8[]) AS __vs_q0) AS __vs_q1) AS __vs_qv`;
    const candidateScore = `(SELECT ${s.holes ? complete(score(s.metric)) : score(s.metric)} FROM ROWS FROM (pg_catalog.unnest(__vs_qv.__vs_q), pg_catalog.unnest(CAST(__vs_row.${column} AS float8[]))) AS __vs_u(a, b))`;
    const candidates = `SELECT __vs_row.*, ${candidateScore} AS __vs_score FROM ${query}, (${s.source}) AS ${renamed('__vs_row', s.columns)} WHERE __vs_qv.__vs_q IS NOT NULL AND __vs_row.${column} IS NOT NULL`;
    const columns = s.columns.map((_, i) => `__vs_v.${positional(i)}`);
    const ties = s.columns.map((c, i) => `${tieKey(columns[i]!, c.type)} ASC`).join(', ');
    // The result names the columns as the searched relation does (repeated names too, as Postgres answers `SELECT a.id, b.id`).
    const named = s.columns.map((c, i) => `${columns[i]!} AS ${doubleQuote(c.name)}`);
    // NaN (from NaN or infinite components) sorts above every number in Postgres: such a score ranks nowhere.
    return `(SELECT ${named.join(', ')}, __vs_v.__vs_score AS score FROM (${candidates}) AS __vs_v WHERE __vs_v.__vs_score IS NOT NULL AND __vs_v.__vs_score${op('<>')}CAST('NaN' AS float8) ORDER BY __vs_v.__vs_score ${s.metric === 'l2' ? 'ASC' : 'DESC'}${ties ? `, ${ties}` : ''} LIMIT ${s.topK})`;
  },
};
