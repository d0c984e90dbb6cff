/**
 * Errors raised by modelsql. Every error carries a Postgres SQLSTATE so that the
 * proxy can forward it as an ErrorResponse and the CLI can print it.
 *
 * SQLSTATEs follow https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

/** A position in SQL text: `offset` is 0-based, `line` and `column` are 1-based. */
export interface SourcePosition {
  readonly offset: number;
  readonly line: number;
  readonly column: number;
}

/** Root of every modelsql error. */
export class ModelSqlError extends Error {
  /** Five-character SQLSTATE, e.g. `42601`. */
  readonly sqlstate: string;
  /** Where in the statement text the problem is, when it is tied to a token. */
  position?: SourcePosition;
  /** The SQL text `position` refers to (set by whoever knows it). */
  sqlText?: string;

  constructor(sqlstate: string, message: string, options?: { position?: SourcePosition; sqlText?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.sqlstate = sqlstate;
    this.position = options?.position;
    this.sqlText = options?.sqlText;
  }
}

/** 42601 syntax_error, with line, column and caret. */
export class SqlSyntaxError extends ModelSqlError {
  constructor(message: string, position?: SourcePosition, sqlText?: string) {
    super('42601', message, { position, sqlText });
  }
}

/** 42704 undefined_object: the model (or model version) does not exist. */
export class UndefinedModelError extends ModelSqlError {
  constructor(message: string, position?: SourcePosition) {
    super('42704', message, { position });
  }
}

/** 42710 duplicate_object: CREATE MODEL on a name that exists. */
export class DuplicateModelError extends ModelSqlError {
  constructor(message: string, position?: SourcePosition) {
    super('42710', message, { position });
  }
}

/** 0A000 feature_not_supported. */
export class UnsupportedFeatureError extends ModelSqlError {
  constructor(message: string, position?: SourcePosition) {
    super('0A000', message, { position });
  }
}

/**
 * 42501 insufficient_privilege: a model statement (or a catalog upgrade) in a session whose
 * `search_path` puts a schema before the host's built-in functions and operators, where a
 * role with CREATE on it could plant ones that modelsql's own SQL would then run.
 */
export class UnsafeSearchPathError extends ModelSqlError {
  constructor(path: string, position?: SourcePosition) {
    super(
      '42501',
      `model statements need pg_catalog first on the search path, and this session searches ${path}: a function or operator of an earlier schema would stand in for the built-in ones in modelsql's own SQL; SET search_path = pg_catalog, ... (or leave pg_catalog out: Postgres then searches it first)`,
      { position },
    );
  }
}

/** 42501 insufficient_privilege: a role changing a model it does not own (hosts with roles). */
export class InsufficientPrivilegeError extends ModelSqlError {
  constructor(message: string, position?: SourcePosition) {
    super('42501', message, { position });
  }
}

/** 22023 invalid_parameter_value: a bad WITH option or CONFIG entry. */
export class InvalidOptionError extends ModelSqlError {
  constructor(message: string, position?: SourcePosition) {
    super('22023', message, { position });
  }
}

/** 42804 datatype_mismatch, 42703 undefined_column, 42P13 invalid_function_definition … : argument problems. */
export class ArgumentError extends ModelSqlError {
  constructor(sqlstate: '42804' | '42703' | '42P13' | '42883' | '22023', message: string, position?: SourcePosition) {
    super(sqlstate, message, { position });
  }
}

/**
 * 38000 external_routine_exception: a model runtime (ONNX, a provider) failed.
 * `retryable` tells the executor whether trying again may help.
 */
export class ModelRuntimeError extends ModelSqlError {
  readonly provider: string;
  readonly retryable: boolean;
  constructor(provider: string, message: string, options?: { retryable?: boolean; cause?: unknown; sqlstate?: string }) {
    super(options?.sqlstate ?? '38000', message, { cause: options?.cause });
    this.provider = provider;
    this.retryable = options?.retryable ?? false;
  }
}

/** 57014 query_canceled. */
export class QueryCanceledError extends ModelSqlError {
  constructor(message = 'canceling statement due to user request', options?: { cause?: unknown }) {
    super('57014', message, options);
  }
}

/**
 * Any thrown value as a {@link ModelSqlError}: itself when it is one; an error carrying a
 * `sqlstate` keeps it and its message; anything else is XX000 internal_error worded
 * `internal error: <message>`. The CLI and the proxy report every error through it, so
 * that both word each error alike.
 */
export function asModelSqlError(error: unknown): ModelSqlError {
  if (error instanceof ModelSqlError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const sqlstate = (error as { sqlstate?: unknown } | null)?.sqlstate;
  if (typeof sqlstate === 'string' && /^[0-9A-Z]{5}$/.test(sqlstate)) return new ModelSqlError(sqlstate, message, { cause: error });
  return new ModelSqlError('XX000', `internal error: ${message}`, { cause: error });
}

/**
 * A host error about SQL that modelsql generated, re-raised without the generated text: the
 * host's first paragraph (DuckDB appends the statement with a caret after a blank line),
 * at `position` in the user's text when known.
 */
export function withoutGeneratedSql(error: unknown, context: string, position?: SourcePosition): unknown {
  if (!(error instanceof ModelSqlError) || error.sqlstate === '57014' || error instanceof SqlSyntaxError) return error;
  const summary = error.message.split(/\n\s*\n/)[0]!.trim();
  return new ModelSqlError(error.sqlstate, `${summary} (${context})`, { position, cause: error });
}

/** Computes a 1-based line/column for a 0-based offset in `text`. */
export function positionAt(text: string, offset: number): SourcePosition {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(Math.max(offset, 0), text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset: end, line, column: end - lineStart + 1 };
}

/**
 * Formats an error the way psql does: the message, then the offending line with a caret
 * under the column.
 *
 * @example
 * ERROR:  42601: syntax error at or near "MODLE"
 * LINE 1: CREATE MODLE m
 *                ^
 */
export function formatError(thrown: unknown): string {
  const error = asModelSqlError(thrown);
  let out = `ERROR:  ${error.sqlstate}: ${error.message}`;
  if (error.position && error.sqlText !== undefined) {
    const { line, column } = error.position;
    const lineText = error.sqlText.split('\n')[line - 1] ?? '';
    const prefix = `LINE ${line}: `;
    out += `\n${prefix}${lineText}\n${' '.repeat(prefix.length + column - 1)}^`;
  } else if (error.position) {
    out += ` (line ${error.position.line}, column ${error.position.column})`;
  }
  return out;
}
