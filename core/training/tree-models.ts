/**
 * `decision_tree` and `gradient_boosted_trees` by histogram split search, inside the host:
 * the Node process holds only per-bin aggregates, never the training rows.
 *
 * - Features are the encoded columns (standardized numbers, one 0/1 column per category),
 *   so a tree node tests `x[j] <= threshold` exactly as the compiled SQL and the ONNX graph
 *   do (a category split is `city=oslo <= 0.5`).
 * - Each numeric encoded column is cut into at most `bins` bins, once per model: a column
 *   with at most `bins` distinct training values gets one bin per value (exact splits), any
 *   other one the bins of `ntile(bins)` over its sorted values (approximate quantiles): bin
 *   i ends at the largest value of tile i, ties kept in one bin. One query per model finds
 *   every bin's largest value and the smallest value of the next bin, from the column's
 *   distinct values and their counts.
 * - The training rows are written once to a session-private table of small integers: each
 *   numeric column's bin, each STRING feature's category index (which of its 0/1 columns is
 *   1), and the targets; grouped by those integers (and the label, for classifiers) into
 *   rows with a row count `n` when they take fewer combinations than half the rows. Tree
 *   levels read only that table: a node's condition is a bin comparison (`b0 <= 7`,
 *   `c1 <> 2`), which splits the training rows exactly as the model's `x[j] <= threshold`.
 * - Trees grow level by level: per level ONE query assigns every row to its frontier node
 *   by a SQL `CASE` over the splits so far and `GROUP BY GROUPING SETS ((node, b0, b1),
 *   (node, b2, c3), ...)` returns the row count and the target sums per node and pair of
 *   bins (per class too for Gini: the class index is a grouping column and the row count
 *   the only aggregate); the pairs add up to each feature's histogram here. Only the
 *   smaller child of each split is aggregated; its sibling's histograms are the parent's
 *   minus its own. Nodes at the maximum depth need no query: their totals are known from
 *   the split. The best split is chosen here from those aggregates; its threshold is the
 *   midpoint between the largest training value of the last bin left of the cut and the
 *   smallest training value of the first non-empty bin right of it (so with at most
 *   `bins` distinct values per feature the split is the exact CART split).
 * - Criterion: squared error (regression and boosting: the largest drop of
 *   Σ (g - mean g)²), Gini impurity (decision-tree classification). A split needs
 *   `min-rows` rows on each side and a positive gain; ties (gains within 1e-10 of the
 *   children's purities Σg²/n, so that rounding does not decide) go to the lower feature,
 *   then the lower threshold.
 * - Boosting keeps per row (or group) the gradient in the working table, for classifiers
 *   also the running score F(x) and the Hessian; after each round the table is rewritten
 *   with the new tree (over the bins) added to F, the gradients recomputed once for all the
 *   next round's level queries (squared loss: the tree subtracted from the residuals).
 *   Squared loss: base = mean(y), every round fits a tree to the residuals g = y − F(x);
 *   leaf = learning-rate × mean residual.
 *   Binary log-loss (Friedman's gradient boosting, as scikit-learn's): base = log-odds of
 *   the positive class, residual g = y − σ(F), tree grown on g by squared error, leaf =
 *   learning-rate × Σg / Σ σ(F)(1 − σ(F)). Three or more classes: softmax boosting (as
 *   scikit-learn's): base_k = centered log prior, each round one tree per class on
 *   g_k = y_k − p_k (p = softmax(F) at the start of the round), leaf =
 *   learning-rate × (K − 1)/K × Σg_k / Σ p_k(1 − p_k).
 */
import type { SqlDialect } from '../host.js';
import { expressionBuilder } from '../sql/expression-builder.js';
import { categoryIndex, sigmoid } from './compile-sql.js';
import { labelEquals } from './logistic-regression.js';
import type { ModelParameters, TreeNode } from './trained-model.js';
import { aggregate, dropWorkingTable, labelValue, toNumber, workingTableName, type TrainingData } from './training-data.js';
import type { TrainingOptions } from './training-options.js';

/** Split criterion. */
export type Criterion = 'variance' | 'gini';

/**
 * One histogram bin of one node and feature: `stats[0]` the row count, then the target
 * sums (variance: [n, Σg] or [n, Σg, Σh]; gini: [n, count of class 0, class 1, ...]), and
 * the smallest and largest training value of the bin.
 */
export interface HistogramBin {
  readonly bin: number;
  readonly stats: readonly number[];
  readonly min: number;
  readonly max: number;
}

