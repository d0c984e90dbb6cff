/**
 * ML_EVALUATE's metrics as host SQL over the zipped input/prediction relation (SPEC §1.3):
 * one row with a `result` map of every metric and one DOUBLE column per metric (named by
 * {@link metricColumn}). Rows whose
 * label or prediction is NULL are left out.
 *
 * - regression: MAE, MSE, RMSE, MAPE (a fraction, over rows with a non-zero label), R2.
 * - classification: Accuracy, macro Precision, Recall and F1 over the classes seen in labels
 *   or predictions (a class never predicted has precision 0, as scikit-learn's
 *   `zero_division=0`), and with a probabilities output (`ARRAY<...>`) LogLoss and macro
 *   one-vs-rest AUC. When every class is a non-negative integer smaller than the length of
 *   the probabilities, class c reads element c + 1 (classes 0, 1, 2, ... as classifiers
 *   number them); otherwise the class's rank among the sorted classes seen in labels and
 *   predictions (the order of a trained classifier's probabilities).
 * - clustering, embedding: see {@link clusteringMetrics} and the `embedding` case: mean
 *   cosine similarity, mean weighted Jaccard similarity (Σ min(aᵢ, bᵢ) / Σ max(aᵢ, bᵢ),
 *   the set Jaccard for 0/1 vectors) and mean Euclidean distance between the label array
 *   and the predicted array (a missing element counts as 0).
 * - text_generation: {@link textPairsSql} and {@link textMetricsRelation} (scored outside SQL).
 */
import { UnsupportedFeatureError, type SourcePosition } from '../errors.js';
import type { HostColumn, SqlDialect } from '../host.js';
import { expressionBuilder } from '../sql/expression-builder.js';
import { parseDataType, typeCategory } from '../sql/types.js';

/** Tasks ML_EVALUATE knows (SPEC §1.3). */
export type EvaluationTask = 'regression' | 'classification' | 'clustering' | 'embedding' | 'text_generation';

/** Where the label, prediction and probabilities are. */
export interface EvaluationSpec {
  readonly task: EvaluationTask;
  /** The relation with input and output columns. */
  readonly relation: string;
  readonly label: HostColumn;
  /** The first OUTPUT column; `type` in model (Flink) spelling. */
  readonly prediction: { readonly name: string; readonly type: string };
  /** The OUTPUT column with class probabilities, if any. */
  readonly probabilities?: string;
  /** The feature columns (the second DESCRIPTOR) with their host types: clustering measures distances between them. */
  readonly features?: readonly HostColumn[];
  /**
   * Classification: the rows are grouped by label and outputs first and every metric is
   * computed over the groups, weighted by their row counts: the same values (up to the order
   * of the floating-point sums) from one pass over the rows instead of one per metric. Training
   * metrics use it for every classifier: a tree's outputs take a few values (one per leaf), and
   * even a logistic model's probabilities repeat where the features do, while the AUC groups
   * the rows by score in any case.
   */
  readonly fewOutputs?: boolean;
  readonly position?: SourcePosition;
}

/** Metric names per task, in output order. */
export const METRICS: Readonly<Record<EvaluationTask, readonly string[]>> = {
  regression: ['MAE', 'MSE', 'RMSE', 'MAPE', 'R2'],
  classification: ['Accuracy', 'Precision', 'Recall', 'F1'],
  clustering: ['Silhouette', 'DaviesBouldin', 'Inertia'],
  embedding: ['CosineSimilarity', 'JaccardSimilarity', 'EuclideanDistance'],
  text_generation: ['BLEU', 'ROUGE1', 'ROUGEL', 'SemanticSimilarity'],
};

/** Classification metrics added when the model outputs probabilities. */
const PROBABILITY_METRICS = ['LogLoss', 'AUC'] as const;

/**
 * The column that holds metric `name` (the name in lower case: `R2` → `r2`). Postgres folds
 * an unquoted identifier to lower case and DuckDB matches identifiers whatever their case,
 * so `SELECT R2`, `SELECT r2` and `SELECT "r2"` read it on both hosts, under one column
 * name. The keys of the `result` map keep the metric's own spelling (`result['R2']`).
 */
