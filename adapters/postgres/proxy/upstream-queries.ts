/**
 * The Postgres host's queries (`PgConnection`) over the proxy's upstream session: each an
 * exchange on the socket the client's relayed traffic uses, between client messages, with
 * rows decoded as node-postgres decodes them and errors as its `DatabaseError`.
 *
 * Protocol: https://www.postgresql.org/docs/current/protocol-flow.html
 */
import { DatabaseError } from 'pg-protocol';
import type { PgQueryResult } from '../pg-connection.js';
import { textParser } from '../pg-values.js';
import type { CopyDataSink } from './framer.js';
import { COPY_DONE, SYNC, bind, copyData, copyFail, describe, execute, parse, query } from './message-builders.js';
import { parseCommandComplete, parseDataRow, parseErrorFields, parseRowDescription } from './message-readers.js';
import { COPY_OUT_HIGH_WATER, CopyOutChunks } from './copy-out-chunks.js';
import type { UpstreamConnection } from './upstream-connection.js';

/**
 * A query on the upstream session, as `PgConnection.query`: simple protocol without
 * parameters, else Parse/Bind/Describe/Execute/Sync with text parameters.
 */
export async function upstreamQuery(upstream: UpstreamConnection, sql: string, params?: readonly unknown[]): Promise<PgQueryResult> {
  const out =
    params === undefined
      ? query(sql)
      : [parse('', sql), bind('', '', params.map(encodeParam)), describe('P', ''), execute('', 0), SYNC];
  let fields: { name: string; dataTypeID: number }[] = [];
  let parsers: ((t: string) => unknown)[] = [];
  let rows: unknown[][] = [];
  let command = '';
  let error: DatabaseError | undefined;
  await upstream.exchange(out, (frame) => {
    switch (frame.type) {
      case 'T': {
        const described = parseRowDescription(frame.payload);
        fields = described.map((f) => ({ name: f.name, dataTypeID: f.typeOid }));
        parsers = described.map((f) => textParser(f.typeOid));
        rows = [];
        break;
      }
      case 'D': {
        const values = parseDataRow(frame.payload);
        rows.push(values.map((v, i) => (v === null ? null : parsers[i]!(v.toString('utf8')))));
        break;
      }
      case 'C':
        command = parseCommandComplete(frame.payload).split(' ')[0] ?? '';
        break;
      case 'E':
        error ??= databaseError(frame.payload);
        break;
      case 'G':
        // COPY FROM STDIN sent through query(): refuse the data.
        upstream.socket.write(copyFail('COPY FROM STDIN is not supported through query()'));
        break;
      case 'H':
        // COPY TO STDOUT through query(): the rows arrive as CopyData and are dropped.
        break;
      case 'Z':
        return true;
      default:
        break;
    }
    return false;
  });
  if (error) throw error;
  return { fields, rows, command };
}

/** `COPY ... FROM STDIN` with `data`, as `PgConnection.copyFrom`. */
export async function upstreamCopyFrom(upstream: UpstreamConnection, sql: string, data: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>): Promise<void> {
  let error: DatabaseError | undefined;
  let pump: Promise<void> | undefined;
  await upstream.exchange(query(sql), (frame) => {
    if (frame.type === 'G') {
      pump = pumpCopy(upstream, data).catch((e: unknown) => {
        upstream.socket.write(copyFail(e instanceof Error ? e.message : String(e)));
        throw e;
      });
      pump.catch(() => undefined);
    } else if (frame.type === 'E') {
      error ??= databaseError(frame.payload);
    } else if (frame.type === 'Z') {
      return true;
    }
    return false;
  });
  if (pump) await pump.catch((e: unknown) => (error ? undefined : Promise.reject(e)));
  if (error) throw error;
}

