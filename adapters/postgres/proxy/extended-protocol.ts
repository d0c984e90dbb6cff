/**
 * Extended-protocol statements and portals the proxy keeps for itself: a Parse whose text
 * holds a model statement, and the Bind / Describe / Execute / Close / Sync that refer to
 * it. Parameters are spliced into the statement as literals at Bind; Describe answers from
 * the statement's shape without running a model; Execute runs the model stages, then the
 * final SQL upstream with the client's result formats (with a row limit, in an upstream
 * portal of its own, continued by later Executes).
 *
 * Protocol flow: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
 */
import { ModelSqlError } from '../../../core/errors.js';
import type { PreparedQuery } from '../../../core/session/model-session.js';
import type { QueryResult } from '../../../core/model-types.js';
import type { Statement } from '../../../core/sql/ast.js';
import { leadingTokens } from '../../../core/sql/lexer.js';
import { parseScript } from '../../../core/sql/parser.js';
import { mappedPosition, shifted, type PositionMap } from './error-positions.js';
import { BIND_COMPLETE, CLOSE_COMPLETE, FLUSH, NO_DATA, PARSE_COMPLETE, PORTAL_SUSPENDED, SYNC, bind, commandComplete, describe, execute, parameterDescription, parse, readyForQuery } from './message-builders.js';
import { parseBind, parseExecute, parseParse, parseTarget } from './message-readers.js';
import { noticeMessages, rowMessages, type ErrorContext } from './result-messages.js';
import { binaryParamToText, parameterCount, substituteParameters } from './statement-params.js';
import type { StatementContext } from './statement-context.js';

/** A model statement prepared through Parse. */
interface LocalStatement {
  readonly text: string;
  readonly statement: Statement;
  readonly paramTypes: readonly number[];
}

/**
 * Model DDL that only reads (its rows are the same whether it runs at Describe or at
 * Execute): the only kinds a Describe runs. The others write and return no rows.
 */
const READING_DDL: ReadonlySet<Statement['kind']> = new Set<Statement['kind']>(['show-models', 'show-create-model', 'describe-model', 'show-model-versions', 'show-materialized-tables', 'describe-materialized-table']);

/** A portal bound from a local statement. */
interface LocalPortal {
  readonly name: string;
  readonly source: LocalStatement;
  /** The statement with parameters substituted, and its own parse. */
  readonly text: string;
  readonly statement: Statement;
  readonly toOriginal: (offset: number) => number;
  readonly resultFormats: readonly number[];
  prepared?: PreparedQuery;
  /** A model-DDL result (computed at Describe for reading DDL), and how many of its rows Executes have sent. */
  result?: QueryResult;
  sent?: number;
  described?: boolean;
  /** The upstream portal that an Execute with a row limit left open (PortalSuspended), continued by later Executes. */
  upstreamPortal?: string;
  /**
   * Set once an Execute ran the portal to completion: Postgres runs a portal once, so a later
   * Execute runs nothing and answers this tag with no rows (a statement that returns rows), or
   * 55000 when undefined (a write).
   */
  finished?: { readonly emptyTag: string | undefined };
}

/**
 * The statements and portals of one connection that the proxy answers itself.
 *
 * @example
 * if (extended.hasStatement(name)) await extended.bind(payload);
 */
export class ExtendedProtocol {
  private readonly statements = new Map<string, LocalStatement>();
  private readonly portals = new Map<string, LocalPortal>();
  /** Counter of upstream portal names. */
  private portalCounter = 0;

  constructor(private readonly context: StatementContext) {}

  /** Whether the proxy holds statements or portals at all (the relay's cheap test before a lookup). */
  get holdsStatements(): boolean {
    return this.statements.size > 0;
  }

  /** Whether the proxy holds portals. */
  get holdsPortals(): boolean {
    return this.portals.size > 0;
  }

  /** Whether the prepared statement `name` is the proxy's. */
  hasStatement(name: string): boolean {
    return this.statements.has(name);
  }

  /** Whether the portal `name` is the proxy's. */
  hasPortal(name: string): boolean {
    return this.portals.has(name);
  }

  /** A relayed Parse replaced the statement `name`: the proxy's of that name is gone. */
  forgetStatement(name: string): void {
    this.statements.delete(name);
  }

