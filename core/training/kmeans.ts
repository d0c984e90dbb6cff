/**
 * k-means (task clustering) in the encoded feature space: k-means++ seeding and Lloyd's
 * iterations, each step ONE SQL query over the host (a GROUP BY over the nearest
 * centroid); only k centroids live in the Node process.
 *
 * Seeding is deterministic given `seed`, and the same on every host: rows are numbered in
 * the order of their encoded features (identical rows are interchangeable), and u is a
 * hash of (`seed` + step, row number) in exact integer arithmetic that every host computes
 * alike ({@link portableFraction}). The first seed is the row with the smallest u; each next
 * one is drawn with probability ∝ D² (squared distance to the nearest seed so far) by
 * weighted sampling without replacement (the row maximizing `ln(u) / D²`). Lloyd's iterations stop when the inertia drops
 * by less than `tolerance` (relative) or after `max-iterations`; an empty cluster keeps its
 * centroid.
 */
import { ModelSqlError } from '../errors.js';
import type { SqlDialect } from '../host.js';
import { expressionBuilder } from '../sql/expression-builder.js';
import { MAX_VALUE_COMBINATIONS } from './category-groups.js';
import { categoryIndex } from './compile-sql.js';
import type { ModelParameters } from './trained-model.js';
import { TrainingDataError, aggregate, toNumber, withWorkingTable, type TrainingData } from './training-data.js';
import type { TrainingOptions } from './training-options.js';

type KMeans = Extract<ModelParameters, { kind: 'kmeans' }>;

/** 2³¹ − 1, a prime: the modulus of {@link portableFraction}. */
const PRIME = 2147483647;

/**
 * A DOUBLE in [0, 1) from a non-negative integer expression (below 10¹⁴) and `seed`, the same
 * on every host: x₁ = (i·48271 + s) mod p, then twice x ← (x² + c) mod p (p = 2³¹ − 1, so every
 * product stays below 2⁶², exact in BIGINT), divided by p. The squares make neighbouring
 * integers land far apart (a linear congruence alone would give them evenly spaced values,
 * and the rows are numbered in the order of their features). Costs a few integer operations
 * per row where an md5 of the number's text cost Postgres about ten times more.
 */
export function portableFraction(d: SqlDialect, integer: string, seed: number): string {
  const mod = (x: string) => d.operator(x, '%', d.bigint(PRIME));
  const s = Number((BigInt(Math.trunc(seed)) * 16807n + 12345n) % BigInt(PRIME) + BigInt(PRIME)) % PRIME;
  let x = mod(d.operator(d.operator(`CAST(${integer} AS BIGINT)`, '*', d.bigint(48271)), '+', d.bigint(s)));
  for (const c of [1013904223, 1664525]) x = mod(d.operator(d.operator(x, '*', x), '+', d.bigint(c)));
  return d.operator(`CAST(${x} AS DOUBLE PRECISION)`, '/', d.double(PRIME));
}

/** SQL of the squared distance from encoded columns `x1 … xP` to `centroid`. */
function distance(d: SqlDialect, centroid: readonly number[]): string {
  const { sub, num, sum, square } = expressionBuilder(d);
  return sum(centroid.map((v, j) => square(sub(`x${j + 1}`, num(v)))));
}

function nearest(d: SqlDialect, centroids: readonly (readonly number[])[]): string {
  return centroids.length === 1 ? distance(d, centroids[0]!) : `least(${centroids.map((c) => distance(d, c)).join(', ')})`;
}

/**
 * The encoded training rows `where` selects, as columns `x1 … xP` only (a feature may itself
 * be called `x1`), behind the dialect's layer fence: every distance reads each `xj`, and
 * Postgres would otherwise inline the encoding into every reference.
 */
function encodedRows(data: TrainingData, where: string): string {
  return `(SELECT ${data.encoded.map((e, i) => `${e} AS x${i + 1}`).join(', ')}${data.dialect.layerFence('__modelsql_fence_e')} FROM ${data.source} WHERE ${where}) AS e`;
}

/**
 * The encoded training rows as columns `x1 … xP` and their number `n` in the order of the
 * encoded features (seeding draws by it). Seeding reads a session-private table of these
 * rows: the training query, the encoding and the numbering's sort run once, not once per
 * seed. Lloyd's iterations read the training query itself: Postgres scans a temporary
 * table in one process only, and the query in parallel workers.
 */
function numberedRows(data: TrainingData): string {
  const xs = data.encoded.map((_, j) => `x${j + 1}`);
  return `SELECT ${xs.join(', ')}, ${data.dialect.call('row_number')} OVER (ORDER BY ${xs.join(', ')}) AS n FROM ${encodedRows(data, data.trainWhere)}`;
}

