/**
 * The errors of a peer's protocol misuse, each ending the connection with a FATAL
 * ErrorResponse of its SQLSTATE
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-TERMINATION).
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
