/**
 * The DuckDB host: one `@duckdb/node-api` connection behind the core's `Host` port.
 *
 * Model stages run in one pass (`openStage`, duckdb-stage.ts). DuckDB cuts a streaming
 * result short when the same connection runs another statement or appends
 * (https://duckdb.org/docs/stable/clients/c/appender), so a stage appends through a second
 * connection of the same instance while the first streams. The positional methods
 * (`materialize`, `readBatches` by rowid ranges, `openAppender`) serve a stage with a
 * prediction cache, which runs statements between batches.
 */
import { randomUUID } from 'node:crypto';
import type { DuckDBConnection, DuckDBInstance, DuckDBMaterializedResult, DuckDBType, DuckDBValue } from '@duckdb/node-api';
import type { Host, HostAppender, HostColumn, HostResult, HostStage, HostStageSpec } from '../../core/host.js';
import { leadingTokens, tokenize, type Token } from '../../core/sql/lexer.js';
import { quoteString } from '../../core/sql/format.js';
import { duckdbApi } from './duckdb-api.js';
import { appendBatch } from './duckdb-chunks.js';
import { DuckDBDialect } from './duckdb-dialect.js';
import { mapDuckDBError } from './duckdb-errors.js';
import { openDuckDBStage, STAGE_DATABASE } from './duckdb-stage.js';
import { AFTER_REPLAY, hasWriteAheadLog } from './wal-recovery.js';
import type { ColumnBatch, ColumnData } from '../../core/model-types.js';

/**
 * A `Host` over one DuckDB connection.
 *
 * @example
 * const host = await DuckDBHost.open(':memory:');
 * await host.execute('select 42');
 */
