/**
 * Binding of Flink 2.2's `VECTOR_SEARCH` table function (SPEC §1.4):
 *
 * ```sql
 * VECTOR_SEARCH(TABLE vector_table, query_vector, DESCRIPTOR(index_column), top_k [, MAP[...]])
 * VECTOR_SEARCH(SEARCH_TABLE => TABLE t, COLUMN_TO_QUERY => q.v, COLUMN_TO_SEARCH => DESCRIPTOR(c), TOP_K => 3, CONFIG => MAP[...])
 * ```
 *
 * CONFIG keys: `metric` (`cosine`, the default; `l2`; `inner_product`, also `ip` and
 * `dot`), and Flink's runtime keys `async`, `max-concurrent-operations`, `output-mode`,
 * `timeout`, validated and without effect here (the search runs inside the host's query).
 */
import type { Identifier, MlArgValue, MlCall, Span } from './ast.js';
import { assignSlots, optionError, parseCallConfig, syntaxError, type InputArgument, type MapEntry, type Slot } from './ml-call.js';

import type { VectorMetric } from '../host.js';

/** The bound arguments of a VECTOR_SEARCH call. */
export interface VectorSearchBinding {
  /** The searched relation. */
  readonly table: InputArgument;
  /** The query vector: SQL text as written (a column of the input row, or a constant). */
  readonly query: { readonly text: string; readonly span: Span };
  /** The searched vector column of `table`. */
  readonly column: Identifier;
  readonly topK: number;
  readonly metric: VectorMetric;
}

const SLOTS: readonly Slot[] = [
  { name: 'SEARCH_TABLE', kinds: ['table', 'subquery'], expected: 'TABLE name or TABLE (query)' },
  { name: 'COLUMN_TO_QUERY', kinds: ['other'], expected: 'a vector expression such as input_table.embedding' },
  { name: 'COLUMN_TO_SEARCH', kinds: ['descriptor'], expected: 'DESCRIPTOR(column)' },
  { name: 'TOP_K', kinds: ['other'], expected: 'a positive integer' },
  { name: 'CONFIG', kinds: ['map'], optional: true, expected: "MAP['key', 'value', ...]" },
];

/** Largest TOP_K accepted: each query row returns at most this many rows. */
export const MAX_TOP_K = 10_000;

const METRICS: Readonly<Record<string, VectorMetric>> = { cosine: 'cosine', l2: 'l2', euclidean: 'l2', inner_product: 'inner_product', ip: 'inner_product', dot: 'inner_product' };

/**
 * Binds a VECTOR_SEARCH call, positional or named.
 *
 * @throws SqlSyntaxError (42601) for the argument shape; InvalidOptionError (22023) for TOP_K
 *   and CONFIG values.
 */
export function bindVectorSearch(call: MlCall, sqlText: string): VectorSearchBinding {
  const bound = assignSlots(call, SLOTS, sqlText);
  const descriptor = bound.get('COLUMN_TO_SEARCH') as Extract<MlArgValue, { kind: 'descriptor' }>;
  if (descriptor.columns.length !== 1) throw syntaxError(`the DESCRIPTOR of VECTOR_SEARCH must name exactly one column, found ${descriptor.columns.length}`, descriptor.span, sqlText);
  const query = bound.get('COLUMN_TO_QUERY') as { readonly span: Span };
  const top = bound.get('TOP_K') as { readonly text: string; readonly span: Span };
  const topText = top.text.trim();
  if (!/^[0-9]+$/.test(topText) || Number(topText) < 1 || Number(topText) > MAX_TOP_K) {
    throw optionError(`TOP_K of VECTOR_SEARCH must be an integer from 1 to ${MAX_TOP_K}, found ${topText}`, top.span, sqlText);
  }
  const entries = (bound.get('CONFIG') as { readonly entries: readonly MapEntry[] } | undefined)?.entries ?? [];
  const metricEntry = entries.find((e) => e.key.toLowerCase() === 'metric');
  parseCallConfig(
    entries.filter((e) => e !== metricEntry),
    sqlText,
  );
  const metric = metricEntry === undefined ? 'cosine' : metricOf(metricEntry, sqlText);
  return Object.freeze({
    table: bound.get('SEARCH_TABLE') as InputArgument,
    query: { text: sqlText.slice(query.span.start, query.span.end), span: query.span },
    column: descriptor.columns[0]!,
    topK: Number(topText),
    metric,
  });
}

function metricOf(entry: MapEntry, sqlText: string): VectorMetric {
  const metric = entry.literal ? METRICS[entry.value.trim().toLowerCase()] : undefined;
  if (metric === undefined) {
    throw optionError(`VECTOR_SEARCH 'metric' is 'cosine', 'l2' or 'inner_product', not ${entry.literal ? `'${entry.value}'` : entry.value}`, entry.valueSpan, sqlText);
  }
  return metric;
}
