/**
 * The one port between the core and a database (Kysely's Dialect/Driver split): an adapter
 * implements `Host` for its engine; the core never imports an adapter or a driver.
 */
import type { CatalogWriter } from './catalog/catalog-writer.js';
import type { DataType } from './sql/ast.js';
import type { ColumnBatch } from './model-types.js';

/** A column as the host reports it: `type` is the host's own type text (`DOUBLE`, `VARCHAR[]`). */
export interface HostColumn {
  readonly name: string;
  readonly type: string;
}

/** How a statement is run (`Host.execute`). */
export interface ExecuteOptions {
  /** The text is sent again and again with other parameters: the host may keep it prepared. */
  readonly repeated?: boolean;
}

/** A fully read result, values converted to plain JS (see `QueryResult`). */
export interface HostResult {
  readonly columns: readonly HostColumn[];
  readonly rows: readonly (readonly unknown[])[];
}

/** Appends batches into a (temporary) table: DuckDB's Appender, Postgres's COPY FROM STDIN. */
export interface HostAppender {
  /** Appends a batch; columns in table order. */
  append(batch: ColumnBatch): Promise<void>;
  /** Flushes and releases the appender. */
  close(): Promise<void>;
}

/** What a one-pass stage (`Host.openStage`) reads and writes. */
export interface HostStageSpec {
  /** The call's input query (its own ML calls already rewritten); read once. */
  readonly query: string;
  /**
   * When the input is `TABLE name`: the name's parts, resolved (plain identifiers folded);
   * `query` then reads that relation whole. A host may read a base table in place.
   */
  readonly source?: readonly string[];
  /** The query's columns, as `describe(query)` reported them; the result starts with them. */
  readonly inputColumns: readonly HostColumn[];
  /** The descriptor: for each model INPUT column, the position of its column in `inputColumns`. */
  readonly featureColumns: readonly number[];
  /** How each feature arrives: `number` as typed arrays (cast to DOUBLE), `value` as JS values. */
  readonly kinds: readonly ('number' | 'value')[];
  /**
   * Every feature is a `number` and the runtime takes them as one matrix: a host that can
   * read them row by row yields batches with `rowMajor` (core/runtime/row-major-batch.ts).
   */
  readonly rowMajor?: boolean;
  /** The OUTPUT columns (names already made unique against the input) and their host types. */
  readonly outputColumns: readonly HostColumn[];
  /** A session-private table name for the result (from the session, which drops it at the end). */
  readonly table: string;
  /** Rows per batch. */
  readonly batchSize: number;
  /**
   * Rows the call may send to its model (the session's `maxRowsPerCall`; absent: no limit).
   * The executor fails the call past it; a host that reads ahead of the batches (a spool)
   * reads at most one row more, so an input far over the limit is not read whole first.
   */
  readonly maxRows?: number;
  /**
   * The call's `output-mode` is `ALLOW_UNORDERED`: the result's rows need not come in input
   * order (default false: they must).
   */
  readonly unordered?: boolean;
}

/** One batch of a one-pass stage: the model's features and what the host carries alongside. */
export interface HostStageBatch {
  readonly features: ColumnBatch;
  /** Opaque to the core (Postgres: the rows' input fields as COPY text); handed back to `write`. */
  readonly carry: unknown;
}

/**
 * A model stage run by the host in one pass over its input (`Host.openStage`): the executor
 * pulls `batches()`, runs the model, and calls `write` with each batch's carry and
 * predictions, in batch order. Nothing else may run on the connection from the first
 * `batches()` until `finish` or `close` (a host may write rows while batches are still
 * read: Postgres's COPY FROM runs from the first `write`). Then `finish` builds the result
 * and `close` releases what is left, however the stage ended; a stage that failed must be
 * closed before its connection runs anything else.
 */
