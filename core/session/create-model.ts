/**
 * `CREATE MODEL` as the session runs it: the catalog checks and stores, training runs
 * here between the two (SPEC §3), so the catalog never trains.
 */
import type { ModelCatalog } from '../catalog/model-catalog.js';
import type { Host } from '../host.js';
import type { QueryResult } from '../model-types.js';
import type { CreateModelStatement } from '../sql/ast.js';

/**
 * Runs one `CREATE MODEL`: a model that needs training (`CREATE MODEL ... AS <query>`) is
 * trained in `host` after the catalog accepted the statement, and stored only when
 * training succeeded.
 *
 * @example
 * const result = await createModel(catalog, host, statement, scriptText);
 */
export async function createModel(catalog: ModelCatalog, host: Host, statement: CreateModelStatement, sqlText: string): Promise<QueryResult> {
  const created = await catalog.create(statement, sqlText);
  if (!('kind' in created)) return created;
  // Training code is loaded by the first CREATE MODEL ... AS SELECT.
  const { trainModel } = await import('../training/train-model.js');
  const trained = await trainModel(host, created.query, created.options, created.positions);
  return catalog.storeTrained(created, trained);
}