/** A chosen split: rows of bins up to `bin` of `feature` go left. */
export interface Split {
  readonly feature: number;
  readonly bin: number;
  readonly threshold: number;
  readonly gain: number;
  readonly left: readonly number[];
  readonly right: readonly number[];
}

/** The part of the impurity that a split maximizes: Σg²/n (variance) or Σ_c n_c²/n (Gini). */
function purity(stats: readonly number[], criterion: Criterion): number {
  const n = stats[0]!;
  if (n <= 0) return 0;
  if (criterion === 'variance') return (stats[1]! * stats[1]!) / n;
  let s = 0;
  for (let c = 1; c < stats.length; c++) s += stats[c]! * stats[c]!;
  return s / n;
}

/**
 * The best split of one node from its histograms (`histograms[j]` the bins of feature j,
 * any order), or undefined when no split has a positive gain with `minRows` rows a side.
 *
 * @example
 * bestSplit([[{ bin: 0, stats: [2, 2, 0], min: 1, max: 2 }, { bin: 1, stats: [2, 10, 0], min: 3, max: 4 }]], 'variance', 1)
 * // → { feature: 0, bin: 0, threshold: 2.5, ... }
 */
export function bestSplit(histograms: readonly (readonly HistogramBin[])[], criterion: Criterion, minRows: number): Split | undefined {
  let best: Split | undefined;
  let bestSize = 0;
  histograms.forEach((bins, feature) => {
    const sorted = [...bins].filter((b) => b.stats[0]! > 0).sort((a, b) => a.bin - b.bin);
    if (sorted.length < 2) return;
    const width = sorted[0]!.stats.length;
    const total = new Array<number>(width).fill(0);
    for (const b of sorted) b.stats.forEach((v, i) => (total[i]! += v));
    const parent = purity(total, criterion);
    const left = new Array<number>(width).fill(0);
    for (let i = 0; i < sorted.length - 1; i++) {
      sorted[i]!.stats.forEach((v, k) => (left[k]! += v));
      const right = total.map((v, k) => v - left[k]!);
      if (left[0]! < minRows || right[0]! < minRows) continue;
      const size = purity(left, criterion) + purity(right, criterion);
      const gain = size - parent;
      if (!(gain > 1e-12 * Math.max(1, Math.abs(parent)))) continue;
      // Gains within rounding of the children's purities are a tie (two features cutting the
      // node's rows alike have one gain, computed from sums in different orders).
      if (best !== undefined && gain <= best.gain + 1e-10 * Math.max(size, bestSize)) continue;
      bestSize = size;
      const below = sorted[i]!.max;
      const above = sorted[i + 1]!.min;
      let threshold = (below + above) / 2;
      if (!(threshold < above)) threshold = below;
      best = { feature, bin: sorted[i]!.bin, threshold, gain, left: [...left], right };
    }
  });
  return best;
}

/** An encoded column's bins: bin i holds `edges[i-1] < x <= edges[i]` (the last one is unbounded), and `lows[i]` is its smallest training value. */
interface ColumnBins {
  readonly edges: readonly number[];
  readonly lows: readonly number[];
}

/**
 * A small-integer column of the working table: the bin of the numeric encoded column
 * `column` (`b{column}`), or the category index of a STRING feature whose 0/1 columns are
 * `first … first + count - 1` (`c{first}`; `count` when it is none of them).
 */
type KeyColumn = { readonly kind: 'bin'; readonly name: string; readonly column: number } | { readonly kind: 'category'; readonly name: string; readonly first: number; readonly count: number };

/** How the training rows are binned: every encoded column's bins and the working table's key columns. */
interface Binning {
  readonly columns: readonly ColumnBins[];
  readonly keys: readonly KeyColumn[];
  /** Per encoded column, its key column, and for a 0/1 column its category's index. */
  readonly keyOf: readonly { readonly key: KeyColumn; readonly category: number }[];
  /**
   * The keys (indexes into `keys`) a level query groups by together: consecutive keys while
   * their combinations stay within {@link SET_COMBINATIONS}. One set costs one hash lookup
   * per row whatever its width, and a set's rows add up to each of its keys' histograms.
   */
  readonly sets: readonly (readonly number[])[];
  /** Whether the working table holds groups of rows with a row count `n` (see {@link workingRows}), else one row per training row. */
  readonly grouped: boolean;
}

/** The most key combinations one grouping set of a level query may have (bins × bins of two 32-bin features). */
const SET_COMBINATIONS = 1024;

/** Per node, per encoded column, the stats of each bin (undefined: no rows). */
type Histogram = (readonly number[] | undefined)[][];

