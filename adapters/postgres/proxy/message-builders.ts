/**
 * Encoders of the Postgres protocol messages the proxy writes (backend messages to
 * clients, frontend messages to the upstream). Pure code: fields in, message bytes out.
 *
 * Message formats: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { ProtocolViolation } from './protocol-errors.js';
import { CANCEL_REQUEST_CODE, SSL_REQUEST_CODE } from './message-readers.js';

/** Assembles one message: type byte (none for startup packets), Int32 length, body. */
class MessageWriter {
  private readonly parts: Buffer[] = [];
  private size = 0;

  add(part: Buffer): this {
    this.parts.push(part);
    this.size += part.length;
    return this;
  }
  cstring(s: string): this {
    return this.add(Buffer.from(`${s}\0`, 'utf8'));
  }
  int16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v);
    return this.add(b);
  }
  /** A count (0-65,535; Postgres reads counts as unsigned). */
  uint16(v: number): this {
    if (v > 0xffff) throw new ProtocolViolation(`too many items for one message: ${v} (at most 65535)`);
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16BE(v);
    return this.add(b);
  }
  int32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v);
    return this.add(b);
  }
  uint32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v >>> 0);
    return this.add(b);
  }
  byte(c: string): this {
    return this.add(Buffer.from([c.charCodeAt(0)]));
  }
  /** The finished message; `type` undefined for a startup-phase packet. */
  build(type?: string): Buffer {
    const head = Buffer.allocUnsafe(type === undefined ? 4 : 5);
    if (type === undefined) head.writeInt32BE(this.size + 4, 0);
    else {
      head[0] = type.charCodeAt(0);
      head.writeInt32BE(this.size + 4, 1);
    }
    return Buffer.concat([head, ...this.parts], head.length + this.size);
  }
}

const w = (): MessageWriter => new MessageWriter();

/** The fields of an ErrorResponse / NoticeResponse; `P` is a 1-based character position. */
export interface ErrorFields {
  readonly severity?: string;
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly position?: number;
}

/** ErrorResponse ('E') from field codes in order (https://www.postgresql.org/docs/current/protocol-error-fields.html). */
export function errorResponseFromFields(fields: ReadonlyMap<string, string> | Iterable<readonly [string, string]>, type: 'E' | 'N' = 'E'): Buffer {
  const m = w();
  for (const [code, value] of fields) m.byte(code).cstring(value);
  return m.add(Buffer.from([0])).build(type);
}

/** ErrorResponse ('E'): severity (S and V), SQLSTATE (C), message (M), detail, hint, position (P). */
export function errorResponse(e: ErrorFields): Buffer {
  const severity = e.severity ?? 'ERROR';
  const fields: [string, string][] = [
    ['S', severity],
    ['V', severity],
    ['C', e.code],
    ['M', e.message],
  ];
  if (e.detail) fields.push(['D', e.detail]);
  if (e.hint) fields.push(['H', e.hint]);
  if (e.position !== undefined) fields.push(['P', String(e.position)]);
  return errorResponseFromFields(fields);
}

/** ReadyForQuery ('Z'): `I` idle, `T` in a transaction block, `E` in a failed transaction block. */
export function readyForQuery(status: string): Buffer {
  return w().byte(status).build('Z');
}

/** A column of a RowDescription the proxy builds. */
export interface ColumnSpec {
  readonly name: string;
  readonly typeOid: number;
  /** pg_type.typlen: 4 for int4, 8 for int8/float8, 1 for bool, -1 for varlena. */
  readonly typeSize: number;
}

/** RowDescription ('T') with text-format columns not tied to a table. */
export function rowDescription(columns: readonly ColumnSpec[]): Buffer {
  const m = w().uint16(columns.length);
  for (const c of columns) m.cstring(c.name).uint32(0).int16(0).uint32(c.typeOid).int16(c.typeSize).int32(-1).int16(0);
  return m.build('T');
}

/** DataRow ('D') of text values (null for SQL NULL). */
export function dataRow(values: readonly (string | Buffer | null)[]): Buffer {
  const m = w().uint16(values.length);
  for (const v of values) {
    if (v === null) m.int32(-1);
    else {
      const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      m.int32(b.length).add(b);
    }
  }
  return m.build('D');
}

