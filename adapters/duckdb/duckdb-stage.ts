/**
 * DuckDB's one-pass model stage (`Host.openStage`): the features are read once, by one
 * streaming query, straight from the chunks' vector memory. Where every output is DOUBLE,
 * FLOAT or INTEGER and the input keeps insertion order, the predictions stay in this
 * process and the result reads them back by rowid through a scalar function
 * (duckdb-stage-lookup.ts): a scan of the input that DuckDB runs on every thread, in
 * order, with no table of predictions. Otherwise the predictions are written once, by an
 * Appender, a data chunk at a time, and the result pairs the i-th input row with the i-th
 * prediction by a POSITIONAL JOIN (https://duckdb.org/docs/stable/sql/query_syntax/from#positional-joins),
 * not a join on a key. What is said below of the predictions table applies to that case.
 *
 * - Input. A call on `TABLE t` where `t` is a base table (not a view, not a file) reads
 *   the table where it is: the features stream from `t`, and the result is `t POSITIONAL
 *   JOIN <predictions>`, so the statement around the call reads only the input columns it
 *   uses, and wide inputs are never copied. Both scans return the table's rows in the same
 *   order (`preserve_insertion_order`, on by default). Any other input, or any input with
 *   that setting off, is first copied into a temporary table, read the same way. With the
 *   setting off, scans need not run in step, so each prediction is stored with its input
 *   row's rowid and the result joins on it instead. So it is, to write on every thread,
 *   when the statement's table copies wide rows and the call allows any order
 *   ({@link MAX_POSITIONAL_ROW_BYTES}).
 * - Output. DuckDB cuts a streaming result short when its connection appends or runs
 *   another statement, so the predictions go through a second connection of the same
 *   database instance, into a table of a private in-memory database attached to it
 *   (attached databases are shared by the instance's connections). The table is visible to
 *   the statement around the call once the stage has committed it, which holds in
 *   auto-commit mode. Inside a transaction (the user's BEGIN, or one of the host's), a
 *   database the transaction has already read keeps its snapshot, so there the
 *   predictions are kept (as typed arrays: a few bytes a row) until the input has been
 *   read, then appended on the connection itself into a temporary table.
 *
 * - Straight into the statement's table. `CREATE TABLE ... AS SELECT <columns> FROM
 *   ML_PREDICT(...)` (`into`, duckdb-stage-target.ts): the projected input columns are read
 *   along with the features and appended with the predictions into the new table, through
 *   the second connection; no predictions table, no second scan, no join.
 *
 * Memory: the batches in flight (features and predictions of `batchSize` rows each), one
 * chunk per batch being appended, and the predictions until the statement is done: in this
 * process (4 or 8 bytes a row and output) when read back by rowid, else in DuckDB's
 * predictions table (≈ 11 bytes a row and output, buffer-managed); none when the rows go
 * straight into the statement's table. The input table is never held by this process.
 */
import type { DuckDBAppender, DuckDBConnection, DuckDBType } from '@duckdb/node-api';
import type { HostStage, HostStageBatch, HostStageSpec, HostStageTarget, SqlDialect } from '../../core/host.js';
import { appendBatch, FeatureBatcher, type CarriedBatch, type ChunkColumn } from './duckdb-chunks.js';
import { mappedCall as mapped } from './duckdb-errors.js';
import { fixedWidth, planTargetWrite, type DuckDBTargetWrite } from './duckdb-stage-target.js';
import { lookupSupported, PredictionStore } from './duckdb-stage-lookup.js';

/** The private database holding stages' predictions (attached in memory, once per host). */
export const STAGE_DATABASE = '__modelsql_stage';

/**
 * Fewest features read row by row for a runtime that takes one matrix (`HostStageSpec.rowMajor`).
 * Measured on 1,000,000 rows (docs/performance.md): reading 10 features so took half the
 * time of reading 10 columns and transposing them in this process, 50 features 15 % less,
 * 3 features as long or a little longer.
 */
const MIN_ROW_MAJOR_FEATURES = 8;

/** The output table's column of input rowids, when rows are paired by key. */
const ROWID_COLUMN = '__modelsql_rowid';

