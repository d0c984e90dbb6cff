/**
 * PostgreSQL's SQL spelling: quoting, the mapping of model column types to Postgres types
 * (https://www.postgresql.org/docs/current/datatype.html), and the statements the core
 * generates.
 */
import type { HostFunction, SessionReadingSql, SessionSettings, SqlDialect, SqlFunction, SqlOperator } from '../../core/host.js';
import type { DataType } from '../../core/sql/ast.js';
import { doubleQuote, numberText, quoteString } from '../../core/sql/format.js';
import { POSTGRES_ROLES } from './catalog-security.js';
import { POSTGRES_CHANGE_CAPTURE } from './change-capture.js';
import { postgresVectors } from './postgres-vector-search.js';

/**
 * The hidden ordinal column of modelsql's temporary tables: row `n` (from 1) of a
 * materialized input and of a stage's output carry `n`, and the zip joins on it.
 */
export const ORDINAL_COLUMN = '__modelsql_ord';

/** Flink and DuckDB type names → Postgres, for scalar types. */
const SCALAR_TYPES: Readonly<Record<string, string>> = {
  TINYINT: 'smallint',
  INT1: 'smallint',
  UTINYINT: 'smallint',
  SMALLINT: 'smallint',
  INT2: 'smallint',
  USMALLINT: 'integer',
  INT: 'integer',
  INTEGER: 'integer',
  INT4: 'integer',
  UINTEGER: 'bigint',
  BIGINT: 'bigint',
  INT8: 'bigint',
  UBIGINT: 'numeric(20, 0)',
  HUGEINT: 'numeric(38, 0)',
  FLOAT: 'real',
  REAL: 'real',
  FLOAT4: 'real',
  DOUBLE: 'double precision',
  'DOUBLE PRECISION': 'double precision',
  FLOAT8: 'double precision',
  BOOLEAN: 'boolean',
  BOOL: 'boolean',
  STRING: 'text',
  TEXT: 'text',
  VARCHAR: 'character varying',
  'CHARACTER VARYING': 'character varying',
  CHAR: 'character',
  CHARACTER: 'character',
  BPCHAR: 'character',
  BYTES: 'bytea',
  BLOB: 'bytea',
  BYTEA: 'bytea',
  BINARY: 'bytea',
  VARBINARY: 'bytea',
  DATE: 'date',
  TIME: 'time',
  'TIME WITHOUT TIME ZONE': 'time',
  'TIME WITH TIME ZONE': 'time with time zone',
  TIMETZ: 'time with time zone',
  TIMESTAMP: 'timestamp',
  'TIMESTAMP WITHOUT TIME ZONE': 'timestamp',
  DATETIME: 'timestamp',
  TIMESTAMP_LTZ: 'timestamp with time zone',
  TIMESTAMPTZ: 'timestamp with time zone',
  'TIMESTAMP WITH TIME ZONE': 'timestamp with time zone',
  'TIMESTAMP WITH LOCAL TIME ZONE': 'timestamp with time zone',
  INTERVAL: 'interval',
  UUID: 'uuid',
  JSON: 'json',
  JSONB: 'jsonb',
};

/** `$tag$text$tag$` with a tag that does not occur in `text` (https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-DOLLAR-QUOTING). */
export function dollarQuote(text: string): string {
  let tag = '$modelsql$';
  for (let i = 0; text.includes(tag); i++) tag = `$modelsql${i}$`;
  return `${tag}${text}${tag}`;
}

/** Types whose length parameter Postgres keeps (`varchar(10)`, `char(3)`); others drop it. */
const LENGTH_TYPES = new Set(['character varying', 'character']);

/** Input types {@link PostgresDialect.inputHash} digests: equal hashes only for values equal as the type compares them, and those read alike by a model. */
const HASHED_EXACTLY = new Set(['smallint', 'integer', 'bigint', 'real', 'double precision', 'boolean', 'text', 'character varying', 'character', 'date', 'timestamp without time zone', 'timestamp with time zone', 'uuid', 'bytea']);
/** The text types among them. */
const COLLATABLE = new Set(['text', 'character varying', 'character']);
/**
 * The 64-bit types among them, hashed through their binary send form (8 bytes of `bytea`):
 * Postgres's own hash of a `bigint` folds its high half into the low one (`lo ^ hi`, to agree
 * with `integer`'s hash), and `timestamp`/`timestamptz` hash as `bigint`, so 0 and 2^32 + 1
 * share a hash whatever the seed (hashfunc.c `hashint8extended`).
 */
