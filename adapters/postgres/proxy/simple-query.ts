/**
 * Simple-protocol Query messages that hold model statements: the script is split into
 * statements, host statements go upstream one by one with Postgres's answers relayed,
 * model DDL is answered by the proxy, and an ML query runs its model stages on the
 * client's session before its final SQL goes upstream. One ReadyForQuery ends the script,
 * as Postgres sends.
 *
 * Protocol flow: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SIMPLE-QUERY
 */
import type { QueryStatement, Statement } from '../../../core/sql/ast.js';
import { parseScriptAfter } from '../../../core/sql/parser.js';
import { characterOffset, mappedPosition, shifted } from './error-positions.js';
import { commandComplete, query, readyForQuery } from './message-builders.js';
import { modelStatements } from './model-router.js';
import { resultMessages, type ErrorContext } from './result-messages.js';
import type { StatementContext } from './statement-context.js';

/**
 * Runs the Query scripts of one connection that hold model statements.
 *
 * @example
 * await new SimpleQueries(context).run(text);
 */
export class SimpleQueries {
  constructor(private readonly context: StatementContext) {}

  /** Answers one Query message (`text`), ending with ReadyForQuery. */
  async run(text: string): Promise<void> {
    const context = this.context;
    const relay = context.relay;
    await relay.quiesce();
    await relay.syncUpstream();
    let statements: Statement[] | undefined;
    try {
      statements = modelStatements(text, context.lexOptions());
    } catch (error) {
      await context.reportError(error, { sessionText: text, clientText: text });
      relay.toClient(readyForQuery(context.upstream.status));
      return;
    }
    if (!statements) {
      // Classified as host SQL after all (cannot happen: the router checked it); relay it.
      relay.expectReadyForQuery();
      relay.toUpstream(query(text));
      return;
    }
    const errorContext: ErrorContext = { sessionText: text, clientText: text };
    let standard = context.lexOptions().standardConformingStrings;
    for (let i = 0; i < statements.length; i++) {
      try {
        // A statement before this one changed how Postgres reads strings: split the rest as it will read it.
        if (i > 0 && context.lexOptions().standardConformingStrings !== standard) {
          standard = context.lexOptions().standardConformingStrings;
          statements = [...statements.slice(0, i), ...parseScriptAfter(text, statements[i - 1]!.span.end, context.lexOptions())];
          if (i >= statements.length) break;
        }
        const statement = statements[i]!;
        let ok: boolean;
        if (statement.kind !== 'host') context.tally.modelStatements++;
        if (statement.kind === 'host') {
          ok = await relay.exchange(query(statement.text), { position: shifted(characterOffset(text, statement.span.start)) });
        } else if (statement.kind === 'query') {
          ok = await this.runModelQuery(statement, text);
        } else {
          const result = await context.session().runStatement(statement, text);
          relay.toClientAll(resultMessages(result));
          ok = true;
        }
        if (!ok) break;
      } catch (error) {
        context.throwIfUpstreamLost(error);
        await context.reportError(error, errorContext);
        break;
      }
    }
    relay.toClient(readyForQuery(context.upstream.status));
  }

  /**
   * Runs an ML query: model stages, then its host SQL upstream with Postgres's answer
   * relayed; or, for a statement that writes straight into its table, the write, answered
   * with its command tag.
   */
  private async runModelQuery(statement: QueryStatement, text: string): Promise<boolean> {
    const context = this.context;
    const prepared = await context.session().prepareQuery(statement, text);
    let held = false;
    try {
      if (prepared.run) {
        context.relay.toClient(commandComplete(await prepared.run()));
        return true;
      }
      const ok = await context.relay.exchange(query(prepared.sql), { position: mappedPosition(prepared, text) });
      held = context.holdForCursor(ok, statement, prepared);
      return ok;
    } finally {
      if (!held) await prepared.release();
    }
  }
}
