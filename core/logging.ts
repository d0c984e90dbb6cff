/**
 * modelsql's own log: where library messages go (provider SDK warnings and logs above all),
 * instead of straight to stderr. Quiet by default: nothing is written unless a level is
 * chosen with `MODELSQL_LOG_LEVEL` (`debug`, `info`, `warn`, `error`) or
 * {@link configureLogging}. Records are one JSON object per line on stderr, or go to the
 * sink an embedding application gives. Every message is passed through `maskSecrets`.
 */
import { maskSecrets } from './secrets.js';

/** Levels, least to most severe; `silent` writes nothing. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A log record. `source` names who logged it (`anthropic`, `openai`, `gemini`, `triton`). */
export interface LogRecord {
  readonly time: string;
  readonly level: Exclude<LogLevel, 'silent'>;
  readonly source: string;
  readonly message: string;
}

/** Receives the records at or above the configured level. */
export type LogSink = (record: LogRecord) => void;

/** The logger shape the OpenAI and Anthropic SDKs take (`logger` client option). */
export interface SdkLogger {
  debug(message: string, ...rest: unknown[]): void;
  info(message: string, ...rest: unknown[]): void;
  warn(message: string, ...rest: unknown[]): void;
  error(message: string, ...rest: unknown[]): void;
}

const writeStderr: LogSink = (record) => {
  process.stderr.write(`${JSON.stringify(record)}\n`);
};

let threshold: LogLevel = parseLevel(process.env['MODELSQL_LOG_LEVEL']) ?? 'silent';
let sink: LogSink = writeStderr;

function parseLevel(value: string | undefined): LogLevel | undefined {
  const v = value?.trim().toLowerCase();
  return (LOG_LEVELS as readonly string[]).includes(v ?? '') ? (v as LogLevel) : undefined;
}

/**
 * Sets the level and, optionally, where records go (default: JSON lines on stderr).
 *
 * @example configureLogging({ level: 'warn', sink: (r) => myLogger.log(r.level, r.message) });
 */
export function configureLogging(options: { readonly level?: LogLevel; readonly sink?: LogSink }): void {
  if (options.level !== undefined) threshold = options.level;
  if (options.sink !== undefined) sink = options.sink;
}

/** Logs one message, when `level` is at or above the configured one. */
export function log(level: Exclude<LogLevel, 'silent'>, source: string, message: string, ...rest: unknown[]): void {
  if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(threshold)) return;
  const text = [message, ...rest.map((r) => (typeof r === 'string' ? r : safeJson(r)))].join(' ');
  sink({ time: new Date().toISOString(), level, source, message: maskSecrets(text) });
}

/** A logger for an SDK's `logger` option, writing to this log under `source`. */
export function sdkLogger(source: string): SdkLogger {
  return {
    debug: (m, ...r) => log('debug', source, m, ...r),
    info: (m, ...r) => log('info', source, m, ...r),
    warn: (m, ...r) => log('warn', source, m, ...r),
    error: (m, ...r) => log('error', source, m, ...r),
  };
}

/**
 * Runs `fn` with `console` routed into this log under `source`, for the synchronous part of
 * the call only (restored before it returns, so no other code's console output is caught):
 * SDKs that write warnings with `console.warn` as a request is made (the Anthropic SDK's
 * model deprecation notice) or as a reply is read (the Gemini SDK's `response.text`).
 *
 * @example const reply = await routeConsole('anthropic', () => sdk.messages.create(body));
 */
export function routeConsole<T>(source: string, fn: () => T): T {
  const saved = { debug: console.debug, info: console.info, log: console.log, warn: console.warn, error: console.error };
  console.debug = (...a: unknown[]) => log('debug', source, ...textArgs(a));
  console.info = (...a: unknown[]) => log('info', source, ...textArgs(a));
  console.log = (...a: unknown[]) => log('info', source, ...textArgs(a));
  console.warn = (...a: unknown[]) => log('warn', source, ...textArgs(a));
  console.error = (...a: unknown[]) => log('error', source, ...textArgs(a));
  try {
    return fn();
  } finally {
    Object.assign(console, saved);
  }
}

function textArgs(args: readonly unknown[]): [string, ...unknown[]] {
  const [first, ...rest] = args;
  return [typeof first === 'string' ? first : safeJson(first), ...rest];
}

function safeJson(value: unknown): string {
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
