/**
 * The Postgres frontend/backend protocol (version 3), as far as the proxy needs it: a
 * framer that cuts a byte stream into messages whatever the chunk boundaries, parsers for
 * the messages the proxy reads, and builders for the messages it writes. Pure code: bytes
 * in, messages out; no sockets.
 *
 * Message formats: https://www.postgresql.org/docs/current/protocol-message-formats.html
 * Message flow:    https://www.postgresql.org/docs/current/protocol-flow.html
 */

/** A protocol violation by the peer; the connection gets an ErrorResponse 08P01 and is closed. */
export class ProtocolViolation extends Error {
  /** SQLSTATE 08P01 protocol_violation. */
  readonly sqlstate: string = '08P01';
}

/**
 * A message longer than the receiver accepts: 54000 program_limit_exceeded; the connection
 * gets a FATAL ErrorResponse and is closed, as a protocol violation is.
 */
export class MessageTooLong extends ProtocolViolation {
  /** SQLSTATE 54000 program_limit_exceeded. */
  override readonly sqlstate: string = '54000';
}

/**
 * The server is shutting down (57P01 admin_shutdown, as Postgres's "terminating connection
 * due to administrator command"): the connection gets a FATAL ErrorResponse and is closed.
 */
export class AdminShutdown extends ProtocolViolation {
  /** SQLSTATE 57P01 admin_shutdown. */
  override readonly sqlstate: string = '57P01';
}

/** One framed message. `payload` excludes the type byte and the length; `raw` is the whole message. */
export interface Frame {
  /** The type byte as a character (`Q`, `P`, ...); `''` for an untyped startup-phase message. */
  readonly type: string;
  readonly payload: Buffer;
  readonly raw: Buffer;
}

/**
 * Takes CopyData ('d') payloads straight from the received bytes, `bytes[start, end)`,
 * without a Frame per message (Postgres sends one CopyData message per row of a COPY TO).
 * The bytes are only valid during the call.
 */
export type CopyDataSink = (bytes: Buffer, start: number, end: number) => void;

/** Largest startup-phase packet Postgres accepts (`MAX_STARTUP_PACKET_LENGTH` in pqcomm.h). */
export const MAX_STARTUP_LENGTH = 10_000;
/** Largest regular message Postgres accepts (`PQ_LARGE_MESSAGE_LIMIT`, 1 GiB − 1). */
export const MAX_MESSAGE_LENGTH = 0x3fffffff;

/**
 * Message types a frontend may send after startup
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html: those marked "F").
 */
export const FRONTEND_TYPES: ReadonlySet<string> = new Set(['B', 'C', 'd', 'c', 'f', 'D', 'E', 'H', 'F', 'P', 'p', 'Q', 'S', 'X']);

/**
 * Cuts a byte stream into messages. Typed messages are `type byte, Int32 length (self
 * included), body`; startup-phase messages (StartupMessage, SSLRequest, GSSENCRequest,
 * CancelRequest) have no type byte. Tolerates any chunking: a message split over chunks
 * is kept until complete; several messages in one chunk come out together.
 *
 * @example
 * const framer = new Framer({ startup: true });
 * for (const frame of framer.push(chunk)) handle(frame);
 */
export class Framer {
  /**
   * Bytes received and not yet framed, as received: a message split over reads is joined
   * once, when its last byte has arrived, so each byte is copied at most twice whatever
   * the size of the message and of the reads.
   */
  private chunks: Buffer[] = [];
  private size = 0;
  /** True while the next message is untyped (startup phase). */
  startup: boolean;
  private readonly maxLength: number;
  /** When set, typed messages must have one of these types. */
  private readonly allowedTypes: ReadonlySet<string> | undefined;

  constructor(options: { readonly startup?: boolean; readonly maxLength?: number; readonly allowedTypes?: ReadonlySet<string> } = {}) {
    this.startup = options.startup ?? false;
    this.maxLength = options.maxLength ?? MAX_MESSAGE_LENGTH;
    this.allowedTypes = options.allowedTypes;
  }

  /** Bytes received but not yet part of a complete message. */
  get pending(): number {
    return this.size;
  }

