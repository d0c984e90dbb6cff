/**
 * Syntax nodes of model SQL: plain frozen data tagged by `kind`.
 *
 * Spans are 0-based half-open offsets `[start, end)` into the *script* text handed to
 * `parseScript`, so that the planner can splice a statement's text without re-lexing.
 */

/** Half-open byte range `[start, end)` of the script text. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** One identifier. `value` is already folded: plain identifiers to lower case, quoted ones kept. */
export interface Identifier {
  readonly kind: 'identifier';
  readonly value: string;
  /** True for `"quoted"` and `` `backtick` `` identifiers. */
  readonly quoted: boolean;
  readonly span: Span;
}

/** `model`, `schema.model` or `catalog.schema.model`, with an optional `$version`. */
export interface ModelName {
  readonly kind: 'model-name';
  /** 1 to 3 parts, outermost first. */
  readonly parts: readonly Identifier[];
  /** The `$N` suffix, when present. */
  readonly version?: number;
  readonly span: Span;
}

/**
 * A data type as written: Flink names (`STRING`, `ARRAY<FLOAT>`, `ROW<a INT>`) and host
 * names (`VARCHAR`, `FLOAT[]`, `DOUBLE PRECISION`) alike. Mapping to a host type happens
 * in the dialect.
 */
export interface DataType {
  readonly kind: 'type';
  /** Upper-cased base name, multi-word names joined by one space: `DOUBLE PRECISION`. */
  readonly name: string;
  /** Numeric parameters: `DECIMAL(10, 2)` → `[10, 2]`, `VARCHAR(20)` → `[20]`. */
  readonly params: readonly number[];
  /** `ARRAY<T>` / `T[]` → `[T]`; `MAP<K, V>` → `[K, V]`. */
  readonly elements?: readonly DataType[];
  /** `ROW<name T, ...>` / `STRUCT(name T, ...)` fields. */
  readonly fields?: readonly { readonly name: Identifier; readonly type: DataType }[];
  /** `NOT NULL` after the type. */
  readonly notNull: boolean;
  readonly span: Span;
}

/** A column of a model's INPUT or OUTPUT clause. */
export interface ColumnDef {
  readonly kind: 'column';
  readonly name: Identifier;
  readonly type: DataType;
  readonly comment?: string;
  readonly span: Span;
}

/** One `'key' = 'value'` entry of a WITH (...) or SET (...) list. */
export interface OptionEntry {
  readonly kind: 'option';
  readonly key: string;
  readonly value: string;
  readonly keySpan: Span;
  readonly valueSpan: Span;
}

interface StatementBase {
  /** The statement's exact source text, without the terminating `;`. */
  readonly text: string;
  readonly span: Span;
}

/** `CREATE [OR REPLACE] [TEMPORARY] MODEL [IF NOT EXISTS] name ... WITH (...) [AS query]` */
export interface CreateModelStatement extends StatementBase {
  readonly kind: 'create-model';
  readonly orReplace: boolean;
  readonly temporary: boolean;
  readonly ifNotExists: boolean;
  readonly name: ModelName;
  readonly input?: readonly ColumnDef[];
  readonly output?: readonly ColumnDef[];
  readonly comment?: string;
  readonly options: readonly OptionEntry[];
  /** The query after `AS`, verbatim, and where it sits. */
  readonly asQuery?: { readonly text: string; readonly span: Span };
}

export type AlterModelAction =
  | { readonly kind: 'set'; readonly options: readonly OptionEntry[] }
  | { readonly kind: 'reset'; readonly keys: readonly { readonly key: string; readonly span: Span }[] }
  | { readonly kind: 'rename'; readonly newName: ModelName };

/** `ALTER MODEL [IF EXISTS] name SET (...) | RESET (...) | RENAME TO new` */
export interface AlterModelStatement extends StatementBase {
  readonly kind: 'alter-model';
  readonly ifExists: boolean;
  readonly name: ModelName;
  readonly action: AlterModelAction;
}

/** `DROP [TEMPORARY] MODEL [IF EXISTS] name[$version]` */
export interface DropModelStatement extends StatementBase {
  readonly kind: 'drop-model';
  readonly temporary: boolean;
  readonly ifExists: boolean;
  readonly name: ModelName;
}

