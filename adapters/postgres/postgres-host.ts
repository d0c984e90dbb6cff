/**
 * The PostgreSQL host: one `PgConnection` (a `pg.Client` for library use, the proxy's own
 * upstream socket in the proxy) behind the core's `Host` port. This file depends on the
 * `PgConnection` interface only, never on `pg`.
 *
 * How a model stage runs here: in one pass, by `openStage` (copy-stage.ts): `COPY (query)
 * TO STDOUT` once, the input fields carried as raw text next to the features, and
 * `input + output` lines copied into one temporary table, which the rewritten statement
 * scans. The positional methods below serve hosts' generic path (and a stage with a
 * prediction cache, which runs statements between batches):
 * - `materialize` copies the input query into a temporary table with a hidden ordinal
 *   column (`__modelsql_ord`, 1, 2, ... in the query's order, from `row_number() OVER ()`
 *   over the query as a subquery, which keeps the subquery's ORDER BY); `describe` of
 *   `SELECT * FROM <that table>` leaves the ordinal out.
 * - `readBatches` reads it back with a cursor, `FETCH FORWARD n` at a time
 *   (https://www.postgresql.org/docs/current/sql-declare.html). A cursor lives in a
 *   transaction: inside the caller's transaction block when one is open, else in one this
 *   host opens for the stage (the predictions are appended inside it, and it commits when
 *   the input is exhausted). A temporary table is read with a plain sequential scan, which
 *   for a table written once by CREATE TABLE AS returns rows in the order they were written
 *   (temporary tables use local buffers: no synchronized or parallel scans); each batch's
 *   ordinals are checked.
 * - `openAppender` writes each batch with one `COPY ... FROM STDIN` in text format
 *   (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2), ordinals first.
 * - The dialect's zip joins input and output on the ordinal, in input order.
 *
 * Temporary tables live in the session's `pg_temp` schema, invisible to other sessions.
 */
import { randomBytes } from 'node:crypto';
import { parsePostgresDuration } from '../../core/session/statement-timeout.js';
import type { ExecuteOptions, Host, HostAppender, HostColumn, HostResult, HostStage, HostStageSpec } from '../../core/host.js';
import { ModelSqlError, positionAt } from '../../core/errors.js';
import { tokenize } from '../../core/sql/lexer.js';
import type { PgConnection, PgField, PgQueryResult, TransactionStatus } from './pg-connection.js';
import { PG_TYPE_NAMES } from './pg-values.js';
import { copyField, isIntegerType } from './copy-text.js';
import { DEFAULT_STAGE_MEMORY_BYTES, openCopyStage, type CopyFormat } from './copy-stage.js';
import { ORDINAL_COLUMN, PostgresDialect } from './postgres-dialect.js';
import { mapPostgresError } from './postgres-errors.js';
import { RESET_SESSION, RUNNER_BODY, SESSION_IS_CLEAN, confinedKind, runnerCall, runnerDefinition, runnerIdentity } from './owner-confinement.js';
import type { ColumnBatch, ColumnData } from '../../core/model-types.js';

export { copyField } from './copy-text.js';

/** Rows per FETCH of `stream`. */
const STREAM_ROWS = 2048;
/** Rows per COPY data message of an append. */
const COPY_CHUNK_ROWS = 1024;

/**
 * A `Host` over one Postgres session.
 *
 * @example
 * const host = new PostgresHost(await PgClientConnection.connect(url));
 * await host.execute('SELECT $1::int + 1', [41]);
 */
