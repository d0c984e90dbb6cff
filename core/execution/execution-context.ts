/**
 * What executing an ML statement needs from the session, and what a statement that writes
 * its predictions straight into a table hands back.
 */
import type { ModelCatalog, ModelResolver } from '../catalog/model-catalog.js';
import type { Host } from '../host.js';
import type { ModelRunEvent, ProgressEvent, ProviderRequestEvent } from '../model-types.js';
import type { DirectWriteShape } from '../planner/direct-write.js';
import type { StageLimits } from '../runtime/inference-limits.js';
import type { RuntimeLoader } from '../runtime/runtime-loader.js';

/** What executing a statement needs from the session. */
export interface ExecutionContext {
  readonly host: Host;
  readonly catalog: ModelCatalog;
  /** Finds the models of the statement (one catalog look-up for all of them: `ModelCatalog.resolver`). */
  readonly models: ModelResolver;
  readonly loader: RuntimeLoader;
  /** The whole script the statement came from (spans index into it). */
  readonly scriptText: string;
  readonly signal?: AbortSignal;
  /** Names a new temporary table; the session drops them all when the statement ends. */
  readonly newTempTable: (role: 'in' | 'out') => string;
  readonly onProgress?: (event: ProgressEvent) => void;
  /** Called when a model stage has finished (logs and metrics of a server). */
  readonly onRun?: (event: ModelRunEvent) => void;
  /** Called after each request to a remote model's server. */
  readonly onRequest?: (event: ProviderRequestEvent) => void;
  /** Limits on model stages: rows per call, and what runs as each stage starts (admission, the statement timer); none when absent. */
  readonly limits?: Omit<StageLimits, 'position'>;
  /**
   * Plans the statement's shape without running a model: each call becomes its input
   * query with typed NULL outputs (`describedRelation`), no runtime is loaded and no stage
   * or temporary table is made. For Describe and plain EXPLAIN.
   */
  readonly describeOnly?: boolean;
}

/**
 * A statement whose one ML_PREDICT writes its rows straight into the statement's table
 * (direct-write.ts, `HostStage.into`): the stage is open, nothing has run yet.
 */
export interface DirectWrite {
  readonly kind: DirectWriteShape['kind'];
  /**
   * Runs the stage into the table in one transaction (inside the caller's when one is open):
   * a failure leaves neither table nor rows. Returns the rows written, or undefined when the
   * statement had nothing to do (`CREATE TABLE IF NOT EXISTS` found the table). Once only.
   */
  run(): Promise<number | undefined>;
  /** Releases the stage, after `run` or instead of it; idempotent. */
  close(): Promise<void>;
}
