/**
 * Unit tests of the pure parts of core/training: option validation, the SQL compiler and
 * the linear algebra.
 */
import { DuckDBDialect } from '../../../adapters/duckdb/duckdb-dialect.js';
import { compileModel, linearExpression } from '../../../core/training/compile-sql.js';
import { choleskySolve, solveSymmetric } from '../../../core/training/linear-algebra.js';
import { SPEC_FORMAT, type TrainedModel } from '../../../core/training/trained-model.js';
import { parseTrainingOptions } from '../../../core/training/training-options.js';

const d = new DuckDBDialect();

describe('parseTrainingOptions', () => {
  it('fills in every default', () => {
    const o = parseTrainingOptions([['algorithm', 'linear_regression'], ['label', 'y']]);
    expect(o).toMatchObject({ algorithm: 'linear_regression', task: 'regression', label: 'y', testSplit: 0, seed: 42, l2: 0, maxCategories: 100, runtime: 'sql' });
    expect(parseTrainingOptions([['ALGORITHM', 'Logistic_Regression'], ['label', 'c']])).toMatchObject({ task: 'classification', l2: 1e-4, maxIterations: 100, tolerance: 1e-10 });
    expect(parseTrainingOptions([['algorithm', 'kmeans']])).toMatchObject({ task: 'clustering', k: 3, tolerance: 1e-8 });
  });

  it.each([
    [[['label', 'y']], /needs 'algorithm'/],
    [[['algorithm', 'svm'], ['label', 'y']], /unknown algorithm 'svm'/],
    [[['algorithm', 'linear_regression']], /needs 'label'/],
    [[['algorithm', 'kmeans'], ['label', 'y']], /takes no 'label'/],
    [[['algorithm', 'linear_regression'], ['label', 'y'], ['task', 'classification']], /does not do task 'classification'/],
    [[['algorithm', 'linear_regression'], ['label', 'y'], ['max-iterations', '3']], /'max-iterations' does not apply/],
    [[['algorithm', 'linear_regression'], ['label', 'y'], ['l2', '-1']], /'l2' must be a number >= 0/],
    [[['algorithm', 'kmeans'], ['k', '2.5']], /'k' must be an integer >= 1/],
    [[['algorithm', 'linear_regression'], ['label', 'y'], ['test-split', '1']], /'test-split' must be a number in \[0, 1\)/],
    [[['algorithm', 'linear_regression'], ['label', 'y'], ['runtime', 'gpu']], /'runtime' must be 'sql' or 'onnx'/],
  ] as const)('rejects %j', (options, message) => {
    expect(() => parseTrainingOptions(options as unknown as [string, string][])).toThrow(message);
  });
});

describe('compileModel', () => {
  const features = [
    { kind: 'numeric', name: 'x', type: 'DOUBLE', boolean: false, mean: 2, std: 4 },
    { kind: 'categorical', name: 'c', type: 'STRING', categories: ["it's", 'b'], mode: 'b' },
  ] as const;

  it('folds standardization into the weights and imputes a NULL with the mean, term by term', () => {
    const sql = linearExpression(d, features, ['"x"', '"c"'], 1, [8, 3, 0]);
    // a = 8 / 4 = 2, bias = 1 - 2 * 2 = -3; the zero weight of 'b' is left out; the quote is escaped
    expect(sql).toBe(
      "((CAST('-3' AS DOUBLE) + (coalesce(CAST(\"x\" AS DOUBLE PRECISION), CAST('2' AS DOUBLE)) * CAST('2' AS DOUBLE))) + (CASE WHEN (coalesce(\"c\", 'b') = 'it''s') THEN CAST('3' AS DOUBLE) ELSE CAST('0' AS DOUBLE) END))",
    );
  });

  it('compiles k-means to the first nearest centroid, in layers or inline', () => {
    const spec: TrainedModel = {
      format: SPEC_FORMAT,
      algorithm: 'kmeans',
      task: 'clustering',
      features: [features[0]],
      parameters: { kind: 'kmeans', centroids: [[0], [1]], seeds: [[0], [1]], iterations: 1 },
      input: [{ name: 'x', type: 'DOUBLE' }],
      output: [{ name: 'cluster_id', type: 'BIGINT' }],
    };
    const layered = compileModel(spec, d, ['"x"'], false);
    expect(layered.layers).toHaveLength(2);
    expect(layered.outputs[0]).toBe('(CASE WHEN ("__modelsql_c1" <= "__modelsql_c2") THEN CAST(0 AS BIGINT) ELSE CAST(1 AS BIGINT) END)');
    const inline = compileModel(spec, d, ['"x"'], true);
    expect(inline.layers).toHaveLength(0);
    expect(inline.outputs[0]).not.toContain('__modelsql');
  });
});

describe('linear algebra', () => {
  it('solves SPD systems by Cholesky and singular ones with the least jitter', () => {
    expect(choleskySolve([[4, 2], [2, 3]], [2, 1])).toEqual([0.5, 0]);
    expect(choleskySolve([[1, 1], [1, 1]], [1, 1])).toBeUndefined();
    const x = solveSymmetric([[1, 1], [1, 1]], [2, 2]);
    expect(x[0]! + x[1]!).toBeCloseTo(2, 6);
    expect(x[0]).toBeCloseTo(x[1]!, 6); // the minimum-norm solution
  });
});
