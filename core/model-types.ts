/**
 * The ground floor of `core/`: the plain data shapes every layer shares (model versions
 * and their columns, columnar batches, statement results, progress and lineage events).
 * This module imports nothing of ours, so the catalog, the planner, the runtimes, the
 * session and the adapters can all depend on it without depending on one another.
 */

/** A model column as stored in the catalog: `type` is canonical Flink type text (`DOUBLE`, `ARRAY<FLOAT>`). */
export interface ModelColumn {
  readonly name: string;
  readonly type: string;
  readonly comment?: string;
}

/** A qualified model name inside one database. */
export interface ModelKey {
  /**
   * The attached database whose catalog holds the model, on hosts that reach several by
   * name (DuckDB ATTACH, `Host.attachedDatabase`); absent on others, where models live in
   * the current database.
   */
  readonly database?: string;
  readonly schema: string;
  readonly name: string;
}

/** One version of a model, as stored. */
export interface ModelVersion extends ModelKey {
  readonly version: number;
  readonly provider: string;
  readonly task?: string;
  readonly input: readonly ModelColumn[];
  readonly output: readonly ModelColumn[];
  /** Options in the order they were written. */
  readonly options: readonly (readonly [string, string])[];
  readonly comment?: string;
  /** The training query of `CREATE MODEL ... AS`. */
  readonly asQuery?: string;
  readonly createdAt: string;
  /**
   * Literal secrets (`api-key`) by option key, kept out of `options` (which hold
   * `'******'` in their place) and stored in `ml_catalog.model_secrets` (core/secrets.ts).
   */
  readonly secrets?: readonly (readonly [string, string])[];
  /**
   * For a trained model: the sha256 of its stored spec artifact (`model.json`), which
   * names the trained parameters by content (a parsed spec is cached under it).
   */
  readonly specSha256?: string;
  /**
   * The sha256 of the version's stored ONNX artifact (`model.onnx`) when the catalog holds
   * one: a trained model's graph, or an imported ONNX model's bytes brought by a catalog
   * bundle or migration, which the runtime loads instead of the model's `path`.
   */
  readonly onnxSha256?: string;
  /**
   * The host's own identity of the stored version, which the runtime loader keys
   * catalog-held runtimes by (with the model's name, version and checksums): set by the
   * catalog look-up from what the host assigns when the version's row is written (on
   * Postgres the server, the database, the model's id and the row's `xmin`; on DuckDB the
   * instance, the model's id and the time of the model's last write), never from what the
   * writer passed, so two versions of one name and metadata in two databases, or before and
   * after a DROP and re-import, have two identities. A temporary version gets a random one.
   * Absent on versions that were not read from a catalog.
   */
  readonly storedId?: string;
}

/** A model with its versions. */
export interface ModelEntry extends ModelKey {
  readonly defaultVersion: number;
  readonly owner: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly temporary: boolean;
  /** Ascending by version. */
  readonly versions: readonly ModelVersion[];
}

/** A model resolved for use by a statement: its entry and the version to run. */
export interface ResolvedModel {
  readonly entry: ModelEntry;
  readonly version: ModelVersion;
}

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
  /**
   * The same features row by row, when the host read them so for a runtime that takes one
   * matrix (`ModelRuntime.rowMajorInput`); `columns` is then made from it when first read
   * (core/runtime/row-major-batch.ts).
   */
  readonly rowMajor?: RowMajorFeatures;
}

/** Number features row by row: `rowCount × width` doubles, a NULL row's all 0. */
export interface RowMajorFeatures {
  readonly values: Float64Array;
  readonly width: number;
  /** `nulls[i] === 1`: a feature of row i is NULL. Absent when none is. */
  readonly nulls?: Uint8Array;
}

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
