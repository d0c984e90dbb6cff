/**
 * The session over any host: splits a script into statements, hands host SQL to the host
 * untouched, model DDL to the catalog, and statements with ML calls to the planner.
 */
import { EventEmitter } from 'node:events';
import { ModelSqlError, QueryCanceledError, UnsafeSearchPathError, UnsupportedFeatureError, positionAt, withoutGeneratedSql, type SourcePosition } from '../errors.js';
import type { Host, HostResult, SessionReading } from '../host.js';
import { ModelCatalog } from '../catalog/model-catalog.js';
import { MaterializedTables } from '../materialized/materialized-tables.js';
import type { DirectWrite, ExecutionContext } from '../execution/execution-context.js';
import type { StatementPlan } from '../execution/run-statement.js';
import type { InferenceGate } from '../runtime/inference-limits.js';
import { StatementTimer } from './statement-timeout.js';
import { StatementQueue } from './statement-queue.js';
import { DEFAULT_MAX_SPILL_BYTES, RowSpill, approximateBytes } from './row-spill.js';
import { createModel } from './create-model.js';
import { RuntimeLoader, type ModelAccessOptions } from '../runtime/runtime-loader.js';
import type { QueryStatement, Statement } from '../sql/ast.js';
import { namedModels } from '../sql/ml-call.js';
import { leadingTokens, type LexOptions } from '../sql/lexer.js';
import { parseScript, parseScriptAfter } from '../sql/parser.js';
import { maskError, redactSql } from '../secrets.js';
import type { Session, SessionEvents } from './session.js';
import type { QueryResult, ResultBatch } from '../model-types.js';

/** Options of a session; every field optional. */
export interface SessionOptions extends ModelAccessOptions {
  /**
   * A runtime loader shared by several sessions (the Postgres proxy shares one, so that a
   * model is loaded once, not once per client connection). The session does not close it;
   * its owner does. Default: a loader of the session's own, closed with the session.
   */
  readonly runtimeLoader?: RuntimeLoader;
  /** Rows one ML_PREDICT / ML_EVALUATE call may send to a model; over it the call fails with 54000. Default: no limit. */
  readonly maxRowsPerCall?: number;
  /**
   * Admission of model inferences, shared with other sessions (see inference-limits.ts);
   * over its limits a call fails with 53400. Default: none.
   */
  readonly inferenceGate?: InferenceGate;
  /** The name this session counts under in the gate's per-client limit (the proxy: the user name). Default: the session's own. */
  readonly clientName?: string;
  /**
   * The key literal model secrets are sealed with in the catalog (32 bytes as 64 hex
   * digits or base64; core/catalog/secret-cipher.ts). Default: the environment variable
   * `MODELSQL_SECRET_KEY`.
   */
  readonly secretKey?: string;
  /**
   * Bytes of a stream's remaining rows (about: row-spill.ts `approximateBytes`) the session
   * reads into memory when another call comes to wait while the stream is read; past it the
   * stream fails with 54000 and the call runs. Default 256 MiB.
   */
  readonly maxSpillBytes?: number;
}

/**
 * One ML query rewritten into host SQL, for a caller that runs that SQL itself (the
 * Postgres proxy sends it upstream and relays Postgres's own answer). The statement's
 * temporary tables stay until `release()`.
 */
export interface PreparedQuery {
  /** The host SQL to run in place of the statement (empty when `run` is set). */
  readonly sql: string;
  /**
   * The offset in the statement's script text of an offset in `sql` (where a host error's
   * position points in what the user wrote; an offset inside an ML call's replacement maps
   * to the call).
   */
  readonly scriptOffset?: (offset: number) => number;
  /**
   * Set when the statement writes its ML_PREDICT's rows straight into its own table
   * (`CREATE TABLE ... AS` / `INSERT INTO ... SELECT` over the call alone, see
   * core/planner/direct-write.ts): the caller calls it in place of running `sql`. It does the
   * whole statement and returns Postgres's command tag for it (`SELECT 5`, `INSERT 0 5`,
   * `CREATE TABLE AS`). Such a statement returns no rows (a Describe answers NoData).
   */
  readonly run?: () => Promise<string>;
  /** Drops the statement's temporary tables, once the statement running on the session has ended; safe to call more than once. */
  release(): Promise<void>;
}

