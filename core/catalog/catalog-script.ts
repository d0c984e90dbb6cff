/**
 * A catalog snapshot as a SQL script (`modelsql catalog export --format sql`): for each
 * model, a CREATE MODEL statement per version in version order (`CREATE OR REPLACE MODEL`
 * adds the next version), the default version, and the grants, with comments. Running the
 * script (`modelsql run -f`, or `modelsql catalog import`) rebuilds the same versions with
 * the same numbers: a gap left by a dropped version is recreated and dropped again.
 */
import { SECRET_PLACEHOLDER } from '../secrets.js';
import { formatCreateModel } from '../sql/format.js';
import { grantStatements } from './catalog-grants.js';
import { modelLabel, type CatalogSnapshot, type SnapshotModel, type SnapshotVersion } from './catalog-snapshot.js';

/** Options of {@link snapshotToScript}. */
export interface ScriptOptions {
  /** Lines for the header comment (source, date, …). */
  readonly header?: readonly string[];
}

/**
 * The script that recreates `snapshot`. Literal secrets are written only when the
 * snapshot holds their values (read with `includeSecrets`), else as `'******'`.
 *
 * @example
 * snapshotToScript(await readSnapshot(host)) // "-- model price ...\nCREATE MODEL price ..."
 */
export function snapshotToScript(snapshot: CatalogSnapshot, options: ScriptOptions = {}): string {
  const parts: string[] = [];
  const header = [...(options.header ?? []), `${snapshot.models.length} ${snapshot.models.length === 1 ? 'model' : 'models'}, catalog layout ${snapshot.layout}`];
  parts.push(header.map((l) => `-- ${l}`).join('\n'));
  for (const model of snapshot.models) parts.push(modelScript(model));
  return `${parts.join('\n\n')}\n`;
}

function modelScript(model: SnapshotModel): string {
  const label = modelLabel(model);
  const lines = [`-- model ${label}: versions ${model.versions.map((v) => v.version).join(', ')}, default ${model.defaultVersion}${model.owner ? `, owner ${model.owner}` : ''}`];
  const placeholders: number[] = [];
  let next = 1;
  let first = true;
  const create = (v: SnapshotVersion, note: string) => {
    lines.push(`-- ${note}`);
    if (v.asQuery !== undefined) lines.push('-- trained model: running this statement trains it again from the query; export --format bundle carries the trained artifact');
    lines.push(`${createStatement(label, v, !first)};`);
    first = false;
  };
  for (const v of model.versions) {
    for (; next < v.version; next++) {
      create(v, `version ${next} was dropped: recreated here so that later versions keep their numbers, and dropped below`);
      placeholders.push(next);
    }
    create(v, `version ${v.version}, created ${v.createdAt}`);
    next = v.version + 1;
  }
  for (const n of placeholders) lines.push(`DROP MODEL ${label}$${n};`);
  const last = model.versions[model.versions.length - 1]!.version;
  if (model.defaultVersion !== last) lines.push(`ALTER MODEL ${label} SET ('default-version' = '${model.defaultVersion}');`);
  for (const grant of grantStatements(label, model.grants)) lines.push(`${grant};`);
  return lines.join('\n');
}

function createStatement(label: string, v: SnapshotVersion, orReplace: boolean): string {
  const secret = (key: string) => v.secrets.find((s) => s.key === key)?.value;
  return formatCreateModel({
    name: label,
    orReplace,
    // A trained model's INPUT and OUTPUT follow from its query (the parser rejects them with AS).
    input: v.asQuery === undefined ? v.input : undefined,
    output: v.asQuery === undefined ? v.output : undefined,
    comment: v.comment,
    options: v.options.map(([k, value]) => [k, value === SECRET_PLACEHOLDER ? (secret(k) ?? value) : value] as const),
    asQuery: v.asQuery,
  });
}