/** A tree while it grows: a node with its totals, its split once split. */
interface Growing {
  stats: readonly number[];
  split?: { readonly feature: number; readonly threshold: number; readonly condition: string; readonly left: Growing; readonly right: Growing };
}

/** How to grow one tree over the working table. */
interface TreeTask {
  /** The working table (quoted name). */
  readonly table: string;
  readonly criterion: Criterion;
  /** Gini: the number of classes; the table's column `y` holds a row's class index. */
  readonly classes?: number;
  /** Variance: the columns summed per bin (`stats[1..]`; `stats[0]` is the row count). */
  readonly sums: readonly string[];
  /** The leaf value(s) from a leaf's stats. */
  readonly leaf: (stats: readonly number[]) => number[];
}

/** SQL numbering the rows of the `queried` nodes 0, 1, … in that order (NULL for every other row). */
function nodeSql(node: Growing, queried: ReadonlyMap<Growing, number>): string {
  const index = queried.get(node);
  if (index !== undefined) return String(index);
  const s = node.split;
  // A typed NULL: Postgres resolves a CASE of bare NULLs to text, which an integer branch cannot join.
  if (!s) return 'CAST(NULL AS INTEGER)';
  return `(CASE WHEN ${s.condition} THEN ${nodeSql(s.left, queried)} ELSE ${nodeSql(s.right, queried)} END)`;
}

/** The histograms and totals of `nodes` (the root alone, or nodes below splits), by one query. */
async function histograms(data: TrainingData, binning: Binning, task: TreeTask, root: Growing, nodes: readonly Growing[]): Promise<{ readonly totals: number[][]; readonly histograms: Histogram[] }> {
  const d = data.dialect;
  const { fn } = expressionBuilder(d);
  const keys = binning.keys.map((k) => k.name);
  const width = 1 + (task.classes ?? task.sums.length);
  const classKey = task.classes === undefined ? [] : ['y'];
  const atRoot = nodes.length === 1 && nodes[0] === root;
  const columns = [...keys, ...classKey, ...(binning.grouped ? ['n'] : []), ...task.sums];
  // Below the root the node number is computed once per row behind the dialect's fence, and
  // rows of no queried node are left out; the planner aggregates every grouping set by
  // hashing, in one pass.
  const inner = atRoot
    ? `SELECT ${columns.join(', ')}, 0 AS node FROM ${task.table} AS r0`
    : `SELECT ${columns.join(', ')}, ${nodeSql(root, new Map(nodes.map((n, i) => [n, i])))} AS node${d.layerFence('__modelsql_fence')} FROM ${task.table} AS r0`;
  const sets = binning.sets.length > 0 ? binning.sets.map((set) => ['node', ...classKey, ...set.map((k) => keys[k]!)]) : [['node', ...classKey]];
  const aggregates = [binning.grouped ? fn('sum', 'n') : fn('count', '*'), ...task.sums.map((t) => fn('sum', t))];
  const sql =
    `SELECT node, ${[...classKey, ...keys].map((k) => `${k}, `).join('')}${aggregates.join(', ')} ` +
    `FROM (${inner}) AS r1${atRoot ? '' : ' WHERE node IS NOT NULL'} GROUP BY GROUPING SETS (${sets.map((set) => `(${set.join(', ')})`).join(', ')})`;
  const totals = nodes.map(() => new Array<number>(width).fill(0));
  const byKey = nodes.map(() => keys.map(() => [] as number[][]));
  const setOf = new Map(binning.sets.flatMap((set, i) => set.map((k) => [k, i] as const)));
  const offset = 1 + classKey.length;
  for (const r of (await data.host.execute(sql)).rows) {
    const node = toNumber(r[0]);
    const first = keys.findIndex((_, i) => r[offset + i] !== null && r[offset + i] !== undefined);
    const set = first < 0 ? -1 : setOf.get(first)!;
    const n = toNumber(r[offset + keys.length]);
    const stats = new Array<number>(width).fill(0);
    stats[0] = n;
    if (task.classes !== undefined) stats[1 + toNumber(r[1])] = n;
    else task.sums.forEach((_, t) => (stats[1 + t] = toNumber(r[offset + keys.length + 1 + t])));
    if (set <= 0) stats.forEach((v, i) => (totals[node]![i]! += v));
    for (const k of set < 0 ? [] : binning.sets[set]!) {
      const cell = (byKey[node]![k]![toNumber(r[offset + k])] ??= new Array<number>(width).fill(0));
      stats.forEach((v, i) => (cell[i]! += v));
    }
  }
  return { totals, histograms: nodes.map((_, i) => expand(binning, byKey[i]!, totals[i]!)) };
}

