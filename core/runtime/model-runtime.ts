/**
 * The one interface every model runtime implements (ONNX today, remote providers later):
 * columnar batches in, columnar batches out.
 */

/**
 * One column of a batch. Numbers travel as typed arrays with an optional null mask
 * (`nulls[i] === 1` means row i is NULL); everything else as a plain array of JS values
 * (`null` for NULL).
 */
export type ColumnData =
  | { readonly kind: 'number'; readonly values: Float64Array | Float32Array | Int32Array; readonly nulls?: Uint8Array }
  | { readonly kind: 'value'; readonly values: readonly unknown[] };

/** A batch of rows, column by column, columns in the model's INPUT (or OUTPUT) order. */
export interface ColumnBatch {
  readonly rowCount: number;
  readonly columns: readonly ColumnData[];
}

/** A model column as stored in the catalog: `type` is canonical Flink type text (`DOUBLE`, `ARRAY<FLOAT>`). */
export interface ModelColumn {
  readonly name: string;
  readonly type: string;
  readonly comment?: string;
}

/** Options for one `predictBatch` call. */
export interface PredictOptions {
  /** Aborted when the query is cancelled; a runtime stops work as soon as it can. */
  readonly signal?: AbortSignal;
}

/**
 * A loaded model, ready to predict. Rows with a NULL in any input column get NULL in
 * every output column.
 */
export interface ModelRuntime {
  /** Provider name, for errors and lineage (`onnx`, `openai`, ...). */
  readonly provider: string;
  /** Rows per `predictBatch` call that the runtime handles best. */
  readonly preferredBatchSize: number;
  /** How the host should hand over each INPUT column: `number` columns arrive as `kind: 'number'`. */
  readonly inputKinds: readonly ('number' | 'value')[];
  /** Predicts one batch; the result has one column per model OUTPUT column, `rowCount` rows. */
  predictBatch(batch: ColumnBatch, options?: PredictOptions): Promise<ColumnBatch>;
  /** Frees native resources. */
  close(): Promise<void>;
}
