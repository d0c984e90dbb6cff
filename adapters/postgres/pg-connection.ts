/**
 * The few things the Postgres host needs from a connection. Two implementations: one over
 * `pg.Client` (library use, `connectPostgres`), one over the proxy's own upstream socket
 * (the proxy relays client traffic on that socket and runs model stages on it between
 * client messages).
 */

/** A column of a result: its name and type OID (https://www.postgresql.org/docs/current/catalog-pg-type.html). */
export interface PgField {
  readonly name: string;
  readonly dataTypeID: number;
}

/** A fully read result, values parsed to JS (int8 → bigint, numeric → number, see the host). */
export interface PgQueryResult {
  readonly fields: readonly PgField[];
  readonly rows: readonly (readonly unknown[])[];
  /** The CommandComplete tag's command (`SELECT`, `INSERT`, ...). */
  readonly command: string;
}

/**
 * Where the session stands with respect to transactions, as the last ReadyForQuery said
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-READYFORQUERY):
 * `I` idle, `T` in a transaction block, `E` in a failed transaction block.
 */
export type TransactionStatus = 'idle' | 'transaction' | 'failed';

/** One upstream session. Calls are sequential: the host awaits each before the next. */
export interface PgConnection {
  /**
   * Runs one statement with `$1` parameters (extended protocol when `params` is given).
   * With `options.prepare` and `params`, the connection may keep the statement prepared
   * (a named statement, parsed once per session) for the next call with the same text.
   */
  query(sql: string, params?: readonly unknown[], options?: { readonly prepare?: boolean }): Promise<PgQueryResult>;
  /** `COPY ... FROM STDIN`: sends `data` (text-format COPY chunks) and waits for completion. */
  copyFrom(sql: string, data: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>): Promise<void>;
  /**
   * `COPY ... TO STDOUT`: yields the data as it arrives (text-format COPY bytes; chunks
   * need not end at row boundaries). Nothing else may run on the connection meanwhile.
   * Stopping early (`break`, an error in the consumer) cancels the statement on the server
   * and returns once the connection is ready for the next one.
   */
  copyTo(sql: string): AsyncIterable<Uint8Array>;
  /**
   * The transaction status of the last ReadyForQuery, when the connection tracks it.
   * Optional: without it the host probes with a SAVEPOINT.
   */
  transactionStatus?(): TransactionStatus;
  /**
   * `standard_conforming_strings` as the server last reported it in a ParameterStatus
   * message (at startup and after every change); optional, default on.
   */
  standardConformingStrings?(): boolean;
  /** Asks the server to cancel the statement in flight (a CancelRequest on a new socket). */
  cancel(): Promise<void>;
  /** Ends the session. */
  close(): Promise<void>;
}