/**
 * A `Session` over one `Host`. Adapters construct it (`openDuckDB`).
 *
 * @example
 * const session = new ModelSession(await DuckDBHost.open(), {});
 */
export class ModelSession implements Session {
  readonly events = new EventEmitter<SessionEvents>();
  private readonly loader: RuntimeLoader;
  private readonly ownsLoader: boolean;
  private readonly catalog: ModelCatalog;
  /** Materialized tables of this session's database (core/materialized); their refreshes run model SQL through this session. */
  readonly materialized: MaterializedTables;
  private controller: AbortController | undefined;
  /** One statement at a time: calls made while one runs wait for it (statement-queue.ts). */
  private readonly queue = new StatementQueue();
  private tempCounter = 0;
  private readonly maxRowsPerCall: number | undefined;
  private readonly maxSpillBytes: number;
  /** Admits one model stage of this session (the shared gate's, else none). */
  private readonly admit: (position?: SourcePosition) => () => void;

  constructor(
    private readonly host: Host,
    options: SessionOptions = {},
  ) {
    this.loader = options.runtimeLoader ?? new RuntimeLoader(options);
    this.ownsLoader = options.runtimeLoader === undefined;
    this.catalog = new ModelCatalog(host, this.loader, { secretKey: options.secretKey });
    // A refresh runs inside the statement that asked for it (or on a scheduler's own session): not queued again.
    this.materialized = new MaterializedTables(host, this.catalog, (sql) => this.sqlNow(sql), (role) => `__modelsql_${process.pid}_${++this.tempCounter}_mt_${role}`);
    this.maxRowsPerCall = options.maxRowsPerCall;
    this.maxSpillBytes = options.maxSpillBytes ?? DEFAULT_MAX_SPILL_BYTES;
    this.admit = admission(options);
  }

  async sql(text: string): Promise<QueryResult> {
    return this.queue.run(() => this.sqlNow(text));
  }

  /** Each statement holds the session while it runs, not while the loop handles its result. */
  async *run(text: string): AsyncIterable<QueryResult> {
    // Split in its turn, as the host reads strings once the statements queued before it ran.
    let script: Script | undefined;
    for (let i = 0; ; i++) {
      const result = await this.queue.run(async () => {
        script ??= this.script(text);
        const statement = this.statementAt(script, i);
        return statement && (await this.runOne(statement, text));
      });
      if (!result) return;
      yield result;
    }
  }

  /** Every statement of `text`, in the turn the caller holds; the last one's result. */
  private async sqlNow(text: string): Promise<QueryResult> {
    let last: QueryResult = { command: 'EMPTY', columns: [], rows: [] };
    const script = this.script(text);
    for (let i = 0, statement = this.statementAt(script, 0); statement; statement = this.statementAt(script, ++i)) last = await this.runOne(statement, text);
    return last;
  }

  /** `text` split into statements as the host reads strings now. */
  private script(text: string): Script {
    const standard = this.standardStrings();
    return { text, standard, statements: parseWithText(text, { standardConformingStrings: standard }) };
  }

  /**
   * Statement `i` of a script, about to run. When a statement before it changed how the
   * host reads strings (`SET standard_conforming_strings`), the rest of the script is split
   * again with the new reading first, so that it runs as the host reads it.
   */
  private statementAt(script: Script, i: number): Statement | undefined {
    const standard = this.standardStrings();
    if (i > 0 && i < script.statements.length && standard !== script.standard) {
      const rest = parseWithText(script.text, { standardConformingStrings: standard }, script.statements[i - 1]!.span.end);
      script.statements = [...script.statements.slice(0, i), ...rest];
      script.standard = standard;
    }
    return script.statements[i];
  }

