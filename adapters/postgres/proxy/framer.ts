/**
 * Framing of the Postgres frontend/backend protocol (version 3): a framer that cuts a byte
 * stream into messages whatever the chunk boundaries, and where one message ends (the
 * client side of the relay's fast path). Pure code: bytes in, messages out; no sockets.
 *
 * Message formats: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { MessageTooLong, ProtocolViolation } from './protocol-errors.js';

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
 * Where the typed message starting at `at` ends, when `bytes` holds all of it and its length
 * is one the {@link Framer} accepts; else -1.
 */
export function messageEnd(bytes: Buffer, at: number, maxLength = MAX_MESSAGE_LENGTH): number {
  if (bytes.length - at < 5) return -1;
  const length = bytes.readInt32BE(at + 1);
  return length < 4 || length > maxLength || bytes.length - at < length + 1 ? -1 : at + 1 + length;
}
