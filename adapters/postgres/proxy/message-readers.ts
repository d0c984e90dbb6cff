/**
 * Decoders of the Postgres protocol messages the proxy reads (frontend messages of the
 * client, backend messages of the upstream). Pure code: a message body in, its fields out;
 * every read is bounds-checked and a malformed body is a ProtocolViolation.
 *
 * Message formats: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { ProtocolViolation } from './protocol-errors.js';

/** A cursor over a message body; every read checks bounds and throws ProtocolViolation. */
export class BodyReader {
  private offset = 0;
  constructor(
    private readonly body: Buffer,
    private readonly what: string,
  ) {}

  /** Reads a NUL-terminated UTF-8 string. */
  cstring(): string {
    const end = this.body.indexOf(0, this.offset);
    if (end < 0) throw new ProtocolViolation(`invalid ${this.what} message: unterminated string`);
    const value = this.body.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }

  int16(): number {
    this.need(2);
    const v = this.body.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  /** An unsigned Int16: the protocol's counts (parameters, formats, columns) run to 65,535. */
  uint16(): number {
    this.need(2);
    const v = this.body.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.body.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint32(): number {
    this.need(4);
    const v = this.body.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  byte(): string {
    this.need(1);
    return String.fromCharCode(this.body[this.offset++]!);
  }

  bytes(n: number): Buffer {
    this.need(n);
    const v = this.body.subarray(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** The unread rest. */
  rest(): Buffer {
    const v = this.body.subarray(this.offset);
    this.offset = this.body.length;
    return v;
  }

  /** Throws unless the whole body was read. */
  end(): void {
    if (this.offset !== this.body.length) throw new ProtocolViolation(`invalid ${this.what} message: ${this.body.length - this.offset} extra bytes`);
  }

  private need(n: number): void {
    if (n < 0 || this.offset + n > this.body.length) throw new ProtocolViolation(`invalid ${this.what} message: truncated`);
  }
}

/** Protocol 3.0 StartupMessage code (major 3 in the high 16 bits). */
export const PROTOCOL_3 = 3 << 16;
/** SSLRequest code. */
export const SSL_REQUEST_CODE = 80877103;
/** GSSENCRequest code. */
export const GSSENC_REQUEST_CODE = 80877104;
/** CancelRequest code. */
export const CANCEL_REQUEST_CODE = 80877102;

/** A decoded startup-phase packet. */
export type StartupPacket =
  | { readonly kind: 'startup'; readonly version: number; readonly parameters: ReadonlyMap<string, string> }
  | { readonly kind: 'ssl' }
  | { readonly kind: 'gssenc' }
  | { readonly kind: 'cancel'; readonly processId: number; readonly secret: Buffer };

/**
 * Decodes a startup-phase packet (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest).
 *
 * @throws ProtocolViolation for an unknown code or a malformed body.
 */
export function parseStartupPacket(payload: Buffer): StartupPacket {
  const r = new BodyReader(payload, 'startup packet');
  const code = r.int32();
  if (code === SSL_REQUEST_CODE) return r.end(), { kind: 'ssl' };
  if (code === GSSENC_REQUEST_CODE) return r.end(), { kind: 'gssenc' };
  if (code === CANCEL_REQUEST_CODE) {
    const processId = r.int32();
    const secret = Buffer.from(r.rest());
    if (secret.length < 4 || secret.length > 256) throw new ProtocolViolation('invalid cancel request: bad key length');
    return { kind: 'cancel', processId, secret };
  }
  if (code >>> 16 !== 3) throw new ProtocolViolation(`unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: server supports 3.0 to 3.2`);
  const parameters = new Map<string, string>();
  for (;;) {
    const name = r.cstring();
    if (name === '') break;
    parameters.set(name, r.cstring());
  }
  r.end();
  if (!parameters.has('user')) throw new ProtocolViolation('no PostgreSQL user name specified in startup packet');
  return { kind: 'startup', version: code, parameters };
}

/** Query ('Q'): the SQL text. */
export function parseQuery(payload: Buffer): string {
  const r = new BodyReader(payload, 'Query');
  const text = r.cstring();
  r.end();
  return text;
}

/** A decoded Parse ('P') message. */
export interface ParseMessage {
  readonly name: string;
  readonly text: string;
  /** Parameter type OIDs given by the client (0 = unspecified). */
  readonly paramTypes: readonly number[];
}

/** Parse ('P'). */
export function parseParse(payload: Buffer): ParseMessage {
  const r = new BodyReader(payload, 'Parse');
  const name = r.cstring();
  const text = r.cstring();
  const n = r.uint16();
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(r.uint32());
  r.end();
  return { name, text, paramTypes };
}

/** A decoded Bind ('B') message. */
export interface BindMessage {
  readonly portal: string;
  readonly statement: string;
  /** Format code per parameter (0 text, 1 binary), already expanded from the 0/1-entry forms. */
  readonly paramFormats: readonly number[];
  readonly params: readonly (Buffer | null)[];
  /** Result column format codes as sent (0, 1 or one per column). */
  readonly resultFormats: readonly number[];
}

/** Bind ('B'). */
export function parseBind(payload: Buffer): BindMessage {
  const r = new BodyReader(payload, 'Bind');
  const portal = r.cstring();
  const statement = r.cstring();
  const nf = r.uint16();
  const formats: number[] = [];
  for (let i = 0; i < nf; i++) formats.push(r.int16());
  const np = r.uint16();
  if (nf > 1 && nf !== np) throw new ProtocolViolation(`bind message has ${nf} parameter formats but ${np} parameters`);
  const params: (Buffer | null)[] = [];
  for (let i = 0; i < np; i++) {
    const len = r.int32();
    params.push(len === -1 ? null : Buffer.from(r.bytes(len)));
  }
  const nr = r.uint16();
  const resultFormats: number[] = [];
  for (let i = 0; i < nr; i++) resultFormats.push(r.int16());
  r.end();
  const paramFormats = params.map((_, i) => (nf === 0 ? 0 : nf === 1 ? formats[0]! : formats[i]!));
  return { portal, statement, paramFormats, params, resultFormats };
}

/** Describe ('D') or Close ('C'): `S` statement or `P` portal, and its name. */
export interface TargetMessage {
  readonly target: 'S' | 'P';
  readonly name: string;
}

/** Describe ('D') and Close ('C'). */
export function parseTarget(payload: Buffer, what: 'Describe' | 'Close'): TargetMessage {
  const r = new BodyReader(payload, what);
  const target = r.byte();
  if (target !== 'S' && target !== 'P') throw new ProtocolViolation(`invalid ${what} message subtype ${target.charCodeAt(0)}`);
  const name = r.cstring();
  r.end();
  return { target, name };
}

/** Execute ('E'). */
export function parseExecute(payload: Buffer): { readonly portal: string; readonly maxRows: number } {
  const r = new BodyReader(payload, 'Execute');
  const portal = r.cstring();
  const maxRows = r.int32();
  r.end();
  return { portal, maxRows };
}

/** A field of a RowDescription ('T'). */
export interface RowField {
  readonly name: string;
  readonly tableOid: number;
  readonly column: number;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typeModifier: number;
  readonly format: number;
}

/** RowDescription ('T'). */
export function parseRowDescription(payload: Buffer): RowField[] {
  const r = new BodyReader(payload, 'RowDescription');
  const n = r.uint16();
  const fields: RowField[] = [];
  for (let i = 0; i < n; i++) {
    fields.push({ name: r.cstring(), tableOid: r.uint32(), column: r.int16(), typeOid: r.uint32(), typeSize: r.int16(), typeModifier: r.int32(), format: r.int16() });
  }
  return fields;
}

/** DataRow ('D'): each column's bytes, or null. */
export function parseDataRow(payload: Buffer): (Buffer | null)[] {
  const r = new BodyReader(payload, 'DataRow');
  const n = r.uint16();
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    values.push(len === -1 ? null : r.bytes(len));
  }
  return values;
}

/** CommandComplete ('C'): the tag. */
export function parseCommandComplete(payload: Buffer): string {
  return new BodyReader(payload, 'CommandComplete').cstring();
}

/** ErrorResponse ('E') / NoticeResponse ('N') fields, keyed by field code (`C`, `M`, `P`, ...). */
export function parseErrorFields(payload: Buffer): Map<string, string> {
  const r = new BodyReader(payload, 'ErrorResponse');
  const fields = new Map<string, string>();
  for (;;) {
    const code = r.byte();
    if (code === '\0') break;
    fields.set(code, r.cstring());
  }
  return fields;
}

/** BackendKeyData ('K'): process id and secret key (4 bytes in protocol 3.0, up to 256 in 3.2). */
export function parseBackendKeyData(payload: Buffer): { readonly processId: number; readonly secret: Buffer } {
  const r = new BodyReader(payload, 'BackendKeyData');
  return { processId: r.int32(), secret: Buffer.from(r.rest()) };
}

/** Authentication request ('R'): its code (0 ok, 3 cleartext, 5 MD5, 10 SASL, ...). */
export function authenticationCode(payload: Buffer): number {
  return new BodyReader(payload, 'Authentication').int32();
}

/** AuthenticationSASL ('R', code 10): the mechanism names. */
export function parseSaslMechanisms(payload: Buffer): string[] {
  const r = new BodyReader(payload, 'AuthenticationSASL');
  r.int32();
  const out: string[] = [];
  for (;;) {
    const m = r.cstring();
    if (m === '') break;
    out.push(m);
  }
  return out;
}