export class DuckDBHost implements Host {
  readonly name = 'duckdb';
  readonly dialect = new DuckDBDialect();
  readonly nativeFunctions = true;
  /** A random id of the instance this host opened (one host per instance): a process may open several databases, each with its own catalog. */
  readonly instanceId = randomUUID();
  private transactionDepth = 0;
  /** Whether the user opened a transaction with BEGIN that has not ended yet. */
  private userTransaction = false;
  /** The second connection stages append through (duckdb-stage.ts), once opened. */
  private stageWriter: Promise<DuckDBConnection> | undefined;
  /** Statements that drop what a stage made besides its table, by the stage's table. */
  private readonly stageDrops = new Map<string, (string | (() => void))[]>();

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
  ) {}

  /** Opens a database file (created when missing) or, with no path, an in-memory database. */
  static async open(path?: string): Promise<DuckDBHost> {
    try {
      const replayed = hasWriteAheadLog(path);
      const instance = await duckdbApi.DuckDBInstance.create(path ?? ':memory:');
      const connection = await instance.connect();
      if (replayed) await connection.run(AFTER_REPLAY);
      return new DuckDBHost(instance, connection);
    } catch (error) {
      throw mapDuckDBError(error);
    }
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<HostResult> {
    const control = transactionControl(sql);
    if (control === 'end') this.userTransaction = false;
    const result = await this.run(sql, params);
    if (control === 'begin') this.userTransaction = true;
    const columns = columnsOf(result);
    return { columns, rows: mapsAsObjects(columns, (await result.getRowsJS()) as unknown[][]) };
  }

  async *stream(sql: string): AsyncIterable<HostResult> {
    let result;
    try {
      result = await this.connection.stream(sql);
    } catch (error) {
      throw mapDuckDBError(error, sql);
    }
    const columns = columnsOf(result);
    let yielded = false;
    for (;;) {
      let chunk;
      try {
        chunk = await result.fetchChunk();
      } catch (error) {
        throw mapDuckDBError(error);
      }
      if (!chunk || chunk.rowCount === 0) break;
      yielded = true;
      yield { columns, rows: mapsAsObjects(columns, chunk.convertRows(jsConverter) as unknown[][]) };
    }
    if (!yielded) yield { columns, rows: [] };
  }

  async describe(sql: string): Promise<readonly HostColumn[]> {
    let prepared;
    try {
      prepared = await this.connection.prepare(sql);
    } catch (error) {
      throw mapDuckDBError(error);
    }
    try {
      const columns: HostColumn[] = [];
      for (let i = 0; i < prepared.columnCount; i++) {
        columns.push({ name: prepared.columnName(i), type: prepared.columnType(i).toString() });
      }
      return columns;
    } finally {
      prepared.destroySync();
    }
  }

  async currentSchema(): Promise<string> {
    return String((await this.execute('SELECT current_schema()')).rows[0]![0]);
  }

  async currentDatabase(): Promise<string> {
    return String((await this.execute('SELECT current_database()')).rows[0]![0]);
  }

  async attachedDatabase(name: string): Promise<{ readonly readOnly: boolean } | undefined> {
    // https://duckdb.org/docs/stable/sql/meta/duckdb_table_functions#duckdb_databases
    const r = await this.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = $1 AND NOT internal", [name]);
    return r.rows.length === 0 ? undefined : { readOnly: r.rows[0]![0] === true };
  }

  async materialize(table: string, query: string): Promise<number> {
    const created = await this.run(`CREATE TEMPORARY TABLE ${this.dialect.quoteIdentifier(table)} AS ${query}`);
    // CREATE TABLE AS answers with one row: the number of rows it wrote.
    return Number((await created.getRowsJS())[0]![0]);
  }

  async createTempTable(table: string, columns: readonly HostColumn[]): Promise<void> {
    const defs = columns.map((c) => `${this.dialect.quoteIdentifier(c.name)} ${c.type}`).join(', ');
    await this.run(`CREATE TEMPORARY TABLE ${this.dialect.quoteIdentifier(table)} (${defs})`);
  }

  async dropTempTable(table: string): Promise<void> {
    const extra = this.stageDrops.get(table) ?? [];
    this.stageDrops.delete(table);
    // Releases in this process first: they cannot fail.
    for (const release of extra) if (typeof release === 'function') release();
    await this.run(`DROP TABLE IF EXISTS temp.main.${this.dialect.quoteIdentifier(table)}`);
    for (const statement of extra) if (typeof statement === 'string') await this.run(statement);
  }

  /** The one-pass stage (see duckdb-stage.ts). */
  async openStage(spec: HostStageSpec): Promise<HostStage> {
    return openDuckDBStage(
      {
        dialect: this.dialect,
        connection: this.connection,
        inTransaction: () => this.userTransaction || this.transactionDepth > 0,
        writer: () => (this.stageWriter ??= this.openStageWriter()),
        run: (sql) => this.run(sql),
        onDrop: (table, statement) => this.stageDrops.set(table, [...(this.stageDrops.get(table) ?? []), statement]),
      },
      spec,
    );
  }

  /** Opens the stages' second connection and attaches their in-memory database (shared by the instance's connections). */
  private async openStageWriter(): Promise<DuckDBConnection> {
    try {
      const writer = await this.instance.connect();
      await writer.run(`ATTACH IF NOT EXISTS ':memory:' AS ${this.dialect.quoteIdentifier(STAGE_DATABASE)}`);
      return writer;
    } catch (error) {
      this.stageWriter = undefined;
      throw mapDuckDBError(error);
    }
  }

  async *readBatches(table: string, expressions: readonly string[], kinds: readonly ('number' | 'value')[], batchSize: number): AsyncIterable<ColumnBatch> {
    // Rows appended in an open transaction get rowids from 2^62 on, so ranges start at the first rowid.
    const first = (await this.execute(`SELECT min(rowid) FROM temp.main.${this.dialect.quoteIdentifier(table)}`)).rows[0]![0];
    if (first === null || first === undefined) return;
    for (let offset = BigInt(first as bigint | number); ; offset += BigInt(batchSize)) {
      const batch = await this.readRange(table, expressions, kinds, offset, batchSize);
      if (batch.rowCount === 0) return;
      yield batch;
      if (batch.rowCount < batchSize) return;
    }
  }

  /** Rows `[offset, offset + count)` of a materialized table, by rowid (insertion order). */
  private async readRange(table: string, expressions: readonly string[], kinds: readonly ('number' | 'value')[], offset: bigint, count: number): Promise<ColumnBatch> {
    const select = expressions.map((e, i) => (kinds[i] === 'number' ? `CAST(${e} AS DOUBLE)` : e)).join(', ');
    const result = await this.run(
      `SELECT ${select} FROM temp.main.${this.dialect.quoteIdentifier(table)} WHERE rowid >= ${offset} AND rowid < ${offset + BigInt(count)} ORDER BY rowid`,
    );
    const rowCount = result.rowCount;
    const columns: ColumnData[] = kinds.map((kind) =>
      kind === 'number'
        ? { kind: 'number', values: new Float64Array(rowCount), nulls: new Uint8Array(rowCount) }
        : { kind: 'value', values: new Array<unknown>(rowCount) },
    );
    let row = 0;
    for (let c = 0; c < result.chunkCount; c++) {
      const chunk = result.getChunk(c);
      const n = chunk.rowCount;
      for (let col = 0; col < kinds.length; col++) {
        const target = columns[col]!;
        if (target.kind === 'number') {
          const vector = chunk.getColumnVector(col);
          const values = target.values as Float64Array;
          const nulls = target.nulls!;
          for (let i = 0; i < n; i++) {
            const v = vector.getItem(i) as number | null;
            if (v === null) nulls[row + i] = 1;
            else values[row + i] = v;
          }
        } else {
          const values = chunk.convertColumnValues(col, jsConverter);
          const out = target.values as unknown[];
          for (let i = 0; i < n; i++) out[row + i] = values[i];
        }
      }
      row += n;
    }
    return { rowCount, columns };
  }

  async openAppender(table: string): Promise<HostAppender> {
    let appender;
    try {
      appender = await this.connection.createAppender(table, 'main', 'temp');
    } catch (error) {
      throw mapDuckDBError(error);
    }
    const types: DuckDBType[] = [];
    for (let i = 0; i < appender.columnCount; i++) types.push(appender.columnType(i));
    return {
      append: async (batch) => appendBatch(appender, types, batch),
      close: async () => {
        try {
          appender.flushSync();
        } finally {
          appender.closeSync();
        }
      },
    };
  }

  /**
   * DuckDB has no nested transactions, and a failed BEGIN aborts the open one, so the host
   * tracks the user's BEGIN/COMMIT/ROLLBACK (every statement passes through `execute`) and
   * runs `fn` inside the user's transaction when one is open.
   */
  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    const own = this.transactionDepth === 0 && !this.userTransaction;
    if (own) await this.run('BEGIN TRANSACTION');
    this.transactionDepth++;
    try {
      const value = await fn();
      if (own) await this.run('COMMIT');
      return value;
    } catch (error) {
      if (own) await this.connection.run('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      this.transactionDepth--;
    }
  }

  async inTransaction(): Promise<boolean> {
    return this.userTransaction || this.transactionDepth > 0;
  }

  interrupt(): void {
    this.connection.interrupt();
  }

  async close(): Promise<void> {
    const writer = this.stageWriter && (await this.stageWriter.catch(() => undefined));
    writer?.closeSync();
    this.connection.closeSync();
    this.instance.closeSync();
  }

  /**
   * Runs `sql`. With parameters it is one statement: text parameters are written into it as
   * string literals (`inlineTextParameters`: one call into DuckDB), others bound to it
   * prepared directly (two calls, not the three of `connection.run(sql, values)`, which
   * first splits the text into statements).
   */
  private async run(sql: string, params?: readonly unknown[]): Promise<DuckDBMaterializedResult> {
    const inlined = params && inlineTextParameters(sql, params);
    try {
      if (!params || inlined !== undefined) return await this.connection.run(inlined ?? sql);
      const prepared = await this.connection.prepare(sql);
      try {
        prepared.bind(params.map(toDuckDBParam));
        return await prepared.run();
      } finally {
        prepared.destroySync();
      }
    } catch (error) {
      throw mapDuckDBError(error, inlined ?? sql);
    }
  }
}

