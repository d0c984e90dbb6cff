/**
 * Columnar moves between DuckDB data chunks and the core's `ColumnBatch`: features are read
 * straight from a chunk's vector memory (`duckdb_vector_get_data`, a view of DuckDB's own
 * buffer) into typed arrays, and predictions are written into new chunks for an Appender
 * (`duckdb_append_data_chunk`), a whole vector at a time where the types allow
 * (https://duckdb.org/docs/stable/clients/c/vector, https://duckdb.org/docs/stable/clients/c/appender).
 */
import type { DuckDBAppender, DuckDBType } from '@duckdb/node-api';
import { duckdbApi, duckdbBindings as duckdb } from './duckdb-api.js';
import type { ColumnBatch, ColumnData } from '../../core/model-types.js';

const { DuckDBDataChunk, JSDuckDBValueConverter, JSToDuckDBValueConverter } = duckdbApi;
type DuckDBDataChunk = import('@duckdb/node-api').DuckDBDataChunk;

/** Rows per DuckDB data chunk (STANDARD_VECTOR_SIZE). */
export const CHUNK_ROWS = 2048;

/**
 * Builds feature batches of `batchSize` rows from data chunks whose columns are the
 * features, in order: `number` features are DOUBLE columns (the query casts them), copied
 * out of the vector's memory; `value` features are converted to JS values.
 */
export class FeatureBatcher {
  /** Per feature: its numbers (`number` kind), their NULL mask (made at the first NULL), or its values (`value` kind). */
  private numbers: Float64Array[] = [];
  private nulls: (Uint8Array | undefined)[] = [];
  private values: unknown[][] = [];
  private keys = new BigInt64Array(0);
  private rows = 0;

  /** With `keyed`, each chunk's first column is a BIGINT key (a rowid), handed out with the batch, and the features follow it. */
  constructor(
    private readonly kinds: readonly ('number' | 'value')[],
    private readonly batchSize: number,
    private readonly keyed = false,
  ) {
    this.reset();
  }

  /** Adds a chunk's rows; yields every batch that fills up. */
  *add(chunk: DuckDBDataChunk): Iterable<KeyedBatch> {
    const n = chunk.rowCount;
    for (let from = 0; from < n; ) {
      const take = Math.min(n - from, this.batchSize - this.rows);
      this.copy(chunk, from, take);
      from += take;
      this.rows += take;
      if (this.rows === this.batchSize) yield this.take();
    }
  }

  /** The last, partial batch, if any rows are left. */
  rest(): KeyedBatch | undefined {
    return this.rows > 0 ? this.take() : undefined;
  }

  private copy(chunk: DuckDBDataChunk, from: number, count: number): void {
    const n = chunk.rowCount;
    const first = this.keyed ? 1 : 0;
    if (this.keyed) {
      const bytes = duckdb.vector_get_data(duckdb.data_chunk_get_vector(chunk.chunk, 0), n * 8);
      this.keys.set(new BigInt64Array(bytes.buffer, bytes.byteOffset, n).subarray(from, from + count), this.rows);
    }
    for (let c = 0; c < this.kinds.length; c++) {
      if (this.kinds[c] === 'number') {
        const vector = duckdb.data_chunk_get_vector(chunk.chunk, c + first);
        const bytes = duckdb.vector_get_data(vector, n * 8);
        this.numbers[c]!.set(new Float64Array(bytes.buffer, bytes.byteOffset, n).subarray(from, from + count), this.rows);
        const validity = duckdb.vector_get_validity(vector, Math.ceil(n / 64) * 8);
        if (validity) this.markNulls(c, validity, from, count);
      } else {
        const values = chunk.convertColumnValues(c + first, JSDuckDBValueConverter);
        const out = this.values[c]!;
        for (let i = 0; i < count; i++) out[this.rows + i] = values[from + i];
      }
    }
  }

  /** Marks the invalid rows `from + i` of a validity mask (bit set = valid) as NULL rows `this.rows + i` of feature `c`. */
  private markNulls(c: number, validity: Uint8Array, from: number, count: number): void {
    for (let i = 0; i < count; i++) {
      const row = from + i;
      if ((validity[row >> 3]! & (1 << (row & 7))) === 0) (this.nulls[c] ??= new Uint8Array(this.batchSize))[this.rows + i] = 1;
    }
  }

  private take(): KeyedBatch {
    const n = this.rows;
    const columns = this.kinds.map((kind, c): ColumnData => {
      if (kind === 'value') return { kind: 'value', values: this.values[c]!.slice(0, n) };
      const nulls = this.nulls[c];
      return nulls ? { kind: 'number', values: this.numbers[c]!.subarray(0, n), nulls: nulls.subarray(0, n) } : { kind: 'number', values: this.numbers[c]!.subarray(0, n) };
    });
    const keys = this.keyed ? this.keys.subarray(0, n) : undefined;
    this.reset();
    return { features: { rowCount: n, columns }, keys };
  }

