/**
 * The session over any host: splits a script into statements, hands host SQL to the host
 * untouched, model DDL to the catalog, and statements with ML calls to the planner.
 */
import { EventEmitter } from 'node:events';
import { ModelSqlError, QueryCanceledError, UnsupportedFeatureError, positionAt, withoutGeneratedSql } from '../errors.js';
import type { Host, HostResult } from '../host.js';
import { ModelCatalog } from '../catalog/model-catalog.js';
import { rewriteRegion } from '../planner/ml-rewrite.js';
import { RuntimeLoader, type ModelAccessOptions } from '../runtime/runtime-loader.js';
import type { QueryStatement, Statement } from '../sql/ast.js';
import { namedModels } from '../sql/ml-call.js';
import { leadingTokens } from '../sql/lexer.js';
import { parseScript } from '../sql/parser.js';
import { maskSecrets, redactSql } from '../secrets.js';
import type { QueryResult, ResultBatch, Session, SessionEvents } from './session.js';

/** Options of a session; every field optional. */
export interface SessionOptions extends ModelAccessOptions {
  /**
   * A runtime loader shared by several sessions (the Postgres proxy shares one, so that a
   * model is loaded once, not once per client connection). The session does not close it;
   * its owner does. Default: a loader of the session's own, closed with the session.
   */
  readonly runtimeLoader?: RuntimeLoader;
}

/**
 * One ML query rewritten into host SQL, for a caller that runs that SQL itself (the
 * Postgres proxy sends it upstream and relays Postgres's own answer). The statement's
 * temporary tables stay until `release()`.
 */
export interface PreparedQuery {
  /** The host SQL to run in place of the statement. */
  readonly sql: string;
  /** Drops the statement's temporary tables; safe to call more than once. */
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
  private controller: AbortController | undefined;
  private tempCounter = 0;

  constructor(
    private readonly host: Host,
    options: SessionOptions = {},
  ) {
    this.loader = options.runtimeLoader ?? new RuntimeLoader(options);
    this.ownsLoader = options.runtimeLoader === undefined;
    this.catalog = new ModelCatalog(host, this.loader);
  }

  async sql(text: string): Promise<QueryResult> {
    let last: QueryResult = { command: 'EMPTY', columns: [], rows: [] };
    for await (const result of this.run(text)) last = result;
    return last;
  }

  async *run(text: string): AsyncIterable<QueryResult> {
    const statements = parseWithText(text);
    for (const statement of statements) {
      yield await this.runOne(statement, text);
    }
  }

  async *stream(text: string): AsyncIterable<ResultBatch> {
    const statements = parseWithText(text);
    if (statements.length === 0) return;
    for (const statement of statements.slice(0, -1)) await this.runOne(statement, text);
    const last = statements[statements.length - 1]!;
    if (last.kind !== 'host' && last.kind !== 'query') {
      const result = await this.runOne(last, text);
      yield { columns: result.columns, rows: result.rows };
      return;
    }
    const { signal, temps, finish } = this.begin();
    try {
      const sql = last.kind === 'host' ? last.text : await this.rewrite(last, text, signal, temps);
      for await (const batch of this.host.stream(sql)) {
        if (signal.aborted) throw new QueryCanceledError();
        yield batch;
      }
    } catch (error) {
      throw withText(error, text);
    } finally {
      await finish();
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
    return this.runOne(statement, text);
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
    const { signal, temps, finish } = this.begin();
    let released: Promise<void> | undefined;
    const release = (): Promise<void> => (released ??= finish());
    try {
      const sql = await this.rewrite(statement, text, signal, temps);
      return { sql, release };
    } catch (error) {
      await release();
      throw withText(error, text);
    }
  }

  private async runOne(statement: Statement, text: string): Promise<QueryResult> {
    try {
      switch (statement.kind) {
        case 'host':
          return commandResult(statement.text, await this.host.execute(statement.text));
        case 'query':
          return await this.runQuery(statement, text);
        default:
          return await this.catalog.execute(statement, text);
      }
    } catch (error) {
      throw withText(error, text);
    }
  }

  private async runQuery(statement: QueryStatement, text: string): Promise<QueryResult> {
    const { signal, temps, finish } = this.begin();
    try {
      const sql = await this.rewrite(statement, text, signal, temps);
      try {
        return commandResult(statement.text, await this.host.execute(sql));
      } catch (error) {
        throw withoutGeneratedSql(error, 'in the statement around the ML call', positionAt(text, statement.span.start));
      }
    } finally {
      await finish();
    }
  }

  private async rewrite(statement: QueryStatement, text: string, signal: AbortSignal, temps: string[]): Promise<string> {
    if (isViewDefinition(statement)) {
      throw new UnsupportedFeatureError(
        'ML_PREDICT / ML_EVALUATE cannot be stored in a view: their results are computed when the statement runs; use CREATE TABLE ... AS instead',
        positionAt(text, statement.span.start),
      );
    }
    return rewriteRegion(statement.span, statement.calls, {
      host: this.host,
      catalog: this.catalog,
      models: await this.catalog.resolver(namedModels(statement.calls), text),
      loader: this.loader,
      scriptText: text,
      signal,
      newTempTable: (role) => {
        const name = `__modelsql_${process.pid}_${++this.tempCounter}_${role}`;
        temps.push(name);
        return name;
      },
      onProgress: (event) => this.events.emit('progress', event),
    });
  }

  /** Starts a statement: a fresh abort signal and a list of temporary tables to drop at the end. */
  private begin(): { signal: AbortSignal; temps: string[]; finish: () => Promise<void> } {
    const controller = new AbortController();
    this.controller = controller;
    const temps: string[] = [];
    return {
      signal: controller.signal,
      temps,
      finish: async () => {
        if (this.controller === controller) this.controller = undefined;
        for (const table of temps.reverse()) await this.host.dropTempTable(table).catch(() => undefined);
      },
    };
  }
}

function parseWithText(text: string): Statement[] {
  try {
    return parseScript(text);
  } catch (error) {
    throw withText(error, text);
  }
}

/**
 * Attaches the script text to a positioned error so it can print a caret, with literal
 * secrets masked in the text and the message (SPEC §5).
 */
function withText(error: unknown, text: string): unknown {
  if (error instanceof Error) error.message = maskSecrets(error.message);
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

function isViewDefinition(statement: QueryStatement): boolean {
  const words = leadingWords(statement.text, 5);
  if (words[0] !== 'CREATE') return false;
  const rest = words.slice(words[1] === 'OR' ? 3 : 1).filter((w) => w !== 'TEMP' && w !== 'TEMPORARY' && w !== 'MATERIALIZED');
  return rest[0] === 'VIEW';
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