  /** Drops the portal `name` (rebound, closed, or ended with its transaction), releasing its stage. */
  dropPortal(name: string): void {
    const portal = this.portals.get(name);
    if (!portal) return;
    this.portals.delete(name);
    void portal.prepared?.release();
  }

  /** The transaction that held the proxy's portals has ended (Sync outside a transaction block, COMMIT, ROLLBACK): they are gone, as in Postgres. */
  dropPortals(): void {
    for (const name of [...this.portals.keys()]) this.dropPortal(name);
  }

  /** Releases every portal's stage (the connection closes). */
  async releaseAll(): Promise<void> {
    for (const portal of this.portals.values()) await portal.prepared?.release().catch(() => undefined);
    this.portals.clear();
  }

  /**
   * Parse: keeps the statement, answers ParseComplete. A named statement shares its name
   * space with the upstream session's (relayed Parse, SQL PREPARE): a name either holds is
   * taken (42P05), as on Postgres.
   */
  async parse(payload: Buffer): Promise<void> {
    const message = parseParse(payload);
    if (message.name !== '' && (this.statements.has(message.name) || (await this.upstreamHolds(message.name)))) {
      throw new ModelSqlError('42P05', `prepared statement "${message.name}" already exists`);
    }
    const statements = parseScript(message.text, this.context.lexOptions());
    if (statements.length !== 1) {
      throw new ModelSqlError('42601', 'cannot insert multiple commands into a prepared statement');
    }
    this.statements.set(message.name, { text: message.text, statement: statements[0]!, paramTypes: message.paramTypes });
    this.context.relay.toClient(PARSE_COMPLETE);
  }

  /** Whether the upstream session has a prepared statement `name`. */
  private async upstreamHolds(name: string): Promise<boolean> {
    const result = await this.context.upstream.query('SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE name = $1', [name]);
    return result.rows.length > 0;
  }

  /** Bind: the parameters spliced into the statement's text, a portal kept; answers BindComplete. */
  async bind(payload: Buffer): Promise<void> {
    const message = parseBind(payload);
    const source = this.statements.get(message.statement)!;
    const values = message.params.map((p, i) => {
      if (p === null) return null;
      if (message.paramFormats[i] === 0) return p.toString('utf8');
      const text = binaryParamToText(source.paramTypes[i] ?? 0, p, i + 1);
      if (text === undefined) throw new ModelSqlError('0A000', `binary format for parameter $${i + 1} of type ${source.paramTypes[i] ?? 0} is not supported by the modelsql proxy; send it in text format`);
      return text;
    });
    const needed = statementParameters(source);
    if (values.length !== needed) {
      throw new ModelSqlError('08P01', `bind message supplies ${values.length} parameters, but prepared statement "${message.statement}" requires ${needed}`);
    }
    const substituted = substituteParameters(source.text, values, await this.context.typeNames(source.paramTypes.slice(0, needed)));
    const [statement] = values.length === 0 ? [source.statement] : parseScript(substituted.text, this.context.lexOptions());
    this.dropPortal(message.portal);
    this.portals.set(message.portal, {
      name: message.portal,
      source,
      text: substituted.text,
      statement: statement!,
      toOriginal: substituted.originalOffset,
      resultFormats: message.resultFormats,
    });
    this.context.relay.toClient(BIND_COMPLETE);
  }

  /** Describe of a statement (ParameterDescription, then its row shape) or of a portal. */
  async describe(payload: Buffer): Promise<void> {
    const target = parseTarget(payload, 'Describe');
    if (target.target === 'P') {
      await this.describePortal(this.portals.get(target.name)!);
      return;
    }
    const source = this.statements.get(target.name)!;
    const count = statementParameters(source);
    const types = Array.from({ length: count }, (_, i) => source.paramTypes[i] || 25);
    this.context.relay.toClient(parameterDescription(types));
    if (source.statement.kind === 'host' || (count > 0 && source.statement.kind !== 'query')) {
      this.context.relay.toClient(NO_DATA);
      return;
    }
    // The columns of a model query come from its shape (no model runs), its parameters taken as NULLs.
    const substituted = substituteParameters(source.text, new Array<null>(count).fill(null), await this.context.typeNames(source.paramTypes));
    const [statement] = count === 0 ? [source.statement] : parseScript(substituted.text, this.context.lexOptions());
    await this.describePortal({ name: '', source, text: substituted.text, statement: statement!, toOriginal: substituted.originalOffset, resultFormats: [] });
  }