/** `SHOW MODELS [(FROM | IN) schema] [[NOT] LIKE | ILIKE 'pattern']` */
export interface ShowModelsStatement extends StatementBase {
  readonly kind: 'show-models';
  /** The schema (1 or 2 parts: `[catalog.]schema`). */
  readonly schema?: readonly Identifier[];
  /** The name filter; `caseInsensitive` for ILIKE. */
  readonly like?: { readonly pattern: string; readonly not: boolean; readonly caseInsensitive?: true };
}

/** `SHOW CREATE MODEL name[$version]` */
export interface ShowCreateModelStatement extends StatementBase {
  readonly kind: 'show-create-model';
  readonly name: ModelName;
}

/** `DESCRIBE | DESC MODEL [EXTENDED] name[$version]` */
export interface DescribeModelStatement extends StatementBase {
  readonly kind: 'describe-model';
  readonly extended: boolean;
  readonly name: ModelName;
}

/** `SHOW MODEL VERSIONS name` */
export interface ShowModelVersionsStatement extends StatementBase {
  readonly kind: 'show-model-versions';
  readonly name: ModelName;
}

/** `GRANT USAGE ON MODEL name TO role` / `REVOKE USAGE ON MODEL name FROM role` */
export interface GrantModelStatement extends StatementBase {
  readonly kind: 'grant-model' | 'revoke-model';
  readonly name: ModelName;
  readonly role: Identifier;
}

/** `FRESHNESS = INTERVAL 'n' SECOND | MINUTE | HOUR | DAY` (Flink's materialized tables). */
export interface Freshness {
  readonly kind: 'freshness';
  /** The number as written. */
  readonly amount: number;
  readonly unit: 'SECOND' | 'MINUTE' | 'HOUR' | 'DAY';
  /** The interval in seconds. */
  readonly seconds: number;
  /** The `INTERVAL ...` part. */
  readonly span: Span;
}

/** How a materialized table is refreshed: only changed rows, or everything. */
export type RefreshMode = 'CONTINUOUS' | 'FULL';

/**
 * `CREATE MATERIALIZED TABLE t [(PRIMARY KEY (k, ...) NOT ENFORCED)] [COMMENT '...']
 * [WITH (...)] FRESHNESS = INTERVAL ... [REFRESH_MODE = CONTINUOUS | FULL] AS query`
 * (Flink 1.20, FLIP-435).
 */
export interface CreateMaterializedTableStatement extends StatementBase {
  readonly kind: 'create-materialized-table';
  /** 1 to 3 parts, outermost first. */
  readonly table: readonly Identifier[];
  readonly tableSpan: Span;
  readonly primaryKey?: readonly Identifier[];
  readonly comment?: string;
  readonly options: readonly OptionEntry[];
  readonly freshness: Freshness;
  readonly refreshMode?: { readonly mode: RefreshMode; readonly span: Span };
  /** The query after `AS`, verbatim, with its outermost ML calls. */
  readonly asQuery: { readonly text: string; readonly span: Span; readonly calls: readonly MlCall[] };
}

/** What an ALTER MATERIALIZED TABLE does. */
export type AlterMaterializedTableAction =
  | { readonly kind: 'suspend' }
  | { readonly kind: 'resume'; readonly options: readonly OptionEntry[] }
  | { readonly kind: 'refresh' }
  | { readonly kind: 'set-freshness'; readonly freshness: Freshness }
  | { readonly kind: 'set-refresh-mode'; readonly mode: RefreshMode; readonly span: Span };

/** `ALTER MATERIALIZED TABLE t SUSPEND | RESUME [WITH (...)] | REFRESH | SET FRESHNESS = ... | SET REFRESH_MODE = ...` */
export interface AlterMaterializedTableStatement extends StatementBase {
  readonly kind: 'alter-materialized-table';
  readonly table: readonly Identifier[];
  readonly tableSpan: Span;
  readonly action: AlterMaterializedTableAction;
}

