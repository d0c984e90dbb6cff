/**
 * Sums of products of encoded columns (XᵀX of linear regression, the weighted Hessian of
 * logistic regression) without the sums that the one-hot encoding already fixes: two 0/1
 * columns of one STRING feature are never both 1 in a row, so the sum of their product is 0,
 * and a 0/1 column times itself is itself, so that sum is the one with the constant column.
 * Only the other sums go to the host; the values are exactly those the full sums give (every
 * left-out term is a product with an exact 0 or 1). A STRING feature of c categories saves
 * c(c + 1)/2 sums per weight block, and each sum costs a Postgres aggregate per row.
 */
import type { FeatureEncoding } from './trained-model.js';

/**
 * Per encoded column, numbered from 1 (0 is the constant column), the index of the STRING
 * feature it is a one-hot column of; undefined for the constant column and numeric features.
 */
export function oneHotFeatures(features: readonly FeatureEncoding[]): (number | undefined)[] {
  const groups: (number | undefined)[] = [undefined];
  features.forEach((f, i) => {
    if (f.kind === 'numeric') groups.push(undefined);
    else for (const _ of f.categories) groups.push(i);
  });
  return groups;
}

/** How one product sum is had. */
type Source = { readonly kind: 'zero' } | { readonly kind: 'pair'; readonly pair: number } | { readonly kind: 'sum'; readonly index: number };

/**
 * The sums to run for `pairs` (index pairs a ≤ b of a matrix whose index a stands for the
 * encoded column `a % width`, in blocks of `width` = columns + 1), and how to read every
 * pair's value back from their results.
 *
 * @example
 * const plan = productSums(oneHotFeatures(features), pairs, width, (a, b) => `sum(x${a} * x${b})`);
 * const values = plan.values(await run(plan.sums));   // one value per pair
 */
export function productSums(
  groups: readonly (number | undefined)[],
  pairs: readonly (readonly [number, number])[],
  width: number,
  sql: (a: number, b: number) => string,
): { readonly sums: string[]; readonly values: (results: readonly number[]) => number[] } {
  const position = new Map(pairs.map(([a, b], t) => [`${a},${b}`, t]));
  const sums: string[] = [];
  const sources: Source[] = pairs.map(([a, b]) => {
    const i = a % width;
    const j = b % width;
    const group = groups[i];
    if (i > 0 && j > 0 && group !== undefined && groups[j] === group) {
      if (i !== j) return { kind: 'zero' };
      const pair = position.get(`${a - i},${b}`); // the same block's constant column times x_j
      if (pair !== undefined) return { kind: 'pair', pair };
    }
    sums.push(sql(a, b));
    return { kind: 'sum', index: sums.length - 1 };
  });
  return {
    sums,
    values: (results) => {
      const out: number[] = [];
      const valueOf = (t: number): number => {
        const s = sources[t]!;
        return s.kind === 'zero' ? 0 : s.kind === 'sum' ? results[s.index]! : valueOf(s.pair);
      };
      for (let t = 0; t < pairs.length; t++) out.push(valueOf(t));
      return out;
    },
  };
}
