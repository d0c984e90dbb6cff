/**
 * `decision_tree` and `gradient_boosted_trees` by histogram split search, inside the host:
 * the Node process holds only per-bin aggregates, never the training rows.
 *
 * - Features are the encoded columns (standardized numbers, one 0/1 column per category),
 *   so a tree node tests `x[j] <= threshold` exactly as the compiled SQL and the ONNX graph
 *   do (a category split is `city=oslo <= 0.5`).
 * - Each encoded column is cut into at most `bins` bins, once per model: a column with at
 *   most `bins` distinct training values gets one bin per value (exact splits), any other
 *   one `bins` equal-count bins (`ntile` over the sorted values: approximate quantiles).
 * - Trees grow level by level: per level ONE query
 *   assigns every row to its frontier node by a SQL `CASE` over the splits so far and
 *   `GROUP BY (node, feature, bin)` returns the row count, the target sums and the
 *   minimum / maximum of the feature per bin. The best split is chosen here from those
 *   aggregates; its threshold is the midpoint between the largest value left of the cut
 *   and the smallest value right of it (so with at most `bins` distinct values per
 *   feature the split is the exact CART split).
 * - Criterion: squared error (regression and boosting: the largest drop of
 *   Σ (g - mean g)²), Gini impurity (decision-tree classification). A split needs
 *   `min-rows` rows on each side and a positive gain; ties go to the lower feature, then
 *   the lower threshold.
 * - The encoded training rows, their bins and targets are materialized once in a
 *   session-private table (dropped at the end, also on failure). Boosting keeps the
 *   running score F(x) there too; after each round the new tree's compiled CASE expression
 *   is added to F (an UPDATE, or a copy of the table on Postgres), so residuals are always computed in SQL. Squared loss: base = mean(y), every round fits a tree to the
 *   residuals y − F(x); leaf = learning-rate × mean residual.
 *   Binary log-loss (Friedman's gradient boosting, as scikit-learn's): base = log-odds of
 *   the positive class, residual r = y − σ(F), tree grown on r by squared error, leaf =
 *   learning-rate × Σr / Σ σ(F)(1 − σ(F)). Three or more classes: softmax boosting (as
 *   scikit-learn's): base_k = centered log prior, each round one tree per class on
 *   r_k = y_k − p_k (p = softmax(F) at the start of the round), leaf =
 *   learning-rate × (K − 1)/K × Σr_k / Σ p_k(1 − p_k).
 */
import type { SqlDialect } from '../host.js';
import { expressionBuilder } from '../sql/expression-builder.js';
import { sigmoid, treeExpression } from './compile-sql.js';
import { labelEquals } from './logistic-regression.js';
import { oneHotFeatures } from './product-sums.js';
import type { ModelParameters, TreeNode } from './trained-model.js';
import { aggregate, dropWorkingTable, labelValue, toNumber, withWorkingTable, workingTableName, type TrainingData } from './training-data.js';
import type { TrainingOptions } from './training-options.js';

/** Split criterion. */
export type Criterion = 'variance' | 'gini';

/**
 * One histogram bin of one node and feature: `stats[0]` the row count, then the target
 * sums (variance: [n, Σg, Σh]; gini: [n, count of class 0, class 1, ...]), and the
 * smallest and largest feature value in the bin.
 */
export interface HistogramBin {
  readonly bin: number;
  readonly stats: readonly number[];
  readonly min: number;
  readonly max: number;
}

/** A chosen split. */
export interface Split {
  readonly feature: number;
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
 * // → { feature: 0, threshold: 2.5, ... }
 */
export function bestSplit(histograms: readonly (readonly HistogramBin[])[], criterion: Criterion, minRows: number): Split | undefined {
  let best: Split | undefined;
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
      const gain = purity(left, criterion) + purity(right, criterion) - parent;
      if (!(gain > 1e-12 * Math.max(1, Math.abs(parent)))) continue;
      if (best !== undefined && gain <= best.gain * (1 + 1e-12)) continue;
      const below = sorted[i]!.max;
      const above = sorted[i + 1]!.min;
      let threshold = (below + above) / 2;
      if (!(threshold < above)) threshold = below;
      best = { feature, threshold, gain, left: [...left], right };
    }
  });
  return best;
}

/** A tree while it grows: a node with its totals, its frontier number while open, its split once split. */
interface Growing {
  stats: readonly number[];
  frontier: number | undefined;
  split?: { readonly feature: number; readonly threshold: number; readonly left: Growing; readonly right: Growing };
}