  /**
   * Holds the session until the rows are read to the end or the loop reading them ends; a
   * call that comes to wait meanwhile has the rows left read into memory first, and runs.
   */
  async *stream(text: string): AsyncIterable<ResultBatch> {
    let leave: (() => void) | undefined = await this.queue.enter();
    const leaveOnce = () => {
      leave?.();
      leave = undefined;
    };
    try {
      yield* this.streamNow(text, leaveOnce);
    } finally {
      leaveOnce();
    }
  }

  private async *streamNow(text: string, leave: () => void): AsyncIterable<ResultBatch> {
    const script = this.script(text);
    let i = 0;
    for (let statement = this.statementAt(script, 0); statement && i < script.statements.length - 1; statement = this.statementAt(script, ++i)) await this.runOne(statement, text);
    const last = this.statementAt(script, i);
    if (!last) return;
    if (last.kind !== 'host' && last.kind !== 'query') {
      const result = await this.runOne(last, text);
      // Its result is in memory: the loop reading it does not hold the session (a call awaited there would wait for ever).
      leave();
      yield { columns: result.columns, rows: result.rows };
      return;
    }
    const { signal, temps, giveUp, finish } = this.begin();
    let spilled: Promise<void> | undefined;
    let written = false;
    try {
      const plan: StatementPlan = last.kind === 'host' ? { sql: last.text } : await this.plan(last, text, signal, temps);
      if (plan.write) {
        await runWrite(plan.write);
        written = true;
      } else {
        const rows = new RowSpill(this.host.stream(plan.sql)[Symbol.asyncIterator](), this.maxSpillBytes, (batch) => approximateBytes(batch.rows));
        // A call that comes to wait: the rows left are read into memory, and the session is its.
        const withdraw = this.queue.whileHeld(() => {
          spilled = rows.spill().then(() => {
            giveUp();
            leave();
          });
        });
        try {
          for await (const batch of { [Symbol.asyncIterator]: () => rows }) {
            if (signal.aborted) throw new QueryCanceledError();
            yield batch;
          }
        } finally {
          withdraw();
        }
      }
    } catch (error) {
      throw withText(last.kind === 'host' ? inScript(error, last, text) : error, text);
    } finally {
      // Once the session was given up, the statement's clean-up waits its turn.
      if (spilled) await spilled.then(() => this.queue.run(finish));
      else await finish();
    }
    if (written) {
      // As above: a write has no rows to read, and holds nothing once done.
      leave();
      yield { columns: [], rows: [] };
    }
  }

  cancel(): void {
    this.controller?.abort();
    this.host.interrupt();
  }

  async close(): Promise<void> {
    if (this.ownsLoader) await this.loader.close();
    await this.host.close();
  }

  /**
   * Runs one statement of `text` (as returned by `parseScript(text)`): host SQL, model DDL
   * or an ML query, and returns its result.
   */
  async runStatement(statement: Statement, text: string): Promise<QueryResult> {
    return this.queue.run(() => this.runOne(statement, text));
  }

  /**
   * Runs the model stages of one ML query statement of `text` and returns the host SQL that
   * reads their results, holding the temporary tables until `release()`. `cancel()` aborts
   * the stages, and works until `release()`.
   *
   * @example
   * const [statement] = parseScript(text);
   * const prepared = await session.prepareQuery(statement as QueryStatement, text);
   * try { await runUpstream(prepared.sql) } finally { await prepared.release() }
   */
  async prepareQuery(statement: QueryStatement, text: string): Promise<PreparedQuery> {
    // Queued while its stages run; what it returns holds nothing of the queue.
    return this.queue.run(() => this.prepareNow(statement, text));
  }

