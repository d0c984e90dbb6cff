/**
 * The hand-written pipelines' write step: (key, prediction) pairs into an Appender, a
 * DataChunk of up to 2,048 rows at a time, through the public vector API.
 */
import { BIGINT, DOUBLE, DuckDBDataChunk, type DuckDBAppender } from '@duckdb/node-api';

/** Appends rows `[0, n)` of `ids` and `y` as (BIGINT, DOUBLE) rows. */
export function appendPredictions(appender: DuckDBAppender, ids: ArrayLike<bigint>, y: ArrayLike<number>, n: number): void {
  for (let start = 0; start < n; start += 2048) {
    const m = Math.min(2048, n - start);
    const chunk = DuckDBDataChunk.create([BIGINT, DOUBLE], m);
    const idVector = chunk.getColumnVector(0) as unknown as { setItem(i: number, v: bigint): void; flush(): void };
    const yVector = chunk.getColumnVector(1) as unknown as { setItem(i: number, v: number): void; flush(): void };
    for (let i = 0; i < m; i++) {
      idVector.setItem(i, ids[start + i]!);
      yVector.setItem(i, y[start + i]!);
    }
    idVector.flush();
    yVector.flush();
    appender.appendDataChunk(chunk);
  }
}
