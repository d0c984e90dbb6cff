/**
 * The proxy's operations log: one logfmt line per event (https://brandur.org/logfmt), as
 * pgbouncer logs connections and errors, with levels chosen by `--log-level`.
 *
 *     time=2026-12-07T05:30:00.123Z level=info msg="connection opened" user=alice database=shop client=127.0.0.1:51234
 *
 * Fields carry names, counts and durations only: never a parameter value, a query's text or
 * a secret (every value also goes through `maskSecrets`).
 */
import { maskSecrets } from '../../../core/secrets.js';

/** Levels, least to most severe; `silent` writes nothing. */
export const PROXY_LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

/** One of {@link PROXY_LOG_LEVELS}. */
export type ProxyLogLevel = (typeof PROXY_LOG_LEVELS)[number];

/** Values a field may hold. */
export type LogValue = string | number | boolean | undefined;

/**
 * A leveled logfmt logger writing whole lines to `sink`.
 *
 * @example
 * const log = new ProxyLog('info', (line) => process.stderr.write(line));
 * log.info('connection opened', { user: 'alice' });
 */
export class ProxyLog {
  private readonly threshold: number;

  constructor(
    level: ProxyLogLevel,
    private readonly sink: (line: string) => void,
  ) {
    this.threshold = PROXY_LOG_LEVELS.indexOf(level);
  }

  /** Whether lines of `level` are written (callers skip building fields otherwise). */
  enabled(level: Exclude<ProxyLogLevel, 'silent'>): boolean {
    return PROXY_LOG_LEVELS.indexOf(level) >= this.threshold;
  }

  debug(msg: string, fields?: Readonly<Record<string, LogValue>>): void {
    this.write('debug', msg, fields);
  }

  info(msg: string, fields?: Readonly<Record<string, LogValue>>): void {
    this.write('info', msg, fields);
  }

  warn(msg: string, fields?: Readonly<Record<string, LogValue>>): void {
    this.write('warn', msg, fields);
  }

  error(msg: string, fields?: Readonly<Record<string, LogValue>>): void {
    this.write('error', msg, fields);
  }

  private write(level: Exclude<ProxyLogLevel, 'silent'>, msg: string, fields: Readonly<Record<string, LogValue>> | undefined): void {
    if (!this.enabled(level)) return;
    this.sink(`${logfmt({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  }
}

/** One logfmt line of `fields` (undefined ones left out), values quoted where needed. */
export function logfmt(fields: Readonly<Record<string, LogValue>>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${logfmtValue(typeof value === 'string' ? maskSecrets(value) : String(value))}`);
  }
  return parts.join(' ');
}

function logfmtValue(text: string): string {
  if (text !== '' && !/[\s"=\\]|[\u0000-\u001f]/.test(text)) return text;
  return JSON.stringify(text);
}

/** Parses a `--log-level` value. */
export function parseLogLevel(value: string): ProxyLogLevel | undefined {
  const v = value.trim().toLowerCase();
  return (PROXY_LOG_LEVELS as readonly string[]).includes(v) ? (v as ProxyLogLevel) : undefined;
}
