/**
 * Predictions kept in this process and read back by the statement around the call through
 * a scalar function, by each input row's rowid:
 * `__modelsql_stage_double(stage, column, i.rowid)` (and `_float`, `_integer`).
 *
 * Why: the other way to pair the i-th input row with the i-th prediction, a POSITIONAL
 * JOIN with a table of predictions, is scanned by DuckDB on one thread, so a `CREATE TABLE
 * ... AS SELECT *` over it copies and writes every input column on that thread. A scan of
 * the input that calls a scalar function runs on every thread and keeps the input's order
 * (DuckDB's insertion order is kept by the batch index of a table scan, as for any
 * projection), and there is no table of predictions to write and read. Measured on
 * 1,000,000 rows (docs/performance.md): as fast as the model written as a SQL expression.
 *
 * The function runs on the JavaScript thread: DuckDB's threads call it through the
 * bindings' thread-safe call while the statement runs asynchronously, one call per chunk
 * (2,048 rows); a call copies the chunk's predictions into the output vector. Rows are
 * found by rowid runs: the stage reads the rowids in order with the features, and a run of
 * consecutive rowids (a table without deletes is one run) maps to consecutive predictions.
 *
 * Used for DOUBLE, FLOAT and INTEGER outputs of a stage whose input keeps insertion order
 * (see duckdb-stage.ts); other outputs keep the table of predictions.
 *
 * The functions can be called by hand: a call finds only a stage its own database is
 * running, read as the type its column holds (the function writes the output vector's
 * memory directly); any other call fails, whatever id it names.
 *
 * Memory: the predictions themselves (8 or 4 bytes a row and output, 4 for a DOUBLE that a
 * float32 graph answers, in blocks of {@link BLOCK_ROWS} rows, plus a NULL flag a row
 * where a prediction is NULL) and 16 bytes a run of rowids, held until the statement's
 * temporary tables are dropped.
 */
import { randomInt } from 'node:crypto';
import { BIGINT, DOUBLE, DuckDBScalarFunction, FLOAT, INTEGER, type DuckDBConnection, type DuckDBType } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import { ModelSqlError } from '../../core/errors.js';
import type { ChunkColumn, RawColumn } from './duckdb-chunks.js';

/** Rows a block of predictions holds (a power of two). */
const BLOCK_SHIFT = 16;
const BLOCK_ROWS = 1 << BLOCK_SHIFT;

type LookupArray = Float64Array | Float32Array | Int32Array;

/** The output types read back by a function, with the function's name and its typed array. */
const LOOKUP_TYPES: Readonly<Record<string, { readonly fn: string; readonly type: DuckDBType; readonly make: (n: number) => LookupArray }>> = {
  DOUBLE: { fn: '__modelsql_stage_double', type: DOUBLE, make: (n) => new Float64Array(n) },
  FLOAT: { fn: '__modelsql_stage_float', type: FLOAT, make: (n) => new Float32Array(n) },
  INTEGER: { fn: '__modelsql_stage_integer', type: INTEGER, make: (n) => new Int32Array(n) },
};

/** The stages whose predictions are held, by their id (random: a guessed id finds nothing). */
const stores = new Map<number, PredictionStore>();

/** Whether every output type can be read back by a lookup function. */
export function lookupSupported(types: readonly string[]): boolean {
  return types.every((t) => LOOKUP_TYPES[t.toUpperCase()] !== undefined);
}

/**
 * The owner of the stores a connection's functions read, by the connection that registered
 * them: the functions of one database read its own stages only, not those of another
 * database this process has open (the id of a running stage is in its statement's text).
 */
const owners = new WeakMap<DuckDBConnection, object>();

