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
import { rowMajorBatch } from '../../core/runtime/row-major-batch.js';

const { DuckDBDataChunk, JSDuckDBValueConverter, JSToDuckDBValueConverter } = duckdbApi;
type DuckDBDataChunk = import('@duckdb/node-api').DuckDBDataChunk;

/** Rows per DuckDB data chunk (STANDARD_VECTOR_SIZE). */
export const CHUNK_ROWS = 2048;

/**
 * Fixed-width values as DuckDB lays them out in a flat vector (`width` bytes a row, e.g. a
 * BIGINT's 8), copied byte for byte, with a NULL flag a row (made at the first NULL).
 */
export interface RawColumn {
  readonly kind: 'raw';
  readonly bytes: Uint8Array;
  readonly width: number;
  readonly nulls?: Uint8Array;
}

/** A column of rows to append: the core's values, or raw vector bytes. */
export type ChunkColumn = ColumnData | RawColumn;

/** One batch: the model's features, and the leading columns carried alongside. */
export interface CarriedBatch {
  readonly features: ColumnBatch;
  /** One per carried column, in order. */
  readonly carried: readonly RawColumn[];
}

/**
 * Builds feature batches of `batchSize` rows from data chunks whose first columns are
 * carried (fixed-width columns of `carriedWidths` bytes a row, copied byte for byte) and
 * whose other columns are the features, in order: `number` features are DOUBLE columns
 * (the query casts them), copied out of the vector's memory; `value` features are converted
 * to JS values. With `rowMajor`, the features are one `DOUBLE[k]` column instead (the query
 * builds the array on DuckDB's side), whose values lie row by row in its child vector: one
 * copy a chunk into the batch's matrix, for a runtime that takes one (`ColumnBatch.rowMajor`).
 * Each batch gets arrays of its own: reusing them would spare V8 the allocations, but those
 * allocations are what makes V8 collect the wrappers of fetched chunks, which hold DuckDB's
 * memory until collected (see stage-memory.test.ts).
 */
export class FeatureBatcher {
  /** Per feature: its numbers (`number` kind), their NULL mask (made at the first NULL), or its values (`value` kind). */
  private numbers: Float64Array[] = [];
  private nulls: (Uint8Array | undefined)[] = [];
  private values: unknown[][] = [];
  /** Per carried column: its bytes, and its NULL flags (made at the first NULL). */
  private bytes: Uint8Array[] = [];
  private carriedNulls: (Uint8Array | undefined)[] = [];
  /** With `rowMajor`: the features row by row, and the rows with a NULL one (made at the first). */
  private matrix = new Float64Array(0);
  private matrixNulls: Uint8Array | undefined;
  private rows = 0;

  constructor(
    private readonly kinds: readonly ('number' | 'value')[],
    private readonly batchSize: number,
    private readonly carriedWidths: readonly number[] = [],
    private readonly rowMajor = false,
  ) {
    this.reset();
  }

