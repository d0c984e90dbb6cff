/**
 * VECTOR_SEARCH (SPEC §1.4, Flink 2.2): a call becomes a plain host subquery, exact top-k
 * by brute force in the host's own SQL (core/host.ts `VectorDialect`), correlated with the
 * input row through the query vector as Flink's `LATERAL TABLE(VECTOR_SEARCH(...))` is.
 * Nothing is staged and no rows leave the host. Before the statement runs, the search
 * column is checked: it exists, it holds numeric arrays, and its non-NULL vectors share one
 * dimension; a query vector of another dimension fails the statement with a clear message.
 * Whether some vectors have NULL components is asked too (they rank nowhere, as NaN ones).
 * Pure: the input's columns and the column's dimensions are asked of the executor.
 */
import { ArgumentError, ModelSqlError, positionAt, UnsupportedFeatureError } from '../errors.js';
import type { HostColumn } from '../host.js';
import type { MlCall } from '../sql/ast.js';
import { parseDataType, typeCategory } from '../sql/types.js';
import { bindVectorSearch } from '../sql/vector-search-call.js';
import { ask, type Plan, type PlanEnv } from './plan-requests.js';
import { planInput } from './plan-calls.js';

/**
 * The host relation that replaces a VECTOR_SEARCH call.
 *
 * @throws ArgumentError 42703 unknown column, 42804 not a numeric array column;
 *   ModelSqlError 22000 vectors of several dimensions, 2202E multidimensional arrays
 *   (Postgres); 0A000 on a host without VECTOR_SEARCH.
 */
export function* planVectorSearch(call: MlCall, env: PlanEnv): Plan<string> {
  const text = env.scriptText;
  const at = positionAt(text, call.nameSpan.start);
  const vectors = env.dialect.vectors;
  if (!vectors) throw new UnsupportedFeatureError(`VECTOR_SEARCH is not available on ${env.hostName}`, at);
  const bound = bindVectorSearch(call, text);
  const source = yield* planInput(bound.table, env);
  const columns = yield* ask({ kind: 'describe', query: source, input: bound.table });
  const id = bound.column;
  // The first column of the name, where the searched relation repeats it (as DuckDB, which renames the others `name_1`, ...).
  const columnIndex = id.quoted ? columns.findIndex((c) => c.name === id.value) : columns.findIndex((c) => c.name.toLowerCase() === id.value.toLowerCase());
  const column = columns[columnIndex];
  const where = positionAt(text, id.span.start);
  if (!column) throw new ArgumentError('42703', `column "${id.value}" does not exist in the searched table; columns: ${columns.map((c) => c.name).join(', ')}`, where);
  if (!isNumericArray(column)) throw new ArgumentError('42804', `VECTOR_SEARCH searches a column of numeric arrays (ARRAY<FLOAT>, ARRAY<DOUBLE>), but "${column.name}" is ${column.type}`, where);
  const position = positionAt(text, bound.table.span.start);
  const range = yield* ask({ kind: 'vector-dimensions', source, columns, index: columnIndex, position });
  if (range !== undefined && range[3] > 1) {
    throw new ModelSqlError('2202E', `VECTOR_SEARCH: column "${column.name}" holds ${range[3]}-dimensional arrays; a vector is a one-dimensional array`, { position });
  }
  if (range !== undefined && range[0] !== range[1]) {
    throw new ModelSqlError('22000', `VECTOR_SEARCH: the vectors of column "${column.name}" have from ${range[0]} to ${range[1]} dimensions; every vector searched must have the same`, { position });
  }
  const name = bound.table.kind === 'table' ? bound.table.name.map((part) => env.dialect.quoteIdentifier(part.value)).join('.') : undefined;
  // A base table whose rows the host can address is searched by row identity.
  const table = name !== undefined && vectors.rowIdentityProbe && (yield* ask({ kind: 'accepts', probe: vectors.rowIdentityProbe(name) })) ? name : undefined;
  // The splice adds an alias where the statement gave none (splice.ts `callAlias`).
  return vectors.search({
    source,
    ...(table ? { table } : {}),
    columns,
    column,
    columnIndex,
    query: bound.query.text,
    topK: bound.topK,
    metric: bound.metric,
    ...(range === undefined ? {} : { dimension: range[0], holes: range[2] }),
  });
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