/** Per-encoded-column histograms from per-key ones: a 0/1 column's bin 1 is its category's rows, bin 0 the node's other rows. */
function expand(binning: Binning, byKey: readonly (readonly number[][])[], total: readonly number[]): Histogram {
  return binning.columns.map((_, j) => {
    const { key, category } = binning.keyOf[j]!;
    const cells = byKey[binning.keys.indexOf(key)] ?? [];
    if (key.kind === 'bin') return [...cells];
    const one = cells[category];
    return [one === undefined ? [...total] : total.map((v, i) => v - one[i]!), one];
  });
}

/** The parent's histograms minus a child's: the other child's. */
function subtract(parent: Histogram, child: Histogram): Histogram {
  return parent.map((bins, j) => bins.map((stats, b) => (stats === undefined ? undefined : child[j]![b] === undefined ? stats : stats.map((v, i) => v - child[j]![b]![i]!))));
}

/** The bins of one node's histogram, with each bin's training range, as {@link bestSplit} reads them. */
function histogramBins(binning: Binning, histogram: Histogram): HistogramBin[][] {
  return histogram.map((bins, j) => {
    const { edges, lows } = binning.columns[j]!;
    const out: HistogramBin[] = [];
    bins.forEach((stats, bin) => {
      if (stats !== undefined && stats[0]! > 0) out.push({ bin, stats, min: lows[bin]!, max: edges[bin]! });
    });
    return out;
  });
}

/** The condition sending a row of a split node left: its bin of column `feature` is at most `bin` (for a 0/1 column: it is not the column's category). */
function leftCondition(d: SqlDialect, binning: Binning, feature: number, bin: number): string {
  const { key, category } = binning.keyOf[feature]!;
  return key.kind === 'bin' ? d.operator(key.name, '<=', String(bin)) : d.operator(key.name, '<>', String(category));
}

/** Grows one tree (or, for Gini leaves with several values, one tree per value with a shared structure); returns its root. */
async function growTree(data: TrainingData, options: TrainingOptions, binning: Binning, task: TreeTask): Promise<Growing> {
  const root: Growing = { stats: [] };
  const first = await histograms(data, binning, task, root, [root]);
  root.stats = first.totals[0]!;
  let open: { readonly node: Growing; readonly histogram: Histogram }[] = [{ node: root, histogram: first.histograms[0]! }];
  const splittable = (node: Growing) => node.stats[0]! >= 2 * options.minRows;
  for (let depth = 0; depth < options.maxDepth && open.length > 0; depth++) {
    const queried: Growing[] = [];
    const derived: { readonly node: Growing; readonly parent: Histogram; readonly sibling: Growing }[] = [];
    for (const { node, histogram } of open) {
      if (!splittable(node)) continue;
      const split = bestSplit(histogramBins(binning, histogram), task.criterion, options.minRows);
      if (!split) continue;
      const left: Growing = { stats: split.left };
      const right: Growing = { stats: split.right };
      node.split = { feature: split.feature, threshold: split.threshold, condition: leftCondition(data.dialect, binning, split.feature, split.bin), left, right };
      if (depth + 1 >= options.maxDepth || (!splittable(left) && !splittable(right))) continue;
      // Aggregate the smaller child; the larger one's histograms are the parent's minus its.
      const [small, large] = left.stats[0]! <= right.stats[0]! ? [left, right] : [right, left];
      queried.push(small);
      if (splittable(large)) derived.push({ node: large, parent: histogram, sibling: small });
    }
    if (queried.length === 0) break;
    const result = await histograms(data, binning, task, root, queried);
    const own = new Map(queried.map((n, i) => [n, result.histograms[i]!]));
    open = [
      ...queried.filter(splittable).map((node) => ({ node, histogram: own.get(node)! })),
      ...derived.map(({ node, parent, sibling }) => ({ node, histogram: subtract(parent, own.get(sibling)!) })),
    ];
  }
  return root;
}

/** Output `k` of a grown tree as the model stores it (thresholds on the encoded columns). */
function finishTree(node: Growing, task: TreeTask, k: number): TreeNode {
  const s = node.split;
  return s ? { leaf: false, feature: s.feature, threshold: s.threshold, left: finishTree(s.left, task, k), right: finishTree(s.right, task, k) } : { leaf: true, value: task.leaf(node.stats)[k]! };
}