/** SQL giving a row's frontier node number (NULL for finished leaves). */
function nodeSql(d: SqlDialect, node: Growing, x: readonly string[]): string {
  const s = node.split;
  // A typed NULL: Postgres resolves a CASE of bare NULLs to text, which an integer branch cannot join.
  if (!s) return node.frontier === undefined ? 'CAST(NULL AS INTEGER)' : String(node.frontier);
  return `(CASE WHEN ${d.operator(x[s.feature]!, '<=', d.double(s.threshold))} THEN ${nodeSql(d, s.left, x)} ELSE ${nodeSql(d, s.right, x)} END)`;
}

/** How to grow one tree: the relation of training rows and the per-row target columns. */
interface TreeTask {
  /** A relation with columns `x0 … x{P-1}`, the bins `b{j}` of the features with 2+ bins, and the columns `targets` refer to. */
  readonly relation: string;
  /** Per-row SQL summed per bin after the row count (`stats[1..]`). */
  readonly targets: readonly string[];
  readonly criterion: Criterion;
  /** The leaf value(s) from a leaf's stats. */
  readonly leaf: (stats: readonly number[]) => number[];
}

/** Per encoded column, the ascending upper edges of its bins (bin i holds `edges[i-1] < x <= edges[i]`; the last bin is unbounded). */
interface Ranges {
  readonly edges: readonly (readonly number[])[];
}

/** Grows one tree (or, for Gini leaves with several values, one tree per value with a shared structure). */
async function growTree(data: TrainingData, options: TrainingOptions, ranges: Ranges, task: TreeTask): Promise<TreeNode[]> {
  const d = data.dialect;
  const { fn } = expressionBuilder(d);
  const p = data.encoded.length;
  const x = Array.from({ length: p }, (_, j) => `x${j}`);
  const features = binned(data, ranges);
  const oneHot = oneHotFeatures(data.features).slice(1);
  const width = 1 + task.targets.length;
  const root: Growing = { stats: [], frontier: 0 };
  let frontier: Growing[] = [root];
  for (let depth = 0; frontier.length > 0; depth++) {
    const sums = [fn('count', '*'), ...task.targets.map((_, k) => fn('sum', `t${k}`))];
    // Only the columns the histograms read: the materialized rows are a third as wide as the
    // table's. A category's 0/1 column is its bin (0 or 1), so its bins' smallest and largest
    // values are the bin itself, not aggregates.
    const kept = ['node', ...task.targets.map((_, k) => `t${k}`), ...features.flatMap((j) => (oneHot[j] === undefined ? [`x${j}`, `b${j}`] : [`b${j}`]))];
    const inner = `SELECT ${kept.join(', ')} FROM (SELECT *, ${nodeSql(d, root, x)} AS node${task.targets.map((t, k) => `, ${t} AS t${k}`).join('')} FROM ${task.relation} AS r0) AS r1 WHERE node IS NOT NULL`;
    const range = (j: number) => (oneHot[j] === undefined ? `${fn('min', `x${j}`)}, ${fn('max', `x${j}`)}` : `CAST(b${j} AS DOUBLE PRECISION), CAST(b${j} AS DOUBLE PRECISION)`);
    const parts = features.map((j) => `SELECT node, ${j} AS f, b${j} AS b, ${sums.join(', ')}, ${range(j)} FROM h GROUP BY node, b${j}`);
    const sql =
      features.length > 0
        ? `WITH h AS MATERIALIZED (${inner}) ${parts.join(' UNION ALL ')}`
        : `SELECT node, -1 AS f, 0 AS b, ${sums.join(', ')}, 0, 0 FROM (${inner}) AS h GROUP BY node`;
    const rows = (await data.host.execute(sql)).rows;
    const histograms = frontier.map(() => Array.from({ length: p }, () => [] as HistogramBin[]));
    const totals = frontier.map(() => new Array<number>(width).fill(0));
    const firstFeature = features.length > 0 ? features[0]! : -1;
    for (const r of rows) {
      const node = toNumber(r[0]);
      const f = toNumber(r[1]);
      const stats = Array.from({ length: width }, (_, k) => toNumber(r[3 + k]));
      if (f === firstFeature) stats.forEach((v, k) => (totals[node]![k]! += v));
      if (f >= 0) histograms[node]![f]!.push({ bin: toNumber(r[2]), stats, min: toNumber(r[3 + width]), max: toNumber(r[4 + width]) });
    }
    const next: Growing[] = [];
    frontier.forEach((leaf, i) => {
      leaf.stats = totals[i]!;
      leaf.frontier = undefined;
      const split = depth < options.maxDepth && totals[i]![0]! >= 2 * options.minRows ? bestSplit(histograms[i]!, task.criterion, options.minRows) : undefined;
      if (!split) return;
      const left: Growing = { stats: split.left, frontier: next.length };
      const right: Growing = { stats: split.right, frontier: next.length + 1 };
      next.push(left, right);
      leaf.split = { feature: split.feature, threshold: split.threshold, left, right };
    });
    frontier = next;
  }
  const outputs = task.leaf(root.stats).length;
  const finish = (node: Growing, k: number): TreeNode => {
    const s = node.split;
    return s ? { leaf: false, feature: s.feature, threshold: s.threshold, left: finish(s.left, k), right: finish(s.right, k) } : { leaf: true, value: task.leaf(node.stats)[k]! };
  };
  return Array.from({ length: outputs }, (_, k) => finish(root, k));
}