const SENT_WHOLE = new Map([
  ['bigint', 'pg_catalog.int8send'],
  ['timestamp without time zone', 'pg_catalog.timestamp_send'],
  ['timestamp with time zone', 'pg_catalog.timestamptz_send'],
]);

/**
 * The Postgres dialect.
 *
 * - STRING → text, VARCHAR(n) → character varying(n), DOUBLE → double precision, FLOAT →
 *   real, TINYINT → smallint (Postgres has no 1-byte integer), BYTES → bytea,
 *   DECIMAL(p,s) → numeric(p,s), TIMESTAMP_LTZ → timestamp with time zone.
 * - ARRAY<T> → T[]; MAP<K,V> and ROW<...> → jsonb (a JSON object; Postgres has no map
 *   type, and a composite type would need a CREATE TYPE per model).
 */
export class PostgresDialect implements SqlDialect {
  /**
   * `text` and `bytea` qualified: a type name is looked up on the search path like a
   * function's (a domain `public.text` would stand in for the built-in one); `integer`,
   * `bigint`, `double precision` and `timestamp` are SQL keywords, always pg_catalog's
   * (https://www.postgresql.org/docs/current/datatype.html).
   */
  readonly catalogTypes = {
    text: 'pg_catalog.text',
    integer: 'integer',
    bigint: 'bigint',
    double: 'double precision',
    blob: 'pg_catalog.bytea',
    timestamp: 'timestamp',
  } as const;

  /**
   * The server, the database and the row version of a `model_versions` row: the server's
   * address and port and its start time (`inet_server_addr`, `inet_server_port`,
   * `pg_postmaster_start_time`, executable by every role; NULL address and port over a Unix
   * socket), `current_database()`, and the row's `xmin`, the id of the transaction that
   * wrote this version of the row (https://www.postgresql.org/docs/current/ddl-system-columns.html).
   * Transaction ids are assigned by the server, one counter for all databases of a cluster,
   * and every write of the row (a re-import, an ALTER, a rename) makes a new row version with
   * a new one; no role chooses it. (`pg_control_system()`'s system identifier would name the
   * cluster better, and stock Postgres lets every role call it, but a server may revoke it,
   * and a refused call would fail every model statement: Postgres checks EXECUTE when it
   * starts a query, whatever branch of a CASE the call is in.) No subquery: it is planned by
   * every model statement's look-up. Every name qualified; `xmin` is a system
   * column, which no table column or search path can stand for.
   */
  readonly storedVersionIdentity =
    "pg_catalog.format('%s:%s %s %s %s', pg_catalog.inet_server_addr(), pg_catalog.inet_server_port(), pg_catalog.date_part('epoch', pg_catalog.pg_postmaster_start_time()), pg_catalog.current_database(), xmin)";

  /**
   * - `unsafeSearchPath`: the search path (https://www.postgresql.org/docs/current/ddl-schemas.html#DDL-SCHEMAS-PATH),
   *   schemas joined by `, `, when its first schema other than the session's temporary one
   *   is not `pg_catalog`, else NULL. Temporary schemas do not count: Postgres never looks
   *   up functions or operators there. `current_schemas(true)` lists `pg_catalog` where
   *   Postgres searches it (first, unless the path names it later), and the temporary
   *   schema at most once; so `pg_catalog` must be first, or second after that schema. An
   *   expression without subqueries: it is read by every model statement's catalog look-up,
   *   whose planning time it adds to.
   * - `statementTimeout`: `current_setting('statement_timeout')` (`30s`, `0`).
   *
   * Every name is qualified.
   */
  readonly sessionReading: SessionReadingSql = {
    unsafeSearchPath: unsafeSearchPath('pg_catalog.current_schemas(true)'),
    statementTimeout: "pg_catalog.current_setting('statement_timeout')",
  };

  /**
   * `, CASE WHEN FALSE THEN pg_catalog.clock_timestamp() END AS "<name>"`: the planner does
   * not pull up a subquery whose select list calls a VOLATILE function (`is_simple_subquery`
   * in src/backend/optimizer/prep/prepjointree.c, Postgres 9.x to 18; the check runs before
   * constant folding), so the subquery's columns are computed once per row and not inlined
   * into every reference above. Constant folding then turns the column into a NULL constant
   * (it costs nothing per row), and `clock_timestamp` being PARALLEL SAFE
   * (https://www.postgresql.org/docs/current/parallel-safety.html), the query above can still
   * run as a parallel partial aggregate, which it did not over the `OFFSET 0` fence used before
   * (checked with `EXPLAIN` on Postgres 15).
   */
  layerFence(name: string): string {
    return `, CASE WHEN FALSE THEN pg_catalog.clock_timestamp() END AS ${this.quoteIdentifier(name)}`;
  }

