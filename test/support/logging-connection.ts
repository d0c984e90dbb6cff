/**
 * A real Postgres connection that logs every statement the host sends through it (queries
 * and both COPY directions), so tests can tell which path a statement took.
 */
import type { PgClientConnection } from '../../adapters/postgres/pg-client-connection.js';
import type { PgConnection } from '../../adapters/postgres/pg-connection.js';

/** Every statement the host sends, in order; otherwise a plain `PgClientConnection`. */
export class LoggingConnection implements PgConnection {
  readonly log: string[] = [];
  constructor(private readonly inner: PgClientConnection) {}
  query(sql: string, params?: readonly unknown[], options?: { readonly prepare?: boolean }) {
    this.log.push(sql);
    return this.inner.query(sql, params, options);
  }
  copyFrom(sql: string, data: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>) {
    this.log.push(sql);
    return this.inner.copyFrom(sql, data);
  }
  copyTo(sql: string) {
    this.log.push(sql);
    return this.inner.copyTo(sql);
  }
  transactionStatus() {
    return this.inner.transactionStatus();
  }
  cancel() {
    return this.inner.cancel();
  }
  close() {
    return this.inner.close();
  }
}