/** Output `k` of a grown tree as SQL over the working table's key columns (equal to the stored tree on every training row). */
function binTreeSql(d: SqlDialect, node: Growing, task: TreeTask, k: number): string {
  const s = node.split;
  return s ? `(CASE WHEN ${s.condition} THEN ${binTreeSql(d, s.left, task, k)} ELSE ${binTreeSql(d, s.right, task, k)} END)` : d.double(task.leaf(node.stats)[k]!);
}

/**
 * Bins of every encoded column over the training rows. For each numeric column, its
 * distinct values with their counts, in order: a column with at most `bins` of them keeps
 * them all as edges; otherwise a value is an edge when the running count of rows up to it
 * passes the end of one of the `ntile(bins)` tiles (the first `n mod bins` tiles hold
 * ⌈n / bins⌉ rows, the others ⌊n / bins⌋). With each edge, the next distinct value: the
 * smallest of the next bin. A category's 0/1 column has the bins 0 and 1.
 */
async function binColumns(data: TrainingData, bins: number): Promise<ColumnBins[]> {
  const d = data.dialect;
  const { add, sub, div, le, gt, num, fn } = expressionBuilder(d);
  const numeric = data.features.flatMap((f, i) => (f.kind === 'numeric' ? [encodedIndex(data, i)] : []));
  const columns: ColumnBins[] = data.encoded.map(() => ({ edges: [0, 1], lows: [0, 1] }));
  if (numeric.length === 0) return columns;
  const n = data.trainRows;
  const q = Math.floor(n / bins);
  const r1 = (n % bins) * (q + 1);
  // The number of tile ends at or before row position p (from 1).
  const ends = (p: string) => `(CASE WHEN ${le(p, num(r1))} THEN ${fn('floor', div(p, num(q + 1)))} ELSE ${add(num(n % bins), fn('floor', div(sub(p, num(r1)), num(Math.max(q, 1)))))} END)`;
  const isEdge = n <= bins ? 'TRUE' : `(${le('nd', d.bigint(bins))} OR ${gt(ends('cum'), ends(sub('cum', 'cnt')))})`;
  const queries = numeric.map(
    (j) =>
      `SELECT ${j} AS f, x AS edge, nx FROM (SELECT x, nd, CAST(cnt AS DOUBLE PRECISION) AS cnt, CAST(${fn('sum', 'cnt')} OVER (ORDER BY x) AS DOUBLE PRECISION) AS cum, ${fn('lead', 'x')} OVER (ORDER BY x) AS nx ` +
      `FROM (SELECT ${data.encoded[j]!} AS x, ${fn('count', '*')} AS cnt, ${fn('count', '*')} OVER () AS nd FROM ${data.source} WHERE ${data.trainWhere} GROUP BY ${data.encoded[j]!}) AS g) AS c WHERE ${isEdge}`,
  );
  const found = new Map<number, [number, number][]>(numeric.map((j) => [j, []]));
  for (const r of (await data.host.execute(queries.join(' UNION ALL '))).rows) found.get(toNumber(r[0]))!.push([toNumber(r[1]), toNumber(r[2])]);
  for (const [j, edges] of found) {
    edges.sort((a, b) => a[0] - b[0]);
    columns[j] = { edges: edges.map(([e]) => e), lows: edges.map((_, i) => (i === 0 ? edges[0]![0] : edges[i - 1]![1])) };
  }
  return columns;
}

/** The first encoded column of feature `i`. */
function encodedIndex(data: TrainingData, i: number): number {
  let j = 0;
  for (let f = 0; f < i; f++) {
    const feature = data.features[f]!;
    j += feature.kind === 'numeric' ? 1 : feature.categories.length;
  }
  return j;
}

/** The key columns of the working table for these bins. */
function binning(data: TrainingData, columns: readonly ColumnBins[]): Binning {
  const keys: KeyColumn[] = [];
  const keyOf: { key: KeyColumn; category: number }[] = [];
  data.features.forEach((f, i) => {
    const first = encodedIndex(data, i);
    if (f.kind === 'numeric') {
      const key: KeyColumn = { kind: 'bin', name: `b${first}`, column: first };
      keyOf.push({ key, category: -1 });
      if (columns[first]!.edges.length > 1) keys.push(key);
    } else {
      const key: KeyColumn = { kind: 'category', name: `c${first}`, first, count: f.categories.length };
      keys.push(key);
      f.categories.forEach((_, k) => keyOf.push({ key, category: k }));
    }
  });
  const values = (k: KeyColumn) => (k.kind === 'bin' ? columns[k.column]!.edges.length : k.count + 1);
  const sets: number[][] = [];
  let product = Infinity;
  keys.forEach((k, i) => {
    product *= values(k);
    if (product > SET_COMBINATIONS) {
      sets.push([]);
      product = values(k);
    }
    sets[sets.length - 1]!.push(i);
  });
  const combinations = keys.reduce((p, k) => p * values(k), 1) * (data.classes?.length ?? 1);
  return { columns, keys, keyOf, sets, grouped: keys.length > 0 && combinations * 2 <= data.trainRows };
}

