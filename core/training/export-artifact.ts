/**
 * Reads a trained model's stored artifact (its ONNX graph) out of the catalog, for
 * `modelsql catalog export-onnx`. Works through a session, so on any host.
 */
import { ModelSqlError, UndefinedModelError } from '../errors.js';
import type { Session } from '../session/session.js';
import { parseScript } from '../sql/parser.js';
import { quoteString } from '../sql/format.js';
import { catalogSchema } from '../catalog/catalog-layout.js';
import { ONNX_ARTIFACT } from './trained-model.js';

/**
 * The bytes of artifact `artifact` (default the ONNX graph) of a model's default version,
 * or of the version named with `$N`. `model` is written as in SQL: `m`, `s.m`, `"M"$2`.
 *
 * @example
 * const bytes = await readModelArtifact(session, 'price_model');
 * writeFileSync('price_model.onnx', bytes);
 */
export async function readModelArtifact(session: Session, model: string, artifact: string = ONNX_ARTIFACT): Promise<Uint8Array> {
  const [statement] = parseScript(`DESCRIBE MODEL ${model}`);
  if (statement?.kind !== 'describe-model') throw new ModelSqlError('42601', `not a model name: ${model}`);
  const parts = statement.name.parts.map((p) => p.value);
  const schema = parts.length > 1 ? parts[parts.length - 2]! : String((await session.sql('SELECT current_schema()')).rows[0]![0]);
  const name = parts[parts.length - 1]!;
  // `db.schema.model`: the catalog of that database (DuckDB's attached databases each hold one).
  const c = catalogSchema(parts.length === 3 ? parts[0] : undefined);
  const where = `schema_name = ${quoteString(schema)} AND model_name = ${quoteString(name)}`;
  const version =
    statement.name.version ?? (await session.sql(`SELECT default_version FROM ${c}.models WHERE ${where}`).catch(() => ({ rows: [] as unknown[][] }))).rows[0]?.[0];
  if (version === undefined || version === null) throw new UndefinedModelError(`model ${schema}.${name} does not exist`);
  const r = await session.sql(`SELECT content FROM ${c}.artifacts WHERE ${where} AND version = ${Number(version)} AND artifact_name = ${quoteString(artifact)}`);
  const content = r.rows[0]?.[0];
  if (!(content instanceof Uint8Array)) {
    throw new ModelSqlError('58P01', `model ${schema}.${name}$${Number(version)} has no stored artifact '${artifact}' (only models trained with CREATE MODEL ... AS have one)`);
  }
  return content;
}
