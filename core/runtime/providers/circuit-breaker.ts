/**
 * A circuit breaker with the three states of Flink's `TritonCircuitBreaker`:
 *
 * - CLOSED: requests pass; the outcomes of the last {@link WINDOW} requests are kept, and
 *   once at least {@link MINIMUM_REQUESTS} are known, a failure rate at or above the
 *   threshold opens the circuit.
 * - OPEN: requests fail fast, without reaching the server, until `openMs` have passed;
 *   the next request then moves the circuit to HALF_OPEN.
 * - HALF_OPEN: up to `halfOpenRequests` probe requests pass; that many successes close the
 *   circuit, any failure opens it again.
 *
 * Time comes from a clock given to the constructor, so that tests drive it.
 */
import { ModelRuntimeError } from '../../errors.js';

/** The states. */
export type CircuitState = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

/** Outcomes kept while CLOSED. */
export const WINDOW = 20;
/** Outcomes needed before the failure rate is judged (Flink: 10). */
export const MINIMUM_REQUESTS = 10;

/** Settings (Flink's `circuit-breaker-*` options). */
export interface CircuitBreakerSettings {
  /** Failure rate (0..1) that opens the circuit (`circuit-breaker-failure-threshold`, default 0.5). */
  readonly failureThreshold: number;
  /** How long the circuit stays OPEN (`circuit-breaker-timeout`, default 60 s). */
  readonly openMs: number;
  /** Probe successes that close a HALF_OPEN circuit (`circuit-breaker-half-open-requests`, default 3). */
  readonly halfOpenRequests: number;
}

/** A request refused because the circuit is open (not retried: the server is known to be failing). */
export class CircuitOpenError extends ModelRuntimeError {
  constructor(provider: string, message: string) {
    super(provider, message, { retryable: false });
  }
}

/**
 * The breaker of one model's server.
 *
 * @example
 * const breaker = new CircuitBreaker('triton', settings, () => Date.now());
 * breaker.allow();            // throws CircuitOpenError while OPEN
 * breaker.record(ok);
 */
export class CircuitBreaker {
  private current: CircuitState = 'CLOSED';
  private outcomes: boolean[] = [];
  private openedAt = 0;
  private probes = 0;
  private probeSuccesses = 0;

  constructor(
    private readonly provider: string,
    private readonly settings: CircuitBreakerSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** The state now (an OPEN circuit whose time is up reads HALF_OPEN only once a request asks). */
  get state(): CircuitState {
    return this.current;
  }

  /** The failure rate of the outcomes kept (0 when none). */
  get failureRate(): number {
    return this.outcomes.length === 0 ? 0 : this.outcomes.filter((ok) => !ok).length / this.outcomes.length;
  }

  /**
   * Lets a request through, or refuses it.
   *
   * @throws CircuitOpenError while OPEN, and in HALF_OPEN beyond the probes allowed.
   */
  allow(): void {
    if (this.current === 'OPEN') {
      const left = this.openedAt + this.settings.openMs - this.now();
      if (left > 0) throw new CircuitOpenError(this.provider, `circuit breaker is OPEN after a failure rate of ${Math.round(this.failureRate * 100)}%: requests fail fast for another ${Math.ceil(left / 1000)} s`);
      this.current = 'HALF_OPEN';
      this.probes = 0;
      this.probeSuccesses = 0;
    }
    if (this.current === 'HALF_OPEN') {
      if (this.probes >= this.settings.halfOpenRequests) {
        throw new CircuitOpenError(this.provider, `circuit breaker is HALF_OPEN and its ${this.settings.halfOpenRequests} probe requests are taken`);
      }
      this.probes++;
    }
  }

  /** Records the outcome of a request that was let through. */
  record(ok: boolean): void {
    if (this.current === 'HALF_OPEN') {
      if (!ok) return this.open();
      if (++this.probeSuccesses >= this.settings.halfOpenRequests) {
        this.current = 'CLOSED';
        this.outcomes = [];
      }
      return;
    }
    if (this.current === 'OPEN') return;
    this.outcomes.push(ok);
    if (this.outcomes.length > WINDOW) this.outcomes.shift();
    if (this.outcomes.length >= MINIMUM_REQUESTS && this.failureRate >= this.settings.failureThreshold) this.open();
  }

  private open(): void {
    this.current = 'OPEN';
    this.openedAt = this.now();
  }
}
