/**
 * One walk over the length fields of a chunk of upstream messages: whether it holds whole
 * messages only, and what the relay's bookkeeping needs from it, read from the type bytes
 * (and a ReadyForQuery's status byte) without a Frame per message. The relay's fast path
 * walks each chunk once, here, and nowhere else. Pure code.
 *
 * Message formats: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { MAX_MESSAGE_LENGTH } from './framer.js';

/**
 * The summary of the last chunk {@link scan}ned; one object per connection, reused from
 * chunk to chunk (no allocation per read).
 *
 * @example
 * const summary = new ChunkSummary();
 * if (summary.scan(chunk)) relay(chunk, summary.readyForQuery);
 */
export class ChunkSummary {
  /** ReadyForQuery messages in the chunk. */
  readyForQuery = 0;
  /** The status byte of the last ReadyForQuery (`I`, `T`, `E` as a char code); 0 when none. */
  status = 0;
  /** CommandComplete messages. */
  commands = 0;
  /** ErrorResponse messages. */
  errors = 0;
  /** An ErrorResponse came after the last ReadyForQuery (or there was none before it). */
  errorAfterReady = false;
  /** A CopyInResponse came after the last ReadyForQuery. */
  copyInAfterReady = false;
  /** ParameterStatus messages. */
  parameterStatus = 0;

  /**
   * Walks `chunk`'s messages; true when it ends on a message boundary with every length
   * one the framer accepts (the fields then describe the whole chunk), else false (the
   * fields are partial and must not be used).
   */
  scan(chunk: Buffer, maxLength = MAX_MESSAGE_LENGTH): boolean {
    let readyForQuery = 0;
    let status = 0;
    let commands = 0;
    let errors = 0;
    let parameterStatus = 0;
    let errorAfterReady = false;
    let copyInAfterReady = false;
    const n = chunk.length;
    let at = 0;
    while (at < n) {
      if (n - at < 5) return false;
      const length = ((chunk[at + 1]! << 24) | (chunk[at + 2]! << 16) | (chunk[at + 3]! << 8) | chunk[at + 4]!) >>> 0;
      if (length < 4 || length > maxLength || n - at < length + 1) return false;
      switch (chunk[at]) {
        case 0x5a /* Z */:
          readyForQuery++;
          status = chunk[at + 5] ?? 0x49;
          errorAfterReady = copyInAfterReady = false;
          break;
        case 0x43 /* C */:
          commands++;
          break;
        case 0x45 /* E */:
          errors++;
          errorAfterReady = true;
          break;
        case 0x47 /* G */:
          copyInAfterReady = true;
          break;
        case 0x53 /* S */:
          parameterStatus++;
          break;
        default:
          break;
      }
      at += 1 + length;
    }
    this.readyForQuery = readyForQuery;
    this.status = status;
    this.commands = commands;
    this.errors = errors;
    this.errorAfterReady = errorAfterReady;
    this.copyInAfterReady = copyInAfterReady;
    this.parameterStatus = parameterStatus;
    return true;
  }
}
