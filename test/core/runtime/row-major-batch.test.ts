/** A batch read row by row gives any reader of columns the same columns, made once. */
import { rowMajorBatch } from '../../../core/runtime/row-major-batch.js';

describe('rowMajorBatch', () => {
  it('makes each column from the rows, with the NULL rows, once', () => {
    const nulls = new Uint8Array([0, 1, 0]);
    const batch = rowMajorBatch(3, { values: new Float64Array([1, 2, 3, 0, 0, 0, 7, 8, 9]), width: 3, nulls });
    expect(batch.rowMajor?.width).toBe(3);
    expect(batch.columns.map((c) => Array.from(c.values as Float64Array))).toEqual([
      [1, 0, 7],
      [2, 0, 8],
      [3, 0, 9],
    ]);
    expect(batch.columns.every((c) => c.kind === 'number' && c.nulls === nulls)).toBe(true);
    expect(batch.columns).toBe(batch.columns);
  });

  it('reads only the first rowCount rows of a longer array', () => {
    const batch = rowMajorBatch(1, { values: new Float64Array([4, 5, 6, 7]), width: 2 });
    expect(batch.columns.map((c) => Array.from(c.values as Float64Array))).toEqual([[4], [5]]);
    expect(batch.columns[0]).not.toHaveProperty('nulls');
  });
});
