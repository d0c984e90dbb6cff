/**
 * Where a DuckDB stage (duckdb-stage.ts) writes when its rows go straight into the table of
 * the statement around the call (`HostStage.into`): `CREATE TABLE ... AS SELECT <columns>
 * FROM ML_PREDICT(...)` (core/planner/direct-write.ts). The stage then reads the projected
 * input columns along with the features, in its one streaming query, and appends them with
 * the predictions into the new table, a data chunk at a time: no table of predictions, no
 * second scan of the input, no join. Memory is bounded by the batches in flight.
 *
 * - The table is made, and the rows appended, by the stage's second connection (the first
 *   streams the input, and DuckDB cuts a stream short when its connection runs anything
 *   else), in a transaction of that connection: a failure anywhere leaves no table behind.
 *   That connection first takes the first one's database, schema and search path
 *   (https://duckdb.org/docs/stable/sql/statements/use), so that the statement's own text,
 *   with an empty relation of the same column types in place of the call, creates the
 *   table the statement would (names, column names, types).
 * - The rows go in as they were read: carried input columns byte for byte, so only
 *   fixed-width types qualify (numbers, DECIMAL, dates and times, INTERVAL, UUID, BOOLEAN),
 *   and at most 16 bytes a row of them (`MAX_CARRIED_BYTES`).
 * - The statement takes the general path when the write could differ from what it would
 *   do, or could not be undone with it: inside a transaction (the second connection cannot
 *   join it), `CREATE TEMP TABLE` (temporary tables belong to one connection), `IF NOT
 *   EXISTS`, an `INSERT INTO ... SELECT` (its result counts rows, its columns may take
 *   defaults and casts), a projected input column of another type, or wider projections.
 */
import type { DuckDBAppender, DuckDBConnection, DuckDBType } from '@duckdb/node-api';
import { ModelSqlError } from '../../core/errors.js';
import type { HostStageSpec, HostStageTarget, SqlDialect } from '../../core/host.js';
import { appendBatch, type ChunkColumn, type RawColumn } from './duckdb-chunks.js';
import { mappedCall as mapped } from './duckdb-errors.js';
import type { ColumnBatch } from '../../core/model-types.js';

/**
 * Most bytes a row the write carries from the input (an id and a timestamp, say). Carried
 * columns pass through this process and are appended on its thread; wider projections (a
 * `SELECT *` of many columns) are faster the general way, where DuckDB's own threads copy
 * them: measured on 1,000,000 rows, `SELECT *` of 11 and 51 columns took 20-30 % more CPU
 * written straight, `SELECT id, prediction` as much as the general path.
 */
const MAX_CARRIED_BYTES = 16;

/** Bytes a row of each fixed-width type takes in a flat vector (https://duckdb.org/docs/stable/clients/c/vector). */
const WIDTHS: Readonly<Record<string, number>> = {
  BOOLEAN: 1, TINYINT: 1, UTINYINT: 1, SMALLINT: 2, USMALLINT: 2, INTEGER: 4, UINTEGER: 4, FLOAT: 4, DATE: 4,
  BIGINT: 8, UBIGINT: 8, DOUBLE: 8, TIME: 8, TIMESTAMP: 8, TIMESTAMP_S: 8, TIMESTAMP_MS: 8, TIMESTAMP_NS: 8,
  'TIMESTAMP WITH TIME ZONE': 8, 'TIME WITH TIME ZONE': 8, HUGEINT: 16, UHUGEINT: 16, INTERVAL: 16, UUID: 16,
};

/**
 * Bytes a row of the DuckDB type `type` (as DuckDB prints it) takes in a flat vector, when
 * it is of fixed width; undefined for every other type.
 *
 * @example
 * fixedWidth('BIGINT') // 8
 * fixedWidth('DECIMAL(9,2)') // 4
 * fixedWidth('VARCHAR') // undefined
 */
export function fixedWidth(type: string): number | undefined {
  const decimal = /^DECIMAL\((\d+),\d+\)$/.exec(type);
  if (!decimal) return WIDTHS[type];
  const digits = Number(decimal[1]);
  return digits <= 4 ? 2 : digits <= 9 ? 4 : digits <= 18 ? 8 : 16;
}

/** What the write needs from the stage's host. */
export interface TargetHost {
  readonly dialect: SqlDialect;
  /** The connection the statement runs on (and the stage reads from). */
  readonly connection: DuckDBConnection;
  inTransaction(): boolean;
  /** The stages' second connection. */
  writer(): Promise<DuckDBConnection>;
}

/** A stage's write into its statement's table. */
export interface DuckDBTargetWrite {
  /** Input columns the stage reads along with the features (positions in its input), in order. */
  readonly carried: readonly number[];
  /** Bytes a row of each carried column. */
  readonly widths: readonly number[];
  /** Creates the table, in the second connection's transaction. */
  open(): Promise<boolean>;
  /** Appends one batch: its carried columns (in the order of `carried`) and its predictions. */
  append(carried: readonly RawColumn[], outputs: ColumnBatch): void;
  /** Flushes the rows and commits; returns how many went in. */
  finish(): Promise<number>;
  /** Rolls back what is not committed; idempotent. */
  close(): Promise<void>;
}

