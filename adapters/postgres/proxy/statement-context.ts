/**
 * What the proxy's answers to model statements share, on one client connection: the model
 * session over the client's upstream session (created with the first model statement),
 * the relay the answers go through, the stages held for cursors, the client's tally, and
 * how a failed model statement is reported. Used by the simple-query scripts
 * (simple-query.ts) and the extended protocol (extended-protocol.ts).
 */
import { ModelSqlError } from '../../../core/errors.js';
import type { ModelSession, PreparedQuery } from '../../../core/session/model-session.js';
import type { Statement } from '../../../core/sql/ast.js';
import type { LexOptions } from '../../../core/sql/lexer.js';
import { HeldStages, declaresCursor } from './held-stages.js';
import { errorMessage, type ErrorContext } from './result-messages.js';
import type { ConnectionTally, Relay } from './relay.js';
import type { UpstreamConnection } from './upstream-connection.js';
import { UpstreamError } from './upstream-target.js';

/** Raised upstream to abort a transaction block after a model statement failed in it. */
const ABORT_NOTE = 'modelsql: a model statement failed in this transaction';

/**
 * The shared state of one connection's model statements.
 *
 * @example
 * const ok = await context.relay.exchange(query(sql), { position: undefined });
 * if (!ok) ...; else context.holdForCursor(ok, statement, prepared);
 */
export class StatementContext {
  /** Stages that cursors may still read, dropped once the upstream transaction has ended. */
  readonly heldStages = new HeldStages();
  private modelSession: ModelSession | undefined;
  /** Type names of parameter type OIDs ({@link typeNames}). */
  private readonly typeNameCache = new Map<number, string>();

  constructor(
    readonly relay: Relay,
    readonly tally: ConnectionTally,
    private readonly createSession: (upstream: UpstreamConnection) => ModelSession,
    private readonly log: (message: string, error?: unknown) => void,
  ) {}

  /** The client's upstream session. */
  get upstream(): UpstreamConnection {
    return this.relay.upstream;
  }

  /** The model session, once a model statement has created it. */
  get existingSession(): ModelSession | undefined {
    return this.modelSession;
  }

  /** The model session over the upstream, created on first use. */
  session(): ModelSession {
    this.modelSession ??= this.createSession(this.relay.upstream);
    return this.modelSession;
  }

  /** How the upstream session reads strings, as it last reported (the scanner must agree with Postgres). */
  lexOptions(): LexOptions {
    return { standardConformingStrings: this.relay.upstream.standardConformingStrings() };
  }

  /**
   * Rethrows `error` (from a statement the proxy runs) as an UpstreamError, which ends the
   * connection, when it means the upstream is gone, whatever shape the core gave it on the
   * way; returns when the upstream is still there and the error is the statement's own.
   */
  throwIfUpstreamLost(error: unknown): void {
    if (error instanceof UpstreamError) throw error;
    if (this.relay.upstream.isClosed) throw this.relay.upstream.lostError();
  }

  /** Sends an ErrorResponse for a failed model statement; inside a transaction block, the upstream transaction is aborted too. */
  async reportError(error: unknown, context: ErrorContext | undefined): Promise<void> {
    if (!(error instanceof ModelSqlError)) this.log('unexpected error in a model statement', error);
    this.tally.errors++;
    this.relay.toClient(errorMessage(error, context));
    const upstream = this.relay.upstream;
    if (upstream.status === 'T' && !upstream.isClosed) {
      // Postgres aborts a transaction block on any error; make the upstream agree, so that
      // the client sees 'E' and the rest of its transaction fails as it would without the proxy.
      await upstream.query(`DO $modelsql$ BEGIN RAISE EXCEPTION '${ABORT_NOTE}'; END $modelsql$`).catch(() => undefined);
    }
  }

  /**
   * Keeps a statement's stage for the cursor it declared, until its transaction ends
   * (held-stages.ts); returns whether it did. Outside a transaction block the cursor is
   * gone already, or materialized (`WITH HOLD`).
   */
  holdForCursor(ok: boolean, statement: Statement, prepared: PreparedQuery): boolean {
    if (!ok || !declaresCursor(statement.text) || this.relay.upstream.status !== 'T') return false;
    this.heldStages.hold(prepared);
    return true;
  }

  /**
   * The type names of parameter type OIDs declared in Parse (undefined where none was
   * declared), asked of the upstream once per OID: `CAST('value' AS name)` in place of `$n`
   * types a parameter as Postgres would have.
   */
  async typeNames(oids: readonly number[]): Promise<(string | undefined)[]> {
    const missing = [...new Set(oids.filter((oid) => oid !== 0 && !this.typeNameCache.has(oid)))];
    if (missing.length > 0) {
      const result = await this.relay.upstream.query('SELECT t, pg_catalog.format_type(t, NULL) FROM pg_catalog.unnest(CAST($1 AS pg_catalog.oid[])) AS t', [missing]);
      for (const [oid, name] of result.rows) if (typeof name === 'string') this.typeNameCache.set(Number(oid), name);
    }
    return oids.map((oid) => (oid === 0 ? undefined : this.typeNameCache.get(oid)));
  }
}