/**
 * Widest row (bytes) a statement's table may copy from the input when its rows are paired
 * with their predictions by POSITIONAL JOIN, where the call allows any order (`output-mode`
 * `ALLOW_UNORDERED`); past it, by a join on rowid. DuckDB scans a POSITIONAL JOIN on one
 * thread, so a `CREATE TABLE ... AS SELECT *` or `INSERT INTO ... SELECT *` over it copies
 * and writes every column on that thread; a hash join on rowid costs a hash table of the
 * predictions (≈ 30 bytes a row more, in DuckDB's memory) but lets every thread scan and
 * write. It does not keep the input's order: DuckDB inserts a join's rows as its threads
 * finish them (a `CREATE TABLE ... AS` over it put 177,120 to 300,000 of 300,000 rows out of
 * place), so `ORDERED` calls (the default) keep the positional join. Measured on 1,000,000
 * rows written by `CREATE TABLE ... AS SELECT *`: with an id and 3 DOUBLE features (32
 * bytes) the positional join takes half the CPU of the join; with 10 (88 bytes) the join
 * takes as much wall time in memory and less in a file; with 50 (408 bytes) less of both.
 */
const MAX_POSITIONAL_ROW_BYTES = 64;

/**
 * Whether the statement's table (`CREATE TABLE ... AS`, `INSERT INTO ... SELECT`) copies
 * more than {@link MAX_POSITIONAL_ROW_BYTES} a row from the input (fixed-width types at
 * their width, any other at 16, a string's inline size). Not when an input column is named
 * rowid: it would hide the pseudo-column.
 */
function copiesWideRows(spec: HostStageSpec, target: HostStageTarget): boolean {
  const columns = spec.inputColumns;
  if (hasRowidColumn(spec)) return false;
  const copied = new Set(target.sources.filter((s) => s < columns.length));
  let bytes = 0;
  for (const position of copied) bytes += fixedWidth(columns[position]!.type) ?? 16;
  return bytes > MAX_POSITIONAL_ROW_BYTES;
}

/** Whether an input column is named rowid, hiding the pseudo-column. */
function hasRowidColumn(spec: HostStageSpec): boolean {
  return spec.inputColumns.some((c) => c.name.toLowerCase() === 'rowid');
}

/** What a stage needs from the DuckDB host. */
export interface DuckDBStageHost {
  readonly dialect: SqlDialect;
  /** The host's connection: the input is read, and the statement around the call runs, here. */
  readonly connection: DuckDBConnection;
  /** Whether a transaction is open on `connection`. */
  inTransaction(): boolean;
  /** The second connection, with {@link STAGE_DATABASE} attached; opened on first use. */
  writer(): Promise<DuckDBConnection>;
  /** Runs a statement on `connection` (errors mapped). */
  run(sql: string): Promise<unknown>;
  /** Registers a statement (or a release in this process) that drops what the stage made besides `spec.table` (run by `dropTempTable(spec.table)`). */
  onDrop(table: string, statement: string | (() => void)): void;
}

/**
 * Prepares a stage (see the module doc); the input is read when `batches()` is iterated.
 *
 * @example
 * const stage = await openDuckDBStage(host, spec);
 * try { ...executor...; relation = await stage.finish() } finally { await stage.close() }
 */
