/**
 * The public face of modelsql: a session over one host connection that runs host SQL and
 * model SQL alike.
 */
import type { EventEmitter } from 'node:events';

/** A column of a result. `type` is the host's type name (`INTEGER`, `DOUBLE`, `VARCHAR[]`). */
export interface ResultColumn {
  readonly name: string;
  readonly type: string;
}

/**
 * The result of one statement. Values are plain JS: `number`, `bigint` (64-bit integers),
 * `string`, `boolean`, `null`, `Date`-free strings for temporal types, arrays, and objects
 * for structs and maps.
 */
export interface QueryResult {
  /** What ran: `SELECT`, `CREATE MODEL`, `SHOW MODELS`, ... (upper case, first keywords). */
  readonly command: string;
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly unknown[])[];
  /**
   * Notices the statement raised (as Postgres's NOTICE: the statement succeeded, but
   * something deserves a look, e.g. a `${env:NAME}` variable not set where CREATE MODEL ran).
   * The CLI prints them on stderr as `NOTICE:  ...`; the proxy sends NoticeResponse.
   */
  readonly notices?: readonly string[];
}

/** A slice of a streamed result. */
export interface ResultBatch {
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly unknown[])[];
}

/** Progress of one ML_PREDICT / ML_EVALUATE stage. */
export interface ProgressEvent {
  /** The model, as written in the query. */
  readonly model: string;
  readonly rowsDone: number;
  /** Total input rows, when known. */
  readonly rowsTotal?: number;
  /** Rows per second since the stage started. */
  readonly rate: number;
  readonly errors: number;
  /** Tokens reported by a remote provider so far, when it reports them. */
  readonly tokens?: number;
  /** True on the stage's last event. */
  readonly finished: boolean;
}

/** One finished model stage (an ML_PREDICT / ML_EVALUATE call through an ONNX or remote model), as its lineage row records it. */
export interface ModelRunEvent {
  /** The model version, qualified: `schema.name$version`. */
  readonly model: string;
  readonly provider: string;
  readonly rows: number;
  /** Rows whose inference failed (kept under the error-handling strategy). */
  readonly errors: number;
  readonly durationMs: number;
  /** Tokens reported by a remote provider. */
  readonly tokens?: number;
}

/** One request to a remote model's server, answered or failed. */
export interface ProviderRequestEvent {
  readonly provider: string;
  readonly seconds: number;
  readonly failed: boolean;
}

/** Events a session emits. */
export interface SessionEvents {
  progress: [ProgressEvent];
  run: [ModelRunEvent];
  request: [ProviderRequestEvent];
}

/**
 * A modelsql session.
 *
 * @example
 * const db = await openDuckDB();
 * await db.sql(`CREATE TABLE t AS SELECT 1.0 AS x`);
 * const { rows } = await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(x))`);
 */
export interface Session {
  /** Runs every statement of `text` in order and returns the last statement's result. */
  sql(text: string): Promise<QueryResult>;
  /** Runs every statement of `text` in order, yielding each statement's result as it completes. */
  run(text: string): AsyncIterable<QueryResult>;
  /** Runs `text` (statements before the last run to completion) and streams the last statement's rows in batches. */
  stream(text: string): AsyncIterable<ResultBatch>;
  /** Progress events of long-running model stages. */
  readonly events: EventEmitter<SessionEvents>;
  /** Cancels the statement in flight: inference stops, temporary relations are removed. */
  cancel(): void;
  /** Closes the session and its host connection. */
  close(): Promise<void>;
}
