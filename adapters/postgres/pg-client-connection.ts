/**
 * `PgConnection` over a `pg.Client`: library use (`connectPostgres`). Values are parsed by
 * `pg-values.ts`; `COPY ... FROM STDIN` and `COPY ... TO STDOUT` go through pg-copy-streams; cancel sends a
 * CancelRequest on a new socket
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS).
 */
import { connect as netConnect } from 'node:net';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import type { PgConnection, PgQueryResult, TransactionStatus } from './pg-connection.js';
import { pgTypeParsers } from './pg-values.js';

/** CancelRequest code (https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-CANCELREQUEST). */
const CANCEL_REQUEST_CODE = 80877102;

/** Statements kept prepared per session, at most (later ones run unnamed). */
const MAX_PREPARED = 16;

/**
 * SQLSTATEs of a kept statement the server no longer has (`invalid_sql_statement_name`), or
 * of a name the session took for a statement of its own (`duplicate_prepared_statement`).
 */
const LOST_STATEMENT = new Set(['26000', '42P05']);

/** The parts of `pg.Client` used here that its typings leave out. */
interface ClientInternals {
  readonly processID: number | null;
  readonly secretKey: number | null;
  readonly host: string;
  readonly port: number;
  /** pg's protocol connection, which emits each backend message by name. */
  readonly connection: {
    on(event: 'parameterStatus', listener: (message: { parameterName: string; parameterValue: string }) => void): void;
    /** Names of the statements pg believes the server has parsed, and their text. */
    readonly parsedStatements: Record<string, string>;
  };
}

/**
 * A `PgConnection` on one `pg.Client`.
 *
 * @example
 * const connection = await PgClientConnection.connect('postgres://localhost/db');
 * const { rows } = await connection.query('SELECT $1::int + 1', [41]);
 */
export class PgClientConnection implements PgConnection {
  /** `standard_conforming_strings` as the server last reported it. */
  private standardStrings = true;
  /** Statements kept prepared (`query` with `prepare`): text → name. */
  private readonly prepared = new Map<string, string>();
  /** Names given so far (a name is never given twice: the server may still hold a forgotten one). */
  private named = 0;

  private constructor(private readonly client: pg.Client) {
    // ParameterStatus (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-ASYNC): at startup and after each change.
    (client as unknown as ClientInternals).connection.on('parameterStatus', (m) => {
      if (m.parameterName === 'standard_conforming_strings') this.standardStrings = m.parameterValue === 'on';
    });
  }

  /** Connects to `url` (a libpq-style connection string, https://node-postgres.com/features/connecting). */
  static async connect(url: string): Promise<PgClientConnection> {
    const client = new pg.Client({ connectionString: url, types: pgTypeParsers });
    const connection = new PgClientConnection(client);
    await client.connect();
    // An idle client can get errors (server shutdown); without a listener they would crash the process.
    client.on('error', () => undefined);
    return connection;
  }

  standardConformingStrings(): boolean {
    return this.standardStrings;
  }

  /**
   * With `options.prepare` (and `params`), the statement is a named one, parsed once per
   * session (up to {@link MAX_PREPARED} texts). Should the server have lost it (the session
   * ran `DEALLOCATE ALL` or `DISCARD ALL`) or the session have taken its name, the names are
   * forgotten and, outside a transaction block, the statement is sent once more.
   */
  async query(sql: string, params?: readonly unknown[], options?: { readonly prepare?: boolean }): Promise<PgQueryResult> {
    const config: pg.QueryArrayConfig = { text: sql, rowMode: 'array' };
    if (params !== undefined) config.values = params.map((p) => (p === undefined ? null : p));
    return params !== undefined && options?.prepare ? this.sendPrepared(config, true) : this.send(config);
  }

  /** Sends `config` as a kept statement (when there is room); once more after a lost one when `retry`. */
  private async sendPrepared(config: pg.QueryArrayConfig, retry: boolean): Promise<PgQueryResult> {
    const name = this.statementName(config.text);
    if (name === undefined) return this.send(config);
    const idle = this.client.getTransactionStatus() === 'I';
    try {
      return await this.send({ ...config, name });
    } catch (error) {
      if (!LOST_STATEMENT.has(String((error as { code?: unknown }).code))) throw error;
      this.forgetPrepared();
      if (!idle || !retry) throw error;
      return this.sendPrepared(config, false);
    }
  }

  /** The name `sql` is kept under, a new one while there is room, else undefined. */
  private statementName(sql: string): string | undefined {
    let name = this.prepared.get(sql);
    if (name === undefined && this.prepared.size < MAX_PREPARED) {
      name = `__modelsql_s${++this.named}`;
      this.prepared.set(sql, name);
    }
    return name;
  }

  /** Forgets every kept statement, here and in pg (which would otherwise skip their Parse). */
  private forgetPrepared(): void {
    const parsed = (this.client as unknown as ClientInternals).connection.parsedStatements;
    for (const name of this.prepared.values()) delete parsed[name];
    this.prepared.clear();
  }

  private async send(config: pg.QueryArrayConfig): Promise<PgQueryResult> {
    const raw = (await this.client.query(config)) as pg.QueryArrayResult | pg.QueryArrayResult[];
    const results = Array.isArray(raw) ? raw : [raw];
    // `DEALLOCATE` / `DISCARD` (https://www.postgresql.org/docs/current/sql-discard.html) may have dropped the kept statements.
    if (this.prepared.size > 0 && results.some((r) => r.command === 'DEALLOCATE' || r.command === 'DISCARD')) this.forgetPrepared();
    // A simple-protocol string with several statements answers with one result each; the last one counts.
    const result = results[results.length - 1]!;
    return {
      fields: (result.fields ?? []).map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
      rows: result.rows ?? [],
      command: result.command ?? '',
    };
  }

  async copyFrom(sql: string, data: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>): Promise<void> {
    const stream = this.client.query(copyStreams.from(sql));
    await pipeline(Readable.from(data, { objectMode: false }), stream);
  }

  async *copyTo(sql: string): AsyncIterable<Uint8Array> {
    const stream = this.client.query(copyStreams.to(sql));
    // A destroyed pg-copy-streams source stops reading the socket and would leave the
    // client stuck; so iterate without destroying, and on an early stop cancel and drain.
    const ended = finished(stream);
    let settled = false;
    ended.then(
      () => (settled = true),
      () => (settled = true),
    );
    let complete = false;
    try {
      for await (const chunk of stream.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
      complete = true;
    } finally {
      if (!complete) {
        if (!settled) await this.cancel();
        stream.resume();
        await ended.catch(() => undefined);
      }
    }
  }

  transactionStatus(): TransactionStatus {
    const status = this.client.getTransactionStatus();
    return status === 'T' ? 'transaction' : status === 'E' ? 'failed' : 'idle';
  }

  cancel(): Promise<void> {
    const { processID, secretKey, host, port } = this.client as unknown as ClientInternals;
    if (processID === null || secretKey === null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const socket = host.startsWith('/') ? netConnect(`${host}/.s.PGSQL.${port}`) : netConnect(port, host);
      socket.on('connect', () => {
        const message = Buffer.alloc(16);
        message.writeInt32BE(16, 0);
        message.writeInt32BE(CANCEL_REQUEST_CODE, 4);
        message.writeInt32BE(processID, 8);
        message.writeInt32BE(secretKey, 12);
        socket.end(message);
      });
      // The server closes the socket once it has signalled the backend.
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}