export async function openDuckDBStage(host: DuckDBStageHost, spec: HostStageSpec): Promise<HostStage> {
  const q = (name: string) => host.dialect.quoteIdentifier(name);
  const input = await inputRelation(host, spec);
  const outputDefs = spec.outputColumns.map((c) => `${q(c.name)} ${c.type}`).join(', ');
  // Without insertion order kept, or when the statement's table copies wide rows and the
  // call allows any order (`into`), each prediction carries its input row's rowid.
  let keyed = input.keyed;
  const inTransaction = host.inTransaction();
  // The predictions' table, made when the stage runs, unless the rows go to the statement's table.
  let output: Promise<StageOutput> | undefined;
  const predictions = () => {
    const defs = (keyed ? `${q(ROWID_COLUMN)} BIGINT, ` : '') + outputDefs;
    return (output ??= inTransaction ? bufferedOutput(host, spec, defs) : writerOutput(host, spec, defs));
  };
  let target: DuckDBTargetWrite | undefined;
  // Predictions held here and read back by rowid (duckdb-stage-lookup.ts), where the input
  // keeps its order and every output has a lookup function: no table of predictions.
  let store: PredictionStore | undefined;
  const lookupUsable = lookupSupported(spec.outputColumns.map((c) => c.type)) && !hasRowidColumn(spec);
  const lookup = () => {
    if (target || keyed || !lookupUsable) return undefined;
    const opened = PredictionStore.open(host.connection, spec.outputColumns.map((c) => c.type));
    host.onDrop(spec.table, () => opened.release());
    return opened;
  };
  const features = spec.featureColumns.map((position, i) => {
    const column = `i.${q(spec.inputColumns[position]!.name)}`;
    return spec.kinds[i] === 'number' ? `CAST(${column} AS DOUBLE)` : column;
  });
  const columns = [...spec.inputColumns.map((c) => `i.${q(c.name)}`), ...spec.outputColumns.map((c) => `o.${q(c.name)}`)];
  return {
    async *batches(): AsyncIterable<HostStageBatch> {
      // Columns read along with the features: the statement's input columns when the rows go
      // to its table, else the rowid when predictions are paired by key.
      store = lookup();
      const byRowid = keyed || store !== undefined;
      const carried = target ? target.carried.map((position) => `i.${q(spec.inputColumns[position]!.name)}`) : byRowid ? ['i.rowid'] : [];
      if (!target && !store) await predictions();
      // For a runtime that takes one matrix, DuckDB puts each row's features in one array.
      const rowMajor = spec.rowMajor === true && features.length >= MIN_ROW_MAJOR_FEATURES;
      const read = rowMajor ? [`CAST([${features.join(', ')}] AS DOUBLE[${features.length}])`] : features;
      const result = await mapped(() => host.connection.stream(`SELECT ${[...carried, ...read].join(', ')} FROM ${input.relation} AS i`));
      const batcher = new FeatureBatcher(spec.kinds, spec.batchSize, target ? target.widths : byRowid ? [8] : [], rowMajor);
      // One chunk fetched ahead: DuckDB makes chunk n + 1 while this thread copies chunk n.
      const fetch = () => {
        const next = mapped(() => result.fetchChunk());
        next.catch(() => undefined); // awaited below, or dropped with the stream
        return next;
      };
      for (let next = fetch(); ; ) {
        const chunk = await next;
        if (!chunk || chunk.rowCount === 0) break;
        next = fetch();
        for (const batch of batcher.add(chunk)) yield { features: batch.features, carry: batch.carried };
      }
      const rest = batcher.rest();
      if (rest) yield { features: rest.features, carry: rest.carried };
    },
    write: async (carry, outputs) => {
      // The carried columns only: the features are not kept while the model runs.
      const carried = carry as CarriedBatch['carried'];
      if (target) await mapped(() => target!.append(carried, outputs));
      else if (store) store.append(carried[0]!, outputs);
      else await (await predictions()).write(keyed ? { rowCount: outputs.rowCount, columns: [carried[0]!, ...outputs.columns] } : outputs);
    },
    async finish() {
      if (store) {
        store.seal();
        const inputs = columns.slice(0, spec.inputColumns.length);
        return `(SELECT ${[...inputs, ...store.outputExpressions('i.rowid', spec.outputColumns.map((c) => q(c.name)))].join(', ')} FROM ${input.relation} AS i)`;
      }
      await (await predictions()).finish();
      const table = (await predictions()).table;
      if (!keyed) return `(SELECT ${columns.join(', ')} FROM ${input.relation} AS i POSITIONAL JOIN ${table} AS o)`;
      return `(SELECT ${columns.join(', ')} FROM ${input.relation} AS i JOIN ${table} AS o ON i.rowid = o.${q(ROWID_COLUMN)})`;
    },
    close: async () => {
      await target?.close();
      if (output) await (await output.catch(() => undefined))?.close();
    },
    async into(into) {
      target = planTargetWrite(host, spec, into);
      // Wide rows with outputs read back by rowid are written on every thread already.
      if (!target && spec.unordered && !lookupUsable && copiesWideRows(spec, into)) keyed = true;
      const write = target;
      return write && { open: () => write.open(), finish: () => write.finish() };
    },
  };
}

/** Where the predictions go. */
interface StageOutput {
  /** The table, qualified. */
  readonly table: string;
  write(outputs: { readonly rowCount: number; readonly columns: readonly ChunkColumn[] }): void | Promise<void>;
  finish(): Promise<void>;
  close(): Promise<void>;
}

/** The input, as a relation the stage scans twice in the same order. */
interface InputRelation {
  readonly relation: string;
  /** Whether rows are paired by rowid (scans may come out of order), not by position. */
  readonly keyed: boolean;
}