  /** `ANALYZE` of a temporary table (https://www.postgresql.org/docs/current/sql-analyze.html); autovacuum never analyzes one. */
  analyze(table: string): string {
    return `ANALYZE pg_temp.${table}`;
  }

  /** Roles, model owners and grants, with row-level security on the catalog (catalog-security.ts). */
  readonly roles = POSTGRES_ROLES;

  /** VECTOR_SEARCH (postgres-vector-search.ts). */
  readonly vectors = postgresVectors;

  /**
   * `OPERATOR(pg_catalog.+)`: a schema-qualified operator is looked up in that schema only,
   * whatever the search path (https://www.postgresql.org/docs/current/sql-expressions.html#SQL-EXPRESSIONS-OPERATOR-CALLS).
   * OPERATOR() takes the precedence of "any other operator", hence the parentheses.
   */
  operator(left: string, op: SqlOperator, right: string): string {
    return `(${left} OPERATOR(pg_catalog.${op}) ${right})`;
  }

  negate(operand: string): string {
    return `(OPERATOR(pg_catalog.-) ${operand})`;
  }

  /** `pg_catalog.exp(x)`: built-in functions, aggregates and window functions live in pg_catalog. */
  call(fn: SqlFunction, ...args: readonly string[]): string {
    return `pg_catalog.${fn}(${args.join(', ')})`;
  }

  double(value: number): string {
    return `CAST(${numberText(value)} AS double precision)`;
  }

  bigint(value: number): string {
    return `CAST(${numberText(Math.trunc(value))} AS bigint)`;
  }

  /** Materialized tables' change capture and refresh locks (change-capture.ts). */
  readonly changeCapture = POSTGRES_CHANGE_CAPTURE;

  /** md5 of the row's text form (https://www.postgresql.org/docs/current/rowtypes.html#ROWTYPES-IO-SYNTAX: NULL is empty, '' is `""`). */
  rowDigest(alias: string): string {
    return `pg_catalog.md5(CAST(${alias} AS pg_catalog.text))`;
  }

  valuesDigest(expressions: readonly string[]): string {
    return `pg_catalog.md5(CAST(ROW(${expressions.join(', ')}, NULL) AS pg_catalog.text))`;
  }

  /**
   * `hash_record_extended` (Postgres 14+, the 64-bit hash that hash partitioning keeps
   * stable across versions: https://www.postgresql.org/docs/current/functions-comparison.html)
   * of the inputs, over types whose hash tells apart every two values the model could read
   * differently; text types are hashed under the "C" collation (a nondeterministic
   * collation hashes case-insensitively), and 64-bit types through their 8 bytes (their own
   * hash keeps 32 bits). Other types, and servers before 14: undefined (md5 of the text form).
   */
  inputHash(columns: readonly { readonly expression: string; readonly type: string }[], serverVersion?: number): string | undefined {
    if (serverVersion !== undefined && serverVersion < 140000) return undefined;
    if (columns.length === 0 || !columns.every((c) => HASHED_EXACTLY.has(c.type))) return undefined;
    const values = columns.map((c) => (COLLATABLE.has(c.type) ? `${c.expression} COLLATE "C"` : SENT_WHOLE.has(c.type) ? `${SENT_WHOLE.get(c.type)!}(${c.expression})` : c.expression));
    return `pg_catalog.hash_record_extended(ROW(${values.join(', ')}), 0)`;
  }

  quoteIdentifier(name: string): string {
    return doubleQuote(name);
  }

  /**
   * A string literal that reads the same whatever `standard_conforming_strings` is: `'it''s'`,
   * and an escape string `E'a\\b'` when the value holds a backslash (which `'...'` reads as
   * an escape when the setting is off; https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-STRINGS-ESCAPE).
   */
  quoteString(value: string): string {
    return value.includes('\\') ? `E${quoteString(value.replace(/\\/g, '\\\\'))}` : quoteString(value);
  }