/** The write of `spec`'s rows into `target`, or undefined when the statement takes the general path (see the module doc). */
export function planTargetWrite(host: TargetHost, spec: HostStageSpec, target: HostStageTarget): DuckDBTargetWrite | undefined {
  if (target.kind !== 'create' || target.temporary || target.ifNotExists || host.inTransaction()) return undefined;
  const width = spec.inputColumns.length;
  const carried = [...new Set(target.sources.filter((s) => s < width))];
  const widths = carried.map((position) => fixedWidth(spec.inputColumns[position]!.type));
  if (widths.some((w) => w === undefined) || widths.reduce((sum: number, w) => sum + w!, 0) > MAX_CARRIED_BYTES) return undefined;
  // Each column of the table: a carried column, or an output.
  const sources: ({ readonly carried: number } | { readonly output: number })[] = target.sources.map((s) => (s < width ? { carried: carried.indexOf(s) } : { output: s - width }));
  const d = host.dialect;
  // The call's relation, typed and empty: what the statement's CREATE TABLE AS reads.
  const empty = [
    ...spec.inputColumns.map((c, i) => `CAST(NULL AS ${carried.includes(i) ? c.type : 'INTEGER'}) AS ${d.quoteIdentifier(c.name)}`),
    ...spec.outputColumns.map((c) => `CAST(NULL AS ${c.type}) AS ${d.quoteIdentifier(c.name)}`),
  ];
  const create = `${target.before}(SELECT ${empty.join(', ')} LIMIT 0)${target.after}`;

  let writer: DuckDBConnection | undefined;
  let appender: DuckDBAppender | undefined;
  let types: DuckDBType[] = [];
  let open = false;
  let rows = 0;
  return {
    carried,
    widths: widths as number[],
    async open() {
      writer = await host.writer();
      await mapped(async () => {
        const [database, schema, path] = (await host.connection.runAndReadAll("SELECT current_database(), current_schema(), current_setting('search_path')")).getRows()[0] as string[];
        await writer!.run(`USE ${d.quoteIdentifier(database!)}.${d.quoteIdentifier(schema!)}`);
        await writer!.run(`SET search_path = ${d.quoteString(path!)}`);
      });
      await mapped(() => writer!.run('BEGIN TRANSACTION'));
      open = true;
      const name = target.table[target.table.length - 1]!;
      const before = await tablesNamed(writer, d, name);
      await mapped(() => writer!.run(create));
      const made = (await tablesNamed(writer, d, name)).filter((t) => !before.some((b) => b.join('.') === t.join('.')));
      if (made.length !== 1) throw new ModelSqlError('XX000', `internal error: the table ${target.table.join('.')} was created but cannot be found`);
      const [database, schema, table] = made[0]!;
      appender = await mapped(() => writer!.createAppender(table!, schema, database));
      types = Array.from({ length: appender.columnCount }, (_, i) => appender!.columnType(i));
      // Carried columns are copied byte for byte: the table's types must be theirs.
      const same = (s: (typeof sources)[number], i: number) => !('carried' in s) || types[i]!.toString() === spec.inputColumns[carried[s.carried]!]!.type;
      if (types.length !== sources.length || !sources.every(same)) {
        throw new ModelSqlError('XX000', `internal error: the table ${target.table.join('.')} does not have the columns of the statement`);
      }
      return true;
    },
    append(raw, outputs) {
      const columns: ChunkColumn[] = sources.map((s) => ('carried' in s ? raw[s.carried]! : outputs.columns[s.output]!));
      appendBatch(appender!, types, { rowCount: outputs.rowCount, columns });
      rows += outputs.rowCount;
    },
    async finish() {
      const finishing = appender;
      appender = undefined;
      await mapped(() => finishing?.closeSync());
      await mapped(() => writer!.run('COMMIT'));
      open = false;
      return rows;
    },
    async close() {
      const left = appender;
      appender = undefined;
      // Closing flushes what is pending into the transaction, which is then rolled back.
      try {
        left?.closeSync();
      } catch {
        // the rows are being thrown away
      }
      if (open) {
        open = false;
        await writer!.run('ROLLBACK').catch(() => undefined);
      }
    },
  };
}

/** The tables named `name` (any case) the connection sees: `[database, schema, table]`. */
async function tablesNamed(connection: DuckDBConnection, d: SqlDialect, name: string): Promise<string[][]> {
  const sql = `SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE lower(table_name) = lower(${d.quoteString(name)})`;
  return (await mapped(() => connection.runAndReadAll(sql))).getRows() as string[][];
}