/** The base table itself, or a copy of the query. */
async function inputRelation(host: DuckDBStageHost, spec: HostStageSpec): Promise<InputRelation> {
  const q = (name: string) => host.dialect.quoteIdentifier(name);
  const { table, ordered } = await inspectInput(host, spec.source);
  // Named whole (database, schema, table): the statement reads the relation where a CTE of
  // the same name would stand for the name as written.
  if (spec.source && table && ordered) return { relation: table.map(q).join('.'), keyed: false };
  const copy = `${spec.table}_in`;
  host.onDrop(spec.table, `DROP TABLE IF EXISTS temp.main.${q(copy)}`);
  await host.run(`CREATE TEMPORARY TABLE ${q(copy)} AS ${spec.query}`);
  return { relation: `temp.main.${q(copy)}`, keyed: !ordered };
}

/**
 * The base table `name` (as written after TABLE) names, as database, schema and table, when
 * one base table alone and no view has that name; and whether scans keep insertion order
 * (https://duckdb.org/docs/stable/sql/dialect/order_preservation).
 */
async function inspectInput(host: DuckDBStageHost, name: readonly string[] | undefined): Promise<{ table: readonly string[] | undefined; ordered: boolean }> {
  const d = host.dialect;
  const [last, ...qualifiers] = [...(name ?? [''])].reverse();
  const where = (column: string): string => {
    const parts = [`lower(${column}) = lower(${d.quoteString(last!)})`];
    if (qualifiers.length === 1) parts.push(`(lower(schema_name) = lower(${d.quoteString(qualifiers[0]!)}) OR lower(database_name) = lower(${d.quoteString(qualifiers[0]!)}))`);
    if (qualifiers.length === 2) parts.push(`lower(schema_name) = lower(${d.quoteString(qualifiers[0]!)})`, `lower(database_name) = lower(${d.quoteString(qualifiers[1]!)})`);
    return parts.join(' AND ');
  };
  const sql =
    `SELECT t.n = 1 AND (SELECT count(*) FROM duckdb_views() WHERE ${where('view_name')}) = 0, t.d, t.s, t.t, ` +
    `CAST(current_setting('preserve_insertion_order') AS BOOLEAN) ` +
    `FROM (SELECT count(*) AS n, any_value(database_name) AS d, any_value(schema_name) AS s, any_value(table_name) AS t FROM duckdb_tables() WHERE ${where('table_name')}) AS t`;
  const [one, database, schema, table, ordered] = (await mapped(() => host.connection.runAndReadAll(sql))).getRows()[0]!;
  return { table: one === true ? [String(database), String(schema), String(table)] : undefined, ordered: ordered === true };
}

/** Predictions appended through the second connection as they come (auto-commit mode). */
async function writerOutput(host: DuckDBStageHost, spec: HostStageSpec, outputDefs: string): Promise<StageOutput> {
  const q = (name: string) => host.dialect.quoteIdentifier(name);
  const table = `${q(STAGE_DATABASE)}.main.${q(spec.table)}`;
  const writer = await host.writer();
  host.onDrop(spec.table, `DROP TABLE IF EXISTS ${table}`);
  await mapped(() => writer.run(`CREATE TABLE ${table} (${outputDefs})`));
  const appender = await mapped(() => writer.createAppender(spec.table, 'main', STAGE_DATABASE));
  const types = columnTypes(appender);
  let open = true;
  const close = async (): Promise<void> => {
    if (!open) return;
    open = false;
    appender.closeSync();
  };
  return {
    table,
    write: (outputs) => mapped(() => appendBatch(appender, types, outputs)),
    finish: () => mapped(close),
    close: () => close().catch(() => undefined),
  };
}

/** Predictions kept until the input has been read, then appended on the host's connection (inside a transaction). */
async function bufferedOutput(host: DuckDBStageHost, spec: HostStageSpec, outputDefs: string): Promise<StageOutput> {
  const q = (name: string) => host.dialect.quoteIdentifier(name);
  await host.run(`CREATE TEMPORARY TABLE ${q(spec.table)} (${outputDefs})`);
  let pending: Parameters<StageOutput['write']>[0][] = [];
  return {
    table: `temp.main.${q(spec.table)}`,
    write: (outputs) => void pending.push(outputs),
    async finish() {
      const appender = await mapped(() => host.connection.createAppender(spec.table, 'main', 'temp'));
      try {
        const types = columnTypes(appender);
        for (const outputs of pending) await mapped(() => appendBatch(appender, types, outputs));
        pending = [];
      } finally {
        await mapped(() => appender.closeSync());
      }
    },
    close: async () => {
      pending = [];
    },
  };
}

function columnTypes(appender: DuckDBAppender): DuckDBType[] {
  const types: DuckDBType[] = [];
  for (let i = 0; i < appender.columnCount; i++) types.push(appender.columnType(i));
  return types;
}