/**
 * Bin edges of every encoded column over the training rows: its distinct values when it has
 * at most `bins` of them (then every value is its own bin and splits are exact), else the
 * largest value of each of `bins` equal-count groups (`ntile`, approximate quantiles).
 */
async function binEdges(data: TrainingData, bins: number): Promise<Ranges> {
  const p = data.encoded.length;
  const edges = Array.from({ length: p }, () => [] as number[]);
  // A category's 0/1 column holds both values in the training rows (the categories are
  // training values, and there are at least two): its edges are 0 and 1, no query needed.
  const oneHot = oneHotFeatures(data.features).slice(1);
  const numeric = edges.map((_, j) => j).filter((j) => oneHot[j] === undefined);
  for (const j of edges.keys()) if (oneHot[j] !== undefined) edges[j]!.push(0, 1);
  const distinct = numeric.length === 0 ? [] : await aggregate(data, data.trainWhere, [numeric.map((j) => [`x${j}`, data.encoded[j]!] as const)], numeric.map((j) => data.dialect.call('count', `DISTINCT x${j}`)));
  const rows = `(SELECT ${numeric.map((j) => `${data.encoded[j]!} AS x${j}`).join(', ')} FROM ${data.source} WHERE ${data.trainWhere}) AS e`;
  const fn = (name: Parameters<SqlDialect['call']>[0], ...args: string[]) => data.dialect.call(name, ...args);
  const queries = numeric.map((j, i) =>
    distinct[i]! <= bins
      ? `SELECT ${j} AS f, x${j} AS edge FROM ${rows} GROUP BY x${j}`
      : `SELECT ${j} AS f, ${fn('max', `x${j}`)} AS edge FROM (SELECT x${j}, ${fn('ntile', String(bins))} OVER (ORDER BY x${j}) AS q FROM ${rows}) AS w GROUP BY q`,
  );
  if (queries.length > 0) for (const r of (await data.host.execute(queries.join(' UNION ALL '))).rows) edges[toNumber(r[0])]!.push(toNumber(r[1]));
  return { edges: edges.map((e) => [...new Set(e)].sort((a, b) => a - b)) };
}

/** The training rows encoded: `x0 … x{P-1}` and the named target columns. */
function encodedRows(data: TrainingData, targets: readonly (readonly [string, string])[]): string {
  return `(SELECT ${data.encoded.map((e, j) => `${e} AS x${j}`).join(', ')}, ${targets.map(([name, e]) => `${e} AS ${name}`).join(', ')} FROM ${data.source} WHERE ${data.trainWhere})`;
}

/** The bin of encoded column j: the index of the first edge `x{j}` is at most. */
function binSql(d: SqlDialect, ranges: Ranges, j: number): string {
  const edges = ranges.edges[j]!;
  return `(CASE ${edges.slice(0, -1).map((e, i) => `WHEN ${d.operator(`x${j}`, '<=', d.double(e))} THEN ${i}`).join(' ')} ELSE ${edges.length - 1} END)`;
}

/** The encoded columns that have bins (2 or more edges). */
function binned(data: TrainingData, ranges: Ranges): number[] {
  return data.encoded.map((_, j) => j).filter((j) => ranges.edges[j]!.length > 1);
}

