/**
 * The one interface every model runtime implements (ONNX today, remote providers later):
 * columnar batches in, columnar batches out.
 */
import type { ColumnBatch } from '../model-types.js';

/** Counters of one model stage, added to by the runtime (remote providers) and the executor. */
export interface StageCounters {
  /** Rows answered with an error (IGNORE strategy, or RETRY then IGNORE). */
  errors: number;
  /** Tokens the provider reported. */
  tokens: number;
  /** Rows answered from the prediction cache. */
  cacheHits: number;
  /** Requests sent (retries included). */
  requests: number;
}

/**
 * The stage a `predictBatch` call belongs to: the call's CONFIG, counters, and where to put
 * answers for the prediction cache. One object per ML_PREDICT call, shared by its batches.
 */
export interface PredictStage {
  /** Per-call overrides (ML_PREDICT's CONFIG map). */
  readonly config: {
    readonly maxConcurrentOperations?: number;
    readonly timeoutMs?: number;
    readonly batchSize?: number;
    readonly errorHandlingStrategy?: 'RETRY' | 'FAILOVER' | 'IGNORE';
  };
  readonly counters: StageCounters;
  /** Called once per answered row with its cache key and OUTPUT values, when caching is on. */
  readonly remember?: (key: string, values: readonly unknown[]) => void;
  /** Called after every answered or failed row (progress within a batch). */
  readonly onRows?: (rows: number) => void;
  /** The server's cap on one row's prompt, in UTF-8 bytes (resource-caps.ts); a longer prompt fails the call with 54000. */
  readonly maxPromptBytes?: number;
  /**
   * The server's cap on retry delays, in ms (resource-caps.ts, `--max-retry-delay`): the
   * longest a provider's `Retry-After` is waited out (default: that cap's default).
   */
  readonly maxRetryDelayMs?: number;
  /** Called after each request a remote runtime sends, with its duration and whether it failed. */
  readonly onRequest?: (seconds: number, failed: boolean) => void;
}

/** Options for one `predictBatch` call. */
export interface PredictOptions {
  /** Aborted when the query is cancelled; a runtime stops work as soon as it can. */
  readonly signal?: AbortSignal;
  /** The stage of the call (set by the executor); runtimes that need none ignore it. */
  readonly stage?: PredictStage;
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
  /**
   * Capability: the runtime feeds every INPUT column, all numbers, to its model as one
   * row-major matrix (an ONNX graph with one `[N, k]` input), so a host that can read the
   * features row by row hands them over so (`ColumnBatch.rowMajor`). Default `false`.
   */
  readonly rowMajorInput?: boolean;
  /** Predicts one batch; the result has one column per model OUTPUT column, `rowCount` rows. */
  predictBatch(batch: ColumnBatch, options?: PredictOptions): Promise<ColumnBatch>;
  /** Frees native resources. */
  close(): Promise<void>;
  /**
   * Capability: remote runtimes are `true`. Their `batch-size` means rows per request and
   * their concurrency requests in flight, handled inside the runtime. Default `false`.
   */
  readonly remote?: boolean;
  /** Whether answers go to the prediction cache unless a call says `'cache'='false'`. Default `false`. */
  readonly cacheByDefault?: boolean;
  /**
   * Per-row keys of the prediction cache (null: never cached, e.g. a NULL input). Present
   * only on runtimes whose answers may be cached (remote providers).
   */
  cacheKeys?(batch: ColumnBatch): readonly (string | null)[];
}
