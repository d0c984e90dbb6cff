/** One measured comparison, as `run.ts` prints it. */
export interface BenchmarkResult {
  readonly name: string;
  readonly modelsqlRowsPerSecond: number;
  readonly handWrittenRowsPerSecond: number;
  readonly ratio: number;
  /** Rows each side processed, when the benchmark counts rows. */
  readonly rows?: number;
  /** What the rates count (default rows/s). */
  readonly unit?: string;
  /** Extra lines to print. */
  readonly details?: readonly string[];
}