/** The bin of a value `x` among `edges[lo..hi]`, by nested comparisons (a binary search). */
function binSql(d: SqlDialect, x: string, edges: readonly number[], lo: number, hi: number): string {
  if (lo === hi) return String(lo);
  const mid = (lo + hi) >> 1;
  return `(CASE WHEN ${d.operator(x, '<=', d.double(edges[mid]!))} THEN ${binSql(d, x, edges, lo, mid)} ELSE ${binSql(d, x, edges, mid + 1, hi)} END)`;
}

/**
 * The query of the working table: the key columns (SMALLINT), the `keys` columns (name, SQL
 * over the source, e.g. a class index) and the `sums` (name, SQL over the source). The
 * encoded values are computed once per row behind the dialect's fence, then compared with
 * the bin edges. When the keys can take fewer combinations than half the training rows
 * ({@link Binning.grouped}), the rows are grouped by them: a group's `n` (DOUBLE) is its row
 * count and its `sums` the sums over its rows, and every histogram (a sum over rows) is the
 * same sum over groups. Otherwise each training row is a row of the table.
 */
function workingRows(data: TrainingData, b: Binning, keys: readonly (readonly [string, string])[], sums: readonly (readonly [string, string])[]): string {
  const d = data.dialect;
  const { fn } = expressionBuilder(d);
  const inner = [
    ...b.keys.map((k) => {
      if (k.kind === 'bin') return `${data.encoded[k.column]!} AS x${k.column}`;
      const f = data.features.findIndex((_, i) => encodedIndex(data, i) === k.first);
      return `${categoryIndex(d, data.features[f] as Extract<TrainingData['features'][number], { kind: 'categorical' }>, data.featureRefs[f]!)} AS ${k.name}`;
    }),
    ...[...keys, ...sums].map(([name, e]) => `${e} AS ${name}`),
  ];
  const binned = [
    ...b.keys.map((k) => (k.kind === 'bin' ? `CAST(${binSql(d, `x${k.column}`, b.columns[k.column]!.edges, 0, b.columns[k.column]!.edges.length - 1)} AS SMALLINT) AS ${k.name}` : `CAST(${k.name} AS SMALLINT) AS ${k.name}`)),
    ...[...keys, ...sums].map(([name]) => name),
  ];
  const rows = `(SELECT ${binned.join(', ')} FROM (SELECT ${inner.join(', ')}${d.layerFence('__modelsql_fence')} FROM ${data.source} WHERE ${data.trainWhere}) AS e) AS r`;
  if (!b.grouped) return `SELECT * FROM ${rows}`;
  const groupBy = [...b.keys.map((k) => k.name), ...keys.map(([name]) => name)];
  return `SELECT ${[...groupBy, `CAST(${fn('count', '*')} AS DOUBLE PRECISION) AS n`, ...sums.map(([name]) => `${fn('sum', name)} AS ${name}`)].join(', ')} FROM ${rows} GROUP BY ${groupBy.join(', ')}`;
}

/**
 * Writes the rows of `query` to a new working table; returns its quoted name. The first
 * table of a model gets planner statistics where the host keeps them
 * ({@link SqlDialect.analyze}); a boosting round's rewrite has the same key columns and
 * goes without (with training's `work_mem`, Postgres hashes its level queries on its
 * default estimates too: checked with `EXPLAIN` over 1,000,000 rows).
 */
async function writeTable(data: TrainingData, query: string, analyze: boolean): Promise<string> {
  const quoted = data.dialect.quoteIdentifier(workingTableName('trees'));
  // Not `Host.materialize`: these rows need no ordinal column and no count.
  await data.host.execute(`CREATE TEMPORARY TABLE ${quoted} AS ${query}`);
  if (analyze && data.dialect.analyze) {
    try {
      await data.host.execute(data.dialect.analyze(quoted));
    } catch (error) {
      await dropWorkingTable(data, quoted); // its caller drops only the tables it was given
      throw error;
    }
  }
  return quoted;
}

