/**
 * Notifications of materialized tables' change capture (change-capture.ts) on a connection
 * of their own: `LISTEN modelsql_materialized`
 * (https://www.postgresql.org/docs/current/sql-listen.html); each notification's payload is
 * the id of a table whose source changed.
 */
import pg from 'pg';
import { POSTGRES_CHANGE_CAPTURE } from './change-capture.js';
import { mapPostgresError } from './postgres-errors.js';

/** A listening connection. */
export interface ChangeListener {
  close(): Promise<void>;
}

/**
 * Connects to `url` and calls `onChange(id)` for every notification of a changed source;
 * `onError` when the connection fails (the caller decides whether to reconnect or exit).
 */
export async function listenForChanges(url: string, onChange: (id: number) => void, onError: (error: unknown) => void): Promise<ChangeListener> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', onError);
  client.on('notification', (message) => {
    const id = Number(message.payload);
    if (message.channel === POSTGRES_CHANGE_CAPTURE.channel && Number.isInteger(id)) onChange(id);
  });
  try {
    await client.connect();
    await client.query(`LISTEN ${POSTGRES_CHANGE_CAPTURE.channel}`);
  } catch (error) {
    await client.end().catch(() => undefined);
    throw mapPostgresError(error);
  }
  return { close: () => client.end() };
}
