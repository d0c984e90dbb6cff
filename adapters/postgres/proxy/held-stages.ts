/**
 * Model stages (temporary tables) that outlive their statement because a cursor still reads
 * them: a `DECLARE ... CURSOR FOR SELECT ... ML_PREDICT(...)` in a transaction block (psql's
 * `FETCH_COUNT`, psycopg's named cursors), or a portal executed with a row limit that
 * answered PortalSuspended (JDBC `setFetchSize`, `pg-cursor`). Postgres refuses to drop a
 * table an open portal reads, so the stage is held until the transaction that holds the
 * cursor has ended (a cursor `WITH HOLD` is materialized at commit and no longer reads it:
 * https://www.postgresql.org/docs/current/sql-declare.html), then dropped.
 */
import type { PreparedQuery } from '../../../core/session/model-session.js';
import { leadingTokens } from '../../../core/sql/lexer.js';

/**
 * The stages held for cursors of one client connection.
 *
 * @example
 * stages.hold(prepared);            // the cursor may still read it
 * if (upstreamIdle) await stages.releaseAll();
 */
export class HeldStages {
  private readonly held: PreparedQuery[] = [];

  /** Number of stages held. */
  get size(): number {
    return this.held.length;
  }

  /** Keeps `prepared`'s temporary tables until {@link releaseAll}. */
  hold(prepared: PreparedQuery): void {
    this.held.push(prepared);
  }

  /** Drops every held stage (call once no transaction that may hold a cursor is open). */
  async releaseAll(): Promise<void> {
    const stages = this.held.splice(0);
    for (const stage of stages) await stage.release().catch(() => undefined);
  }

  /** Forgets the held stages without dropping them (the upstream session is gone, and its temporary tables with it). */
  clear(): void {
    this.held.length = 0;
  }
}

/** Whether a statement declares a cursor (`DECLARE name ... CURSOR ... FOR query`); the scanner decides. */
export function declaresCursor(text: string): boolean {
  const [first] = leadingTokens(text, 1);
  return first?.kind === 'identifier' && first.value.toUpperCase() === 'DECLARE';
}
