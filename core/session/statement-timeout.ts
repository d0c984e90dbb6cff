/**
 * The host's statement timeout applied to model work (Postgres `statement_timeout`): the
 * host bounds each statement it runs, but not the time a model spends between them, so
 * the session arms its own timer when a statement's first model stage starts.
 */
import { QueryCanceledError } from '../errors.js';
import type { Host } from '../host.js';

/** Postgres's message for a statement that ran past `statement_timeout`. */
export const STATEMENT_TIMEOUT_MESSAGE = 'canceling statement due to statement timeout';

/**
 * One statement's timer over its model stages. `arm()` (idempotent) reads the host's
 * timeout — from `shown`, the setting as the statement's catalog look-up read it, else in
 * one round trip, made only by statements that run a model stage — and starts the timer;
 * when it fires, `cancel` is called. `guard(work)` reports `work`'s failure
 * after that as 57014 "canceling statement due to statement timeout"; `stop()` ends the
 * timer once the statement's model work is over (a statement may guard several pieces: its
 * planning, then a direct write). A host without the capability, or a timeout of 0, never fires.
 *
 * @example
 * const timer = new StatementTimer(host, () => session.cancel());
 * try { sql = await timer.guard(() => rewrite(statement, { beforeStage: () => timer.arm() })) } finally { timer.stop() }
 */
export class StatementTimer {
  private armed: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  /** Whether the timeout passed. */
  fired = false;

  constructor(
    private readonly host: Host,
    private readonly cancel: () => void,
    private readonly shown?: string,
  ) {}

  /** Starts the timer, once. */
  arm(): Promise<void> {
    this.armed ??= (async () => {
      const ms = this.host.statementTimeout ? await this.host.statementTimeout(this.shown) : 0;
      if (this.done || !(ms > 0)) return;
      this.timer = setTimeout(() => {
        this.fired = true;
        this.cancel();
      }, ms);
    })();
    return this.armed;
  }

  /** Runs `work` with the timer left running; a failure after the timeout fired becomes 57014. */
  async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw this.fired ? new QueryCanceledError(STATEMENT_TIMEOUT_MESSAGE) : error;
    }
  }

  /** Stops the timer (idempotent). */
  stop(): void {
    this.done = true;
    clearTimeout(this.timer);
  }
}

/**
 * Milliseconds from a Postgres time setting as `current_setting` shows it (`0`, `250ms`,
 * `5s`, `2min`, `1h`, `1d`; https://www.postgresql.org/docs/current/config-setting.html#CONFIG-SETTING-NAMES-VALUES).
 * Unparseable text gives 0 (no timeout).
 */
export function parsePostgresDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$/.exec(text);
  if (!m) return 0;
  const unit = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms']!;
  return Math.round(Number(m[1]) * unit);
}