/**
 * The rows of a session-private table of the encoded training rows (`x{j}`), their bins
 * (`b{j}`) and the extra `columns` (targets; boosting's running score F(x), to which each
 * new tree is added by {@link addToScores}, so a round costs one pass, not one per earlier
 * tree). The training query and the encoding run once, not once per tree level.
 */
function trainingRows(data: TrainingData, ranges: Ranges, columns: readonly (readonly [string, string])[]): string {
  return `SELECT *${binned(data, ranges).map((j) => `, ${binSql(data.dialect, ranges, j)} AS b${j}`).join('')} FROM ${encodedRows(data, columns)} AS e`;
}

/** The training table of {@link trainingRows}; returns its quoted name. */
async function trainingTable(data: TrainingData, ranges: Ranges, columns: readonly (readonly [string, string])[]): Promise<string> {
  const name = workingTableName('trees');
  await data.host.materialize(name, trainingRows(data, ranges, columns));
  return data.dialect.quoteIdentifier(name);
}

/**
 * Boosting's running scores after a round: each score column of `scores` (name → new value)
 * of the training table `table` (extra columns `columns`) takes its new value; returns the
 * table's quoted name. DuckDB updates in place. Where an UPDATE leaves dead row versions
 * behind (Postgres, `SqlDialect.updateLeavesDeadRows`), every later level query would scan
 * them all (measured: a 5-round model's level queries took 40–60 % longer in its last rounds
 * than in its first), so the table is copied with the new values and the old one dropped.
 */
async function addToScores(data: TrainingData, ranges: Ranges, table: string, columns: readonly string[], scores: readonly (readonly [string, string])[]): Promise<string> {
  if (!data.dialect.updateLeavesDeadRows) {
    await data.host.execute(`UPDATE ${table} SET ${scores.map(([name, value]) => `${name} = ${value}`).join(', ')}`);
    return table;
  }
  const replaced = new Map(scores);
  const kept = [...data.encoded.map((_, j) => `x${j}`), ...columns.map((c) => (replaced.has(c) ? `${replaced.get(c)!} AS ${c}` : c)), ...binned(data, ranges).map((j) => `b${j}`)];
  const name = workingTableName('trees');
  await data.host.materialize(name, `SELECT ${kept.join(', ')} FROM ${table} AS s0`);
  await dropWorkingTable(data, table);
  return data.dialect.quoteIdentifier(name);
}

/** Runs `fn` over a training table, dropping it afterwards (also on failure). */
function withTrainingTable<T>(data: TrainingData, ranges: Ranges, columns: readonly (readonly [string, string])[], fn: (table: string) => Promise<T>): Promise<T> {
  return withWorkingTable(data, 'trees', trainingRows(data, ranges, columns), fn);
}