  private async prepareNow(statement: QueryStatement, text: string): Promise<PreparedQuery> {
    const { signal, temps, finish } = this.begin();
    let released: Promise<void> | undefined;
    let write: DirectWrite | undefined;
    const releaseNow = async (): Promise<void> => {
      await write?.close();
      await finish();
    };
    // Its drops wait their turn: run between another statement's reads on DuckDB, they would cut them short.
    const release = (): Promise<void> => (released ??= this.queue.run(releaseNow));
    try {
      const plan = await this.plan(statement, text, signal, temps);
      write = plan.write;
      if (!plan.write) return { sql: plan.sql, scriptOffset: plan.scriptOffset, release };
      const direct = plan.write;
      const run = (): Promise<string> =>
        this.queue.run(async () => {
          try {
            return commandTag(direct.kind, await direct.run());
          } catch (error) {
            throw withText(error, text);
          }
        });
      return { sql: '', run, release };
    } catch (error) {
      // Still this statement's turn.
      await (released ??= releaseNow());
      throw withText(error, text);
    }
  }

  /** `standard_conforming_strings` of the host (on for hosts without the setting). */
  private standardStrings(): boolean {
    return this.host.standardConformingStrings?.() ?? true;
  }

  /**
   * 0A000 for a model statement while the host reads backslash escapes in plain strings
   * (`standard_conforming_strings = off`): model SQL is scanned, rewritten and generated for
   * standard strings only. Checked when each statement runs, so that a script turning the
   * setting off before a model statement is refused there.
   */
  private requireStandardStrings(statement: Statement, text: string): void {
    if (statement.kind === 'host' || this.standardStrings()) return;
    throw new UnsupportedFeatureError(
      'model statements need standard_conforming_strings = on, and this session has it off: SET standard_conforming_strings = on first',
      positionAt(text, statement.span.start),
    );
  }

  /**
   * The session settings a model statement needs, checked before it runs any SQL of
   * modelsql's: strings read as standard (above), and no schema searched before the host's
   * built-in functions and operators (an operator planted there would run, as the caller,
   * inside modelsql's catalog queries; 42501). `read`: the settings as a query of
   * modelsql's that names nothing the path could change already read them (an ML query's
   * catalog look-up), else the host is asked.
   */
  private async checkSession(statement: Statement, text: string, read?: SessionReading): Promise<void> {
    if (statement.kind === 'host') return;
    this.requireStandardStrings(statement, text);
    const path = read ? read.unsafeSearchPath : await this.host.unsafeSearchPath?.();
    if (path !== undefined) throw new UnsafeSearchPathError(path, positionAt(text, statement.span.start));
  }

  private async runOne(statement: Statement, text: string): Promise<QueryResult> {
    try {
      // An ML query is checked when it is planned.
      if (statement.kind !== 'query') await this.checkSession(statement, text);
      switch (statement.kind) {
        case 'host':
          await this.materialized.checkHostStatement(statement.text, text, statement.span.start);
          try {
            return commandResult(statement.text, await this.host.execute(statement.text));
          } catch (error) {
            throw inScript(error, statement, text);
          }
        case 'query':
          return await this.runQuery(statement, text);
        case 'create-materialized-table':
        case 'alter-materialized-table':
        case 'drop-materialized-table':
        case 'show-materialized-tables':
        case 'describe-materialized-table':
          return await this.withStatementTimer((signal, beforeWait) => this.materialized.execute(statement, text, { signal, beforeWait }));
        case 'create-model':
          return await this.withStatementTimer((signal, beforeTraining) => createModel(this.catalog, this.host, statement, text, { signal, beforeTraining }));
        case 'drop-model':
        case 'alter-model':
          await this.materialized.checkModelStatement(statement, text);
          return await this.catalog.execute(statement, text);
        default:
          return await this.catalog.execute(statement, text);
      }
    } catch (error) {
      throw withText(error, text);
    }
  }