  /**
   * RowDescription (or NoData) of a portal. An ML query is described from its shape
   * (`ModelSession.describeQuery`: the host describes its input, the model's OUTPUT gives the
   * rest), no model runs; model DDL that only reads runs now, its result kept for Execute;
   * model DDL that writes has no rows (NoData) and runs at Execute only.
   */
  private async describePortal(portal: LocalPortal): Promise<void> {
    const context = this.context;
    portal.described = true;
    const statement = portal.statement;
    try {
      if (statement.kind === 'query') {
        const described = await context.session().describeQuery(statement, portal.text);
        const ok = await context.relay.exchange([parse('', described.sql), bind('', '', [], [], portal.resultFormats), describe('P', ''), FLUSH], {
          position: portalPosition(portal, described),
          swallow: '12',
          until: 'TnE',
        });
        if (!ok) context.relay.batchFailed = true;
        return;
      }
      if (!READING_DDL.has(statement.kind)) {
        context.relay.toClient(NO_DATA);
        return;
      }
      portal.result ??= await context.session().runStatement(statement, portal.text);
      context.relay.toClientAll(portal.result.columns.length > 0 ? rowMessages({ ...portal.result, rows: [] }, true) : [NO_DATA]);
    } catch (error) {
      context.throwIfUpstreamLost(error);
      context.relay.batchFailed = true;
      await context.reportError(error, errorContext(portal));
    }
  }

  /**
   * Execute: the model stages, then the final SQL upstream (in slices with a row limit), or
   * the model DDL's result (in slices with a row limit). A portal runs once: an Execute after
   * it completed runs nothing, as in Postgres.
   */
  async execute(payload: Buffer): Promise<void> {
    const context = this.context;
    const relay = context.relay;
    const message = parseExecute(payload);
    const portal = this.portals.get(message.portal)!;
    const statement = portal.statement;
    if (portal.finished) {
      const tag = portal.finished.emptyTag;
      if (tag !== undefined) {
        relay.toClient(commandComplete(tag));
        return;
      }
      relay.batchFailed = true;
      await context.reportError(new ModelSqlError('55000', `portal "${portal.name}" cannot be run`), undefined);
      return;
    }
    if (portal.upstreamPortal === undefined && portal.sent === undefined) context.tally.modelStatements++;
    let held = false;
    try {
      if (portal.upstreamPortal !== undefined) {
        // A portal suspended by an earlier Execute: the next rows.
        if (!(await relay.exchange([execute(portal.upstreamPortal, message.maxRows), FLUSH], { position: undefined, until: 'CsEI' }))) relay.batchFailed = true;
        return;
      }
      if (statement.kind === 'query') {
        portal.prepared ??= await context.session().prepareQuery(statement, portal.text);
        if (portal.prepared.run) {
          relay.toClient(commandComplete(await portal.prepared.run()));
          portal.finished = { emptyTag: undefined };
          return;
        }
        if (message.maxRows > 0) {
          // A row limit: an upstream portal of its own, left open in the client's transaction
          // (no Sync until the client's), its stage held until that transaction ends.
          const name = `__modelsql_portal_${++this.portalCounter}`;
          portal.upstreamPortal = name;
          context.heldStages.hold(portal.prepared);
          held = true;
          const messages = [parse('', portal.prepared.sql), bind(name, '', [], [], portal.resultFormats), execute(name, message.maxRows), FLUSH];
          if (!(await relay.exchange(messages, { position: portalPosition(portal), swallow: '12', until: 'CsEI' }))) relay.batchFailed = true;
          return;
        }
        const ok = await relay.exchange([parse('', portal.prepared.sql), bind('', '', [], [], portal.resultFormats), execute('', 0), SYNC], {
          position: portalPosition(portal),
          swallow: '12',
        });
        if (!ok) relay.batchFailed = true;
        portal.finished = { emptyTag: returnsRows(portal.text) ? 'SELECT 0' : undefined };
        held = context.holdForCursor(ok, statement, portal.prepared);
      } else if (statement.kind === 'host') {
        const ok = await relay.exchange([parse('', portal.text), bind('', '', [], [], portal.resultFormats), execute('', 0), SYNC], { position: shifted(0), swallow: '12' });
        if (!ok) relay.batchFailed = true;
        portal.finished = { emptyTag: undefined };
      } else {
        this.sendResult(portal, portal.result ?? (await context.session().runStatement(statement, portal.text)), message.maxRows);
      }
    } catch (error) {
      context.throwIfUpstreamLost(error);
      relay.batchFailed = true;
      await context.reportError(error, errorContext(portal));
    } finally {
      const prepared = portal.prepared;
      portal.prepared = undefined;
      if (!held) await prepared?.release();
    }
  }