/** Fits `decision_tree` or `gradient_boosted_trees` (see the file comment). */
export async function fitTrees(data: TrainingData, options: TrainingOptions): Promise<ModelParameters> {
  const d = data.dialect;
  const { add, sub, mul, div, num, fn } = expressionBuilder(d);
  const ranges = await binEdges(data, options.bins);
  const x = data.encoded.map((_, j) => `x${j}`);
  const classes = data.classes;
  if (options.algorithm === 'decision_tree') {
    if (options.task === 'regression') {
      const [tree] = await withTrainingTable(data, ranges, [['y', labelValue(d, data.label!)]], (relation) =>
        growTree(data, options, ranges, { relation, targets: ['y'], criterion: 'variance', leaf: (s) => [s[1]! / s[0]!] }),
      );
      return { kind: 'trees', base: [0], trees: [[tree!]], probabilityLeaves: false };
    }
    const indicators = classes!.map((c, k) => [`y${k}`, `(CASE WHEN ${labelEquals(d, data.label!, c)} THEN ${num(1)} ELSE ${num(0)} END)`] as const);
    const trees = await withTrainingTable(data, ranges, indicators, (relation) =>
      growTree(data, options, ranges, { relation, targets: classes!.map((_, k) => `y${k}`), criterion: 'gini', leaf: (s) => s.slice(1).map((v) => v / s[0]!) }),
    );
    return { kind: 'trees', classes, base: classes!.map(() => 0), trees: trees.map((t) => [t]), probabilityLeaves: true };
  }

  // Gradient boosting.
  const lr = options.learningRate;
  if (options.task === 'classification' && classes!.length > 2) {
    // Softmax boosting: one tree per class and round on r_k = y_k − p_k, leaf = lr·(K−1)/K·Σr/Σp(1−p).
    const K = classes!.length;
    const ys = classes!.map((c, k) => [`y${k}`, `(CASE WHEN ${labelEquals(d, data.label!, c)} THEN ${num(1)} ELSE ${num(0)} END)`] as const);
    const priors = await aggregate(data, data.trainWhere, [ys], ys.map(([name]) => fn('avg', name)));
    const logs = priors.map((q) => Math.log(Math.max(q, 1e-12)));
    const center = logs.reduce((a, b) => a + b, 0) / K;
    const base = logs.map((v) => v - center);
    const trees: TreeNode[][] = classes!.map(() => []);
    const fs = classes!.map((_, k) => `f${k}`);
    const columns = [...ys, ...base.map((b, k) => [`f${k}`, num(b)] as const)];
    let table = await trainingTable(data, ranges, columns);
    try {
      for (let round = 0; round < options.rounds; round++) {
        let relation = `(SELECT *, greatest(${fs.join(', ')}) AS fmax FROM ${table} AS s1)`;
        relation = `(SELECT *, ${fs.map((f, k) => `${fn('exp', `greatest(${sub(f, 'fmax')}, ${num(-700)})`)} AS e${k}`).join(', ')} FROM ${relation} AS s2)`;
        relation = `(SELECT *, ${expressionBuilder(d).sum(fs.map((_, k) => `e${k}`))} AS esum FROM ${relation} AS s3)`;
        relation = `(SELECT *, ${fs.map((_, k) => `${div(`e${k}`, 'esum')} AS p${k}`).join(', ')} FROM ${relation} AS s4)`;
        relation = `(SELECT *, ${fs.map((_, k) => `${sub(`y${k}`, `p${k}`)} AS g${k}, ${mul(`p${k}`, sub(num(1), `p${k}`))} AS h${k}`).join(', ')} FROM ${relation} AS s5)`;
        const grown: TreeNode[] = [];
        for (let k = 0; k < K; k++) {
          const [tree] = await growTree(data, options, ranges, {
            relation,
            targets: [`g${k}`, `h${k}`],
            criterion: 'variance',
            leaf: (st) => [(lr * ((K - 1) / K) * st[1]!) / Math.max(st[2]!, 1e-12)],
          });
          grown.push(tree!);
        }
        grown.forEach((t, k) => trees[k]!.push(t));
        table = await addToScores(data, ranges, table, columns.map(([name]) => name), grown.map((t, k) => [`f${k}`, add(`f${k}`, treeExpression(d, t, x))] as const));
      }
    } finally {
      await dropWorkingTable(data, table);
    }
    return { kind: 'trees', classes, base, trees, probabilityLeaves: false };
  }
  const binary = options.task === 'classification';
  const y = binary ? `(CASE WHEN ${labelEquals(d, data.label!, classes![1]!)} THEN ${num(1)} ELSE ${num(0)} END)` : labelValue(d, data.label!);
  const [mean] = await aggregate(data, data.trainWhere, [[['y', y]]], [fn('avg', 'y')]);
  let base: number;
  if (binary) {
    const p = Math.min(Math.max(mean!, 1e-12), 1 - 1e-12);
    base = Math.log(p / (1 - p));
  } else {
    base = mean!;
  }
  const trees: TreeNode[] = [];
  let table = await trainingTable(data, ranges, [['y', y], ['f', num(base)]]);
  try {
    for (let round = 0; round < options.rounds; round++) {
      const relation = binary
        ? `(SELECT *, ${sub('y', 'p')} AS g, ${mul('p', sub(num(1), 'p'))} AS hh FROM (SELECT *, ${sigmoid(d, 'f')} AS p FROM ${table} AS s1) AS s2)`
        : `(SELECT *, ${sub('y', 'f')} AS g, ${num(1)} AS hh FROM ${table} AS s1)`;
      const [tree] = await growTree(data, options, ranges, {
        relation,
        targets: ['g', 'hh'],
        criterion: 'variance',
        leaf: (st) => [binary ? (lr * st[1]!) / Math.max(st[2]!, 1e-12) : (lr * st[1]!) / st[0]!],
      });
      trees.push(tree!);
      table = await addToScores(data, ranges, table, ['y', 'f'], [['f', add('f', treeExpression(d, tree!, x))]]);
    }
  } finally {
    await dropWorkingTable(data, table);
  }
  return { kind: 'trees', ...(binary ? { classes } : {}), base: [base], trees: [trees], probabilityLeaves: false };
}
