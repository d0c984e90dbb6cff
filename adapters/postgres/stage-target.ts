/**
 * Where a one-pass stage (copy-stage.ts) writes when its rows go straight into the table of
 * the statement around the call (`HostStage.into`): the input columns it carries, the
 * outputs it writes, and the `COPY ... FROM STDIN` destination, with their columns ordered
 * carried fields first, then predictions (a COPY column list may name a table's columns in
 * any order: https://www.postgresql.org/docs/current/sql-copy.html).
 *
 * - `CREATE TABLE ... AS`: the statement itself, with the stage's (empty) relation in place
 *   of the call and `WITH NO DATA` appended, creates the table, so every name, type and
 *   option is what the statement gives; then the rows are copied in. `IF NOT EXISTS` looks
 *   for the name in the schema the table would be created in, as Postgres does before it
 *   runs the query (https://www.postgresql.org/docs/current/sql-createtableas.html), and,
 *   when found, the statement does nothing.
 * - `INSERT INTO ... SELECT`: COPY FROM writes what the INSERT would only when the two cannot
 *   differ, else the statement takes the general path: a plain table (not a view, foreign
 *   or partitioned table), no rules (COPY ignores them), no row-level security (COPY FROM
 *   refuses it), no `BEFORE INSERT ... FOR EACH ROW` trigger (it may skip rows, which the
 *   command tag counts), every column filled of the value's own type (an INSERT converts
 *   with assignment casts, COPY parses the text by the column's type; a column's length or
 *   precision must be the value's or absent), no identity or generated column filled.
 */
import { ModelSqlError } from '../../core/errors.js';
import type { HostStageSpec, HostStageTarget, SqlDialect } from '../../core/host.js';
import type { PgQueryResult } from './pg-connection.js';

/** Postgres's longest name, in bytes (NAMEDATALEN - 1); longer names are truncated. */
const MAX_NAME_BYTES = 63;

/** How a stage writes into its target. */
export interface TargetWritePlan {
  /** Input columns to carry, by position, in the order of the destination's columns. */
  readonly inputs: readonly number[];
  /** Output columns to write after them, by position. */
  readonly outputs: readonly number[];
  /**
   * In the statement's transaction: creates the table when the statement does, and returns
   * the COPY destination, `table (columns)`; undefined when the statement does nothing.
   */
  open(): Promise<string | undefined>;
}

/** The stage's own table (`pg_temp."..."`) and its relation, which define the result's columns. */
interface StageTable {
  readonly table: string;
  readonly relation: string;
}

/** What the plan needs from the connection. */
interface Queries {
  query(sql: string): Promise<PgQueryResult>;
}

/**
 * The write of `spec`'s rows into `target`, or undefined when COPY cannot do what the
 * statement would (see the module doc).
 */
export async function planTargetWrite(db: Queries, dialect: SqlDialect, spec: HostStageSpec, stage: StageTable, target: HostStageTarget): Promise<TargetWritePlan | undefined> {
  // A catalog part, or a name Postgres would truncate: left to the general path.
  if (target.table.length > 2 || target.table.some((part) => Buffer.byteLength(part) > MAX_NAME_BYTES)) return undefined;
  const width = spec.inputColumns.length;
  const inputs = target.sources.filter((s) => s < width);
  const outputs = target.sources.filter((s) => s >= width).map((s) => s - width);
  const destination = (table: string, names: readonly string[]): string => {
    const ordered = [...names.filter((_, i) => target.sources[i]! < width), ...names.filter((_, i) => target.sources[i]! >= width)];
    return `${table} (${ordered.map((n) => dialect.quoteIdentifier(n)).join(', ')})`;
  };
  if (target.kind === 'create') {
    return {
      inputs,
      outputs,
      open: async () => {
        const names = await createTable(db, dialect, stage, target);
        return names && destination(names.table, names.columns);
      },
    };
  }
  const columns = await insertColumns(db, dialect, stage, target);
  return columns && { inputs, outputs, open: async () => destination(columns.table, columns.names) };
}

/**
 * Creates the table of a CREATE TABLE AS (or finds it exists, with IF NOT EXISTS: then
 * undefined) and returns its name, as Postgres prints it for this session, and columns.
 */
