/**
 * Ridge regression from sufficient statistics: XᵀX and Xᵀy (with an intercept column)
 * come from ONE aggregate query over the host; the (P+1)×(P+1) system is solved here.
 *
 * Objective, on the encoded (standardized / one-hot) features:
 * `(1 / 2n) Σ (y - b - w·x)² + (l2 / 2) ‖w‖²` (the intercept b is not penalized), i.e. the
 * normal equations `(XᵀX / n + l2·D) θ = Xᵀy / n` with D = diag(0, 1, ..., 1).
 */
import { expressionBuilder } from '../sql/expression-builder.js';
import { categoryGroups, triangleIndex, type CategoryGroups } from './category-groups.js';
import { solveSymmetric } from './linear-algebra.js';
import type { ModelParameters } from './trained-model.js';
import { oneHotFeatures, productSums } from './product-sums.js';
import { aggregate, aggregateGroups, labelValue, requireColumns, requireParameters, type TrainingData } from './training-data.js';

/** Indices of the upper triangle `i <= j` of an n×n matrix, row by row. */
export function upperTriangle(n: number): (readonly [number, number])[] {
  const out: (readonly [number, number])[] = [];
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) out.push([i, j]);
  return out;
}

/**
 * XᵀX and Xᵀy of `[1, x_1 … x_P]` over the training rows, by one SQL aggregate.
 * Returns `{ xtx, xty, n }` with the intercept at index 0.
 */
export async function normalEquations(data: TrainingData): Promise<{ readonly xtx: number[][]; readonly xty: number[]; readonly n: number }> {
  requireParameters(data, data.encoded.length + 1);
  const groups = categoryGroups(data);
  if (groups) return groupedNormalEquations(data, groups);
  const p = data.encoded.length;
  requireColumns(data, p + 1); // Xᵀy alone, before the (p + 1)² pairs are planned
  const { mul, fn } = expressionBuilder(data.dialect);
  const x = (i: number) => `x${i}`;
  const columns: (readonly [string, string])[] = [...data.encoded.map((e, i) => [`x${i + 1}`, e] as const), ['y', labelValue(data.dialect, data.label!)]];
  const pairs = upperTriangle(p + 1);
  const products = productSums(oneHotFeatures(data.features), pairs, p + 1, (i, j) => (i === 0 && j === 0 ? fn('count', '*') : fn('sum', i === 0 ? x(j) : mul(x(i), x(j)))));
  const sums = [...products.sums, ...Array.from({ length: p + 1 }, (_, i) => fn('sum', i === 0 ? 'y' : mul(x(i), 'y')))];
  const values = await aggregate(data, data.trainWhere, [columns], sums);
  const gram = products.values(values);
  const xtx = Array.from({ length: p + 1 }, () => new Array<number>(p + 1).fill(0));
  pairs.forEach(([i, j], k) => {
    xtx[i]![j] = gram[k]!;
    xtx[j]![i] = gram[k]!;
  });
  const xty = values.slice(products.sums.length);
  return { xtx, xty, n: xtx[0]![0]! };
}

/** {@link normalEquations} from sums per combination of the STRING features' values (category-groups.ts). */
async function groupedNormalEquations(data: TrainingData, groups: CategoryGroups): Promise<{ readonly xtx: number[][]; readonly xty: number[]; readonly n: number }> {
  const p = data.encoded.length;
  const { mul, fn } = expressionBuilder(data.dialect);
  const x = (i: number) => `x${i}`;
  const base = groups.base;
  const columns: (readonly [string, string])[] = [...base.slice(1).map((c) => [x(c), data.encoded[c - 1]!] as const), ['y', labelValue(data.dialect, data.label!)], ...groups.keys];
  const pairs = upperTriangle(base.length);
  const products = pairs.map(([i, j]) => (i === 0 && j === 0 ? fn('count', '*') : fn('sum', i === 0 ? x(base[j]!) : mul(x(base[i]!), x(base[j]!)))));
  const ys = base.map((c, i) => fn('sum', i === 0 ? 'y' : mul(x(c), 'y')));
  const rows = await aggregateGroups(data, data.trainWhere, [columns], groups.keys.map(([name]) => name), [...products, ...ys]);
  const xtx = Array.from({ length: p + 1 }, () => new Array<number>(p + 1).fill(0));
  const xty = new Array<number>(p + 1).fill(0);
  for (const row of rows) {
    const active = groups.active(row.keys);
    for (const [a, i] of active) {
      xty[a]! += row.sums[products.length + i]!;
      for (const [b, j] of active) if (a <= b) xtx[a]![b]! += row.sums[triangleIndex(base.length, i, j)]!;
    }
  }
  for (let a = 0; a <= p; a++) for (let b = 0; b < a; b++) xtx[a]![b] = xtx[b]![a]!;
  return { xtx, xty, n: xtx[0]![0]! };
}

/** Fits ridge regression (see the file comment). */
export async function fitLinearRegression(data: TrainingData, l2: number): Promise<ModelParameters> {
  const { xtx, xty, n } = await normalEquations(data);
  const a = xtx.map((row, i) => row.map((v, j) => v / n + (i === j && i > 0 ? l2 : 0)));
  const theta = solveSymmetric(
    a,
    xty.map((v) => v / n),
  );
  return { kind: 'linear', intercept: theta[0]!, weights: theta.slice(1) };
}