/** `SELECT keep FROM from`, with `layers` of computed columns between (each over the ones below, behind the dialect's fence). */
function layered(d: SqlDialect, from: string, layers: readonly (readonly (readonly [string, string])[])[], keep: readonly string[]): string {
  let relation = from;
  layers.forEach((layer, i) => {
    relation = `(SELECT *, ${layer.map(([name, e]) => `${e} AS ${name}`).join(', ')}${d.layerFence(`__modelsql_fence${i}`)} FROM ${relation}) AS l${i}`;
  });
  return `SELECT ${keep.join(', ')} FROM ${relation}`;
}

/** A boosting loss: the working table's columns and how a round's trees change them. */
interface Boosting {
  /** The first working table's query. */
  readonly initial: string;
  /** The next working table's query from the current one and the round's trees (SQL over the key columns, one per score). */
  readonly next: (table: string, trees: readonly string[]) => string;
}

/** Runs `fn` with the working table of `query`; `fn` returns the table to drop (the same or a rewritten one). */
async function withTable<T>(data: TrainingData, query: string, fn: (table: string, replace: (next: string) => Promise<string>) => Promise<T>): Promise<T> {
  let table = await writeTable(data, query, true);
  try {
    return await fn(table, async (next) => {
      const old = table;
      table = await writeTable(data, next, false);
      await dropWorkingTable(data, old);
      return table;
    });
  } finally {
    await dropWorkingTable(data, table);
  }
}

