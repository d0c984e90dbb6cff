/**
 * productSums: the sums the one-hot encoding fixes are left out, and every pair's value is
 * still exactly the full sum's.
 */
import { upperTriangle } from '../../../core/training/linear-regression.js';
import { oneHotFeatures, productSums } from '../../../core/training/product-sums.js';
import type { FeatureEncoding } from '../../../core/training/trained-model.js';

const features: FeatureEncoding[] = [
  { kind: 'numeric', name: 'a', type: 'DOUBLE', boolean: false, mean: 0, std: 1 },
  { kind: 'categorical', name: 'city', type: 'STRING', categories: ['lyon', 'oslo', 'rome'], mode: 'oslo' },
  { kind: 'numeric', name: 'b', type: 'DOUBLE', boolean: false, mean: 0, std: 1 },
  { kind: 'categorical', name: 'kind', type: 'STRING', categories: ['p', 'q'], mode: 'p' },
];

/** Encoded rows `[1, a, lyon, oslo, rome, b, p, q]`; the city is sometimes unseen (all zeros). */
const rows = Array.from({ length: 40 }, (_, r) => {
  const city = r % 4; // 3: a category left out by max-categories
  return [1, Math.sin(r) * 3.1, city === 0 ? 1 : 0, city === 1 ? 1 : 0, city === 2 ? 1 : 0, (r * 7919) % 13 / 3, r % 3 === 0 ? 1 : 0, r % 3 === 0 ? 0 : 1];
});

describe('productSums', () => {
  it('numbers the one-hot columns by their feature', () => {
    expect(oneHotFeatures(features)).toEqual([undefined, undefined, 1, 1, 1, undefined, 3, 3]);
  });

  it('gives XᵀX exactly while summing only the pairs the encoding does not fix', () => {
    const width = 8;
    const pairs = upperTriangle(width);
    const sum = (i: number, j: number) => rows.reduce((s, row) => s + row[i]! * row[j]!, 0);
    const plan = productSums(oneHotFeatures(features), pairs, width, (i, j) => `${i},${j}`);
    // 36 pairs; city: 3 zero pairs + 3 squares, kind: 1 zero pair + 2 squares
    expect(plan.sums).toHaveLength(pairs.length - 9);
    expect(plan.sums).not.toContain('2,3');
    expect(plan.sums).not.toContain('6,6');
    const results = plan.sums.map((s) => sum(...(s.split(',').map(Number) as [number, number])));
    expect(plan.values(results)).toEqual(pairs.map(([i, j]) => sum(i, j)));
  });

  it('works per block of a multi-logit Hessian (index a stands for column a % width)', () => {
    const width = 8;
    const pairs = upperTriangle(2 * width);
    const weight = (k: number, l: number, r: number) => (k === l ? 0.25 + r / 100 : -0.1 - r / 200);
    const sum = (a: number, b: number) => rows.reduce((s, row, r) => s + weight(Math.floor(a / width), Math.floor(b / width), r) * row[a % width]! * row[b % width]!, 0);
    const plan = productSums(oneHotFeatures(features), pairs, width, (a, b) => `${a},${b}`);
    expect(plan.sums.length).toBeLessThan(pairs.length);
    const results = plan.sums.map((s) => sum(...(s.split(',').map(Number) as [number, number])));
    expect(plan.values(results)).toEqual(pairs.map(([a, b]) => sum(a, b)));
  });
});