export interface HostStage {
  /** The input rows, in the query's order, `batchSize` at a time. */
  batches(): AsyncIterable<HostStageBatch>;
  /** Takes one batch's predictions (one column per OUTPUT column, `features.rowCount` rows). */
  write(carry: unknown, outputs: ColumnBatch): Promise<void>;
  /**
   * After the last `write`: stores the result in `table` and returns a relation (a
   * parenthesized query) of the input columns then the output columns, in input order.
   */
  finish(): Promise<string>;
  /** Frees buffers and files; idempotent. The table itself goes with the session's temporary tables. */
  close(): Promise<void>;
  /**
   * Capability (optional; default: absent, and the statement around the call reads the
   * stage's relation): sends the rows straight into the table of the statement around the
   * call, `CREATE TABLE ... AS` or `INSERT INTO ... SELECT` over the call alone
   * (`core/planner/direct-write.ts`), instead of into `table`. Called before `batches()`;
   * resolves to undefined when the host cannot make the write do exactly what the statement
   * would (the stage then goes on as usual). Nothing is created or written before the
   * returned write's `open()`, and its `finish` takes the place of the stage's.
   */
  into?(target: HostStageTarget): Promise<HostStageWrite | undefined>;
}

/** The table a stage writes into (`HostStage.into`): what the statement around the call names. */
export type HostStageTarget = HostCreateTarget | HostInsertTarget;

interface HostStageTargetBase {
  /** The table's name as written, each part resolved (plain identifiers folded). */
  readonly table: readonly string[];
  /**
   * For each column the statement fills, in order: the position of its value in the stage's
   * result (input columns, then output columns).
   */
  readonly sources: readonly number[];
}

/** `CREATE [TEMP | UNLOGGED] TABLE [IF NOT EXISTS] t [(names)] [...] AS SELECT <columns> FROM <call> [alias]`. */
export interface HostCreateTarget extends HostStageTargetBase {
  readonly kind: 'create';
  /**
   * The statement's text before and after the call: with the stage's relation between them
   * and `WITH NO DATA` after, it creates the table as the statement would (names, types,
   * options), without rows.
   */
  readonly before: string;
  readonly after: string;
  /** `TEMP` / `TEMPORARY` was written. */
  readonly temporary: boolean;
  /** `IF NOT EXISTS` was written. */
  readonly ifNotExists: boolean;
}

/** `INSERT INTO t [(columns)] SELECT <columns> FROM <call> [alias]`. */
export interface HostInsertTarget extends HostStageTargetBase {
  readonly kind: 'insert';
  /** The column list, when written (resolved names); else the table's columns, in order. */
  readonly columns?: readonly string[];
}

/** A stage's write into its statement's table (`HostStage.into`), run in the statement's transaction. */
export interface HostStageWrite {
  /**
   * Before `batches()`: creates the table when the statement creates it. False when the
   * statement has nothing to do (`IF NOT EXISTS` and the table exists): the stage is not run.
   */
  open(): Promise<boolean>;
  /** After the last `write`, in place of the stage's `finish`: copies the rows in; returns how many went in. */
  finish(): Promise<number>;
}

/** Operators of the expressions the core generates (spelled by the dialect: `SqlDialect.operator`). */
export type SqlOperator = '+' | '-' | '*' | '/' | '%' | '=' | '<>' | '<' | '<=' | '>' | '>=' | '||' | '&';

/**
 * Built-in functions (scalar, aggregate and window) the core's generated SQL calls, by their
 * Postgres names (`SqlDialect.call`). `coalesce`, `greatest`, `least` and `CASE` are syntax,
 * not functions, and are written as they are.
 */
export type SqlFunction =
  | 'abs' | 'array_length' | 'avg' | 'bool_and' | 'concat' | 'count' | 'current_database' | 'current_schema' | 'exp' | 'floor' | 'generate_series'
  | 'lead' | 'ln' | 'max' | 'md5' | 'min' | 'rank' | 'row_number' | 'sqrt' | 'stddev_pop' | 'substr' | 'sum' | 'var_pop';

/**
 * SQL spelling of one host: quoting, types and the statements the core generates. Every
 * operator, function call and number literal of generated SQL is written here, so that the
 * caller's settings cannot change what it means (SPEC §5): on Postgres an operator or
 * function found on the caller's `search_path` (`public.+(integer, double precision)`)
 * would otherwise win over the built-in one.
 */