  /**
   * The rows of a model-DDL result from where the last Execute stopped: at most `maxRows`
   * (0: all), then PortalSuspended when it sent exactly `maxRows`, else CommandComplete.
   */
  private sendResult(portal: LocalPortal, result: QueryResult, maxRows: number): void {
    const from = portal.sent ?? 0;
    const end = maxRows > 0 ? Math.min(from + maxRows, result.rows.length) : result.rows.length;
    const slice = rowMessages({ ...result, rows: result.rows.slice(from, end) }, false);
    const notices = from === 0 ? noticeMessages(result) : [];
    const tag = result.command || 'SELECT';
    if (maxRows > 0 && end - from === maxRows) {
      portal.result = result;
      portal.sent = end;
      this.context.relay.toClientAll([...notices, ...slice, PORTAL_SUSPENDED]);
      return;
    }
    portal.result = undefined;
    portal.finished = { emptyTag: result.columns.length > 0 ? tag : undefined };
    this.context.relay.toClientAll([...notices, ...slice, commandComplete(tag)]);
  }

  /** Close of a statement or portal of the proxy's; answers CloseComplete. */
  close(payload: Buffer): void {
    const target = parseTarget(payload, 'Close');
    if (target.target === 'S') this.statements.delete(target.name);
    else this.dropPortal(target.name);
    this.context.relay.toClient(CLOSE_COMPLETE);
  }

  /**
   * Sync: ends the batch. Relayed when the batch relayed anything (its ReadyForQuery goes
   * to the client); else answered by the proxy with the upstream's transaction status.
   */
  async sync(): Promise<void> {
    const relay = this.context.relay;
    const wasLocal = relay.batchLocal;
    relay.batchLocal = false;
    relay.batchFailed = false;
    if (relay.batchPassThrough || !wasLocal) {
      // The portals go once its ReadyForQuery says the transaction has ended (message-dispatch.ts).
      relay.forwardSync();
      return;
    }
    await relay.quiesce();
    await relay.syncUpstream();
    relay.relayedError = false;
    const status = this.context.upstream.status;
    // Outside a transaction block the Sync ended the implicit transaction, and its portals with it.
    if (status === 'I') this.dropPortals();
    relay.toClient(readyForQuery(status));
  }
}

/** Maps positions in a portal's rewritten SQL to the text of the statement the client prepared. */
function portalPosition(portal: LocalPortal, prepared: Pick<PreparedQuery, 'sql' | 'scriptOffset'> | undefined = portal.prepared): PositionMap | undefined {
  if (!prepared?.scriptOffset) return undefined;
  return mappedPosition({ sql: prepared.sql, scriptOffset: (o) => portal.toOriginal(prepared.scriptOffset!(o)) }, portal.source.text);
}

/** Parameters a prepared statement takes: its highest `$n`, or as many as Parse declared types for, if more (as Postgres counts). */
function statementParameters(statement: LocalStatement): number {
  return Math.max(parameterCount(statement.text), statement.paramTypes.length);
}

/** Whether a statement returns rows (a query), by its first key word: what a completed portal answers to a later Execute. */
function returnsRows(text: string): boolean {
  const [first] = leadingTokens(text, 1);
  return first?.kind === 'identifier' && ['SELECT', 'VALUES', 'TABLE', 'WITH'].includes(first.value.toUpperCase());
}

function errorContext(portal: LocalPortal): ErrorContext {
  return { sessionText: portal.text, clientText: portal.source.text, toOriginal: portal.toOriginal };
}