  private reset(): void {
    this.rows = 0;
    if (this.keyed) this.keys = new BigInt64Array(this.batchSize);
    this.numbers = this.kinds.map((kind) => new Float64Array(kind === 'number' ? this.batchSize : 0));
    this.nulls = this.kinds.map(() => undefined);
    this.values = this.kinds.map((kind) => new Array<unknown>(kind === 'value' ? this.batchSize : 0));
  }
}

/** A batch of features, and their rows' keys when the batcher is keyed. */
export interface KeyedBatch {
  readonly features: ColumnBatch;
  readonly keys: BigInt64Array | undefined;
}

/**
 * Appends a batch to an Appender whose columns have `types`, in chunks of {@link CHUNK_ROWS}
 * rows. One chunk is filled again for each slice (the Appender copies what it is given):
 * the bindings free a chunk only when V8 collects its wrapper, a few bytes on V8's heap, so
 * a new chunk per slice piles up native memory until V8 happens to collect.
 */
export function appendBatch(appender: DuckDBAppender, types: readonly DuckDBType[], batch: ColumnBatch): void {
  let chunk: DuckDBDataChunk | undefined;
  for (let start = 0; start < batch.rowCount; start += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, batch.rowCount - start);
    if (chunk) chunk.reset();
    else chunk = DuckDBDataChunk.create(types);
    chunk.rowCount = n;
    for (let i = 0; i < batch.columns.length; i++) fillColumn(chunk, i, types[i]!, batch.columns[i]!, start, n);
    appender.appendDataChunk(chunk);
  }
}

/** Scratch buffers for whole-vector writes, by element type. */
const scratch = { DOUBLE: new Float64Array(CHUNK_ROWS), FLOAT: new Float32Array(CHUNK_ROWS) };

/** Writes rows `[start, start + n)` of a batch column into vector `index` of `chunk`. */
function fillColumn(chunk: DuckDBDataChunk, index: number, type: DuckDBType, column: ColumnData, start: number, n: number): void {
  const typeName = type.toString();
  if (column.kind === 'number' && (typeName === 'DOUBLE' || typeName === 'FLOAT') && !hasNull(column.nulls, start, n)) {
    // No NULL: the values go into the vector's memory in one copy (the validity mask stays all-valid).
    const buffer = scratch[typeName];
    const source = column.values.subarray(start, start + n);
    if (source instanceof (typeName === 'DOUBLE' ? Float64Array : Float32Array)) buffer.set(source as Float64Array & Float32Array);
    else for (let i = 0; i < n; i++) buffer[i] = source[i]!;
    duckdb.copy_data_to_vector(duckdb.data_chunk_get_vector(chunk.chunk, index), 0, buffer.buffer, 0, n * buffer.BYTES_PER_ELEMENT);
    return;
  }
  if (column.kind === 'number' && (typeName === 'DOUBLE' || typeName === 'FLOAT' || typeName === 'INTEGER')) {
    const vector = chunk.getColumnVector(index) as unknown as { setItem(i: number, v: number | null): void; flush(): void };
    const { values, nulls } = column;
    for (let i = 0; i < n; i++) vector.setItem(i, nulls && nulls[start + i] ? null : values[start + i]!);
    vector.flush();
    return;
  }
  const values: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) {
    if (column.kind === 'number') {
      values[i] = column.nulls && column.nulls[start + i] ? null : column.values[start + i];
    } else {
      values[i] = column.values[start + i] ?? null;
    }
  }
  chunk.setColumnValuesConverted(index, values.map((v) => coerceForType(v, typeName)) as never[], JSToDuckDBValueConverter);
}

function hasNull(nulls: Uint8Array | undefined, start: number, n: number): boolean {
  if (!nulls) return false;
  for (let i = start; i < start + n; i++) if (nulls[i]) return true;
  return false;
}

/** Adjusts a JS value to what the converter expects for `typeName` (bigint for 64-bit integers, numbers for floats). */
function coerceForType(value: unknown, typeName: string): unknown {
  if (value === null || value === undefined) return null;
  if ((typeName === 'BIGINT' || typeName === 'HUGEINT' || typeName === 'UBIGINT') && typeof value === 'number') return BigInt(Math.round(value));
  if ((typeName === 'INTEGER' || typeName === 'SMALLINT' || typeName === 'TINYINT') && typeof value === 'bigint') return Number(value);
  if ((typeName === 'DOUBLE' || typeName === 'FLOAT') && typeof value === 'bigint') return Number(value);
  if (typeName === 'VARCHAR' && typeof value !== 'string') return typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (typeName.endsWith('[]') && ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number>);
  return value;
}