export interface SqlDialect {
  /** `(left op right)`, parenthesized, with the host's built-in operator whatever the search path. */
  operator(left: string, op: SqlOperator, right: string): string;
  /** `(-x)` with the built-in operator. */
  negate(operand: string): string;
  /** A call of a built-in function: `call('sum', 'x')`, `call('count', '*')`, `call('count', 'DISTINCT x')`. */
  call(fn: SqlFunction, ...args: readonly string[]): string;
  /** A DOUBLE literal, typed (not a numeric literal): `CAST(1.5 AS double precision)`. Throws on NaN and infinities. */
  double(value: number): string;
  /** A BIGINT literal, typed. */
  bigint(value: number): string;
  /**
   * A select-list item, with its leading comma (or nothing), that ends the columns of a
   * subquery whose computed columns are read many times by the level above (training's
   * layered aggregates), so that the host computes them once per row instead of inlining the
   * expression into every reference; `name` is a column name unique in the subquery and the
   * levels above it. Postgres: a column holding a VOLATILE, PARALLEL SAFE call that the
   * planner folds away (a subquery whose select list has a volatile function is not pulled
   * up, and unlike an `OFFSET 0` fence it leaves parallel partial aggregation possible);
   * DuckDB: nothing.
   */
  layerFence(name: string): string;
  /**
   * A statement that gives the planner statistics of a working table just written
   * (optional; default none): Postgres plans a temporary table it has never analyzed with
   * default guesses (200 distinct values a column), which turn a tree level's hashed
   * `GROUPING SETS` into sorts. `table` is quoted.
   */
  analyze?(table: string): string;
  /** Always-quoted identifier: `"a""b"`. */
  quoteIdentifier(name: string): string;
  /** String literal: `'it''s'`. */
  quoteString(value: string): string;
  /** The host type for a model column type (Flink or host spelling). */
  hostType(type: DataType): string;
  /** Column types the catalog tables use. */
  readonly catalogTypes: { readonly text: string; readonly integer: string; readonly bigint: string; readonly double: string; readonly blob: string; readonly timestamp: string };
  /**
   * A relation pairing the i-th row of the materialized input with the i-th row of the
   * output table (same row count), with the given columns of each, input first.
   */
  zipRelations(input: { readonly table: string; readonly columns: readonly string[] }, output: { readonly table: string; readonly columns: readonly string[] }): string;
  /** A `MAP(VARCHAR, DOUBLE)` (DuckDB) / `jsonb` (Postgres) expression from metric names and SQL expressions. */
  metricMap(entries: readonly (readonly [string, string])[]): string;
  /**
   * Training (optional; a host without it cannot hold rows out with `test-split`): a
   * DOUBLE in [0, 1) that depends only on the values of `expressions` and `seed`, the
   * same on every run.
   */
  hashFraction?(expressions: readonly string[], seed: number): string;
  /**
   * Session settings training runs under (optional; default none), each set before the
   * first training query and restored to its earlier value after the last.
   */
  readonly trainingSettings?: SessionSettings;
  /**
   * Model functions (optional; needed when `Host.nativeFunctions` is true): the statement
   * that creates or replaces `schema.name(params...)` returning `body`, an expression over
   * the (quoted) parameter names. `types` are the parameters' host types.
   */
  createFunction?(fn: HostFunction): string;
  /** The statement that drops the function `createFunction` made, if it exists. */
  dropFunction?(fn: Omit<HostFunction, 'body' | 'returnType'>): string;
  /**
   * The query listing, as text, every function of the schema of `fn` that a model's
   * function of that name would replace or stand beside and that modelsql did not create
   * for the model: `ours` holds the parameter types of the model's own function of that
   * name, undefined when it has none yet (optional; default absent: no check). Postgres:
   * functions of the name with other parameter types (another role's, or a user's); DuckDB:
   * macros and functions whose names differ only in case (its function names ignore case,
   * so `ml_predict_LIN` is `ml_predict_lin`). Creating a model's function refuses (42710)
   * when there is one.
   */
  otherFunctions?(fn: Omit<HostFunction, 'body' | 'returnType' | 'params'>, ours: readonly string[] | undefined): { readonly sql: string; readonly params: readonly unknown[] };
  /**
   * Session settings a model statement reads before it runs (optional; Postgres): text
   * expressions naming nothing the search path could change. The catalog look-up
   * (`CatalogStore.lookup`) selects them in its own query, so that an ML query needs no
   * round trip of its own for them.
   */
  readonly sessionReading?: SessionReadingSql;
  /**
   * A text expression, in the catalog look-up's scan of `ml_catalog.model_versions`, naming
   * the stored row of a version as the host assigned it (optional; Postgres): a value the
   * writer of the row does not choose, that changes whenever the row is written again (a
   * re-import, an ALTER), that is the same before and after its transaction commits, and
   * that differs between the databases and servers a process reaches. Names nothing the
   * search path could change. Absent: a version is named by the host's `instanceId` and its
   * model's id alone (`ModelVersion.storedId`), with its number and `created_at`.
   */
  readonly storedVersionIdentity?: string;
  /** VECTOR_SEARCH (optional; a host without it refuses the function with 0A000). */
  readonly vectors?: VectorDialect;
  /**
   * Materialized tables: a hex digest of every column of the row of table alias `alias`,
   * different whenever a value changes (NULL told apart from every string).
   */
  rowDigest(alias: string): string;
  /** Materialized tables: a hex digest of the values of `expressions`, as {@link rowDigest}. */
  valuesDigest(expressions: readonly string[]): string;
  /**
   * Materialized tables (optional; default absent: {@link valuesDigest}): a cheaper digest
   * of model inputs, an integer, over columns of the given host types;
   * undefined when a type is not one whose equal digests mean equal values as a model
   * reads them, or when the server (`serverVersion`, from `Host.serverVersion`) lacks the
   * function it needs.
   */
  inputHash?(columns: readonly { readonly expression: string; readonly type: string }[], serverVersion?: number): string | undefined;
  /**
   * Change capture for materialized tables (optional; default absent: every refresh
   * compares the whole source with the table's state). Postgres: triggers record changed
   * keys and NOTIFY; refresh claims keep refreshers apart.
   */
  readonly changeCapture?: ChangeCaptureDialect;
  /**
   * Roles and model permissions (optional; default: absent, a host without roles, where
   * every session may do everything and GRANT / REVOKE USAGE ON MODEL are refused).
   */
  readonly roles?: RoleDialect;
}