/** Fits `decision_tree` or `gradient_boosted_trees` (see the file comment). */
export async function fitTrees(data: TrainingData, options: TrainingOptions): Promise<ModelParameters> {
  const d = data.dialect;
  const { add, sub, mul, div, num, fn } = expressionBuilder(d);
  const b = binning(data, await binColumns(data, options.bins));
  const keys = b.keys.map((k) => k.name);
  const classes = data.classes;
  // A group's gradient sums: its row count times a row's; the row count `n` when grouped.
  const weighted = (e: string) => (b.grouped ? mul('n', e) : e);
  const n = b.grouped ? ['n'] : [];
  if (options.algorithm === 'decision_tree') {
    if (options.task === 'regression') {
      return withTable(data, workingRows(data, b, [], [['y', labelValue(d, data.label!)]]), async (table) => {
        const task: TreeTask = { table, criterion: 'variance', sums: ['y'], leaf: (s) => [s[1]! / s[0]!] };
        const root = await growTree(data, options, b, task);
        return { kind: 'trees', base: [0], trees: [[finishTree(root, task, 0)]], probabilityLeaves: false };
      });
    }
    const index = `(CASE ${classes!.map((c, k) => `WHEN ${labelEquals(d, data.label!, c)} THEN ${k}`).join(' ')} END)`;
    return withTable(data, workingRows(data, b, [['y', `CAST(${index} AS SMALLINT)`]], []), async (table) => {
      const task: TreeTask = { table, criterion: 'gini', classes: classes!.length, sums: [], leaf: (s) => s.slice(1).map((v) => v / s[0]!) };
      const root = await growTree(data, options, b, task);
      return { kind: 'trees', classes, base: classes!.map(() => 0), trees: classes!.map((_, k) => [finishTree(root, task, k)]), probabilityLeaves: true };
    });
  }

  // Gradient boosting.
  const lr = options.learningRate;
  if (options.task === 'classification' && classes!.length > 2) {
    // Softmax boosting: one tree per class and round on g_k = y_k − p_k, leaf = lr·(K−1)/K·Σg/Σh, h_k = p_k(1 − p_k).
    const K = classes!.length;
    const ys = classes!.map((c, k) => [`y${k}`, `(CASE WHEN ${labelEquals(d, data.label!, c)} THEN ${num(1)} ELSE ${num(0)} END)`] as const);
    const priors = await aggregate(data, data.trainWhere, [ys], ys.map(([name]) => fn('avg', name)));
    const logs = priors.map((q) => Math.log(Math.max(q, 1e-12)));
    const center = logs.reduce((a, b) => a + b, 0) / K;
    const base = logs.map((v) => v - center);
    const fs = classes!.map((_, k) => `f${k}`);
    const gradients: (readonly (readonly [string, string])[])[] = [
      [['fmax', `greatest(${fs.join(', ')})`]],
      fs.map((f, k) => [`e${k}`, fn('exp', `greatest(${sub(f, 'fmax')}, ${num(-700)})`)] as const),
      [['esum', expressionBuilder(d).sum(fs.map((_, k) => `e${k}`))]],
      fs.map((_, k) => [`p${k}`, div(`e${k}`, 'esum')] as const),
      fs.flatMap((_, k) => [[`g${k}`, weighted(sub(`y${k}`, `p${k}`))], [`h${k}`, weighted(mul(`p${k}`, sub(num(1), `p${k}`)))]] as const),
    ];
    const keep = [...keys, ...ys.map(([y]) => y), ...n, ...fs, ...fs.flatMap((_, k) => [`g${k}`, `h${k}`])];
    const boosting: Boosting = {
      initial: layered(d, `(${workingRows(data, b, ys, [])}) AS w`, [base.map((v, k) => [`f${k}`, num(v)] as const), ...gradients], keep),
      next: (table, trees) => layered(d, `(SELECT ${[...keys, ...ys.map(([y]) => y), ...n, ...fs.map((f, k) => `${add(f, trees[k]!)} AS ${f}`)].join(', ')}${d.layerFence('__modelsql_fence_w')} FROM ${table} AS w) AS w`, gradients, keep),
    };
    const trees = await boost(data, options, b, boosting, (table) =>
      fs.map((_, k) => ({ table, criterion: 'variance', sums: [`g${k}`, `h${k}`], leaf: (st) => [(lr * ((K - 1) / K) * st[1]!) / Math.max(st[2]!, 1e-12)] }) satisfies TreeTask),
    );
    return { kind: 'trees', classes, base, trees, probabilityLeaves: false };
  }
  const binary = options.task === 'classification';
  const y = binary ? `(CASE WHEN ${labelEquals(d, data.label!, classes![1]!)} THEN ${num(1)} ELSE ${num(0)} END)` : labelValue(d, data.label!);
  const [mean] = await aggregate(data, data.trainWhere, [[['y', y]]], [fn('avg', 'y')]);
  let base: number;
  let boosting: Boosting;
  if (binary) {
    const p = Math.min(Math.max(mean!, 1e-12), 1 - 1e-12);
    base = Math.log(p / (1 - p));
    // Binary log-loss: per row g = y − σ(F), h = σ(F)(1 − σ(F)); a group's are n times its rows'.
    const gradients = [[['p', sigmoid(d, 'f')]], [['g', weighted(sub('y', 'p'))], ['h', weighted(mul('p', sub(num(1), 'p')))]]] as const;
    const keep = [...keys, 'y', ...n, 'f', 'g', 'h'];
    boosting = {
      initial: layered(d, `(${workingRows(data, b, [['y', y]], [])}) AS w`, [[['f', num(base)]], ...gradients], keep),
      next: (table, [tree]) => layered(d, `(SELECT ${[...keys, 'y', ...n, `${add('f', tree!)} AS f`].join(', ')}${d.layerFence('__modelsql_fence_w')} FROM ${table} AS w) AS w`, gradients, keep),
    };
  } else {
    base = mean!;
    // Squared loss: the residuals g = y − F alone (a group's sum); each round subtracts its tree from each row.
    boosting = {
      initial: workingRows(data, b, [], [['g', sub(y, num(base))]]),
      next: (table, [tree]) => `SELECT ${[...keys, ...n, `${sub('g', weighted(tree!))} AS g`].join(', ')} FROM ${table} AS w`,
    };
  }
  const [trees] = await boost(data, options, b, boosting, (table) => [
    { table, criterion: 'variance', sums: binary ? ['g', 'h'] : ['g'], leaf: (st) => [binary ? (lr * st[1]!) / Math.max(st[2]!, 1e-12) : (lr * st[1]!) / st[0]!] },
  ]);
  return { kind: 'trees', ...(binary ? { classes } : {}), base: [base], trees: [trees!], probabilityLeaves: false };
}

/** The boosting rounds: each round grows one tree per score on the current working table, then rewrites the table with them added. */
async function boost(data: TrainingData, options: TrainingOptions, b: Binning, boosting: Boosting, tasks: (table: string) => readonly TreeTask[]): Promise<TreeNode[][]> {
  return withTable(data, boosting.initial, async (first, replace) => {
    let table = first;
    const trees: TreeNode[][] = [];
    for (let round = 0; round < options.rounds; round++) {
      const grown: string[] = [];
      const roundTasks = tasks(table);
      for (const [k, task] of roundTasks.entries()) {
        const root = await growTree(data, options, b, task);
        (trees[k] ??= []).push(finishTree(root, task, 0));
        grown.push(binTreeSql(data.dialect, root, task, 0));
      }
      if (round + 1 < options.rounds) table = await replace(boosting.next(table, grown));
    }
    return trees;
  });
}