export class PostgresHost implements Host {
  readonly name = 'postgres';
  readonly dialect = new PostgresDialect();
  /** Postgres can hold model functions as `LANGUAGE sql` functions. */
  readonly nativeFunctions = true;
  private transactionDepth = 0;
  private serverVersionNum?: Promise<number>;
  private inFlight = 0;
  private pendingCancel: Promise<void> | undefined;
  private counter = 0;
  /** Temporary tables this host created with a hidden ordinal, and their column types. */
  private readonly ordinalTables = new Map<string, readonly HostColumn[]>();
  private readonly typeNames = new Map<number, string>(PG_TYPE_NAMES);
  /**
   * Names of built-in types with binary I/O (all of {@link PG_TYPE_NAMES}), so that a stage
   * over them needs no catalog query; a name another type of this session was also
   * described by (a visible type of the same name) leaves the set.
   */
  private readonly binaryIoTypes = new Set<string>(PG_TYPE_NAMES.values());
  /** While {@link actAs} runs: the runner's call and its check values (owner-confinement.ts). */
  private confinement: { readonly call: string; readonly check: readonly unknown[] } | undefined;

  /**
   * @param options.stageMemoryBytes output bytes a one-pass stage keeps in memory before it
   *   spills to a file under `os.tmpdir()` (default 64 MiB).
   * @param options.stageCopyFormat `binary` (default: binary COPY where the stage can use it,
   *   see copy-stage.ts) or `text` (text COPY always).
   */
  constructor(
    private readonly connection: PgConnection,
    private readonly options: { readonly stageMemoryBytes?: number; readonly stageCopyFormat?: CopyFormat } = {},
  ) {}

  async execute(sql: string, params?: readonly unknown[], options?: ExecuteOptions): Promise<HostResult> {
    const result = await this.query(sql, params, options?.repeated === true);
    return { columns: await this.columnsOf(result.fields), rows: result.rows };
  }

  async *stream(sql: string): AsyncIterable<HostResult> {
    const first = tokenize(sql)[0];
    const cursorable = first?.kind === 'identifier' && ['select', 'values', 'table'].includes(first.value);
    if (!cursorable) {
      // DECLARE takes only SELECT / VALUES (https://www.postgresql.org/docs/current/sql-declare.html).
      const result = await this.execute(sql);
      for (let i = 0; i === 0 || i < result.rows.length; i += STREAM_ROWS) yield { columns: result.columns, rows: result.rows.slice(i, i + STREAM_ROWS) };
      return;
    }
    yield* this.withCursor(sql, STREAM_ROWS, async function* (fetch, columnsOf) {
      for (;;) {
        const result = await fetch();
        yield { columns: await columnsOf(result.fields), rows: result.rows };
        if (result.rows.length < STREAM_ROWS) return;
      }
    });
  }

  async describe(sql: string): Promise<readonly HostColumn[]> {
    const result = await this.query(`SELECT * FROM (${sql}\n) AS __modelsql_describe LIMIT 0`);
    return this.columnsOf(result.fields);
  }

  async currentSchema(): Promise<string> {
    const result = await this.query('SELECT pg_catalog.current_schema()');
    return String(result.rows[0]?.[0] ?? 'public');
  }

  async currentDatabase(): Promise<string> {
    return String((await this.query('SELECT pg_catalog.current_database()')).rows[0]![0]);
  }

  async materialize(table: string, query: string): Promise<number> {
    const q = this.dialect.quoteIdentifier(table);
    await this.query(
      `CREATE TEMPORARY TABLE ${q} AS SELECT pg_catalog.row_number() OVER () AS ${this.dialect.quoteIdentifier(ORDINAL_COLUMN)}, __modelsql_input.* FROM (${query}\n) AS __modelsql_input`,
    );
    this.ordinalTables.set(table, []);
    const count = await this.query(`SELECT pg_catalog.count(*) FROM pg_temp.${q}`);
    return Number(count.rows[0]![0]);
  }

  async createTempTable(table: string, columns: readonly HostColumn[]): Promise<void> {
    const defs = [`${this.dialect.quoteIdentifier(ORDINAL_COLUMN)} bigint`, ...columns.map((c) => `${this.dialect.quoteIdentifier(c.name)} ${c.type}`)];
    await this.query(`CREATE TEMPORARY TABLE ${this.dialect.quoteIdentifier(table)} (${defs.join(', ')})`);
    this.ordinalTables.set(table, columns);
  }