  /**
   * Work that waits in Node between its host statements (training's many statements, a
   * materialized-table statement waiting for another connection's refresh): a cancel reaches
   * it through the statement's signal, and the host's statement timeout, armed when `work`
   * says (`arm`), bounds it as a whole, as it bounds model stages.
   */
  private async withStatementTimer<T>(work: (signal: AbortSignal, arm: () => Promise<void>) => Promise<T>): Promise<T> {
    const { signal, finish } = this.begin();
    const timer = new StatementTimer(this.host, () => this.cancel());
    try {
      return await timer.guard(() => work(signal, () => timer.arm()));
    } finally {
      timer.stop();
      await finish();
    }
  }

  private async runQuery(statement: QueryStatement, text: string): Promise<QueryResult> {
    const { signal, temps, finish } = this.begin();
    try {
      const plan = await this.plan(statement, text, signal, temps);
      if (plan.write) {
        await runWrite(plan.write);
        return commandResult(statement.text, { columns: [], rows: [] });
      }
      try {
        return commandResult(statement.text, await this.host.execute(plan.sql));
      } catch (error) {
        throw withoutGeneratedSql(error, 'in the statement around the ML call', positionAt(text, hostErrorOffset(error, plan.sql, plan.scriptOffset) ?? statement.span.start));
      }
    } finally {
      await finish();
    }
  }

  /**
   * The host SQL of one ML query statement of `text` planned for its shape only: every call
   * becomes its input with typed NULL outputs, so that the host can describe or EXPLAIN it.
   * No model runs and nothing is left to release (a client's Describe, a BI tool's
   * `getMetaData`).
   */
  async describeQuery(statement: QueryStatement, text: string): Promise<Pick<PreparedQuery, 'sql' | 'scriptOffset'>> {
    return this.queue.run(async () => {
      try {
        const plan = await this.plan(statement, text, new AbortController().signal, [], true);
        if (plan.write) throw new ModelSqlError('XX000', 'internal error: a statement planned for its shape planned a write');
        return { sql: plan.sql, scriptOffset: plan.scriptOffset };
      } catch (error) {
        throw withText(error, text);
      }
    });
  }

  private async plan(statement: QueryStatement, text: string, signal: AbortSignal, temps: string[], describeOnly = isPlainExplain(statement.text)): Promise<StatementPlan> {
    this.requireStandardStrings(statement, text);
    const stored = storedDefinition(statement);
    if (stored) {
      throw new UnsupportedFeatureError(
        `ML_PREDICT / ML_EVALUATE cannot be stored in ${stored}: their results are computed when the statement runs; use CREATE TABLE ... AS, or run the statement itself`,
        positionAt(text, statement.span.start),
      );
    }
    // The statement's first SQL: the catalog look-up, whose query checks the search path too.
    const models = await this.catalog.resolver(namedModels(statement.calls), text);
    await this.checkSession(statement, text, models.session);
    // Model stages are bounded by the host's statement timeout (as the look-up read it), armed when the first one starts.
    const timer = new StatementTimer(this.host, () => this.cancel(), models.session?.statementTimeout);
    const limits: ExecutionContext['limits'] = {
      maxRows: this.maxRowsPerCall,
      beforeLoad: () => timer.arm(),
      enter: async (position) => {
        await timer.arm();
        return this.admit(position);
      },
    };
    const context: ExecutionContext = {
      host: this.host,
      catalog: this.catalog,
      models: models.resolve,
      loader: this.loader,
      scriptText: text,
      signal,
      newTempTable: (role) => {
        const name = `__modelsql_${process.pid}_${++this.tempCounter}_${role}`;
        temps.push(name);
        return name;
      },
      onProgress: (event) => this.events.emit('progress', event),
      onRun: (event) => this.events.emit('run', event),
      onRequest: (event) => this.events.emit('request', event),
      limits,
      describeOnly,
    };
    let plan: StatementPlan;
    try {
      // The planner and the stage executor are loaded by the first statement with an ML call.
      const { planStatement } = await import('../execution/run-statement.js');
      plan = await timer.guard(() => planStatement(statement, context));
    } catch (error) {
      timer.stop();
      throw error;
    }
    const write = plan.write;
    if (!write) {
      timer.stop();
      return plan;
    }
    // A direct write runs its stage later, still under the statement's timer.
    return {
      write: {
        kind: write.kind,
        run: () => timer.guard(() => write.run()),
        close: async () => {
          timer.stop();
          await write.close();
        },
      },
    };
  }