/** The expressions of `SqlDialect.sessionReading`. */
export interface SessionReadingSql {
  /**
   * The session's search path when a schema comes before the built-in functions and
   * operators (one there could stand in for them), else NULL (`Host.unsafeSearchPath`).
   */
  readonly unsafeSearchPath: string;
  /** The statement timeout as the host shows it (`Host.statementTimeout` reads it from this text). */
  readonly statementTimeout: string;
}

/** What a query read of `SqlDialect.sessionReading` (NULLs as undefined). */
export interface SessionReading {
  readonly unsafeSearchPath?: string;
  readonly statementTimeout?: string;
}

/**
 * What a host with roles (Postgres) adds to the catalog (SPEC §5): model owners, grants,
 * row-level security and owner-only secrets. The core keeps the shared layout; this part
 * holds the host's own statements.
 */
export interface RoleDialect {
  /** Host statements of catalog layout `version`, run after the shared ones in the same transaction. */
  catalogMigration(version: number): readonly string[];
  /** How this host writes the catalog (Postgres: through modelsql's own `SECURITY DEFINER` functions, catalog layout 4). */
  catalogWriter(host: Host): CatalogWriter;
  /** A query of one row and one column: the role statements run as. */
  readonly currentRole: string;
  /** A query (`$1` the model's owner) of one boolean: whether the current role may alter, drop and grant the model. */
  readonly mayAlter: string;
  /** A query (`$1` schema, `$2` name) that returns a row when a persistent model of that name exists, visible to the current role or not. */
  readonly modelTaken: string;
  /** A query (`$1` a role name) that returns a row when the role exists (`public` included). */
  readonly roleExists: string;
  /** The statement granting (or revoking) EXECUTE on a model function to `role` (`public` for every role). */
  functionAccess(fn: Omit<HostFunction, 'body' | 'returnType'>, role: string, grant: boolean): string;
  /** How materialized tables' catalog rows are written (optional; default: plain SQL on `ml_catalog.materialized_tables`). */
  readonly materialized?: MaterializedCatalogSql;
}

/**
 * How a host with roles writes materialized tables' catalog rows (Postgres: through
 * modelsql's own functions, catalog layout 7). Each is a query with positional parameters.
 */
