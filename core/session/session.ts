/**
 * The public face of modelsql: a session over one host connection that runs host SQL and
 * model SQL alike.
 */
import type { EventEmitter } from 'node:events';
import type { ModelRunEvent, ProgressEvent, ProviderRequestEvent, QueryResult, ResultBatch } from '../model-types.js';

/** Events a session emits. */
export interface SessionEvents {
  progress: [ProgressEvent];
  run: [ModelRunEvent];
  request: [ProviderRequestEvent];
}

/**
 * A modelsql session. It runs one statement at a time: calls made while one runs wait for
 * it, in order (docs/getting-started.md, "The library").
 *
 * @example
 * const db = await openDuckDB();
 * await db.sql(`CREATE TABLE t AS SELECT 1.0 AS x`);
 * const { rows } = await db.sql(`SELECT * FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(x))`);
 */
export interface Session {
  /** Runs every statement of `text` in order and returns the last statement's result. */
  sql(text: string): Promise<QueryResult>;
  /** Runs every statement of `text` in order, yielding each statement's result as it completes. */
  run(text: string): AsyncIterable<QueryResult>;
  /** Runs `text` (statements before the last run to completion) and streams the last statement's rows in batches. */
  stream(text: string): AsyncIterable<ResultBatch>;
  /** Progress events of long-running model stages. */
  readonly events: EventEmitter<SessionEvents>;
  /** Cancels the statement in flight: inference stops, temporary relations are removed. */
  cancel(): void;
  /** Closes the session and its host connection. */
  close(): Promise<void>;
}
