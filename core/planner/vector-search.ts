/**
 * VECTOR_SEARCH (SPEC §1.4, Flink 2.2): a call becomes a plain host subquery, exact top-k
 * by brute force in the host's own SQL (core/host.ts `VectorDialect`), correlated with the
 * input row through the query vector as Flink's `LATERAL TABLE(VECTOR_SEARCH(...))` is.
 * Nothing is staged and no rows leave the host. Before the statement runs, the search
 * column is checked: it exists, it holds numeric arrays, and its non-NULL vectors share one
 * dimension; a query vector of another dimension fails the statement with a clear message.
 */
import { ArgumentError, ModelSqlError, positionAt, UnsupportedFeatureError, withoutGeneratedSql } from '../errors.js';
import type { HostColumn } from '../host.js';
import type { MlCall } from '../sql/ast.js';
import { parseDataType, typeCategory } from '../sql/types.js';
import { bindVectorSearch } from '../sql/vector-search-call.js';
import { describeInput, inputQuery, type RewriteContext } from './ml-rewrite.js';

/**
 * The host relation that replaces a VECTOR_SEARCH call.
 *
 * @throws ArgumentError 42703 unknown column, 42804 not a numeric array column;
 *   ModelSqlError 22000 vectors of several dimensions; 0A000 on a host without VECTOR_SEARCH.
 */
export async function vectorSearchRelation(call: MlCall, ctx: RewriteContext): Promise<string> {
  const text = ctx.scriptText;
  const at = positionAt(text, call.nameSpan.start);
  const vectors = ctx.host.dialect.vectors;
  if (!vectors) throw new UnsupportedFeatureError(`VECTOR_SEARCH is not available on ${ctx.host.name}`, at);
  const bound = bindVectorSearch(call, text);
  const source = await inputQuery(bound.table, ctx);
  const columns = await describeInput(source, bound.table, ctx);
  const id = bound.column;
  const column = id.quoted ? columns.find((c) => c.name === id.value) : columns.find((c) => c.name.toLowerCase() === id.value.toLowerCase());
  const where = positionAt(text, id.span.start);
  if (!column) throw new ArgumentError('42703', `column "${id.value}" does not exist in the searched table; columns: ${columns.map((c) => c.name).join(', ')}`, where);
  if (!isNumericArray(column)) throw new ArgumentError('42804', `VECTOR_SEARCH searches a column of numeric arrays (ARRAY<FLOAT>, ARRAY<DOUBLE>), but "${column.name}" is ${column.type}`, where);
  const dimension = await dimensionOf(source, column, ctx, bound.table.span.start);
  const name = bound.table.kind === 'table' ? bound.table.name.map((part) => ctx.host.dialect.quoteIdentifier(part.value)).join('.') : undefined;
  const table = name !== undefined && vectors.rowIdentityProbe ? await addressable(name, vectors.rowIdentityProbe, ctx) : undefined;
  const relation = vectors.search({
    source,
    ...(table ? { table } : {}),
    columns,
    column,
    query: bound.query.text,
    topK: bound.topK,
    metric: bound.metric,
    ...(dimension === undefined ? {} : { dimension }),
  });
  // The splice adds an alias where the statement gave none (splice.ts `callAlias`).
  return relation;
}

function isNumericArray(column: HostColumn): boolean {
  try {
    const type = parseDataType(column.type);
    const element = type.elements?.[0];
    return typeCategory(type) === 'array' && element !== undefined && ['integer', 'float', 'decimal'].includes(typeCategory(element));
  } catch {
    return false;
  }
}

/** The one dimension of the column's non-NULL vectors (undefined: none), or a 22000 error. */
async function dimensionOf(source: string, column: HostColumn, ctx: RewriteContext, offset: number): Promise<number | undefined> {
  let row: readonly unknown[] | undefined;
  try {
    row = (await ctx.host.execute(ctx.host.dialect.vectors!.dimensions(source, column.name))).rows[0];
  } catch (error) {
    throw withoutGeneratedSql(error, 'in the table VECTOR_SEARCH searches', positionAt(ctx.scriptText, offset));
  }
  if (row === undefined || row[0] === null || row[0] === undefined) return undefined;
  const least = Number(row[0]);
  const greatest = Number(row[1]);
  if (least !== greatest) {
    throw new ModelSqlError('22000', `VECTOR_SEARCH: the vectors of column "${column.name}" have from ${least} to ${greatest} dimensions; every vector searched must have the same`, { position: positionAt(ctx.scriptText, offset) });
  }
  return least;
}

/** `name` (quoted), when the probe says it is a base table whose rows the host can address. */
async function addressable(name: string, probe: (table: string) => string, ctx: RewriteContext): Promise<string | undefined> {
  try {
    await ctx.host.describe(probe(name));
    return name;
  } catch {
    return undefined;
  }
}