  hostType(type: DataType): string {
    const name = type.name;
    if ((name === 'ARRAY' || name === 'LIST' || name === 'MULTISET') && type.elements?.length === 1) {
      const element = this.hostType(type.elements[0]!);
      // An array of documents is one document; `T[][]` is the same type as `T[]` in Postgres
      // (https://www.postgresql.org/docs/current/arrays.html#ARRAYS-DECLARATION).
      if (element === 'jsonb' || element.endsWith('[]')) return element;
      return `${element}[]`;
    }
    if (name === 'MAP' || name === 'ROW' || name === 'STRUCT') return 'jsonb';
    if (name === 'DECIMAL' || name === 'NUMERIC' || name === 'DEC') {
      return type.params.length > 0 ? `numeric(${type.params.join(', ')})` : 'numeric';
    }
    if (name === 'FLOAT' && type.params.length > 0 && type.params[0]! > 24) return 'double precision';
    const mapped = SCALAR_TYPES[name];
    if (mapped === undefined) return name.toLowerCase();
    if (LENGTH_TYPES.has(mapped) && type.params.length > 0 && type.params[0] !== 2147483647) return `${mapped}(${type.params[0]})`;
    if (mapped === 'character varying') return 'text';
    if ((mapped === 'timestamp' || mapped === 'timestamp with time zone') && type.params.length > 0) {
      return mapped === 'timestamp' ? `timestamp(${Math.min(type.params[0]!, 6)})` : `timestamp(${Math.min(type.params[0]!, 6)}) with time zone`;
    }
    return mapped;
  }

  /**
   * Pairs rows by the hidden ordinal both tables carry, in input order. A subquery in FROM
   * needs an alias before Postgres 16 (https://www.postgresql.org/docs/16/release-16.html);
   * the relation is spliced where the ML call was, so on older servers write one after the call.
   */
  zipRelations(input: { readonly table: string; readonly columns: readonly string[] }, output: { readonly table: string; readonly columns: readonly string[] }): string {
    const q = (n: string) => this.quoteIdentifier(n);
    const columns = [...input.columns.map((c) => `i.${q(c)}`), ...output.columns.map((c) => `o.${q(c)}`)];
    const ord = q(ORDINAL_COLUMN);
    return `(SELECT ${columns.join(', ')} FROM pg_temp.${q(input.table)} AS i JOIN pg_temp.${q(output.table)} AS o ON ${this.operator(`o.${ord}`, '=', `i.${ord}`)} ORDER BY i.${ord})`;
  }

  /** A jsonb object of metric → double (https://www.postgresql.org/docs/current/functions-json.html). */
  metricMap(entries: readonly (readonly [string, string])[]): string {
    return `pg_catalog.jsonb_build_object(${entries.map(([k, v]) => `CAST(${this.quoteString(k)} AS pg_catalog.text), CAST(${v} AS double precision)`).join(', ')})`;
  }

  /**
   * A DOUBLE in [0, 1) from an md5 of the seed and the values' text
   * (https://www.postgresql.org/docs/current/functions-string.html): deterministic across
   * runs and servers. NULLs count as empty.
   */
  hashFraction(expressions: readonly string[], seed: number): string {
    const parts = [String(Math.trunc(seed)), ...expressions.map((e) => `coalesce(CAST(${e} AS pg_catalog.text), '')`)].join(", '|', ");
    const hex = this.operator("CAST('x' AS pg_catalog.text)", '||', this.call('substr', this.call('md5', this.call('concat', parts)), '1', '8'));
    const bits = this.operator(`CAST(CAST(${hex} AS bit(32)) AS bigint)`, '&', this.bigint(2147483647));
    return this.operator(`CAST(${bits} AS double precision)`, '/', this.double(2147483648));
  }

  /**
   * Training runs with JIT compilation off (https://www.postgresql.org/docs/current/jit-decision.html):
   * its generated statements carry large expressions (a tree's nested CASE, a metric CTE)
   * over row-count estimates far above the real ones, so the planner's cost passes
   * `jit_above_cost` and LLVM spends seconds optimizing code that then runs for
   * milliseconds (measured: 7.5 s of JIT for a 0.3 s metrics query on 20,000 rows).
   * `work_mem` is 64 MB: a tree level's `GROUPING SETS` is hashed in one pass only when the
   * planner's estimate of its groups fits in `work_mem` × `hash_mem_multiplier`, else it
   * sorts the rows once per set (https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM);
   * the groups themselves are few (nodes × bins per set).
   */
  readonly trainingSettings: SessionSettings = {
    values: [
      ['jit', 'off'],
      ['work_mem', '64MB'],
    ],
    read: (name) => `SELECT pg_catalog.current_setting(${this.quoteString(name)})`,
    write: (name, value) => `SELECT pg_catalog.set_config(${this.quoteString(name)}, ${this.quoteString(value)}, false)`,
  };

