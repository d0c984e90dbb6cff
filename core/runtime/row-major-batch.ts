/**
 * A batch whose number features were read row by row (a DuckDB stage reads them as one
 * fixed-size array a row): a runtime that takes one matrix uses `rowMajor` as it is, and
 * `columns`, for any other reader, is made from it when first read.
 */
import type { ColumnBatch, ColumnData, RowMajorFeatures } from '../model-types.js';

/**
 * The batch of `rowCount` rows of `features`.
 *
 * @example
 * const batch = rowMajorBatch(2, { values: new Float64Array([1, 2, 3, 4]), width: 2 });
 * batch.columns[1] // { kind: 'number', values: Float64Array [2, 4] }
 */
export function rowMajorBatch(rowCount: number, features: RowMajorFeatures): ColumnBatch {
  let columns: ColumnData[] | undefined;
  return {
    rowCount,
    rowMajor: features,
    get columns(): readonly ColumnData[] {
      return (columns ??= columnsOf(rowCount, features));
    },
  };
}

function columnsOf(rows: number, { values, width, nulls }: RowMajorFeatures): ColumnData[] {
  return Array.from({ length: width }, (_, j): ColumnData => {
    const column = new Float64Array(rows);
    for (let i = 0, o = j; i < rows; i++, o += width) column[i] = values[o]!;
    return nulls ? { kind: 'number', values: column, nulls } : { kind: 'number', values: column };
  });
}