/**
 * `COPY ... TO STDOUT` (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-COPY):
 * CopyOutResponse, then CopyData messages (one per row; their payloads are yielded
 * packed into chunks of up to {@link COPY_OUT_CHUNK} bytes), CopyDone,
 * CommandComplete and ReadyForQuery. The socket is paused while more than
 * {@link COPY_OUT_HIGH_WATER} bytes wait for the consumer. Stopping early sends a
 * CancelRequest and drops the rest until ReadyForQuery.
 */
export async function* upstreamCopyTo(upstream: UpstreamConnection, sql: string): AsyncIterable<Uint8Array> {
  const held = new CopyOutChunks();
  let paused = false;
  let discard = false;
  let ended = false;
  let error: Error | undefined;
  let wake: (() => void) | undefined;
  const resume = (): void => {
    if (paused) upstream.socket.resume();
    paused = false;
  };
  const sink: CopyDataSink = (bytes, start, end) => {
    if (discard) return;
    held.add(bytes, start, end);
    if (held.size > COPY_OUT_HIGH_WATER && !paused) {
      upstream.socket.pause();
      paused = true;
    }
    wake?.();
  };
  const done = upstream.exchange(
    query(sql),
    (frame) => {
      if (frame.type === 'E') {
        error ??= databaseError(frame.payload);
      } else if (frame.type === 'G') {
        // COPY FROM STDIN sent through copyTo(): refuse the data.
        upstream.socket.write(copyFail('COPY FROM STDIN is not supported through copyTo()'));
      } else if (frame.type === 'Z') {
        return true;
      }
      wake?.();
      return false;
    },
    sink,
  )
    .then(
      () => undefined,
      (e: unknown) => void (error ??= e as Error),
    )
    .finally(() => {
      ended = true;
      resume();
      wake?.();
    });
  let complete = false;
  try {
    for (;;) {
      const chunk = held.take();
      if (chunk) {
        if (held.size < COPY_OUT_HIGH_WATER / 2) resume();
        yield chunk;
        continue;
      }
      if (ended) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    complete = true;
  } finally {
    if (!complete) {
      discard = true;
      held.clear();
      resume();
      if (!ended) await upstream.cancel();
      await done;
    }
  }
  if (error) throw error;
}

/** Sends `data` as CopyData messages, then CopyDone, waiting for the socket to drain. */
async function pumpCopy(upstream: UpstreamConnection, data: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>): Promise<void> {
  for await (const chunk of data as AsyncIterable<string | Uint8Array>) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes.length === 0) continue;
    if (upstream.isClosed) throw upstream.lostError();
    if (!upstream.socket.write(copyData(bytes))) await new Promise<void>((resolve) => upstream.socket.once('drain', resolve));
  }
  upstream.socket.write(COPY_DONE);
}

/** A parameter for Bind in text format (`pg`'s conventions for JS values). */
function encodeParam(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) return arrayLiteral(value);
  return JSON.stringify(value);
}

/** A Postgres array literal of text-encoded elements. */
function arrayLiteral(values: readonly unknown[]): string {
  return `{${values
    .map((v) => {
      if (Array.isArray(v)) return arrayLiteral(v);
      const s = encodeParam(v);
      return s === null ? 'NULL' : `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    })
    .join(',')}}`;
}

/** An ErrorResponse as pg-protocol's DatabaseError (what `pg.Client` throws), for the host's error mapping. */
export function databaseError(payload: Buffer): DatabaseError {
  const f = parseErrorFields(payload);
  const e = new DatabaseError(f.get('M') ?? 'unknown error', payload.length + 4, 'error');
  e.severity = f.get('S');
  e.code = f.get('C');
  e.detail = f.get('D');
  e.hint = f.get('H');
  e.position = f.get('P');
  e.internalPosition = f.get('p');
  e.internalQuery = f.get('q');
  e.where = f.get('W');
  e.schema = f.get('s');
  e.table = f.get('t');
  e.column = f.get('c');
  e.dataType = f.get('d');
  e.constraint = f.get('n');
  return e;
}
