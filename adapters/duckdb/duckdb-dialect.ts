/**
 * DuckDB's SQL spelling: quoting, the mapping of model column types to DuckDB types
 * (https://duckdb.org/docs/stable/sql/data_types/overview), and the statements the core
 * generates.
 */
import type { HostFunction, SqlDialect, SqlFunction, SqlOperator } from '../../core/host.js';
import type { DataType } from '../../core/sql/ast.js';
import { doubleQuote, numberText, quoteString } from '../../core/sql/format.js';
import { duckdbVectors } from './duckdb-vector-search.js';

/** Flink and Postgres type names → DuckDB, for scalar types. */
const SCALAR_TYPES: Readonly<Record<string, string>> = {
  TINYINT: 'TINYINT',
  SMALLINT: 'SMALLINT',
  INT2: 'SMALLINT',
  INT: 'INTEGER',
  INTEGER: 'INTEGER',
  INT4: 'INTEGER',
  BIGINT: 'BIGINT',
  INT8: 'BIGINT',
  HUGEINT: 'HUGEINT',
  FLOAT: 'FLOAT',
  REAL: 'FLOAT',
  FLOAT4: 'FLOAT',
  DOUBLE: 'DOUBLE',
  'DOUBLE PRECISION': 'DOUBLE',
  FLOAT8: 'DOUBLE',
  BOOLEAN: 'BOOLEAN',
  BOOL: 'BOOLEAN',
  STRING: 'VARCHAR',
  VARCHAR: 'VARCHAR',
  'CHARACTER VARYING': 'VARCHAR',
  CHAR: 'VARCHAR',
  CHARACTER: 'VARCHAR',
  TEXT: 'VARCHAR',
  BYTES: 'BLOB',
  BLOB: 'BLOB',
  BYTEA: 'BLOB',
  BINARY: 'BLOB',
  VARBINARY: 'BLOB',
  DATE: 'DATE',
  TIME: 'TIME',
  TIMESTAMP: 'TIMESTAMP',
  TIMESTAMP_LTZ: 'TIMESTAMPTZ',
  TIMESTAMPTZ: 'TIMESTAMPTZ',
  'TIMESTAMP WITH TIME ZONE': 'TIMESTAMPTZ',
  'TIMESTAMP WITH LOCAL TIME ZONE': 'TIMESTAMPTZ',
  UUID: 'UUID',
  JSON: 'JSON',
};

/** The DuckDB dialect. */
export class DuckDBDialect implements SqlDialect {
  /** VECTOR_SEARCH (duckdb-vector-search.ts). */
  readonly vectors = duckdbVectors;
  readonly catalogTypes = {
    text: 'VARCHAR',
    integer: 'INTEGER',
    bigint: 'BIGINT',
    double: 'DOUBLE',
    blob: 'BLOB',
    timestamp: 'TIMESTAMP',
  } as const;

  /** DuckDB has no user-defined operators: the built-in ones, parenthesized. */
  operator(left: string, op: SqlOperator, right: string): string {
    return `(${left} ${op} ${right})`;
  }

  negate(operand: string): string {
    return `(- ${operand})`;
  }

  /** Built-in functions by name: a user macro cannot take a built-in function's name. */
  call(fn: SqlFunction, ...args: readonly string[]): string {
    return `${fn}(${args.join(', ')})`;
  }

  /**
   * From a string: DuckDB reads `0.9645828404071793` as a DECIMAL, and a DECIMAL cast to
   * DOUBLE is not always the nearest double (here 0.9645828404071792), while a string cast
   * is; a tree threshold or bin edge then compares as the exact value it was computed as.
   */
  double(value: number): string {
    return `CAST('${numberText(value)}' AS DOUBLE)`;
  }

  bigint(value: number): string {
    return `CAST(${numberText(Math.trunc(value))} AS BIGINT)`;
  }

  /** Nothing: DuckDB computes a subquery's column once per row however often it is read. */
  layerFence(): string {
    return '';
  }

  /** md5 of the row as JSON (`to_json` of a table alias is the row's struct; JSON tells NULL from 'NULL'). */
  rowDigest(alias: string): string {
    return `md5(CAST(to_json(${alias}) AS VARCHAR))`;
  }

  valuesDigest(expressions: readonly string[]): string {
    return `md5(CAST(to_json(list_value(${expressions.map((e) => `to_json(${e})`).join(', ')})) AS VARCHAR))`;
  }