export interface MaterializedCatalogSql {
  /** `$1`..`$14`: schema, name, definition, query, mode, freshness seconds, status, source schema, source table, source key (JSON), model schema, model name, model version, comment. One row, one column: the new table's id. */
  readonly create: string;
  /** `$1` id, `$2` status, `$3` freshness seconds, `$4` mode; NULL leaves a value as it is. */
  readonly alter: string;
  /** `$1` id, `$2` finished at (timestamp text), `$3` ms, `$4` lag ms, `$5` rows refreshed, `$6` predicted, `$7` deleted, `$8` provider rows, `$9` model version. */
  readonly recordRefresh: string;
  /** `$1` id, `$2` the error message. */
  readonly recordError: string;
  /** `$1` id: removes the row and the table's private objects. */
  readonly drop: string;
  /** `$1` a table's owner: one boolean, whether the current role has that owner's privileges (a refresher refreshes those tables only). */
  readonly mayRefresh: string;
}

/** Host session settings to hold while some work runs ({@link SqlDialect.trainingSettings}). */
export interface SessionSettings {
  /** The settings, name and value. */
  readonly values: readonly (readonly [string, string])[];
  /** A query of one row and one text column: the setting's current value. */
  read(name: string): string;
  /** A statement (or query) that sets the setting for the session. */
  write(name: string, value: string): string;
}

/** What change capture of one materialized table's source works with (`ChangeCaptureDialect`). */
export interface CaptureSpec {
  /** The materialized table's id (the NOTIFY payload, the lock's key). */
  readonly id: number;
  /** The source table, quoted and qualified. */
  readonly source: string;
  /** The source's primary-key columns (unquoted). */
  readonly keys: readonly string[];
  /** The table the triggers fill, quoted and qualified: the key columns, `seq` (ascending) and `changed_at` (a timestamp with time zone). */
  readonly changes: string;
  /** Prefix of the other objects capture creates, quoted and qualified (`ml_catalog.mt_7`: functions and views get suffixes). */
  readonly prefix: string;
  /** The state table, quoted and qualified (created by `install`, with an index on the keys). */
  readonly state: string;
  /** The state table's digest columns (of the model inputs, of the whole row). */
  readonly digests: readonly [string, string];
  /** The state table's output columns, names unquoted and host types. */
  readonly outputs: readonly { readonly name: string; readonly type: string }[];
  /** The result table, quoted and qualified. */
  readonly result: string;
}

/** Host statements of change capture and refresh claims (Postgres). */
export interface ChangeCaptureDialect {
  /** The channel NOTIFY'd with a materialized table's id when its source changes. */
  readonly channel: string;
  /** Statements that create the state table, the change table and the triggers filling it. */
  install(spec: CaptureSpec): readonly string[];
  /** Statements, run once the result table exists, that make the source undroppable while the materialized table exists. */
  pin(spec: CaptureSpec): readonly string[];
  /** Statements that remove what `install` and `pin` made. */
  uninstall(spec: CaptureSpec): readonly string[];
  /**
   * One statement that deletes every change record of table `changes` and creates the
   * temporary table `into` (quoted) of the keys they name (columns `keys`, quoted), once
   * each, with the oldest record's `changed_at`; in the caller's transaction, so that a
   * refresh that then fails or dies leaves the records where they were.
   */
  take(changes: string, into: string, keys: readonly string[]): string;
  /**
   * A query (`$1` a materialized table's id) of one boolean: claims the table's refresh for
   * this session if no other session holds it (true), else false at once. The claim
   * outlives the statement's transaction (a refresh spans several) and ends with `release`
   * or with the session.
   */
  readonly claim: string;
  /** A statement (`$1` the id) that ends this session's claim. */
  readonly release: string;
  /** A query of one boolean: whether the current role may read `ml_catalog.materialized_tables` (asked before reading it, so that no failed read aborts the caller's transaction). */
  readonly catalogReadable: string;
}

/** Similarity measures of VECTOR_SEARCH: `cosine` and `inner_product` rank higher first, `l2` (a distance) lower first. */
export type VectorMetric = 'cosine' | 'l2' | 'inner_product';