/** Registers the lookup functions through `connection`, once; the owner of its stores. */
function register(connection: DuckDBConnection): object {
  const known = owners.get(connection);
  if (known) return known;
  const owner = {};
  for (const [typeName, { fn, type }] of Object.entries(LOOKUP_TYPES)) {
    const scalar = DuckDBScalarFunction.create({ name: fn, returnType: type, parameterTypes: [BIGINT, INTEGER, BIGINT], mainFunction: () => undefined });
    // The bindings' raw callback: no wrapper objects per chunk.
    duckdb.scalar_function_set_function(scalar.scalar_function, (info, input, output) => {
      const n = duckdb.data_chunk_get_size(input);
      // The stage and the column are constants: the first row's values.
      const id = Number(view(duckdb.vector_get_data(duckdb.data_chunk_get_vector(input, 0), 8)).getBigInt64(0, true));
      const column = view(duckdb.vector_get_data(duckdb.data_chunk_get_vector(input, 1), 4)).getInt32(0, true);
      const store = stores.get(id);
      // A column of another type would be written at its own width into this output vector.
      if (!store || !store.readableAs(owner, column, typeName)) {
        duckdb.scalar_function_set_error(info, 'the predictions of this ML call are no longer held');
        return;
      }
      try {
        store.fill(column, duckdb.vector_get_data(duckdb.data_chunk_get_vector(input, 2), n * 8), n, output);
      } catch (error) {
        duckdb.scalar_function_set_error(info, error instanceof Error ? error.message : String(error));
      }
    });
    connection.registerScalarFunction(scalar);
  }
  owners.set(connection, owner);
  return owner;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Predictions of one stage, by rowid. `append` as batches come (rowids ascending within the
 * input's order), `seal` once the input is read, `outputExpressions` for the statement,
 * `release` when it is done.
 */
export class PredictionStore {
  readonly id = randomInt(1, 2 ** 47);
  private readonly blocks: LookupArray[][];
  private readonly nullBlocks: (Uint8Array | undefined)[][];
  private rows = 0;
  /** Runs of consecutive rowids: first rowid, index of its prediction (ascending by rowid). */
  private runRowid: number[] = [];
  private runIndex: number[] = [];
  private sorted = true;
  /** Lengths of the runs once sorted out of input order (else from the next run's index). */
  private runLength: number[] | undefined;
  private readonly scratch: LookupArray[];
  /**
   * Rowids as exact numbers: a rowid is 64 bits, and DuckDB numbers a transaction's own new
   * rows far above its committed ones, past a double's 53. Each window of 2^40 rowids met
   * gets a segment number in the order met, and a rowid's key is its segment's 2^40 plus its
   * place in the window: exact, and in the input's order where the rowids are.
   */
  private readonly segments = new Map<number, number>();
  private lastWindow = -1;
  private lastSegment = 0;

  private constructor(
    private readonly types: readonly string[],
    private readonly owner: object,
  ) {
    this.blocks = types.map(() => []);
    this.nullBlocks = types.map(() => []);
    this.scratch = types.map((t) => LOOKUP_TYPES[t.toUpperCase()]!.make(2048));
  }

  /** A store for outputs of `types` ({@link lookupSupported}), its functions registered through `connection`. */
  static open(connection: DuckDBConnection, types: readonly string[]): PredictionStore {
    const store = new PredictionStore(types, register(connection));
    stores.set(store.id, store);
    return store;
  }

  /** Whether the functions of `owner` may read column `c` as `type` (DOUBLE, FLOAT, INTEGER): the store's own, a column it has, of that type. */
  readableAs(owner: object, c: number, type: string): boolean {
    return owner === this.owner && c >= 0 && c < this.types.length && this.types[c]!.toUpperCase() === type;
  }

  /** The key of the rowid `hi` · 2^32 + `lo`; NaN for one of a window not met while appending (`create` false) or past 8,192 windows. */
  private key(lo: number, hi: number, create: boolean): number {
    const window = hi >>> 8;
    if (window !== this.lastWindow) {
      let segment = this.segments.get(window);
      if (segment === undefined) {
        if (!create || this.segments.size >= 8192) return NaN;
        segment = this.segments.size;
        this.segments.set(window, segment);
      }
      this.lastWindow = window;
      this.lastSegment = segment;
    }
    return this.lastSegment * 2 ** 40 + (hi & 0xff) * 0x1_0000_0000 + lo;
  }

  /** The call's output columns for the statement: `fn(stage, k, <rowid>) AS <name>`. */
  outputExpressions(rowid: string, names: readonly string[]): string[] {
    return names.map((name, k) => `${LOOKUP_TYPES[this.types[k]!.toUpperCase()]!.fn}(${this.id}, ${k}, ${rowid}) AS ${name}`);
  }

  /** Adds a batch: its rowids (8 bytes each) and its outputs. */
  append(rowids: RawColumn, outputs: { readonly rowCount: number; readonly columns: readonly ChunkColumn[] }): void {
    const n = outputs.rowCount;
    const words = new Uint32Array(rowids.bytes.buffer, rowids.bytes.byteOffset, n * 2);
    const runRowid = this.runRowid;
    const runIndex = this.runIndex;
    let last = runRowid.length > 0 ? runRowid[runRowid.length - 1]! + (this.rows - runIndex[runIndex.length - 1]!) - 1 : -2;
    for (let i = 0; i < n; i++) {
      const r = this.key(words[2 * i]!, words[2 * i + 1]!, true);
      if (Number.isNaN(r)) throw new ModelSqlError('XX000', `internal error: a rowid out of the ranges the stage maps (${words[2 * i + 1]!}:${words[2 * i]!})`);
      if (r !== last + 1) {
        if (r < last) this.sorted = false;
        runRowid.push(r);
        runIndex.push(this.rows + i);
      }
      last = r;
    }
    for (let c = 0; c < this.types.length; c++) this.appendColumn(c, outputs.columns[c]!, n);
    this.rows += n;
  }

  /** Makes the runs searchable (rowids out of order, which the stage's ordered input does not give, are sorted here). */
  seal(): void {
    if (this.sorted) return;
    const order = this.runRowid.map((_, k) => k).sort((a, b) => this.runRowid[a]! - this.runRowid[b]!);
    const lengths = this.runRowid.map((_, k) => (k + 1 < this.runIndex.length ? this.runIndex[k + 1]! : this.rows) - this.runIndex[k]!);
    // Sorted runs no longer end where the next begins: each keeps its own length.
    this.runLength = order.map((k) => lengths[k]!);
    this.runRowid = order.map((k) => this.runRowid[k]!);
    this.runIndex = order.map((k) => this.runIndex[k]!);
    this.sorted = true;
  }

  /** Releases the predictions: the functions find nothing for this stage any more. */
  release(): void {
    stores.delete(this.id);
    for (const blocks of this.blocks) blocks.length = 0;
    for (const blocks of this.nullBlocks) blocks.length = 0;
    this.runRowid = [];
    this.runIndex = [];
  }

  /** Writes column `c`'s predictions of the `n` rowids in `rowidBytes` into `output` (NULL for a rowid it does not hold). */
  fill(c: number, rowidBytes: Uint8Array, n: number, output: duckdb.Vector): void {
    const words = new Uint32Array(rowidBytes.buffer, rowidBytes.byteOffset, n * 2);
    let out = this.scratch[c]!;
    if (out.length < n) out = this.scratch[c] = LOOKUP_TYPES[this.types[c]!.toUpperCase()]!.make(n);
    const blocks = this.blocks[c]!;
    const nullBlocks = this.nullBlocks[c]!;
    // The validity mask, one bit a row (1: valid), made at the first NULL.
    let validity: Uint8Array | undefined;
    const setNull = (i: number): void => {
      validity ??= new Uint8Array(Math.ceil(n / 64) * 8).fill(0xff);
      validity[i >>> 3]! &= ~(1 << (i & 7));
    };
    let start = 0;
    let end = -1;
    let base = 0;
    for (let i = 0; i < n; i++) {
      const r = this.key(words[2 * i]!, words[2 * i + 1]!, false);
      if (!(r >= start && r < end)) {
        const k = this.findRun(r);
        if (k < 0) {
          out[i] = 0;
          setNull(i);
          start = 0;
          end = -1;
          continue;
        }
        start = this.runRowid[k]!;
        end = start + this.lengthOf(k);
        base = this.runIndex[k]!;
      }
      const index = base + r - start;
      const block = index >>> BLOCK_SHIFT;
      const at = index & (BLOCK_ROWS - 1);
      out[i] = blocks[block]![at]!;
      if (nullBlocks[block]?.[at]) setNull(i);
    }
    duckdb.copy_data_to_vector(output, 0, out.buffer as ArrayBuffer, out.byteOffset, n * out.BYTES_PER_ELEMENT);
    if (validity) {
      duckdb.vector_ensure_validity_writable(output);
      duckdb.copy_data_to_vector_validity(output, 0, validity.buffer as ArrayBuffer, 0, validity.byteLength);
    }
  }

  private lengthOf(k: number): number {
    if (this.runLength) return this.runLength[k]!;
    return (k + 1 < this.runIndex.length ? this.runIndex[k + 1]! : this.rows) - this.runIndex[k]!;
  }

  /** The run holding rowid `r`, or -1. */
  private findRun(r: number): number {
    const runs = this.runRowid;
    let lo = 0;
    let hi = runs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (runs[mid]! <= r) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi >= 0 && r < runs[hi]! + this.lengthOf(hi) ? hi : -1;
  }

  /**
   * How column `c` is stored: as its type's array, except a DOUBLE whose model answers in
   * float32 (a float32 graph's output), kept as float32 (exact: the DOUBLE is its widening),
   * until a batch answers in float64, when the blocks held so far are widened.
   */
  private storage(c: number, column: ChunkColumn): (n: number) => LookupArray {
    const make = LOOKUP_TYPES[this.types[c]!.toUpperCase()]!.make;
    const blocks = this.blocks[c]!;
    const narrow = column.kind === 'number' && column.values instanceof Float32Array && this.types[c]!.toUpperCase() === 'DOUBLE';
    const held = blocks[0];
    if (narrow && (held === undefined || held instanceof Float32Array)) return (n) => new Float32Array(n);
    if (held instanceof Float32Array && this.types[c]!.toUpperCase() === 'DOUBLE') {
      for (let b = 0; b < blocks.length; b++) if (blocks[b]) blocks[b] = Float64Array.from(blocks[b]!);
    }
    return make;
  }

  private appendColumn(c: number, column: ChunkColumn, n: number): void {
    const make = this.storage(c, column);
    const blocks = this.blocks[c]!;
    const nullBlocks = this.nullBlocks[c]!;
    for (let i = 0; i < n; ) {
      const index = this.rows + i;
      const block = index >>> BLOCK_SHIFT;
      const at = index & (BLOCK_ROWS - 1);
      const take = Math.min(n - i, BLOCK_ROWS - at);
      const target = (blocks[block] ??= make(BLOCK_ROWS));
      if (column.kind === 'number') {
        target.set(column.values.subarray(i, i + take), at);
        const nulls = column.nulls;
        if (nulls) {
          for (let j = 0; j < take; j++) if (nulls[i + j]) (nullBlocks[block] ??= new Uint8Array(BLOCK_ROWS))[at + j] = 1;
        }
      } else if (column.kind === 'value') {
        for (let j = 0; j < take; j++) {
          const v = column.values[i + j];
          if (v === null || v === undefined) (nullBlocks[block] ??= new Uint8Array(BLOCK_ROWS))[at + j] = 1;
          else target[at + j] = Number(v);
        }
      } else {
        throw new Error('internal error: raw bytes as a model output');
      }
      i += take;
    }
  }
}

/** How many stages' predictions are held now (tests: none once their statements are done). */
export function heldStageCount(): number {
  return stores.size;
}