  quoteIdentifier(name: string): string {
    return doubleQuote(name);
  }

  quoteString(value: string): string {
    return quoteString(value);
  }

  hostType(type: DataType): string {
    const name = type.name;
    if ((name === 'ARRAY' || name === 'LIST') && type.elements?.length === 1) return `${this.hostType(type.elements[0]!)}[]`;
    if (name === 'MAP' && type.elements?.length === 2) return `MAP(${this.hostType(type.elements[0]!)}, ${this.hostType(type.elements[1]!)})`;
    if ((name === 'ROW' || name === 'STRUCT') && type.fields) {
      return `STRUCT(${type.fields.map((f) => `${this.quoteIdentifier(f.name.value)} ${this.hostType(f.type)}`).join(', ')})`;
    }
    if ((name === 'DECIMAL' || name === 'NUMERIC' || name === 'DEC') && type.params.length > 0) return `DECIMAL(${type.params.join(', ')})`;
    if (name === 'DECIMAL' || name === 'NUMERIC' || name === 'DEC') return 'DECIMAL(10, 0)'; // Flink's default precision and scale
    return SCALAR_TYPES[name] ?? name;
  }

  zipRelations(input: { readonly table: string; readonly columns: readonly string[] }, output: { readonly table: string; readonly columns: readonly string[] }): string {
    // POSITIONAL JOIN pairs rows by position: https://duckdb.org/docs/stable/sql/query_syntax/from#positional-joins
    const columns = [...input.columns.map((c) => `i.${this.quoteIdentifier(c)}`), ...output.columns.map((c) => `o.${this.quoteIdentifier(c)}`)];
    return `(SELECT ${columns.join(', ')} FROM ${this.quoteIdentifier(input.table)} AS i POSITIONAL JOIN ${this.quoteIdentifier(output.table)} AS o)`;
  }

  metricMap(entries: readonly (readonly [string, string])[]): string {
    const keys = entries.map(([k]) => this.quoteString(k)).join(', ');
    const values = entries.map(([, v]) => `CAST(${v} AS DOUBLE)`).join(', ');
    return `MAP([${keys}], [${values}])`;
  }

  hashFraction(expressions: readonly string[], seed: number): string {
    // hash() is variadic and deterministic: https://duckdb.org/docs/stable/sql/functions/utility#hashvalue
    const modulus = 1_000_000_007;
    return `(CAST(hash(${Math.trunc(seed)}, ${expressions.join(', ')}) % ${modulus} AS DOUBLE) / ${modulus}.0)`;
  }

  createFunction(fn: HostFunction): string {
    // A scalar macro: https://duckdb.org/docs/stable/sql/statements/create_macro
    const params = fn.params.map((p) => this.quoteIdentifier(p.name)).join(', ');
    return `CREATE OR REPLACE ${fn.temporary ? 'TEMPORARY ' : ''}MACRO ${this.functionName(fn)}(${params}) AS ${fn.body}`;
  }

  dropFunction(fn: Omit<HostFunction, 'body' | 'returnType'>): string {
    return `DROP MACRO IF EXISTS ${this.functionName(fn)}`;
  }

  otherFunctions(fn: Omit<HostFunction, 'body' | 'returnType' | 'params'>, ours: readonly string[] | undefined): { readonly sql: string; readonly params: readonly unknown[] } {
    // https://duckdb.org/docs/stable/sql/meta/duckdb_table_functions#duckdb_functions
    const database = fn.database === undefined ? 'current_database()' : '$3';
    const sql = `SELECT database_name || '.' || schema_name || '.' || function_name FROM duckdb_functions() WHERE database_name = ${database} AND schema_name = $1 AND lower(function_name) = lower($2) AND NOT internal${ours === undefined ? '' : ' AND function_name <> $2'} LIMIT 1`;
    return { sql, params: fn.database === undefined ? [fn.schema, fn.name] : [fn.schema, fn.name, fn.database] };
  }

  private functionName(fn: Omit<HostFunction, 'body' | 'returnType' | 'params'>): string {
    if (fn.temporary) return `temp.main.${this.quoteIdentifier(fn.name)}`;
    const database = fn.database === undefined ? '' : `${this.quoteIdentifier(fn.database)}.`;
    return `${database}${this.quoteIdentifier(fn.schema)}.${this.quoteIdentifier(fn.name)}`;
  }
}