  async dropTempTable(table: string): Promise<void> {
    this.ordinalTables.delete(table);
    await this.query(`DROP TABLE IF EXISTS pg_temp.${this.dialect.quoteIdentifier(table)}`);
  }

  async *readBatches(table: string, expressions: readonly string[], kinds: readonly ('number' | 'value')[], batchSize: number): AsyncIterable<ColumnBatch> {
    const select = expressions.map((e, i) => (kinds[i] === 'number' ? `CAST(${e} AS double precision)` : e));
    const ord = `CAST(${this.dialect.quoteIdentifier(ORDINAL_COLUMN)} AS double precision)`;
    const sql = `SELECT ${[ord, ...select].join(', ')} FROM pg_temp.${this.dialect.quoteIdentifier(table)}`;
    let expected = 1;
    yield* this.withCursor(sql, batchSize, async function* (fetch) {
      for (;;) {
        const { rows } = await fetch();
        if (rows.length === 0) return;
        if (rows[0]![0] !== expected || rows[rows.length - 1]![0] !== expected + rows.length - 1) {
          throw new ModelSqlError('XX000', `rows of temporary table ${table} came back out of order`);
        }
        expected += rows.length;
        yield toColumnBatch(rows, kinds);
        if (rows.length < batchSize) return;
      }
    });
  }

  async openAppender(table: string): Promise<HostAppender> {
    const columns = this.ordinalTables.get(table);
    if (columns === undefined) throw new ModelSqlError('XX000', `no temporary table ${table} created by this session`);
    const integer = columns.map((c) => isIntegerType(c.type));
    const sql = `COPY pg_temp.${this.dialect.quoteIdentifier(table)} FROM STDIN`;
    let next = 1;
    return {
      append: async (batch) => {
        const start = next;
        next += batch.rowCount;
        await this.run(() => this.connection.copyFrom(sql, copyChunks(batch, start, integer)), sql);
      },
      close: async () => undefined,
    };
  }