export function metricColumn(name: string): string {
  return name.toLowerCase();
}

/** The metric a column of {@link evaluationRelation} holds (`r2` → `R2`); undefined for `result` and unknown names. */
export function metricOfColumn(column: string): string | undefined {
  return [...Object.values(METRICS).flat(), ...PROBABILITY_METRICS].find((name) => metricColumn(name) === column);
}

/**
 * The SQL relation (in parentheses) that computes the metrics.
 *
 * @example
 * evaluationRelation(dialect, { task: 'regression', relation: '(SELECT ...)', label, prediction })
 */
export function evaluationRelation(d: SqlDialect, spec: EvaluationSpec): string {
  const q = (n: string) => d.quoteIdentifier(n);
  const { add, sub, mul, div, eq, ne, lt, gt, ge, neg, num, int, fn, square } = expressionBuilder(d);
  const label = q(spec.label.name);
  const prediction = q(spec.prediction.name);
  const present = `${label} IS NOT NULL AND ${prediction} IS NOT NULL`;
  let names: string[];
  let body: string;
  switch (spec.task) {
    case 'regression': {
      names = [...METRICS.regression];
      const mse = fn('avg', square(sub('y', 'p')));
      body =
        `SELECT ${fn('avg', fn('abs', sub('y', 'p')))} AS ${q('MAE')}, ${mse} AS ${q('MSE')}, ${fn('sqrt', mse)} AS ${q('RMSE')}, ` +
        `${fn('avg', `CASE WHEN ${ne('y', num(0))} THEN ${fn('abs', div(sub('y', 'p'), 'y'))} END`)} AS ${q('MAPE')}, ` +
        `CASE WHEN ${ne(fn('var_pop', 'y'), num(0))} THEN ${sub(num(1), div(mse, fn('var_pop', 'y')))} END AS ${q('R2')} ` +
        `FROM (SELECT CAST(${label} AS DOUBLE PRECISION) AS y, CAST(${prediction} AS DOUBLE PRECISION) AS p FROM ${spec.relation} AS zipped WHERE ${present}) AS z`;
      break;
    }
    case 'classification': {
      const numeric = isNumeric(spec.label.type) && isNumeric(spec.prediction.type);
      const classType = numeric ? 'DOUBLE PRECISION' : d.catalogTypes.text;
      const probs = spec.probabilities ? `, ${q(spec.probabilities)} AS probs` : '';
      const rowNumber = `${fn('row_number')} OVER (ORDER BY c)`;
      // Over groups of rows (`fewOutputs`), a group of w rows counts w times.
      const grouped = spec.fewOutputs === true;
      const total = (x: string) => fn('sum', grouped ? mul('w', x) : x);
      const mean = (x: string) => (grouped ? div(total(x), fn('sum', 'w')) : fn('avg', x));
      // Counts as DOUBLE, so that every division below is between doubles.
      const count = `CAST(${grouped ? fn('sum', 'w') : fn('count', '*')} AS DOUBLE PRECISION)`;
      const rows = `SELECT CAST(${label} AS ${classType}) AS y, CAST(${prediction} AS ${classType}) AS p${probs} FROM ${spec.relation} AS zipped WHERE ${present}`;
      // Grouped by the label and outputs as they come (before the casts above: casting a row costs
      // more than casting a group, and two groups whose values cast alike count as one wherever it matters).
      const keys = [label, prediction, ...(spec.probabilities ? [q(spec.probabilities)] : [])];
      const groupedRows =
        `SELECT CAST(${label} AS ${classType}) AS y, CAST(${prediction} AS ${classType}) AS p${probs}, w ` +
        `FROM (SELECT ${keys.join(', ')}, CAST(${fn('count', '*')} AS DOUBLE PRECISION) AS w FROM ${spec.relation} AS zipped WHERE ${present} GROUP BY ${keys.join(', ')}) AS r`;
      const ratio = (hits: string, total: string) => `CASE WHEN ${gt(`coalesce(${total}, ${num(0)})`, num(0))} THEN ${div(`coalesce(${hits}, ${num(0)})`, total)} ELSE ${num(0)} END`;
      // The classes: each side grouped first (a few groups), so that the UNION is over a few rows, not two per row.
      const ctes = [
        grouped ? `z AS (${groupedRows})` : `z AS (${rows})`,
        numeric
          ? // integer classes 0, 1, 2, ... index the probabilities directly (when the array is long enough); other classes by rank
            `classes AS (SELECT c, CASE WHEN (SELECT ${fn('bool_and', `${eq('c', fn('floor', 'c'))} AND ${ge('c', num(0))}`)}${spec.probabilities ? ` AND ${lt(fn('max', 'c'), `(SELECT ${fn('max', fn('array_length', 'probs', '1'))} FROM z)`)}` : ''} FROM (SELECT y AS c FROM z GROUP BY y UNION SELECT p FROM z GROUP BY p) AS v) ` +
            `THEN ${add('CAST(c AS BIGINT)', int(1))} ELSE ${rowNumber} END AS idx FROM (SELECT y AS c FROM z GROUP BY y UNION SELECT p FROM z GROUP BY p) AS u)`
          : `classes AS (SELECT c, ${rowNumber} AS idx FROM (SELECT y AS c FROM z GROUP BY y UNION SELECT p FROM z GROUP BY p) AS u)`,
        `actual AS (SELECT y AS c, ${count} AS n, ${total(`CASE WHEN ${eq('y', 'p')} THEN ${num(1)} ELSE ${num(0)} END`)} AS tp FROM z GROUP BY y)`,
        `predicted AS (SELECT p AS c, ${count} AS n FROM z GROUP BY p)`,
        `per_class AS (SELECT ${ratio('a.tp', 'pr.n')} AS prec, ${ratio('a.tp', 'a.n')} AS rec ` +
          `FROM classes AS k LEFT JOIN actual AS a ON ${eq('a.c', 'k.c')} LEFT JOIN predicted AS pr ON ${eq('pr.c', 'k.c')})`,
        `scores AS (SELECT (SELECT ${mean(`CASE WHEN ${eq('y', 'p')} THEN ${num(1)} ELSE ${num(0)} END`)} FROM z) AS accuracy, ${fn('avg', 'prec')} AS prec, ${fn('avg', 'rec')} AS rec, ` +
          `${fn('avg', `CASE WHEN ${gt(add('prec', 'rec'), num(0))} THEN ${div(mul(mul(num(2), 'prec'), 'rec'), add('prec', 'rec'))} ELSE ${num(0)} END`)} AS f1 FROM per_class)`,
      ];
      names = [...METRICS.classification];
      let select = `SELECT s.accuracy AS ${q('Accuracy')}, s.prec AS ${q('Precision')}, s.rec AS ${q('Recall')}, s.f1 AS ${q('F1')}`;
      let from = 'FROM scores AS s';
      if (spec.probabilities) {
        const probability = 'CAST(z.probs[CAST(k.idx AS INTEGER)] AS DOUBLE PRECISION)'; // Postgres subscripts are integer, row_number() is bigint
        // Per class: AUC = (Σ ranks of positives − n₊(n₊ + 1)/2) / (n₊ n₋), ties ranked by their mean.
        // The rows are grouped by score first: a group of n tied rows above `below` rows holds
        // the ranks below + 1 … below + n, whose mean is below + (n + 1)/2 (half-integers, so
        // the sums are exact). No per-row window: Postgres before 16 finds the end of a row's
        // peer group row by row, which is quadratic in the ties (a tree's few leaf values).
        const positives = fn('sum', 'npos');
        const negatives = fn('sum', sub('n', 'npos'));
        const pairs = mul(positives, negatives);
        const below = sub(`${fn('sum', 'n')} OVER (PARTITION BY c ORDER BY s ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)`, 'n');
        ctes.push(
          `logloss AS (SELECT ${neg(mean(fn('ln', `greatest(${probability}, ${num(1e-15)})`)))} AS v FROM z JOIN classes AS k ON ${eq('k.c', 'z.y')})`,
          // per class by its index: grouping then compares numbers, not label text under a collation
          `ovr AS (SELECT k.idx AS c, ${eq('z.y', 'k.c')} AS pos, ${probability} AS s${grouped ? ', z.w' : ''} FROM z CROSS JOIN classes AS k)`,
          `tied AS (SELECT c, s, ${count} AS n, ${total(`CASE WHEN pos THEN ${num(1)} ELSE ${num(0)} END`)} AS npos FROM ovr GROUP BY c, s)`,
          `ranked AS (SELECT c, n, npos, ${add(below, div(add('n', num(1)), num(2)))} AS r FROM tied)`,
          `auc_per_class AS (SELECT CASE WHEN ${ne(pairs, num(0))} THEN ${div(sub(fn('sum', mul('npos', 'r')), div(mul(positives, add(positives, num(1))), num(2))), pairs)} END AS v FROM ranked GROUP BY c)`,
          `auc AS (SELECT ${fn('avg', 'v')} AS v FROM auc_per_class)`,
        );
        names.push(...PROBABILITY_METRICS);
        select += `, logloss.v AS ${q('LogLoss')}, auc.v AS ${q('AUC')}`;
        from += ', logloss, auc';
      }
      body = `WITH ${ctes.join(', ')} ${select} ${from}`;
      break;
    }
    case 'clustering': {
      names = [...METRICS.clustering];
      body = clusteringMetrics(d, spec);
      break;
    }
    case 'embedding': {
      names = [...METRICS.embedding];
      const e = (column: string) => `CAST(z.${column}[g.i] AS DOUBLE PRECISION)`;
      const norms = mul(fn('sqrt', fn('sum', square('x'))), fn('sqrt', fn('sum', square('y'))));
      const maxSum = fn('sum', 'greatest(x, y)');
      body =
        `WITH z AS (SELECT ${fn('row_number')} OVER () AS r, ${label} AS a, ${prediction} AS b FROM ${spec.relation} AS zipped WHERE ${present}), ` +
        `e AS (SELECT z.r, coalesce(${e('a')}, ${num(0)}) AS x, coalesce(${e('b')}, ${num(0)}) AS y FROM z CROSS JOIN LATERAL ${fn('generate_series', '1', `greatest(${fn('array_length', 'z.a', '1')}, ${fn('array_length', 'z.b', '1')})`)} AS g(i)), ` +
        `per_row AS (SELECT r, CASE WHEN ${ne(norms, num(0))} THEN ${div(fn('sum', mul('x', 'y')), norms)} END AS cosine, CASE WHEN ${ne(maxSum, num(0))} THEN ${div(fn('sum', 'least(x, y)'), maxSum)} END AS jaccard, ${fn('sqrt', fn('sum', square(sub('x', 'y'))))} AS distance FROM e GROUP BY r) ` +
        `SELECT ${fn('avg', 'cosine')} AS ${q('CosineSimilarity')}, ${fn('avg', 'jaccard')} AS ${q('JaccardSimilarity')}, ${fn('avg', 'distance')} AS ${q('EuclideanDistance')} FROM per_row`;
      break;
    }
    default:
      throw new UnsupportedFeatureError(`ML_EVALUATE for task '${spec.task}' is scored outside SQL (textPairsSql)`, spec.position);
  }
  const columns = names.map((n) => `CAST(m.${q(n)} AS DOUBLE PRECISION) AS ${q(metricColumn(n))}`).join(', ');
  const map = d.metricMap(names.map((n) => [n, `m.${q(n)}`] as const));
  return `(SELECT ${map} AS result, ${columns} FROM (${body}) AS m)`;
}

