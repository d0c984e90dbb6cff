/**
 * Sums of products of encoded columns (XᵀX and Xᵀy of linear regression, the gradient and
 * Hessian of logistic regression) grouped by the values of the STRING features, instead of
 * summed over their one-hot columns. Within one group every one-hot column is a constant 0
 * or 1, so a product involving one is 0 or the product of the other (numeric or constant)
 * factors, and the host only sums products of the numeric columns and the constant column,
 * per group: with 3 numeric features and a 4-category STRING one, 15 sums per row instead of
 * 35. The full sums are rebuilt here by adding each group's sums to the entries of the
 * columns that are 1 in that group (the same values up to the order of the additions).
 *
 * Used only when the groups are few: every STRING feature has fewer distinct training
 * values than `max-categories` (so each value is one of its categories), and the product
 * of their category counts is at most {@link MAX_VALUE_COMBINATIONS}.
 */
import type { TrainingData } from './training-data.js';

/** Most combinations of STRING feature values the grouped sums accept (rows returned to the Node process). */
export const MAX_VALUE_COMBINATIONS = 4096;

/** How the encoded columns map onto the grouped sums. */
export interface CategoryGroups {
  /** Group key columns of the first layer: `[name, coalesce(value, mode)]`, one per STRING feature. */
  readonly keys: readonly (readonly [string, string])[];
  /**
   * The columns the host multiplies (encoded indices, 0 the constant column): the constant
   * column, then every numeric feature's. A product of two of them is summed per group.
   */
  readonly base: readonly number[];
  /**
   * The encoded columns that are not 0 in a group, given its key values (the constant column,
   * the numeric ones and the one-hot column of each STRING feature's value), each with its
   * position in `base` (a one-hot column, constant 1 in the group, stands for the constant column).
   */
  active(keyValues: readonly unknown[]): readonly (readonly [column: number, base: number])[];
}

/** The grouping of `data`'s STRING features, or undefined when there are none or too many groups. */
export function categoryGroups(data: TrainingData): CategoryGroups | undefined {
  if (data.valueCombinations === undefined || data.valueCombinations > MAX_VALUE_COMBINATIONS) return undefined;
  const d = data.dialect;
  const keys: (readonly [string, string])[] = [];
  const base = [0];
  const oneHot: { readonly first: number; readonly categories: ReadonlyMap<string, number> }[] = [];
  let column = 1;
  data.features.forEach((f, i) => {
    if (f.kind === 'numeric') {
      base.push(column++);
    } else {
      keys.push([`g${keys.length}`, `coalesce(${data.featureRefs[i]!}, ${d.quoteString(f.mode)})`]);
      oneHot.push({ first: column, categories: new Map(f.categories.map((c, k) => [c, k])) });
      column += f.categories.length;
    }
  });
  if (keys.length === 0) return undefined;
  const numeric = base.map((c, position) => [c, position] as const);
  return {
    keys,
    base,
    active: (keyValues) => {
      const out = [...numeric];
      oneHot.forEach((h, f) => {
        const k = h.categories.get(String(keyValues[f])); // a value outside the categories encodes to zeros
        if (k !== undefined) out.push([h.first + k, 0]);
      });
      return out;
    },
  };
}

/** Index of the pair (i, j), i ≤ j, in the row-by-row upper triangle of an n×n matrix. */
export function triangleIndex(n: number, i: number, j: number): number {
  const [a, b] = i <= j ? [i, j] : [j, i];
  return a * n - (a * (a - 1)) / 2 + (b - a);
}
