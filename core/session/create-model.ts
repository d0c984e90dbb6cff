/**
 * `CREATE MODEL` as the session runs it: the catalog checks and stores, training runs
 * here between the two (SPEC §3), so the catalog never trains.
 */
import type { ModelCatalog } from '../catalog/model-catalog.js';
import { QueryCanceledError } from '../errors.js';
import type { Host } from '../host.js';
import type { QueryResult } from '../model-types.js';
import type { CreateModelStatement } from '../sql/ast.js';

/** How a training statement is stopped. */
export interface TrainingControl {
  /** Aborted by a cancel or a statement timeout: training stops with 57014 and nothing is stored. */
  readonly signal: AbortSignal;
  /** Called once when training starts (the statement timer is armed then). */
  readonly beforeTraining?: () => Promise<void>;
}

/**
 * Runs one `CREATE MODEL`: a model that needs training (`CREATE MODEL ... AS <query>`) is
 * trained in `host` after the catalog accepted the statement, and stored only when
 * training succeeded and was not cancelled.
 *
 * @example
 * const result = await createModel(catalog, host, statement, scriptText, { signal });
 */
export async function createModel(catalog: ModelCatalog, host: Host, statement: CreateModelStatement, sqlText: string, control?: TrainingControl): Promise<QueryResult> {
  const created = await catalog.create(statement, sqlText);
  if (!('kind' in created)) return created;
  await control?.beforeTraining?.();
  // Training code is loaded by the first CREATE MODEL ... AS SELECT.
  const { trainModel } = await import('../training/train-model.js');
  const trained = await trainModel(host, created.query, created.options, created.positions, control?.signal);
  if (control?.signal.aborted) throw new QueryCanceledError();
  return catalog.storeTrained(created, trained);
}