/**
 * Clustering metrics over the numeric feature columns as they are (the prediction is the
 * cluster), centroids being the means of each predicted cluster's rows:
 * Silhouette (mean over rows of (b - a) / max(a, b), a = mean distance to the other rows
 * of its cluster, b = the least mean distance to another cluster's rows; 0 for a row alone
 * in its cluster), Davies-Bouldin (mean over clusters of the worst (sᵢ + sⱼ) / dᵢⱼ, s the
 * mean distance to the centroid, d between centroids) and Inertia (sum of squared distances
 * to the centroid), as scikit-learn defines them. Silhouette compares every pair of rows.
 */
function clusteringMetrics(d: SqlDialect, spec: EvaluationSpec): string {
  const q = (n: string) => d.quoteIdentifier(n);
  const features = (spec.features ?? []).filter((f) => isNumeric(f.type));
  if (features.length === 0) {
    throw new UnsupportedFeatureError('ML_EVALUATE for clustering measures distances between numeric feature columns; the feature DESCRIPTOR has none', spec.position);
  }
  const { add, sub, div, eq, ne, num, fn, sum, square } = expressionBuilder(d);
  const f = features.map((_, j) => `f${j}`);
  const sq = (a: string, b: string) => sum(f.map((c) => square(sub(`${a}.${c}`, `${b}.${c}`))));
  const centroidSq = (a: string, b: string) => sum(f.map((_, j) => square(sub(`${a}.m${j}`, `${b}.m${j}`))));
  const centroidDistance = fn('sqrt', centroidSq('ka', 'kb'));
  const present = [spec.prediction.name, ...features.map((c) => c.name)].map((n) => `${q(n)} IS NOT NULL`).join(' AND ');
  return (
    `WITH z AS (SELECT ${fn('row_number')} OVER () AS i, ${q(spec.prediction.name)} AS c, ${features.map((c, j) => `CAST(${q(c.name)} AS DOUBLE PRECISION) AS f${j}`).join(', ')} FROM ${spec.relation} AS zipped WHERE ${present}), ` +
    `cent AS (SELECT c, ${f.map((c, j) => `${fn('avg', c)} AS m${j}`).join(', ')} FROM z GROUP BY c), ` +
    `pt AS (SELECT z.c, ${sum(f.map((c, j) => square(sub(`z.${c}`, `k.m${j}`))))} AS d2 FROM z JOIN cent AS k ON ${eq('k.c', 'z.c')}), ` +
    `scatter AS (SELECT c, ${fn('avg', fn('sqrt', 'd2'))} AS s FROM pt GROUP BY c), ` +
    `db AS (SELECT ${fn('avg', 'worst')} AS v FROM (SELECT a.c, ${fn('max', `CASE WHEN ${ne(centroidDistance, num(0))} THEN ${div(add('a.s', 'b.s'), centroidDistance)} END`)} AS worst FROM scatter AS a JOIN scatter AS b ON ${ne('a.c', 'b.c')} ` +
    `JOIN cent AS ka ON ${eq('ka.c', 'a.c')} JOIN cent AS kb ON ${eq('kb.c', 'b.c')} GROUP BY a.c) AS w), ` +
    `pair AS (SELECT p.i, ${eq('p.c', 'o.c')} AS same, o.c AS oc, ${fn('avg', fn('sqrt', sq('p', 'o')))} AS dist FROM z AS p JOIN z AS o ON ${ne('p.i', 'o.i')} GROUP BY p.i, ${eq('p.c', 'o.c')}, o.c), ` +
    `per_row AS (SELECT i, ${fn('max', 'CASE WHEN same THEN dist END')} AS a, ${fn('min', 'CASE WHEN NOT same THEN dist END')} AS b FROM pair GROUP BY i), ` +
    `sil AS (SELECT ${fn('avg', `CASE WHEN b IS NULL THEN NULL WHEN a IS NULL THEN ${num(0)} WHEN ${eq('greatest(a, b)', num(0))} THEN ${num(0)} ELSE ${div(sub('b', 'a'), 'greatest(a, b)')} END`)} AS v FROM per_row) ` +
    `SELECT (SELECT v FROM sil) AS ${q('Silhouette')}, (SELECT v FROM db) AS ${q('DaviesBouldin')}, (SELECT ${fn('sum', 'd2')} FROM pt) AS ${q('Inertia')}`
  );
}