const jsConverter = duckdbApi.JSDuckDBValueConverter;

/** The parameter tokens of statements seen lately: the catalog runs the same few texts again and again. */
const parameterTokens = new Map<string, readonly Token[]>();

function parametersOf(sql: string): readonly Token[] {
  let found = parameterTokens.get(sql);
  if (!found) {
    if (parameterTokens.size >= 64) parameterTokens.clear();
    found = tokenize(sql).filter((t) => t.kind === 'parameter');
    parameterTokens.set(sql, found);
  }
  return found;
}

/**
 * `sql` with each `$n` replaced by `params[n - 1]` as a string literal, when every
 * parameter is a string and every placeholder a `$n` in range; undefined otherwise. The
 * lexer finds the placeholders, so quoted text cannot hold a false one, and a DuckDB string
 * literal has no escape but a doubled quote
 * (https://duckdb.org/docs/stable/sql/data_types/literal_types#string-literals).
 */
function inlineTextParameters(sql: string, params: readonly unknown[]): string | undefined {
  if (!params.every((p) => typeof p === 'string')) return undefined;
  const placeholders = parametersOf(sql);
  if (placeholders.some((t) => !/^\$[1-9][0-9]*$/.test(t.text) || Number(t.text.slice(1)) > params.length)) return undefined;
  let out = '';
  let at = 0;
  for (const t of placeholders) {
    out += `${sql.slice(at, t.span.start)}${quoteString(params[Number(t.text.slice(1)) - 1] as string)}`;
    at = t.span.end;
  }
  return out + sql.slice(at);
}

/** Whether `sql` begins or ends a transaction (https://duckdb.org/docs/stable/sql/statements/transactions). */
function transactionControl(sql: string): 'begin' | 'end' | undefined {
  const [token] = leadingTokens(sql, 1);
  const first = token?.kind === 'identifier' ? token.value : undefined;
  if (first === 'begin' || first === 'start') return 'begin';
  if (first === 'commit' || first === 'end' || first === 'rollback' || first === 'abort') return 'end';
  return undefined;
}

/**
 * MAP values with string keys as plain objects (`{ MAE: 1.5 }`), as a JS user expects;
 * the driver gives them as `[{ key, value }]` arrays.
 */
function mapsAsObjects(columns: readonly HostColumn[], rows: unknown[][]): unknown[][] {
  const maps = columns.flatMap((c, i) => (c.type.startsWith('MAP(VARCHAR,') ? [i] : []));
  if (maps.length === 0) return rows;
  for (const row of rows) {
    for (const i of maps) {
      const entries = row[i] as { key: string; value: unknown }[] | null;
      if (entries) row[i] = Object.fromEntries(entries.map((e) => [e.key, e.value]));
    }
  }
  return rows;
}

function columnsOf(result: { columnNames(): string[]; columnTypes(): DuckDBType[] }): HostColumn[] {
  const names = result.columnNames();
  const types = result.columnTypes();
  return names.map((name, i) => ({ name, type: types[i]!.toString() }));
}

function toDuckDBParam(value: unknown): DuckDBValue {
  if (value instanceof Uint8Array) return duckdbApi.blobValue(value);
  if (value === undefined) return null;
  return value as DuckDBValue;
}