/** CommandComplete ('C'). */
export function commandComplete(tag: string): Buffer {
  return w().cstring(tag).build('C');
}

/** ParseComplete ('1'). */
export const PARSE_COMPLETE: Buffer = w().build('1');
/** BindComplete ('2'). */
export const BIND_COMPLETE: Buffer = w().build('2');
/** CloseComplete ('3'). */
export const CLOSE_COMPLETE: Buffer = w().build('3');
/** NoData ('n'). */
export const NO_DATA: Buffer = w().build('n');
/** PortalSuspended ('s'). */
export const PORTAL_SUSPENDED: Buffer = w().build('s');
/** EmptyQueryResponse ('I'). */
export const EMPTY_QUERY_RESPONSE: Buffer = w().build('I');

/** ParameterDescription ('t'). */
export function parameterDescription(oids: readonly number[]): Buffer {
  const m = w().uint16(oids.length);
  for (const o of oids) m.uint32(o);
  return m.build('t');
}

/** BackendKeyData ('K'). */
export function backendKeyData(processId: number, secret: Buffer): Buffer {
  return w().int32(processId).add(secret).build('K');
}

/** AuthenticationSASL ('R', code 10) with the given mechanisms. */
export function authenticationSasl(mechanisms: readonly string[]): Buffer {
  const m = w().int32(10);
  for (const name of mechanisms) m.cstring(name);
  return m.add(Buffer.from([0])).build('R');
}

/** StartupMessage (untyped): protocol version and parameters. */
export function startupMessage(version: number, parameters: ReadonlyMap<string, string>): Buffer {
  const m = w().int32(version);
  for (const [k, v] of parameters) m.cstring(k).cstring(v);
  return m.add(Buffer.from([0])).build();
}

/** SSLRequest (untyped). */
export function sslRequest(): Buffer {
  return w().int32(SSL_REQUEST_CODE).build();
}

/** CancelRequest (untyped). */
export function cancelRequest(processId: number, secret: Buffer): Buffer {
  return w().int32(CANCEL_REQUEST_CODE).int32(processId).add(secret).build();
}

/** Query ('Q'). */
export function query(text: string): Buffer {
  return w().cstring(text).build('Q');
}

/** Parse ('P'). */
export function parse(name: string, text: string, paramTypes: readonly number[] = []): Buffer {
  const m = w().cstring(name).cstring(text).uint16(paramTypes.length);
  for (const t of paramTypes) m.uint32(t);
  return m.build('P');
}

/** Bind ('B'); `params` are text values (strings) or raw bytes in the given formats. */
export function bind(portal: string, statement: string, params: readonly (string | Buffer | null)[], paramFormats: readonly number[] = [], resultFormats: readonly number[] = []): Buffer {
  const m = w().cstring(portal).cstring(statement).uint16(paramFormats.length);
  for (const f of paramFormats) m.int16(f);
  m.uint16(params.length);
  for (const p of params) {
    if (p === null) m.int32(-1);
    else {
      const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
      m.int32(b.length).add(b);
    }
  }
  m.uint16(resultFormats.length);
  for (const f of resultFormats) m.int16(f);
  return m.build('B');
}

/** Describe ('D'). */
export function describe(target: 'S' | 'P', name: string): Buffer {
  return w().byte(target).cstring(name).build('D');
}

/** Execute ('E'). */
export function execute(portal: string, maxRows = 0): Buffer {
  return w().cstring(portal).int32(maxRows).build('E');
}

/** Sync ('S'). */
export const SYNC: Buffer = w().build('S');
/** Flush ('H'): the server sends what it has without ending the extended batch. */
export const FLUSH: Buffer = w().build('H');
/** Terminate ('X'). */
export const TERMINATE: Buffer = w().build('X');
/** CopyDone ('c'). */
export const COPY_DONE: Buffer = w().build('c');

/** CopyData ('d'). */
export function copyData(data: Buffer): Buffer {
  return w().add(data).build('d');
}

/** CopyFail ('f'). */
export function copyFail(reason: string): Buffer {
  return w().cstring(reason).build('f');
}