async function seeds(data: TrainingData, options: TrainingOptions, table: string): Promise<number[][]> {
  const d = data.dialect;
  const { add, div, gt, num, fn } = expressionBuilder(d);
  const xs = data.encoded.map((_, j) => `x${j + 1}`);
  const numbered = `${table} AS numbered`;
  const chosen: number[][] = [];
  for (let t = 0; t < options.k; t++) {
    const u = portableFraction(d, 'n', options.seed + t);
    const sql =
      t === 0
        ? `SELECT ${xs.join(', ')} FROM ${numbered} ORDER BY ${u}, ${xs.join(', ')} LIMIT 1`
        : `SELECT ${xs.join(', ')} FROM (SELECT *, ${nearest(d, chosen)} AS dd, ${u} AS u${d.layerFence('__modelsql_fence_w')} FROM ${numbered}) AS w WHERE ${gt('dd', num(0))} ORDER BY ${div(fn('ln', add('u', num(1e-12))), 'dd')} DESC, ${xs.join(', ')} LIMIT 1`;
    const row = (await data.host.execute(sql)).rows[0];
    if (!row) throw new TrainingDataError(`kmeans with k = ${options.k} needs at least ${options.k} distinct training rows; there are ${t}`);
    chosen.push(row.map(toNumber));
  }
  return chosen;
}

/** Inertia (sum of squared distances to the nearest centroid) over the rows `where` selects. */
export async function inertia(data: TrainingData, p: KMeans, where: string): Promise<number> {
  const d = data.dialect;
  const layout = indexedBlocks(data);
  if (!layout) {
    const [value] = await aggregate(data, where, [data.encoded.map((e, i) => [`x${i + 1}`, e] as const)], [d.call('sum', nearest(d, p.centroids))]);
    return value!;
  }
  const distances = p.centroids.map((c) => indexedDistance(d, layout, c));
  const [value] = await aggregate(data, where, [indexedColumns(data, layout)], [d.call('sum', distances.length === 1 ? distances[0]! : `least(${distances.join(', ')})`)]);
  return value!;
}

/**
 * Most encoded features k-means trains on: its seeding table holds one DOUBLE column per
 * encoded feature, and a Postgres row of much more than 1,000 of them does not fit in a page
 * ("row is too big"); DuckDB nests a distance over as many terms past its expression depth.
 * Held on every host, so that the same models train on both.
 */
export const MAX_KMEANS_FEATURES = 1000;

/** Fits k-means (see the file comment). */
export async function fitKMeans(data: TrainingData, options: TrainingOptions): Promise<ModelParameters> {
  if (data.encoded.length > MAX_KMEANS_FEATURES) {
    throw new ModelSqlError(
      '54011',
      `kmeans trains on at most ${MAX_KMEANS_FEATURES} encoded features; this model has ${data.encoded.length} (a STRING feature has one per category): lower 'max-categories' or leave features out`,
      { position: data.queryPosition },
    );
  }
  if (options.k > data.trainRows) throw new TrainingDataError(`kmeans with k = ${options.k} needs at least ${options.k} training rows; there are ${data.trainRows}`);
  const initial = await withWorkingTable(data, 'kmeans', numberedRows(data), (table) => seeds(data, options, table));
  return lloydIterations(data, options, initial);
}

/**
 * How Lloyd's iterations read the rows: the numeric features' encoded columns `x<j>` (j their
 * encoded position, from 1) and, per STRING feature, one column `k<f>` holding its category
 * index ({@link categoryIndex}) instead of its 0/1 columns. A one-hot block's part of a squared
 * distance, Σ (x_j − c_j)², is then a constant per centroid and category (Σ c_j² with
 * (1 − c_i)² in place of c_i² for the category i), computed here once: a `CASE` over the index
 * replaces two operations per 0/1 column and centroid. A centroid's 0/1 coordinates are the
 * shares of its rows in each category: the update groups the rows by (cluster, indices) and
 * counts them. Used when those groups are few (the product of the features' categories + 1 at
 * most {@link MAX_VALUE_COMBINATIONS}); undefined when there is no STRING feature or too many groups.
 */
interface IndexedBlocks {
  /** Encoded positions (from 0) of the numeric features' columns. */
  readonly numeric: readonly number[];
  /** Per STRING feature: its first encoded position (from 0), its number of categories, its index expression over the source. */
  readonly blocks: readonly { readonly first: number; readonly size: number; readonly index: string }[];
}

function indexedBlocks(data: TrainingData): IndexedBlocks | undefined {
  const numeric: number[] = [];
  const blocks: { first: number; size: number; index: string }[] = [];
  let column = 0;
  let combinations = 1;
  data.features.forEach((f, i) => {
    if (f.kind === 'numeric') {
      numeric.push(column++);
    } else {
      blocks.push({ first: column, size: f.categories.length, index: categoryIndex(data.dialect, f, data.featureRefs[i]!) });
      combinations *= f.categories.length + 1;
      column += f.categories.length;
    }
  });
  return blocks.length > 0 && combinations <= MAX_VALUE_COMBINATIONS ? { numeric, blocks } : undefined;
}

