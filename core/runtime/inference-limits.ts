/**
 * Limits on model work (SPEC §5, "keep serving under load and abuse"): rows one ML call
 * may feed its model, and model inferences running at once, per client and in total. A
 * call over a limit fails at once with a clear error; it never queues.
 *
 * An inference is one model stage: the rows of one ML_PREDICT / ML_EVALUATE call going
 * through an ONNX or remote model. Calls on models compiled to SQL run in the host as
 * plain SQL and are bounded by the host's own settings (`statement_timeout`).
 */
import { ModelSqlError, type SourcePosition } from '../errors.js';

/** 54000 program_limit_exceeded / 53400 configuration_limit_exceeded: a server limit on model work. */
export class LimitExceededError extends ModelSqlError {
  constructor(sqlstate: '54000' | '53400', message: string, position?: SourcePosition) {
    super(sqlstate, message, { position });
  }
}

/** Limits of an {@link InferenceGate}; unset means no limit. */
export interface InferenceGateLimits {
  /** Inferences running at once through the gate, all clients together. */
  readonly maxInferences?: number;
  /** Inferences running at once for one client (the proxy: one user name). */
  readonly maxClientInferences?: number;
}

/**
 * Admission of model inferences, shared by the sessions it limits (the proxy has one for
 * all its clients; a library user may share one among sessions).
 *
 * @example
 * const gate = new InferenceGate({ maxInferences: 8, maxClientInferences: 2 });
 * const leave = gate.enter('alice'); // throws 53400 when over a limit
 * try { ... } finally { leave(); }
 */
export class InferenceGate {
  private running = 0;
  private readonly clients = new Map<string, number>();

  constructor(readonly limits: InferenceGateLimits = {}) {
    checkLimit('maxInferences', limits.maxInferences);
    checkLimit('maxClientInferences', limits.maxClientInferences);
  }

  /** Inferences running now. */
  get active(): number {
    return this.running;
  }

  /**
   * Admits one inference of `client`; returns the function that ends it (safe to call
   * more than once).
   *
   * @throws LimitExceededError (53400) when the client or the gate is at its limit.
   */
  enter(client: string, position?: SourcePosition): () => void {
    const { maxInferences, maxClientInferences } = this.limits;
    const mine = this.clients.get(client) ?? 0;
    if (maxClientInferences !== undefined && mine >= maxClientInferences) {
      throw new LimitExceededError('53400', `too many model inferences running for this client: ${mine} of at most ${maxClientInferences}; try again when one has finished`, position);
    }
    if (maxInferences !== undefined && this.running >= maxInferences) {
      throw new LimitExceededError('53400', `too many model inferences running on this server: ${this.running} of at most ${maxInferences}; try again later`, position);
    }
    this.running++;
    this.clients.set(client, mine + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.running--;
      const n = (this.clients.get(client) ?? 1) - 1;
      if (n <= 0) this.clients.delete(client);
      else this.clients.set(client, n);
    };
  }
}

/**
 * Checks a limit option: unset, or a positive integer.
 *
 * @throws RangeError
 */
export function checkLimit(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value > 0)) throw new RangeError(`${name} must be a positive integer, not ${String(value)}`);
}

/** The limits one model stage runs under (built by the session for each ML call). */
export interface StageLimits {
  /** Rows the call may feed its model. */
  readonly maxRows?: number;
  /** Called before the call's model loads (a download may take long): arms the statement's timeout. */
  readonly beforeLoad?: () => Promise<void>;
  /** Called as the stage starts: admits it (rejects when over a limit) and resolves to the function that ends it. */
  readonly enter?: (position?: SourcePosition) => Promise<() => void>;
  /** Where the call is in the statement, for the errors. */
  readonly position?: SourcePosition;
}

/**
 * Checks a stage's row count so far against `maxRows`.
 *
 * @throws LimitExceededError (54000)
 */
export function checkStageRows(rows: number, limits: StageLimits | undefined): void {
  const max = limits?.maxRows;
  if (max === undefined || rows <= max) return;
  throw new LimitExceededError('54000', `the input of this ML call has more than ${max} rows, the most one call may send to a model on this server`, limits?.position);
}