  /** Adds a chunk's rows; yields every batch that fills up. */
  *add(chunk: DuckDBDataChunk): Iterable<CarriedBatch> {
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
  rest(): CarriedBatch | undefined {
    return this.rows > 0 ? this.take() : undefined;
  }

  private copy(chunk: DuckDBDataChunk, from: number, count: number): void {
    const n = chunk.rowCount;
    const first = this.carriedWidths.length;
    for (let c = 0; c < first; c++) {
      const width = this.carriedWidths[c]!;
      const vector = duckdb.data_chunk_get_vector(chunk.chunk, c);
      const data = duckdb.vector_get_data(vector, n * width);
      this.bytes[c]!.set(data.subarray(from * width, (from + count) * width), this.rows * width);
      const validity = duckdb.vector_get_validity(vector, Math.ceil(n / 64) * 8);
      if (validity) markNulls(validity, from, count, () => (this.carriedNulls[c] ??= new Uint8Array(this.batchSize)), this.rows);
    }
    if (this.rowMajor) {
      this.copyRows(chunk, first, from, count);
      return;
    }
    for (let c = 0; c < this.kinds.length; c++) {
      if (this.kinds[c] === 'number') {
        const vector = duckdb.data_chunk_get_vector(chunk.chunk, c + first);
        const bytes = duckdb.vector_get_data(vector, n * 8);
        this.numbers[c]!.set(new Float64Array(bytes.buffer, bytes.byteOffset, n).subarray(from, from + count), this.rows);
        const validity = duckdb.vector_get_validity(vector, Math.ceil(n / 64) * 8);
        if (validity) markNulls(validity, from, count, () => (this.nulls[c] ??= new Uint8Array(this.batchSize)), this.rows);
      } else {
        const values = chunk.convertColumnValues(c + first, JSDuckDBValueConverter);
        const out = this.values[c]!;
        for (let i = 0; i < count; i++) out[this.rows + i] = values[from + i];
      }
    }
  }

  /** Copies rows `[from, from + count)` of the `DOUBLE[k]` column `index` into the matrix. */
  private copyRows(chunk: DuckDBDataChunk, index: number, from: number, count: number): void {
    const k = this.kinds.length;
    const n = chunk.rowCount;
    const child = duckdb.array_vector_get_child(duckdb.data_chunk_get_vector(chunk.chunk, index));
    const bytes = duckdb.vector_get_data(child, n * k * 8);
    const at = this.rows * k;
    this.matrix.set(new Float64Array(bytes.buffer, bytes.byteOffset, n * k).subarray(from * k, (from + count) * k), at);
    const validity = duckdb.vector_get_validity(child, Math.ceil((n * k) / 64) * 8);
    if (!validity) return;
    // A NULL feature makes its row NULL; the row's features are zeroed, as a runtime feeds NULL rows.
    const end = (from + count) * k;
    for (let bit = from * k; bit < end; bit++) {
      if (validity[bit >> 3] === 0xff && (bit & 7) === 0 && bit + 8 <= end) {
        bit += 7;
        continue;
      }
      if ((validity[bit >> 3]! & (1 << (bit & 7))) !== 0) continue;
      const row = Math.floor(bit / k) - from;
      (this.matrixNulls ??= new Uint8Array(this.batchSize))[this.rows + row] = 1;
      this.matrix.fill(0, at + row * k, at + (row + 1) * k);
      bit = (Math.floor(bit / k) + 1) * k - 1;
    }
  }

  private take(): CarriedBatch {
    const n = this.rows;
    const carried = this.carriedWidths.map((width, c): RawColumn => {
      const nulls = this.carriedNulls[c];
      const bytes = this.bytes[c]!.subarray(0, n * width);
      return nulls ? { kind: 'raw', bytes, width, nulls: nulls.subarray(0, n) } : { kind: 'raw', bytes, width };
    });
    if (this.rowMajor) {
      const k = this.kinds.length;
      const nulls = this.matrixNulls?.subarray(0, n);
      const features = rowMajorBatch(n, nulls ? { values: this.matrix.subarray(0, n * k), width: k, nulls } : { values: this.matrix.subarray(0, n * k), width: k });
      this.reset();
      return { features, carried };
    }
    const columns = this.kinds.map((kind, c): ColumnData => {
      if (kind === 'value') return { kind: 'value', values: this.values[c]!.slice(0, n) };
      const nulls = this.nulls[c];
      return nulls ? { kind: 'number', values: this.numbers[c]!.subarray(0, n), nulls: nulls.subarray(0, n) } : { kind: 'number', values: this.numbers[c]!.subarray(0, n) };
    });
    this.reset();
    return { features: { rowCount: n, columns }, carried };
  }

  private reset(): void {
    this.rows = 0;
    this.matrix = new Float64Array(this.rowMajor ? this.batchSize * this.kinds.length : 0);
    this.matrixNulls = undefined;
    this.numbers = this.kinds.map((kind) => new Float64Array(kind === 'number' && !this.rowMajor ? this.batchSize : 0));
    this.nulls = this.kinds.map(() => undefined);
    this.values = this.kinds.map((kind) => new Array<unknown>(kind === 'value' ? this.batchSize : 0));
    this.bytes = this.carriedWidths.map((width) => new Uint8Array(this.batchSize * width));
    this.carriedNulls = this.carriedWidths.map(() => undefined);
  }
}

/**
 * Flags the invalid rows `from + i` of a validity mask (bit set = valid) as NULL rows
 * `at + i` of the array `flags()` returns (made at the first NULL).
 */
function markNulls(validity: Uint8Array, from: number, count: number, flags: () => Uint8Array, at: number): void {
  for (let i = 0; i < count; i++) {
    const row = from + i;
    if ((validity[row >> 3]! & (1 << (row & 7))) === 0) flags()[at + i] = 1;
  }
}

/**
 * Appends a batch to an Appender whose columns have `types`, in chunks of {@link CHUNK_ROWS}
 * rows. One chunk is filled again for each slice (the Appender copies what it is given):
 * the bindings free a chunk only when V8 collects its wrapper, a few bytes on V8's heap, so
 * a new chunk per slice piles up native memory until V8 happens to collect.
 */
export function appendBatch(appender: DuckDBAppender, types: readonly DuckDBType[], batch: { readonly rowCount: number; readonly columns: readonly ChunkColumn[] }): void {
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
function fillColumn(chunk: DuckDBDataChunk, index: number, type: DuckDBType, column: ChunkColumn, start: number, n: number): void {
  if (column.kind === 'raw') {
    fillRaw(chunk, index, column, start, n);
    return;
  }
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

/** Copies rows `[start, start + n)` of raw bytes into vector `index`, and marks their NULLs invalid. */
function fillRaw(chunk: DuckDBDataChunk, index: number, column: RawColumn, start: number, n: number): void {
  const vector = duckdb.data_chunk_get_vector(chunk.chunk, index);
  const { bytes, width, nulls } = column;
  duckdb.copy_data_to_vector(vector, 0, bytes.buffer as ArrayBuffer, bytes.byteOffset + start * width, n * width);
  if (!hasNull(nulls, start, n)) return;
  // The bindings hand out a copy of a validity mask: the mask is built here and copied in.
  const bytesUsed = Math.ceil(n / 64) * 8;
  const mask = validityScratch.fill(0xff, 0, bytesUsed);
  for (let i = 0; i < n; i++) if (nulls![start + i]) mask[i >> 3] = mask[i >> 3]! & ~(1 << (i & 7));
  duckdb.vector_ensure_validity_writable(vector);
  duckdb.copy_data_to_vector_validity(vector, 0, mask.buffer, 0, bytesUsed);
}

/** Scratch validity mask of one chunk (a bit a row, set = valid). */
const validityScratch = new Uint8Array(CHUNK_ROWS / 8);

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
