/**
 * The store behind DuckDB's read-back by rowid (duckdb-stage-lookup.ts), against real
 * DuckDB vectors: rowids in runs, with gaps, out of order and from a transaction's own
 * range (above 2^53); NULLs; rowids it never held; a DOUBLE column answered first in
 * float32 and then in float64.
 */
import { DOUBLE, DuckDBDataChunk, DuckDBInstance, INTEGER, type DuckDBType } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import { PredictionStore } from '../../../adapters/duckdb/duckdb-stage-lookup.js';
import type { RawColumn } from '../../../adapters/duckdb/duckdb-chunks.js';

/** Rowids as the stage carries them: 8 bytes each. */
function rowids(ids: readonly bigint[]): RawColumn {
  return { kind: 'raw', bytes: new Uint8Array(BigInt64Array.from(ids).buffer), width: 8 };
}

/** What the store writes for `ids` into a fresh vector of `type`, read back. */
function read(store: PredictionStore, column: number, ids: readonly bigint[], type: DuckDBType = DOUBLE): unknown[] {
  const chunk = DuckDBDataChunk.create([type], ids.length);
  store.fill(column, rowids(ids).bytes, ids.length, duckdb.data_chunk_get_vector(chunk.chunk, 0));
  return chunk.getColumnValues(0);
}

const range = (from: bigint, n: number): bigint[] => Array.from({ length: n }, (_, i) => from + BigInt(i));

describe('PredictionStore', () => {
  let store: PredictionStore | undefined;
  let connection: Awaited<ReturnType<DuckDBInstance['connect']>>;
  beforeAll(async () => {
    connection = await (await DuckDBInstance.create(':memory:')).connect();
  });
  afterEach(() => {
    store?.release();
  });

  it('finds rows by rowid across runs, gaps, blocks and a transaction\'s own rowids', () => {
    store = PredictionStore.open(connection, ['DOUBLE']);
    const local = 2n ** 55n - 5000n;
    const ids = [...range(0n, 70_000), ...range(80_000n, 10), ...range(local, 10)];
    store.append(rowids(ids), { rowCount: ids.length, columns: [{ kind: 'number', values: Float64Array.from(ids, (_, i) => i + 0.5) }] });
    store.seal();
    const asked = [69_999n, 0n, 80_005n, 75_000n, local + 3n, 65_536n, local + 10n];
    expect(read(store, 0, asked)).toEqual([69_999.5, 0.5, 70_005.5, null, 70_013.5, 65_536.5, null]);
  });

  it('sorts runs met out of order', () => {
    store = PredictionStore.open(connection, ['INTEGER']);
    const ids = [...range(500n, 5), ...range(0n, 5), ...range(100n, 5)];
    store.append(rowids(ids), { rowCount: ids.length, columns: [{ kind: 'number', values: Int32Array.from(ids, (_, i) => i) }] });
    store.seal();
    expect(read(store, 0, [0n, 4n, 100n, 104n, 500n, 504n, 5n, 499n], INTEGER)).toEqual([5, 9, 10, 14, 0, 4, null, null]);
  });

  it('keeps NULL outputs NULL', () => {
    store = PredictionStore.open(connection, ['DOUBLE']);
    const nulls = Uint8Array.from([0, 1, 0, 1]);
    store.append(rowids(range(0n, 4)), { rowCount: 4, columns: [{ kind: 'number', values: Float64Array.from([1, 2, 3, 4]), nulls }] });
    store.seal();
    expect(read(store, 0, range(0n, 4))).toEqual([1, null, 3, null]);
  });

  it('widens a DOUBLE kept as float32 when a later batch answers in float64', () => {
    store = PredictionStore.open(connection, ['DOUBLE']);
    store.append(rowids(range(0n, 3)), { rowCount: 3, columns: [{ kind: 'number', values: Float32Array.from([0.1, 0.2, 0.3]) }] });
    store.append(rowids(range(3n, 3)), { rowCount: 3, columns: [{ kind: 'number', values: Float64Array.from([0.1, 0.2, 0.3]) }] });
    store.seal();
    expect(read(store, 0, range(0n, 6))).toEqual([Math.fround(0.1), Math.fround(0.2), Math.fround(0.3), 0.1, 0.2, 0.3]);
  });
});