async function createTable(db: Queries, dialect: SqlDialect, stage: StageTable, target: Extract<HostStageTarget, { kind: 'create' }>): Promise<{ table: string; columns: string[] } | undefined> {
  const s = (value: string) => dialect.quoteString(value);
  const name = target.table[target.table.length - 1]!;
  const schema = target.table.length === 2 ? target.table[0]! : undefined;
  // The schema the table is created in: the session's temporary schema, the one named, or
  // the first of the search path (current_schema(), https://www.postgresql.org/docs/current/functions-info.html).
  const namespace =
    target.temporary || schema === 'pg_temp'
      ? 'pg_catalog.pg_my_temp_schema()'
      : `(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) ${schema === undefined ? 'pg_catalog.current_schema()' : s(schema)})`;
  // Operators schema-qualified, as in all generated SQL (postgres-dialect.ts): the caller's search path cannot replace them.
  const lookup = `FROM pg_catalog.pg_class WHERE relname OPERATOR(pg_catalog.=) ${s(name)} AND relnamespace OPERATOR(pg_catalog.=) ${namespace}`;
  if (target.ifNotExists && (await db.query(`SELECT 1 ${lookup}`)).rows.length > 0) return undefined;
  await db.query(`${target.before}${stage.relation}${target.after}\nWITH NO DATA`);
  const found = await db.query(`SELECT oid::regclass::text, oid::text ${lookup}`);
  if (found.rows.length !== 1) throw new ModelSqlError('XX000', `internal error: the table ${target.table.join('.')} was created but cannot be found`);
  const [table, oid] = found.rows[0] as [string, string];
  const columns = (await attributes(db, `${oid}::oid`)).map((a) => a.name);
  if (columns.length !== target.sources.length) {
    throw new ModelSqlError('XX000', `internal error: the table ${table} has ${columns.length} columns, the statement ${target.sources.length}`);
  }
  return { table, columns };
}

/**
 * The table of an INSERT and the columns it fills, in order; undefined when a COPY into them
 * could differ from the INSERT (see the module doc) or the INSERT is in error (the general
 * path reports it).
 */
async function insertColumns(db: Queries, dialect: SqlDialect, stage: StageTable, target: Extract<HostStageTarget, { kind: 'insert' }>): Promise<{ table: string; names: string[] } | undefined> {
  const name = dialect.quoteString(target.table.map((part) => dialect.quoteIdentifier(part)).join('.'));
  const relation = await db.query(
    `SELECT c.oid::regclass::text, c.oid::text, c.relkind OPERATOR(pg_catalog.=) 'r' AND NOT c.relhasrules AND NOT c.relrowsecurity AND NOT EXISTS ` +
      `(SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND NOT t.tgisinternal ` +
      `AND (t.tgtype OPERATOR(pg_catalog.&) CAST(7 AS smallint)) OPERATOR(pg_catalog.=) CAST(7 AS smallint)) ` +
      `FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(${name})`,
  );
  const [table, oid, plain] = (relation.rows[0] ?? []) as [string?, string?, boolean?];
  if (table === undefined || plain !== true) return undefined;
  const all = await attributes(db, `${oid!}::oid`);
  const filled = target.columns ? target.columns.map((c) => all.find((a) => a.name === c)) : all.slice(0, target.sources.length);
  if (filled.length !== target.sources.length || new Set(filled).size !== filled.length) return undefined;
  const values = await attributes(db, `${dialect.quoteString(stage.table)}::regclass`);
  const same = filled.every((column, i) => {
    const value = values[target.sources[i]!]!;
    return column !== undefined && !column.special && column.type === value.type && (column.typmod === -1 || column.typmod === value.typmod);
  });
  return same ? { table, names: filled.map((c) => c!.name) } : undefined;
}

/** A table column as the catalog has it. */
interface Attribute {
  readonly name: string;
  /** The type's OID, as text. */
  readonly type: string;
  readonly typmod: number;
  /** An identity or generated column. */
  readonly special: boolean;
}

/** The columns of the relation `oid` (an SQL expression), in order (https://www.postgresql.org/docs/current/catalog-pg-attribute.html). */
async function attributes(db: Queries, oid: string): Promise<Attribute[]> {
  const result = await db.query(
    `SELECT attname, atttypid::text, atttypmod, attidentity OPERATOR(pg_catalog.<>) '' OR attgenerated OPERATOR(pg_catalog.<>) '' FROM pg_catalog.pg_attribute ` +
      `WHERE attrelid OPERATOR(pg_catalog.=) ${oid} AND attnum OPERATOR(pg_catalog.>) CAST(0 AS smallint) AND NOT attisdropped ORDER BY attnum`,
  );
  return result.rows.map(([name, type, typmod, special]) => ({ name: String(name), type: String(type), typmod: Number(typmod), special: special === true }));
}
