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

/** The parts of `pg.Client` used here that its typings leave out. */
interface ClientInternals {
  readonly processID: number | null;
  readonly secretKey: number | null;
  readonly host: string;
  readonly port: number;
  /** pg's protocol connection, which emits each backend message by name. */
  readonly connection: { on(event: 'parameterStatus', listener: (message: { parameterName: string; parameterValue: string }) => void): void };
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

  async query(sql: string, params?: readonly unknown[]): Promise<PgQueryResult> {
    const config: pg.QueryArrayConfig = { text: sql, rowMode: 'array' };
    if (params !== undefined) config.values = params.map((p) => (p === undefined ? null : p));
    const raw = (await this.client.query(config)) as pg.QueryArrayResult | pg.QueryArrayResult[];
    // A simple-protocol string with several statements answers with one result each; the last one counts.
    const result = Array.isArray(raw) ? raw[raw.length - 1]! : raw;
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
