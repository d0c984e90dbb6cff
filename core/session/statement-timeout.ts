/**
 * The host's statement timeout applied to model work (Postgres `statement_timeout`): the
 * host bounds each statement it runs, but not the time a model spends between them, so
 * the session arms its own timer over the model stages of an ML query.
 */
import { QueryCanceledError } from '../errors.js';
import type { Host } from '../host.js';

/** Postgres's message for a statement that ran past `statement_timeout`. */
export const STATEMENT_TIMEOUT_MESSAGE = 'canceling statement due to statement timeout';

/**
 * Runs `work` (the model stages of one statement) under the host's statement timeout: when
 * it passes, `cancel` is called and `work`'s failure is reported as 57014 "canceling
 * statement due to statement timeout". A host without the capability, or a timeout of 0,
 * runs `work` unbounded.
 *
 * @example
 * const sql = await withStatementTimeout(host, () => session.cancel(), () => rewrite(statement));
 */
export async function withStatementTimeout<T>(host: Host, cancel: () => void, work: () => Promise<T>): Promise<T> {
  const ms = host.statementTimeout ? await host.statementTimeout() : 0;
  if (!ms || ms <= 0) return work();
  let fired = false;
  const timer = setTimeout(() => {
    fired = true;
    cancel();
  }, ms);
  try {
    return await work();
  } catch (error) {
    throw fired ? new QueryCanceledError(STATEMENT_TIMEOUT_MESSAGE) : error;
  } finally {
    clearTimeout(timer);
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