  /**
   * Adds a chunk and returns every message completed by it. After an untyped message the
   * framer stays in the startup phase until the caller clears `startup`; `limit` stops after
   * that many messages (the rest stays buffered), so a caller can switch phase in between.
   * With `copyData`, CopyData messages go to it, in order, instead of into the result (the
   * caller passes it only while a COPY TO is under way, when nothing but CopyData and the
   * messages that end the COPY arrive). A message's type and length are checked as soon as
   * its header has arrived, before its body is buffered.
   *
   * @throws ProtocolViolation on a bad length or an unknown message type
   *   ({@link MessageTooLong} past `maxLength`).
   */
  push(chunk: Buffer | undefined, limit = Infinity, copyData?: CopyDataSink): Frame[] {
    if (chunk && chunk.length > 0) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    const first = this.firstMessageLength();
    if (first < 0 || this.size < first) return [];
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    const frames: Frame[] = [];
    let offset = 0;
    while (frames.length < limit) {
      if (this.startup) {
        if (buf.length - offset < 4) break;
        const length = this.startupLength(buf, offset);
        if (buf.length - offset < length) break;
        const raw = buf.subarray(offset, offset + length);
        frames.push({ type: '', payload: raw.subarray(4), raw });
        offset += length;
        if (limit === Infinity) limit = frames.length; // a startup message ends the batch: the caller decides the next phase
      } else {
        if (buf.length - offset < 5) break;
        const length = this.typedLength(buf, offset);
        if (buf.length - offset < length + 1) break;
        if (copyData !== undefined && buf[offset] === 0x64) {
          copyData(buf, offset + 5, offset + 1 + length);
          offset += 1 + length;
          continue;
        }
        const raw = buf.subarray(offset, offset + 1 + length);
        frames.push({ type: String.fromCharCode(buf[offset]!), payload: raw.subarray(5), raw });
        offset += 1 + length;
      }
    }
    const rest = buf.subarray(offset);
    this.chunks = rest.length === 0 ? [] : [rest];
    this.size = rest.length;
    return frames;
  }

  /**
   * The whole length of the first buffered message (type byte included), checked, once its
   * header has arrived; -1 before. Joins the first chunks when the header spans them.
   */
  private firstMessageLength(): number {
    const header = this.startup ? 4 : 5;
    if (this.size < header) return -1;
    if (this.chunks[0]!.length < header) {
      let n = 0;
      let take = 0;
      while (n < header) n += this.chunks[take++]!.length;
      this.chunks.splice(0, take, Buffer.concat(this.chunks.slice(0, take), n));
    }
    const buf = this.chunks[0]!;
    return this.startup ? this.startupLength(buf, 0) : this.typedLength(buf, 0) + 1;
  }

  private startupLength(buf: Buffer, offset: number): number {
    const length = buf.readInt32BE(offset);
    if (length < 8 || length > MAX_STARTUP_LENGTH) throw new ProtocolViolation(`invalid length of startup packet: ${length}`);
    return length;
  }

  /** The length field of the typed message at `offset` (the type byte not counted), checked. */
  private typedLength(buf: Buffer, offset: number): number {
    const code = buf[offset]!;
    const type = String.fromCharCode(code);
    if (this.allowedTypes && !this.allowedTypes.has(type)) throw new ProtocolViolation(`invalid frontend message type ${code}`);
    const length = buf.readInt32BE(offset + 1);
    if (length < 4) throw new ProtocolViolation(`invalid message length ${length} in message type "${type}"`);
    if (length > this.maxLength) throw new MessageTooLong(`message of type "${type}" too long: ${length} bytes (at most ${this.maxLength})`);
    return length;
  }
}

/**
 * How many bytes at the start of `bytes` are whole typed messages (`bytes.length` when the
 * chunk ends on a message boundary), read from the length fields alone, without a Frame per
 * message: the relay's fast path. Stops at a length the {@link Framer} would refuse, which
 * the framer then reports.
 */
export function wholeMessagesLength(bytes: Buffer, maxLength = MAX_MESSAGE_LENGTH): number {
  let at = 0;
  for (let end = messageEnd(bytes, at, maxLength); end > 0; end = messageEnd(bytes, at, maxLength)) at = end;
  return at;
}

/**
 * Where the typed message starting at `at` ends, when `bytes` holds all of it and its length
 * is one the {@link Framer} accepts; else -1.
 */
export function messageEnd(bytes: Buffer, at: number, maxLength = MAX_MESSAGE_LENGTH): number {
  if (bytes.length - at < 5) return -1;
  const length = bytes.readInt32BE(at + 1);
  return length < 4 || length > maxLength || bytes.length - at < length + 1 ? -1 : at + 1 + length;
}

// ---------------------------------------------------------------------------------------
// Reading message bodies

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

// ---------------------------------------------------------------------------------------
// Building messages

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