  /**
   * Starts a statement: a fresh abort signal and a list of temporary tables to drop at the
   * end. `giveUp`: the statement no longer runs on the session (a stream that gave way), so
   * `cancel()` is not for it.
   */
  private begin(): { signal: AbortSignal; temps: string[]; giveUp: () => void; finish: () => Promise<void> } {
    const controller = new AbortController();
    this.controller = controller;
    const temps: string[] = [];
    return {
      signal: controller.signal,
      temps,
      giveUp: () => {
        if (this.controller === controller) this.controller = undefined;
      },
      finish: async () => {
        if (this.controller === controller) this.controller = undefined;
        for (const table of temps.reverse()) await this.host.dropTempTable(table).catch(() => undefined);
      },
    };
  }
}

/**
 * Where a host error about rewritten SQL `sql` points in the script: its position mapped
 * back through `scriptOffset`; undefined when it has none.
 */
function hostErrorOffset(error: unknown, sql: string, scriptOffset: ((offset: number) => number) | undefined): number | undefined {
  if (!(error instanceof ModelSqlError) || !error.position || error.sqlText !== sql || !scriptOffset) return undefined;
  return scriptOffset(error.position.offset);
}

/** Runs a direct write and releases its stage. */
async function runWrite(write: DirectWrite): Promise<void> {
  try {
    await write.run();
  } finally {
    await write.close();
  }
}

/**
 * Postgres's command tag for a direct write (the host whose stages write into tables):
 * CREATE TABLE AS reports the rows it selected, INSERT the rows it inserted
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE);
 * a CREATE TABLE IF NOT EXISTS that found its table reports `CREATE TABLE AS`.
 */
function commandTag(kind: DirectWrite['kind'], rows: number | undefined): string {
  if (kind === 'insert') return `INSERT 0 ${rows ?? 0}`;
  return rows === undefined ? 'CREATE TABLE AS' : `SELECT ${rows}`;
}

/** A script being run: its statements as split with the string reading `standard`. */
interface Script {
  readonly text: string;
  standard: boolean;
  statements: readonly Statement[];
}

let sessionCounter = 0;

/** How a session admits a model stage: through its shared gate under its client name, or at once. */
function admission(options: SessionOptions): (position?: SourcePosition) => () => void {
  const gate = options.inferenceGate;
  if (!gate) return () => () => undefined;
  const client = options.clientName ?? `session ${++sessionCounter}`;
  return (position) => gate.enter(client, position);
}

/** The statements of `text` (after offset `after`: see `parseScriptAfter`), errors carrying the text. */
function parseWithText(text: string, options: LexOptions, after = 0): Statement[] {
  try {
    return after > 0 ? parseScriptAfter(text, after, options) : parseScript(text, options);
  } catch (error) {
    throw withText(error, text);
  }
}

/**
 * A host error positioned in the statement's own text, positioned in the whole script
 * instead: error lines count from the start of the text submitted (the file, the shell
 * input, the query string), for host errors as for model errors, as psql reports them.
 */
function inScript(error: unknown, statement: Statement, text: string): unknown {
  if (!(error instanceof ModelSqlError) || !error.position || error.sqlText !== statement.text || statement.text === text) return error;
  return new ModelSqlError(error.sqlstate, error.message, { position: positionAt(text, statement.span.start + error.position.offset), sqlText: text, cause: error });
}