/** The columns of {@link IndexedBlocks} over the source: `x<j>` per numeric feature, `k<f>` per STRING feature. */
function indexedColumns(data: TrainingData, layout: IndexedBlocks): (readonly [string, string])[] {
  return [...layout.numeric.map((j) => [`x${j + 1}`, data.encoded[j]!] as const), ...layout.blocks.map((b, f) => [`k${f}`, b.index] as const)];
}

/** Squared distance from a row to `centroid` over {@link IndexedBlocks}' columns (numeric terms in order, then each block's constant). */
function indexedDistance(d: SqlDialect, layout: IndexedBlocks, centroid: readonly number[]): string {
  const { sub, num, sum, square, eq } = expressionBuilder(d);
  const terms = layout.numeric.map((j) => square(sub(`x${j + 1}`, num(centroid[j]!))));
  layout.blocks.forEach((b, f) => {
    const squares = centroid.slice(b.first, b.first + b.size).map((c) => c * c);
    const none = squares.reduce((s, v) => s + v, 0);
    const part = (i: number) => none - squares[i]! + (1 - centroid[b.first + i]!) ** 2;
    terms.push(`(CASE ${squares.map((_, i) => `WHEN ${eq(`k${f}`, String(i))} THEN ${num(part(i))}`).join(' ')} ELSE ${num(none)} END)`);
  });
  return sum(terms);
}

async function lloydIterations(data: TrainingData, options: TrainingOptions, initial: number[][]): Promise<ModelParameters> {
  const width = data.encoded.length;
  const d = data.dialect;
  const { le, fn } = expressionBuilder(d);
  const layout = indexedBlocks(data);
  // The columns each row carries, and the grouping and sums of the update.
  const rows = layout
    ? `(SELECT ${indexedColumns(data, layout).map(([name, e]) => `${e} AS ${name}`).join(', ')}${d.layerFence('__modelsql_fence_e')} FROM ${data.source} WHERE ${data.trainWhere}) AS e`
    : encodedRows(data, data.trainWhere);
  const keys = ['c', ...(layout?.blocks.map((_, f) => `k${f}`) ?? [])];
  const summed = layout ? layout.numeric : Array.from({ length: width }, (_, j) => j);
  let centroids = initial;
  let previous = Number.POSITIVE_INFINITY;
  let iterations = 0;
  for (; iterations < options.maxIterations; iterations++) {
    const distances = centroids.map((c, k) => `${layout ? indexedDistance(d, layout, c) : distance(d, c)} AS d${k}`);
    const ds = centroids.map((_, k) => `d${k}`);
    const choose =
      ds.length === 1
        ? '0'
        : `CASE ${ds.slice(0, -1).map((dk, k) => `WHEN ${ds.slice(k + 1).map((o) => le(dk, o)).join(' AND ')} THEN ${k}`).join(' ')} ELSE ${ds.length - 1} END`;
    const sql =
      `SELECT ${keys.join(', ')}, ${fn('count', '*')}, ${fn('sum', 'dmin')}${summed.map((j) => `, ${fn('sum', `x${j + 1}`)}`).join('')} FROM ` +
      `(SELECT *, ${choose} AS c, ${ds.length === 1 ? 'd0' : `least(${ds.join(', ')})`} AS dmin FROM (SELECT *, ${distances.join(', ')}${d.layerFence('__modelsql_fence_w')} FROM ${rows}) AS w) AS a GROUP BY ${keys.join(', ')}`;
    const groups = (await data.host.execute(sql)).rows;
    // Per cluster: its rows, and the sums of its encoded columns (a 0/1 column's: the rows of its category).
    const counts = new Array<number>(centroids.length).fill(0);
    const sums = centroids.map(() => new Array<number>(width).fill(0));
    let total = 0;
    for (const r of groups) {
      const k = toNumber(r[0]);
      const at = keys.length;
      const n = toNumber(r[at]);
      counts[k]! += n;
      total += toNumber(r[at + 1]);
      summed.forEach((j, s) => {
        sums[k]![j]! += toNumber(r[at + 2 + s]);
      });
      layout?.blocks.forEach((b, f) => {
        const i = toNumber(r[1 + f]);
        if (i < b.size) sums[k]![b.first + i]! += n;
      });
    }
    const next = centroids.map((c, k) => (counts[k]! > 0 ? sums[k]!.map((v) => v / counts[k]!) : [...c]));
    const moved = next.some((c, k) => c.some((v, j) => v !== centroids[k]![j]));
    centroids = next;
    if (!moved || previous - total <= options.tolerance * Math.max(total, 1e-300)) {
      iterations++;
      break;
    }
    previous = total;
  }
  return { kind: 'kmeans', centroids, seeds: initial, iterations };
}
