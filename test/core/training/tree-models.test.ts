/**
 * Unit tests of the pure parts of the tree algorithms: split choice from histograms (by
 * hand), the tree options' defaults, and the compiled CASE expression.
 */
import { DuckDBDialect } from '../../../adapters/duckdb/duckdb-dialect.js';
import { PostgresDialect } from '../../../adapters/postgres/postgres-dialect.js';
import { compileModel, treeExpression } from '../../../core/training/compile-sql.js';
import { SPEC_FORMAT, type TrainedModel } from '../../../core/training/trained-model.js';
import { parseTrainingOptions } from '../../../core/training/training-options.js';
import { bestSplit, type HistogramBin } from '../../../core/training/tree-models.js';

const bin = (b: number, stats: number[], min: number, max: number): HistogramBin => ({ bin: b, stats, min, max });

describe('bestSplit', () => {
  it('picks the squared-error split computed by hand', () => {
    // y = 1, 1 at x = 1, 2; y = 10, 10 at x = 3, 4: left 2²/2 + right 20²/2 - 22²/4 = 2 + 200 - 121 = 81.
    const split = bestSplit([[bin(1, [2, 20], 3, 4), bin(0, [2, 2], 1, 2)]], 'variance', 1)!;
    expect(split).toMatchObject({ feature: 0, threshold: 2.5, left: [2, 2], right: [2, 20] });
    expect(split.gain).toBeCloseTo(81, 12);
  });

  it('uses Gini for class counts and prefers the purer cut', () => {
    // Feature 0 separates the classes perfectly; feature 1 does not.
    const f0 = [bin(0, [3, 3, 0], 0, 0.2), bin(5, [3, 0, 3], 0.8, 1)];
    const f1 = [bin(0, [3, 2, 1], -1, -1), bin(1, [3, 1, 2], 1, 1)];
    const split = bestSplit([f1, f0], 'gini', 1)!;
    expect(split.feature).toBe(1);
    expect(split.threshold).toBeCloseTo(0.5, 12);
    // Σ n_c²/n: children 9/3 + 9/3 = 6, parent (9 + 9)/6 = 3.
    expect(split.gain).toBeCloseTo(3, 12);
  });

  it('respects min-rows, needs a positive gain, and breaks ties toward the lower feature', () => {
    const h = [bin(0, [1, 0], 0, 0), bin(1, [3, 30], 1, 3)];
    expect(bestSplit([h], 'variance', 1)?.threshold).toBe(0.5);
    expect(bestSplit([h], 'variance', 2)).toBeUndefined();
    expect(bestSplit([[bin(0, [2, 4], 0, 0), bin(1, [2, 4], 1, 1)]], 'variance', 1)).toBeUndefined(); // same mean: no gain
    expect(bestSplit([h, h], 'variance', 1)?.feature).toBe(0);
    expect(bestSplit([[bin(0, [4, 4], 2, 2)]], 'variance', 1)).toBeUndefined(); // one bin
  });
});

describe('tree options', () => {
  it('fills in the documented defaults and infers the task from the label', () => {
    expect(parseTrainingOptions([['algorithm', 'decision_tree'], ['label', 'y']], () => undefined, () => true)).toMatchObject({ task: 'regression', maxDepth: 5, bins: 32, minRows: 1 });
    expect(parseTrainingOptions([['algorithm', 'gradient_boosted_trees'], ['label', 'y']], () => undefined, () => false)).toMatchObject({
      task: 'classification',
      maxDepth: 5,
      rounds: 50,
      learningRate: 0.1,
      bins: 32,
      minRows: 1,
    });
  });

  it.each([
    [[['max-depth', '13']], /'max-depth' must be an integer from 1 to 12/],
    [[['learning-rate', '0']], /'learning-rate' must be a number in \(0, 1\]/],
    [[['rounds', '1001']], /'rounds' must be an integer from 1 to 1000/],
    [[['bins', '1']], /'bins' must be an integer from 2 to 1024/],
    [[['l2', '1']], /'l2' does not apply/],
  ])('rejects %j', (extra, message) => {
    expect(() => parseTrainingOptions([['algorithm', 'gradient_boosted_trees'], ['label', 'y'], ...(extra as [string, string][])])).toThrow(message);
  });
});

describe('compiled trees', () => {
  const d = new DuckDBDialect();
  const tree = { leaf: false as const, feature: 0, threshold: 0.25, left: { leaf: true as const, value: 1 }, right: { leaf: true as const, value: 3 } };

  it('is a nested CASE WHEN over the encoded features', () => {
    expect(treeExpression(d, tree, ['x0'])).toBe("(CASE WHEN (x0 <= CAST('0.25' AS DOUBLE)) THEN CAST('1' AS DOUBLE) ELSE CAST('3' AS DOUBLE) END)");
    expect(treeExpression(new PostgresDialect(), tree, ['x0'])).toBe(
      '(CASE WHEN (x0 OPERATOR(pg_catalog.<=) CAST(0.25 AS double precision)) THEN CAST(1 AS double precision) ELSE CAST(3 AS double precision) END)',
    );
    const spec: TrainedModel = {
      format: SPEC_FORMAT,
      algorithm: 'gradient_boosted_trees',
      task: 'regression',
      label: { name: 'y', type: 'DOUBLE' },
      features: [{ kind: 'numeric', name: 'a', type: 'DOUBLE', boolean: false, mean: 2, std: 4 }],
      parameters: { kind: 'trees', base: [10], trees: [[tree, tree]], probabilityLeaves: false },
      input: [{ name: 'a', type: 'DOUBLE' }],
      output: [{ name: 'predicted_y', type: 'DOUBLE' }],
    };
    const { outputs } = compileModel(spec, d, ['"a"'], true);
    expect(outputs[0]).toContain('CASE WHEN');
    expect(outputs[0]!.match(/CASE WHEN/g)).toHaveLength(2);
  });
});