/** One VECTOR_SEARCH call, resolved against its search relation (core/planner/vector-search.ts). */
export interface VectorSearchSql {
  /** The query of the searched relation. */
  readonly source: string;
  /** The searched relation as a quoted base-table name, when it is one the host can address rows of (DuckDB's `rowid`). */
  readonly table?: string;
  /** The searched relation's columns, in order. */
  readonly columns: readonly HostColumn[];
  /** The searched vector column (one of `columns`). */
  readonly column: HostColumn;
  /**
   * The position of `column` in `columns` (0-based). The searched relation may have several
   * columns of one name (`TABLE (SELECT a.id, b.id, ...)`); a dialect that addresses them by
   * name must rename them by position first.
   */
  readonly columnIndex: number;
  /** The query vector, SQL text as the user wrote it (may refer to the input row). */
  readonly query: string;
  readonly topK: number;
  readonly metric: VectorMetric;
  /** Dimension of every non-NULL vector of `column`; undefined when it holds none. A query vector of another dimension fails the statement. */
  readonly dimension?: number;
  /** Whether some vector of `column` has a NULL component (as the dialect's `dimensions` query answered): such a vector ranks nowhere. */
  readonly holes?: boolean;
}

/** How a host spells VECTOR_SEARCH: exact top-k in plain SQL. */
export interface VectorDialect {
  /**
   * A query of one row: the least and greatest dimension of the non-NULL vectors of
   * `columns[index]` in `source` (whose columns are `columns`, names possibly repeated),
   * then whether one of them has a NULL component (NULL where the dialect's `search` skips
   * those vectors without being told), then the most array dimensions one of them has (NULL
   * where the column's type fixes it: a DuckDB `DOUBLE[]` has one; a Postgres `float8[]` may
   * hold `{{1,2},{3,4}}`, which is no vector).
   */
  dimensions(source: string, columns: readonly HostColumn[], index: number): string;
  /**
   * A parenthesized subquery that may stand where the call stood (correlated through
   * `query`): the searched relation's columns, then `score DOUBLE`, at most `topK` rows per
   * query vector, best first; NULL vectors (and NULL query vectors), and vectors with a NULL
   * component, match nothing.
   */
  search(search: VectorSearchSql): string;
  /** A query whose success means `table` is a base table with row identities (`table` set in {@link VectorSearchSql}); none: never. */
  rowIdentityProbe?(table: string): string;
}

/** A SQL function the core registers in the host (a trained model's `ml_predict_<model>`). */
export interface HostFunction {
  /** The attached database it is created in (`Host.attachedDatabase`); absent: the current one. */
  readonly database?: string;
  readonly schema: string;
  readonly name: string;
  /** Parameter names (unquoted) and host types. */
  readonly params: readonly { readonly name: string; readonly type: string }[];
  /** Host type of the result. */
  readonly returnType: string;
  /** The expression, over the quoted parameter names. */
  readonly body: string;
  /** Session-private (DuckDB `TEMPORARY MACRO`), for TEMPORARY models. */
  readonly temporary: boolean;
}

/**
 * One connection to a host database. All calls are sequential: the core awaits each before
 * the next (a host connection runs one statement at a time).
 */