/**
 * Attaches the script text to a positioned error so it can print a caret, with literal
 * secrets masked in the text and the message (SPEC §5).
 */
function withText(error: unknown, text: string): unknown {
  maskError(error);
  if (error instanceof ModelSqlError && error.position && error.sqlText === undefined) error.sqlText = text;
  if (error instanceof ModelSqlError && error.sqlText !== undefined) {
    const redacted = redactSql(error.sqlText);
    if (redacted.text !== error.sqlText) {
      if (error.position) error.position = positionAt(redacted.text, redacted.mapOffset(error.position.offset));
      error.sqlText = redacted.text;
    }
  }
  return error;
}

/** The first few keywords of a statement, upper-cased (comments and quoting cannot fool the lexer). */
function leadingWords(text: string, count: number): string[] {
  return leadingTokens(text, count).map((t) => (t.kind === 'identifier' ? t.value.toUpperCase() : t.text));
}

/**
 * Whether a statement is an EXPLAIN that does not run its query: `EXPLAIN`, `EXPLAIN
 * VERBOSE`, `EXPLAIN (COSTS off, ANALYZE false)`; not `EXPLAIN ANALYZE` nor `EXPLAIN
 * (ANALYZE [true|on|1])` (https://www.postgresql.org/docs/current/sql-explain.html).
 */
export function isPlainExplain(text: string): boolean {
  const tokens = leadingTokens(text, 64);
  const word = (i: number): string => (tokens[i]?.kind === 'identifier' ? tokens[i]!.value.toUpperCase() : (tokens[i]?.text ?? ''));
  if (word(0) !== 'EXPLAIN') return false;
  if (word(1) !== '(') return word(1) !== 'ANALYZE' && word(1) !== 'ANALYSE';
  for (let i = 2; i < tokens.length && word(i) !== ')'; i++) {
    if (word(i) !== 'ANALYZE' && word(i) !== 'ANALYSE') continue;
    const value = word(i + 1).replace(/^'|'$/g, '').toUpperCase();
    if (value !== 'FALSE' && value !== 'OFF' && value !== '0') return false;
  }
  return true;
}

/**
 * What a statement stores its query in, to run later: a view, a macro (DuckDB), a prepared
 * statement (SQL-level PREPARE). The calls' rewritten SQL reads relations that are dropped
 * when the statement ends, so none of them can hold an ML call.
 */
function storedDefinition(statement: QueryStatement): string | undefined {
  const words = leadingWords(statement.text, 5);
  if (words[0] === 'PREPARE') return 'a prepared statement (PREPARE)';
  if (words[0] !== 'CREATE') return undefined;
  const rest = words.slice(words[1] === 'OR' ? 3 : 1).filter((w) => w !== 'TEMP' && w !== 'TEMPORARY' && w !== 'MATERIALIZED');
  if (rest[0] === 'VIEW') return 'a view';
  if (rest[0] === 'MACRO' || rest[0] === 'FUNCTION') return 'a macro';
  return undefined;
}

/** The command tag of a host statement: its first keyword, two for CREATE/DROP/ALTER. */
function commandResult(text: string, result: HostResult): QueryResult {
  const words = leadingWords(text, 2);
  const ddl = ['CREATE', 'DROP', 'ALTER'].includes(words[0] ?? '');
  const command = ddl ? words.join(' ') : (words[0] ?? '');
  // DuckDB answers DDL (CREATE TABLE AS included) with a `Count` column and BEGIN/SET/... with
  // an empty `Success` column; such statements return no result set here.
  const only = result.columns.length === 1 ? result.columns[0]!.name : undefined;
  if ((ddl && only === 'Count') || (only === 'Success' && result.rows.length === 0)) return { command, columns: [], rows: [] };
  return { command, columns: result.columns, rows: result.rows };
}