/** Lower-cased word tokens: runs of letters and digits. */
export function textTokens(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0000');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

function overlap(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const [k, v] of a) n += Math.min(v, b.get(k) ?? 0);
  return n;
}

/**
 * Text-generation scores of one (reference, candidate) pair, on {@link textTokens}:
 * - BLEU: sentence BLEU-4, geometric mean of clipped n-gram precisions (n = 1..4) with
 *   add-one smoothing for n > 1 (Lin & Och's smoothing, NLTK's method 2) and the brevity
 *   penalty; 0 for an empty candidate.
 * - ROUGE1 / ROUGEL: F1 of unigram overlap / of the longest common subsequence.
 * - SemanticSimilarity: cosine of the bag-of-words count vectors (a lexical proxy that
 *   needs no embedding model).
 */
export function textScores(reference: string, candidate: string): { bleu: number; rouge1: number; rougeL: number; semantic: number } {
  const ref = textTokens(reference);
  const hyp = textTokens(candidate);
  const f1 = (hits: number) => (hits === 0 ? 0 : (2 * (hits / hyp.length) * (hits / ref.length)) / (hits / hyp.length + hits / ref.length));
  let bleu = 0;
  if (hyp.length > 0) {
    let logSum = 0;
    for (let n = 1; n <= 4; n++) {
      const total = Math.max(hyp.length - n + 1, 0);
      const hits = overlap(ngramCounts(hyp, n), ngramCounts(ref, n));
      const precision = n === 1 ? hits / total : (hits + 1) / (total + 1);
      logSum += Math.log(precision) / 4;
    }
    const brevity = hyp.length >= ref.length ? 1 : Math.exp(1 - ref.length / hyp.length);
    bleu = Number.isFinite(logSum) ? brevity * Math.exp(logSum) : 0;
  }
  const unigrams = overlap(ngramCounts(hyp, 1), ngramCounts(ref, 1));
  let previous = new Array<number>(hyp.length + 1).fill(0);
  for (let i = 1; i <= ref.length; i++) {
    const row = new Array<number>(hyp.length + 1).fill(0);
    for (let j = 1; j <= hyp.length; j++) row[j] = ref[i - 1] === hyp[j - 1] ? previous[j - 1]! + 1 : Math.max(previous[j]!, row[j - 1]!);
    previous = row;
  }
  const a = ngramCounts(ref, 1);
  const b = ngramCounts(hyp, 1);
  let dot = 0;
  for (const [k, v] of a) dot += v * (b.get(k) ?? 0);
  const length = (m: Map<string, number>) => Math.sqrt([...m.values()].reduce((s, v) => s + v * v, 0));
  return { bleu, rouge1: f1(unigrams), rougeL: f1(previous[hyp.length] ?? 0), semantic: dot === 0 ? 0 : dot / (length(a) * length(b)) };
}

