/**
 * Opening a file after a crash. DuckDB replays a database file's write-ahead log
 * (`<file>.wal`) when it opens a file whose last writer died before checkpointing
 * (https://duckdb.org/docs/stable/connect/concurrency). Measured on DuckDB 1.5 (node
 * bindings 1.5.6-r.1): when that process then ends with the checkpoint DuckDB runs at close,
 * the file's ART indexes no longer find the replayed rows (`WHERE cache_key = '...'` finds
 * none of the prediction-cache rows a killed process had committed, a scan finds them all),
 * so a refresh after a kill asked the provider again for answers already stored. An explicit
 * `CHECKPOINT` right after opening keeps them findable; so does dropping and creating an
 * index again, outside a transaction (inside one, the process aborts at exit). So a file
 * opened with a write-ahead log is checkpointed at once, before anything reads it.
 */
import { existsSync } from 'node:fs';

/** Whether opening `path` will replay a write-ahead log (call before opening it). */
export function hasWriteAheadLog(path: string | undefined): boolean {
  return path !== undefined && path !== ':memory:' && existsSync(`${path}.wal`);
}

/** The statement run right after opening a file that had a write-ahead log (https://duckdb.org/docs/stable/sql/statements/checkpoint). */
export const AFTER_REPLAY = 'CHECKPOINT';