/** `DROP MATERIALIZED TABLE [IF EXISTS] t` */
export interface DropMaterializedTableStatement extends StatementBase {
  readonly kind: 'drop-materialized-table';
  readonly ifExists: boolean;
  readonly table: readonly Identifier[];
  readonly tableSpan: Span;
}

/** `SHOW MATERIALIZED TABLES` */
export interface ShowMaterializedTablesStatement extends StatementBase {
  readonly kind: 'show-materialized-tables';
}

/** `DESCRIBE | DESC MATERIALIZED TABLE t` */
export interface DescribeMaterializedTableStatement extends StatementBase {
  readonly kind: 'describe-materialized-table';
  readonly table: readonly Identifier[];
  readonly tableSpan: Span;
}

/** The statements of materialized tables. */
export type MaterializedTableStatement =
  | CreateMaterializedTableStatement
  | AlterMaterializedTableStatement
  | DropMaterializedTableStatement
  | ShowMaterializedTablesStatement
  | DescribeMaterializedTableStatement;

/** A host statement that contains ML_PREDICT / ML_EVALUATE calls. */
export interface QueryStatement extends StatementBase {
  readonly kind: 'query';
  /** The outermost ML calls, in text order (nested ones hang off their input). */
  readonly calls: readonly MlCall[];
}

/** A statement with no model syntax: passed to the host byte for byte. */
export interface HostStatement extends StatementBase {
  readonly kind: 'host';
}

export type Statement =
  | CreateModelStatement
  | AlterModelStatement
  | DropModelStatement
  | ShowModelsStatement
  | ShowCreateModelStatement
  | DescribeModelStatement
  | ShowModelVersionsStatement
  | GrantModelStatement
  | MaterializedTableStatement
  | QueryStatement
  | HostStatement;

/**
 * One `ML_PREDICT(...)` or `ML_EVALUATE(...)` call inside a host statement.
 * `span` covers everything the planner replaces by a relation: for Flink's
 * `TABLE(ML_PREDICT(...))` that is the whole `TABLE(...)`.
 */
export interface MlCall {
  readonly kind: 'ml-call';
  readonly function: 'ML_PREDICT' | 'ML_EVALUATE' | 'VECTOR_SEARCH';
  /** Arguments as written; all positional or all named (the parser rejects a mix). */
  readonly args: readonly MlArgument[];
  readonly span: Span;
  /** Span of the function name token, for error positions. */
  readonly nameSpan: Span;
  /**
   * Whether an alias follows the call (`AS p`, `p`, `p(a, b)`). Postgres before 16 requires
   * one on a subquery in FROM, so the rewrite adds one where the user wrote none.
   */
  readonly aliased: boolean;
}

export interface MlArgument {
  readonly kind: 'argument';
  /** Upper-cased name of a named argument (`INPUT`, `MODEL`, ...), absent when positional. */
  readonly name?: string;
  readonly value: MlArgValue;
  readonly span: Span;
}

export type MlArgValue =
  /** `TABLE t` / `TABLE s.t` */
  | { readonly kind: 'table'; readonly name: readonly Identifier[]; readonly span: Span }
  /** `TABLE (SELECT ...)`: `text`/`span` are the inside of the parentheses; ML calls inside it are in `calls`. */
  | { readonly kind: 'subquery'; readonly text: string; readonly span: Span; readonly calls: readonly MlCall[] }
  /** `MODEL m` */
  | { readonly kind: 'model'; readonly name: ModelName; readonly span: Span }
  /** `DESCRIPTOR(a, b)`; a qualified column is rejected by the parser. */
  | { readonly kind: 'descriptor'; readonly columns: readonly Identifier[]; readonly span: Span }
  /** `MAP['k', 'v', ...]`; values that are not string literals are kept with `literal: false` for the binder to reject. */
  | {
      readonly kind: 'map';
      readonly entries: readonly { readonly key: string; readonly value: string; readonly literal: boolean; readonly keySpan: Span; readonly valueSpan: Span }[];
      readonly span: Span;
    }
  /** `'text'` */
  | { readonly kind: 'string'; readonly value: string; readonly span: Span }
  /** Anything else, kept as text for the error message. */
  | { readonly kind: 'other'; readonly text: string; readonly span: Span };