  /**
   * A `LANGUAGE sql IMMUTABLE PARALLEL SAFE` function (https://www.postgresql.org/docs/current/sql-createfunction.html)
   * whose body is dollar-quoted (read the same whatever `standard_conforming_strings` is);
   * a temporary one lives in `pg_temp` and must be called as `pg_temp.name(...)`. The old
   * function of the same signature is dropped first: `CREATE OR REPLACE` cannot change the
   * return type or the parameter names (a new model version may do both).
   *
   * No `SET search_path`: it would keep the planner from inlining the body into the calling
   * query (https://wiki.postgresql.org/wiki/Inlining_of_SQL_functions), and the body needs none,
   * every operator and function in it being schema-qualified. The model's math is immutable
   * and parallel safe; a big scan calling the function can use parallel workers.
   */
  createFunction(fn: HostFunction): string {
    const params = fn.params.map((p) => `${this.quoteIdentifier(p.name)} ${p.type}`).join(', ');
    return `${this.dropFunction(fn)}; CREATE FUNCTION ${this.functionName(fn)}(${params}) RETURNS ${fn.returnType} LANGUAGE sql IMMUTABLE PARALLEL SAFE AS ${dollarQuote(`SELECT ${fn.body}`)}`;
  }

  /**
   * Functions named `$2` in schema `$1` other than the one of argument types `$3`, as
   * `schema.name(types)`. `proargtypes` is an `oidvector`, whose subscripts start at 0: it
   * is unnested before comparing, as arrays of other bounds are never equal.
   */
  otherFunctions(fn: Omit<HostFunction, 'body' | 'returnType' | 'params'>, ours: readonly string[] | undefined): { readonly sql: string; readonly params: readonly unknown[] } {
    return { sql: OTHER_FUNCTIONS, params: [fn.schema, fn.name, ours ?? null] };
  }

  dropFunction(fn: Omit<HostFunction, 'body' | 'returnType'>): string {
    return `DROP FUNCTION IF EXISTS ${this.functionName(fn)}(${fn.params.map((p) => p.type).join(', ')})`;
  }

  private functionName(fn: { readonly schema: string; readonly name: string; readonly temporary: boolean }): string {
    return `${fn.temporary ? 'pg_temp' : this.quoteIdentifier(fn.schema)}.${this.quoteIdentifier(fn.name)}`;
  }
}

/** The search path when `schemas` (an SQL `name[]`, `current_schemas(true)`) does not start with `pg_catalog`, past the session's temporary schema; else NULL. */
function unsafeSearchPath(schemas: string): string {
  const position = `pg_catalog.array_position(${schemas}, CAST('pg_catalog' AS pg_catalog.name))`;
  const safe = `${position} OPERATOR(pg_catalog.=) 1 OR (${position} OPERATOR(pg_catalog.=) 2 AND (${schemas})[1] OPERATOR(pg_catalog.~) '^pg_temp_[0-9]+$')`;
  return `CASE WHEN ${safe} THEN NULL ELSE pg_catalog.array_to_string(${schemas}, ', ') END`;
}

/** The functions of schema `$1` named `$2` with other parameter types than `$3` (a text array; NULL: any). */
const OTHER_FUNCTIONS = `SELECT pg_catalog.concat(pg_catalog.quote_ident(n.nspname), '.', pg_catalog.quote_ident(p.proname), '(', pg_catalog.oidvectortypes(p.proargtypes), ')') FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
    WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND p.proname OPERATOR(pg_catalog.=) $2
      AND ($3::pg_catalog.text[] IS NULL OR ARRAY(SELECT a.t FROM pg_catalog.unnest(CAST(p.proargtypes AS pg_catalog.oid[])) WITH ORDINALITY AS a(t, o) ORDER BY a.o) OPERATOR(pg_catalog.<>) ARRAY(SELECT CAST(CAST(u.t AS pg_catalog.regtype) AS pg_catalog.oid) FROM pg_catalog.unnest($3::pg_catalog.text[]) WITH ORDINALITY AS u(t, o) ORDER BY u.o))`;