/**
 * ML_EVALUATE for text_generation, part one: the query of the (label, prediction) pairs to
 * score. Tokenizing, n-gram matching and longest common subsequences are not expressible in
 * portable SQL, so the executor streams these pairs and scores them with {@link textScores},
 * one row at a time (only running sums are kept).
 */
export function textPairsSql(d: SqlDialect, spec: EvaluationSpec): string {
  const q = (n: string) => d.quoteIdentifier(n);
  const text = d.catalogTypes.text;
  return `SELECT CAST(${q(spec.label.name)} AS ${text}), CAST(${q(spec.prediction.name)} AS ${text}) FROM ${spec.relation} AS zipped WHERE ${q(spec.label.name)} IS NOT NULL AND ${q(spec.prediction.name)} IS NOT NULL`;
}

/**
 * ML_EVALUATE for text_generation, part two: the one-row relation of literals, shaped like
 * {@link evaluationRelation}'s, of the mean BLEU, ROUGE-1, ROUGE-L and semantic similarity
 * (`means` in that order; undefined when no pair was scored, giving NULLs).
 */
export function textMetricsRelation(d: SqlDialect, means: readonly number[] | undefined): string {
  const q = (n: string) => d.quoteIdentifier(n);
  const names = METRICS.text_generation;
  const values = names.map((_, i) => (means === undefined ? 'NULL' : d.double(means[i]!)));
  const map = d.metricMap(names.map((name, i) => [name, values[i]!] as const));
  return `(SELECT ${map} AS result, ${names.map((name, i) => `CAST(${values[i]} AS DOUBLE PRECISION) AS ${q(metricColumn(name))}`).join(', ')})`;
}

function isNumeric(type: string): boolean {
  const category = typeCategory(parseDataType(type));
  return category === 'integer' || category === 'float' || category === 'decimal';
}
