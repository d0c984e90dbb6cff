/**
 * Reading one field of a frontend message without decoding the rest (the relay decides
 * from a Bind's statement name or a portal name whether the proxy must handle the message;
 * https://www.postgresql.org/docs/current/protocol-message-formats.html).
 */
import { ProtocolViolation } from './protocol-errors.js';

/** Reads a Bind's statement name without decoding the rest. */
export function bindStatementName(payload: Buffer): string {
  const a = payload.indexOf(0);
  const b = payload.indexOf(0, a + 1);
  if (a < 0 || b < 0) throw new ProtocolViolation('invalid Bind message: unterminated string');
  return payload.toString('utf8', a + 1, b);
}

/** Reads a Bind's / Execute's portal name (the first string). */
export function firstString(payload: Buffer, what: string): string {
  const a = payload.indexOf(0);
  if (a < 0) throw new ProtocolViolation(`invalid ${what} message: unterminated string`);
  return payload.toString('utf8', 0, a);
}
