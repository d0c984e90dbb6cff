/**
 * The modelsql library: open a session on a host database and run host SQL and model SQL
 * through it.
 *
 * @example
 * import { openDuckDB } from 'modelsql';
 * const db = await openDuckDB('analytics.duckdb');
 */
export { openDuckDB } from './duckdb/index.js';
export { connectPostgres } from './postgres/index.js';
export type { Session } from '../core/session/session.js';
export type { QueryResult, ResultBatch, ResultColumn, ProgressEvent } from '../core/model-types.js';
export type { SessionOptions } from '../core/session/model-session.js';
export { ModelSqlError, formatError } from '../core/errors.js';
export { InferenceGate, type InferenceGateLimits } from '../core/runtime/inference-limits.js';
export { configureLogging, type LogLevel, type LogRecord, type LogSink } from '../core/logging.js';