  /** The one-pass stage (see copy-stage.ts). */
  async openStage(spec: HostStageSpec): Promise<HostStage> {
    // Confined: the input query runs inside the runner; the COPY reads what it stored.
    if (this.confinement) spec = { ...spec, query: `SELECT * FROM pg_temp.${await this.stored(spec.query)}`, source: undefined };
    const db = {
      query: (sql: string) => this.query(sql),
      copyTo: (sql: string) => this.copyOut(sql),
      copyFrom: (sql: string, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) => this.run(() => this.connection.copyFrom(sql, data), sql),
    };
    const { stageMemoryBytes, stageCopyFormat } = this.options;
    return openCopyStage(db, this.dialect, spec, { memoryLimit: stageMemoryBytes ?? DEFAULT_STAGE_MEMORY_BYTES, format: stageCopyFormat ?? 'binary', binaryIoTypes: this.binaryIoTypes });
  }

  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    if (this.transactionDepth > 0) return this.nested(fn);
    const status = await this.status();
    if (status === 'failed') return fn(); // its first statement reports 25P02, as the user expects
    if (status === 'transaction') {
      // Inside the user's transaction block: a savepoint makes our part atomic without ending theirs
      // (https://www.postgresql.org/docs/current/sql-savepoint.html).
      const savepoint = `__modelsql_sp_${++this.counter}`;
      await this.query(`SAVEPOINT ${savepoint}`);
      try {
        const value = await this.nested(fn);
        await this.query(`RELEASE SAVEPOINT ${savepoint}`);
        return value;
      } catch (error) {
        await this.query(`ROLLBACK TO SAVEPOINT ${savepoint}`).catch(() => undefined);
        await this.query(`RELEASE SAVEPOINT ${savepoint}`).catch(() => undefined);
        throw error;
      }
    }
    await this.query('BEGIN');
    try {
      const value = await this.nested(fn);
      await this.query('COMMIT');
      return value;
    } catch (error) {
      await this.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  async inTransaction(): Promise<boolean> {
    return this.transactionDepth > 0 || (await this.status()) !== 'idle';
  }

  /** `statement_timeout` of the session (https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-STATEMENT-TIMEOUT). */
  async statementTimeout(shown?: string): Promise<number> {
    if (shown !== undefined) return parsePostgresDuration(shown);
    const { rows } = await this.query(`SELECT ${this.dialect.sessionReading.statementTimeout}`);
    return parsePostgresDuration(String(rows[0]?.[0] ?? '0'));
  }

  /** `server_version_num`, asked once per connection (again after a failed ask). */
  serverVersion(): Promise<number> {
    this.serverVersionNum ??= this.execute("SELECT CAST(pg_catalog.current_setting('server_version_num') AS pg_catalog.int4)").then(
      (r) => Number(r.rows[0]![0]),
      (error: unknown) => {
        this.serverVersionNum = undefined;
        throw error;
      },
    );
    return this.serverVersionNum;
  }

  /** The search path when a schema comes before `pg_catalog` in it (`PostgresDialect.sessionReading`). */
  async unsafeSearchPath(): Promise<string | undefined> {
    const { rows } = await this.query(`SELECT ${this.dialect.sessionReading.unsafeSearchPath}`);
    const path = rows[0]?.[0];
    return path === null || path === undefined ? undefined : String(path);
  }

  standardConformingStrings(): boolean {
    return this.connection.standardConformingStrings?.() ?? true;
  }

  interrupt(): void {
    // A CancelRequest reaching the server while the session is idle is ignored by Postgres; one
    // arriving after the next statement started would cancel that one, so cancel only a
    // statement in flight, and let the next statement wait until the request has been delivered.
    if (this.inFlight === 0 || this.pendingCancel) return;
    this.pendingCancel = this.connection.cancel().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  /**
   * Runs `fn` as role `owner`, confined (owner-confinement.ts): the session is reset and
   * checked before and after; in between, every statement without parameters runs inside
   * a `SECURITY DEFINER` function of the owner's, where no code can change the role. Only
   * outside a transaction block, on a session of its own (a refresher's).
   */
  async actAs<T>(owner: string, fn: () => Promise<T>): Promise<T> {
    await this.resetSession();
    try {
      await this.query(`SET ROLE ${this.dialect.quoteIdentifier(owner)}`);
      const name = `modelsql_runner_${randomBytes(8).toString('hex')}`;
      await this.query(runnerDefinition(name));
      const [oid, role] = (await this.query(runnerIdentity(name))).rows[0]!;
      this.confinement = { call: runnerCall(name), check: [oid, role, RUNNER_BODY] };
      return await fn();
    } finally {
      this.confinement = undefined;
      await this.resetSession();
    }
  }

  /** `DISCARD ALL` (after ending an open transaction), then the check that the session is its login role's, with no temporary object. */
  private async resetSession(): Promise<void> {
    if ((await this.status()) !== 'idle') await this.query('ROLLBACK');
    await this.query(RESET_SESSION);
    this.ordinalTables.clear();
    if ((await this.query(SESSION_IS_CLEAN)).rows[0]?.[0] !== true) {
      throw new ModelSqlError('42501', 'the session could not be reset to its login role without temporary objects (DISCARD ALL); it refreshes nothing more');
    }
  }

  /** The session's transaction status: from the connection when it tracks it, else probed with a SAVEPOINT. */
  private async status(): Promise<TransactionStatus> {
    const tracked = this.connection.transactionStatus?.();
    if (tracked !== undefined) return tracked;
    try {
      await this.query('SAVEPOINT __modelsql_probe');
      await this.query('RELEASE SAVEPOINT __modelsql_probe');
      return 'transaction';
    } catch (error) {
      // 25P01 no_active_sql_transaction: "SAVEPOINT can only be used in transaction blocks".
      if (error instanceof ModelSqlError && error.sqlstate === '25P01') return 'idle';
      if (error instanceof ModelSqlError && error.sqlstate === '25P02') return 'failed';
      throw error;
    }
  }

  private async nested<T>(fn: () => Promise<T>): Promise<T> {
    this.transactionDepth++;
    try {
      return await fn();
    } finally {
      this.transactionDepth--;
    }
  }

  /**
   * Declares a cursor for `sql` (in the open transaction block, else in one of its own) and
   * runs `body` with a function fetching the next `rows`; closes the cursor and ends its own
   * transaction however `body` ends.
   */
  private async *withCursor<T>(
    sql: string,
    rows: number,
    body: (fetch: () => Promise<PgQueryResult>, columnsOf: (fields: readonly PgField[]) => Promise<HostColumn[]>) => AsyncIterable<T>,
  ): AsyncIterable<T> {
    // Confined: the query runs inside the runner; the cursor reads what it stored.
    if (this.confinement) sql = `SELECT * FROM pg_temp.${await this.stored(sql)}`;
    const own = this.transactionDepth === 0 && (await this.status()) === 'idle';
    const cursor = `__modelsql_cursor_${++this.counter}`;
    if (own) await this.query('BEGIN');
    let ok = false;
    this.transactionDepth++;
    try {
      const declare = `DECLARE ${cursor} NO SCROLL CURSOR FOR `;
      await this.query(declare + sql).catch((error: unknown) => {
        // An error in the query itself: positioned in `sql`, not in the DECLARE around it.
        if (!(error instanceof ModelSqlError) || !error.position || error.position.offset < declare.length) throw error;
        throw new ModelSqlError(error.sqlstate, error.message, { position: positionAt(sql, error.position.offset - declare.length), sqlText: sql, cause: error });
      });
      yield* body(
        () => this.query(`FETCH FORWARD ${rows} FROM ${cursor}`),
        (fields) => this.columnsOf(fields),
      );
      await this.query(`CLOSE ${cursor}`);
      if (own) await this.query('COMMIT');
      ok = true;
    } finally {
      this.transactionDepth--;
      if (!ok) {
        if (own) await this.query('ROLLBACK').catch(() => undefined);
        else await this.query(`CLOSE ${cursor}`).catch(() => undefined);
      }
    }
  }

  /**
   * `COPY ... TO STDOUT` as a round trip in flight for its whole length (so `interrupt`
   * cancels it). Its errors carry no position: the statement is generated.
   */
  private async *copyOut(sql: string): AsyncIterable<Uint8Array> {
    if (this.pendingCancel) {
      await this.pendingCancel;
      this.pendingCancel = undefined;
    }
    this.inFlight++;
    try {
      yield* this.connection.copyTo(sql);
    } catch (error) {
      throw mapPostgresError(error);
    } finally {
      this.inFlight--;
    }
  }

  private async query(sql: string, params?: readonly unknown[], prepare = false): Promise<PgQueryResult> {
    if (this.confinement && (params === undefined || params.length === 0)) return this.confined(sql);
    // Confined, nothing is kept prepared: code in the runner could DEALLOCATE a kept statement and PREPARE its
    // name again with its own query, which the next call would run outside the runner (where RESET ROLE works).
    const keep = prepare && !this.confinement;
    return this.run(() => this.connection.query(sql, params, keep ? { prepare: keep } : undefined), sql);
  }

  /** A statement without parameters while confined: as it is, inside the runner, or a query whose rows the runner stores first. */
  private async confined(sql: string): Promise<PgQueryResult> {
    const kind = confinedKind(sql);
    if (kind === 'as-is') return this.run(() => this.connection.query(sql), sql);
    if (kind === 'command') {
      await this.inRunner(sql);
      return { fields: [], rows: [], command: sql.trimStart().split(/\s/, 1)[0]!.toUpperCase() };
    }
    const table = await this.stored(sql);
    try {
      return await this.run(() => this.connection.query(`SELECT * FROM pg_temp.${table}`), sql);
    } finally {
      await this.run(() => this.connection.query(`DROP TABLE IF EXISTS pg_temp.${table}`), sql);
    }
  }

  /** Runs `sql` inside the runner (storing its rows in table `into`), checked in the same statement: 42501 when code it ran earlier replaced the runner. */
  private async inRunner(sql: string, into: string | null = null): Promise<void> {
    const { call, check } = this.confinement!;
    const result = await this.run(() => this.connection.query(call, [sql, into, ...check]), sql);
    if (result.rows.length === 0) throw new ModelSqlError('42501', 'code run by the refresh replaced its confinement (the SECURITY DEFINER runner): the refresh stops');
  }

  /** The rows of query `sql`, stored by the runner in a new temporary table (its name returned; columns sharing a name come back as `c1`, `c2`, ...). */
  private async stored(sql: string): Promise<string> {
    const table = `__modelsql_confined_${++this.counter}`;
    await this.inRunner(sql, table);
    return table;
  }

  /** Runs one round trip: waits for a pending cancel to be delivered, counts it in flight, maps its errors. */
  private async run<T>(call: () => Promise<T>, sql: string): Promise<T> {
    if (this.pendingCancel) {
      await this.pendingCancel;
      this.pendingCancel = undefined;
    }
    this.inFlight++;
    try {
      return await call();
    } catch (error) {
      throw mapPostgresError(error, sql);
    } finally {
      this.inFlight--;
    }
  }

  /** Column names and `format_type` names; types outside the built-in table are looked up once. */
  private async columnsOf(fields: readonly PgField[]): Promise<HostColumn[]> {
    for (const f of fields) {
      if (this.typeNames.has(f.dataTypeID)) continue;
      let name = 'unknown';
      try {
        const r = await this.connection.query('SELECT pg_catalog.format_type($1, NULL)', [f.dataTypeID]);
        name = String(r.rows[0]?.[0] ?? 'unknown');
      } catch {
        // e.g. in a failed transaction block; leave it unknown
      }
      this.typeNames.set(f.dataTypeID, name);
      this.binaryIoTypes.delete(name);
    }
    return fields.map((f) => ({ name: f.name, type: this.typeNames.get(f.dataTypeID)! }));
  }
}

/** Rows of `[ordinal, ...values]` (numbers already float8) → a columnar batch. */
function toColumnBatch(rows: readonly (readonly unknown[])[], kinds: readonly ('number' | 'value')[]): ColumnBatch {
  const n = rows.length;
  const columns: ColumnData[] = kinds.map((kind, c) => {
    if (kind === 'number') {
      const values = new Float64Array(n);
      const nulls = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = rows[i]![c + 1];
        if (v === null) nulls[i] = 1;
        else values[i] = v as number;
      }
      return { kind: 'number', values, nulls };
    }
    const values = new Array<unknown>(n);
    for (let i = 0; i < n; i++) values[i] = rows[i]![c + 1];
    return { kind: 'value', values };
  });
  return { rowCount: n, columns };
}

/** COPY text-format chunks of a batch: ordinal, then each column (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2). */
function* copyChunks(batch: ColumnBatch, firstOrdinal: number, integer: readonly boolean[]): Generator<string> {
  const { rowCount, columns } = batch;
  for (let start = 0; start < rowCount; start += COPY_CHUNK_ROWS) {
    const end = Math.min(rowCount, start + COPY_CHUNK_ROWS);
    let chunk = '';
    for (let i = start; i < end; i++) {
      let line = String(firstOrdinal + i);
      for (let c = 0; c < columns.length; c++) {
        const column = columns[c]!;
        let value: unknown;
        if (column.kind === 'number') value = column.nulls && column.nulls[i] ? null : column.values[i];
        else value = column.values[i];
        line += '\t' + copyField(value, integer[c] === true);
      }
      chunk += line + '\n';
    }
    yield chunk;
  }
}