export interface Host {
  /** `duckdb` or `postgres`. */
  readonly name: string;
  readonly dialect: SqlDialect;
  /**
   * Whether the host can register model functions in SQL (DuckDB macros, Postgres SQL
   * functions). Default for new adapters: `false`.
   */
  readonly nativeFunctions: boolean;
  /**
   * Names the database instance this host reaches, unique in the process, on hosts whose
   * catalog look-up cannot name it in SQL (DuckDB: a random id per opened instance, as a
   * process may open several, each with its own catalog). Part of every stored version's
   * identity (`ModelVersion.storedId`). Default: absent (the look-up names the server and
   * database itself, `SqlDialect.storedVersionIdentity`).
   */
  readonly instanceId?: string;
  /**
   * Runs one statement with optional `$1`-style parameters and reads all rows. With
   * `options.repeated`, the caller sends the same text again and again with other parameters
   * (modelsql's catalog look-up): a host may keep it parsed and planned for the session, as
   * Postgres's prepared statements (https://www.postgresql.org/docs/current/sql-prepare.html).
   */
  execute(sql: string, params?: readonly unknown[], options?: ExecuteOptions): Promise<HostResult>;
  /** Runs one statement and yields its rows in batches. */
  stream(sql: string): AsyncIterable<HostResult>;
  /** The columns `sql` (a query) would return, without reading its rows. */
  describe(sql: string): Promise<readonly HostColumn[]>;
  /** Name of the schema unqualified names resolve to (`main`, `public`). */
  currentSchema(): Promise<string>;
  /** Name of the current database / catalog. */
  currentDatabase(): Promise<string>;
  /**
   * Capability (optional; default absent: a session reaches its current database only, so
   * models live there and a three-part name naming another database is refused with 0A000,
   * as Postgres refuses cross-database references): the attached database `name` (DuckDB
   * ATTACH), each of which holds its own model catalog, or undefined when none is attached
   * under that name.
   */
  attachedDatabase?(name: string): Promise<{ readonly readOnly: boolean } | undefined>;
  /**
   * Creates a session-private table holding `query`'s rows, in order, and returns their
   * count; `readBatches` reads them back in that order. Its columns are `describe(query)`'s.
   */
  materialize(table: string, query: string): Promise<number>;
  /** Creates an empty session-private table. */
  createTempTable(table: string, columns: readonly HostColumn[]): Promise<void>;
  /** Drops a session-private table if it exists. */
  dropTempTable(table: string): Promise<void>;
  /**
   * Reads a materialized table back in order, `batchSize` rows at a time. `expressions`
   * are SQL expressions over its columns; `kinds` says which arrive as numbers (typed
   * arrays) and which as plain values. Other statements (appends) may run between batches.
   */
  readBatches(table: string, expressions: readonly string[], kinds: readonly ('number' | 'value')[], batchSize: number): AsyncIterable<ColumnBatch>;
  /** Opens an appender on a session-private table. */
  openAppender(table: string): Promise<HostAppender>;
  /**
   * Capability (optional; default: absent, and stages take the materialize → readBatches →
   * append → zip path): runs a stage in one pass, reading the input once and writing the
   * predictions once, paired with their input rows in the result (Postgres carries the input
   * fields through COPY; DuckDB pairs rows by position). Used only when the stage runs no
   * other statement meanwhile (no prediction cache).
   */
  openStage?(spec: HostStageSpec): Promise<HostStage>;
  /** Runs `fn` in a transaction, or inside the caller's transaction when one is open. */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  /** Whether a transaction is open on the connection (the user's, or one of `transaction`'s). */
  inTransaction(): Promise<boolean>;
  /**
   * Capability (optional; default absent: no limit): the statement timeout in force on the
   * connection, in ms (0 for none), which the session applies to model work too (Postgres
   * `statement_timeout`). `shown`: the setting as a query of this statement already read it
   * (`SessionReading.statementTimeout`), so no round trip is made.
   */
  statementTimeout?(shown?: string): Promise<number>;
  /**
   * Capability (optional; default absent: on): whether the session reads `'..'` strings
   * with `standard_conforming_strings` on, as the server last reported it (Postgres sends
   * the setting in a ParameterStatus message whenever it changes). The session scans SQL
   * with the same rule as the host, and refuses model statements while it is off.
   */
  standardConformingStrings?(): boolean;
  /**
   * Capability (optional; default absent: nothing to check): the session's `search_path`
   * when it puts another schema before the host's built-in functions and operators (a
   * function or operator there would stand in for the built-in ones in modelsql's own SQL),
   * else undefined (`SessionReadingSql.unsafeSearchPath`, in a query of its own): asked before
   * each model statement that looks up no model in the catalog, whose look-up asks it.
   */
  unsafeSearchPath?(): Promise<string | undefined>;
  /**
   * Capability (optional; default absent: the newest SQL the dialect writes): the server's
   * version as one number (Postgres's `server_version_num`, e.g. 150010), for SQL that only
   * newer versions have (`SqlDialect.inputHash`).
   */
  serverVersion?(): Promise<number>;
  /** Interrupts the statement running on this connection, if any. */
  interrupt(): void;
  /**
   * Optional (hosts with roles; default absent: `fn` runs as the session is): runs `fn`
   * acting as role `owner`, in a session reset before and after, where no code `fn` runs can
   * act as another role (Postgres: owner-confinement.ts). For a session of its own outside
   * any transaction block: a refresher's.
   */
  actAs?<T>(owner: string, fn: () => Promise<T>): Promise<T>;
  /** Closes the connection. */
  close(): Promise<void>;
}
