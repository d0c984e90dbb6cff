/**
 * Compares two catalog snapshots (`modelsql catalog diff`): models, default versions,
 * versions, and per version its provider, task, columns, options, comment, training
 * query, artifacts (by checksum), training metrics and literal secrets (by digest, never
 * shown). The stored bytes of an imported ONNX model (`'provider' = 'onnx'`) are compared
 * only when both sides hold them. Owners, timestamps, the prediction cache and the
 * lineage log are not compared.
 */
import { SECRET_PLACEHOLDER } from '../secrets.js';
import { isCarriedArtifact, lacksOnnxBytes } from './snapshot-onnx.js';
import { modelLabel, type CatalogSnapshot, type SnapshotModel, type SnapshotVersion } from './catalog-snapshot.js';
import type { ModelColumn } from '../model-types.js';

/** One difference; `left`/`right` are null where the thing is absent. */
export interface CatalogDifference {
  /** `name`, or `schema.name` outside the default schema. */
  readonly model: string;
  readonly version?: number;
  /** `model`, `default version`, `version`, `provider`, `option 'key'`, `artifact 'name'`, … */
  readonly field: string;
  readonly left: string | null;
  readonly right: string | null;
}

/**
 * The differences between two snapshots, ordered by model, version and field; empty when
 * the catalogs hold the same models.
 *
 * @example
 * diffSnapshots(a, b) // [{ model: 'price', version: 2, field: "option 'l2'", left: '0.1', right: '0.2' }]
 */
export function diffSnapshots(left: CatalogSnapshot, right: CatalogSnapshot): CatalogDifference[] {
  const out: CatalogDifference[] = [];
  const byLabel = (s: CatalogSnapshot) => new Map(s.models.map((m) => [modelLabel(m), m]));
  const l = byLabel(left);
  const r = byLabel(right);
  for (const label of [...new Set([...l.keys(), ...r.keys()])].sort()) {
    const a = l.get(label);
    const b = r.get(label);
    if (!a || !b) {
      out.push({ model: label, field: 'model', left: a ? describeModel(a) : null, right: b ? describeModel(b) : null });
      continue;
    }
    if (a.defaultVersion !== b.defaultVersion) out.push({ model: label, field: 'default version', left: String(a.defaultVersion), right: String(b.defaultVersion) });
    const grants = (m: SnapshotModel) => m.grants.map((g) => `${g.privilege} to ${g.role}`).sort().join(', ');
    if (grants(a) !== grants(b)) out.push({ model: label, field: 'grants', left: grants(a), right: grants(b) });
    const versions = [...new Set([...a.versions, ...b.versions].map((v) => v.version))].sort((x, y) => x - y);
    for (const n of versions) {
      const va = a.versions.find((v) => v.version === n);
      const vb = b.versions.find((v) => v.version === n);
      if (!va || !vb) out.push({ model: label, version: n, field: 'version', left: va ? 'present' : null, right: vb ? 'present' : null });
      else out.push(...diffVersion(label, va, vb));
    }
  }
  return out;
}

function diffVersion(model: string, a: SnapshotVersion, b: SnapshotVersion): CatalogDifference[] {
  const out: CatalogDifference[] = [];
  const add = (field: string, x: string | null, y: string | null) => {
    if (x !== y) out.push({ model, version: a.version, field, left: x, right: y });
  };
  add('provider', a.provider, b.provider);
  add('task', a.task ?? null, b.task ?? null);
  add('input', columns(a.input), columns(b.input));
  add('output', columns(a.output), columns(b.output));
  add('comment', a.comment ?? null, b.comment ?? null);
  add('as query', a.asQuery ?? null, b.asQuery ?? null);
  addKeyed(a.options, b.options, (key, x, y) => add(`option '${key}'`, x, y));
  const order = (v: SnapshotVersion) => v.options.map(([k]) => k).join(', ');
  if (out.every((d) => !d.field.startsWith('option ')) && order(a) !== order(b)) add('option order', order(a), order(b));
  // An imported ONNX model's bytes (a graph, a text model's files), carried by a bundle or
  // migration, are compared only when both sides hold them: the other side reads the same
  // model from its path.
  const held = (v: SnapshotVersion, other: SnapshotVersion) => v.artifacts.filter((x) => !isCarriedArtifact(x.name) || !lacksOnnxBytes(other));
  addKeyed(
    held(a, b).map((x) => [x.name, `sha256:${x.sha256}`] as const),
    held(b, a).map((x) => [x.name, `sha256:${x.sha256}`] as const),
    (name, x, y) => add(`artifact '${name}'`, x, y),
  );
  addKeyed(
    a.metrics.map(([k, v]) => [k, String(v)] as const),
    b.metrics.map(([k, v]) => [k, String(v)] as const),
    (metric, x, y) => add(`metric '${metric}'`, x, y),
  );
  const secrets = (v: SnapshotVersion) => v.secrets.map((s) => [s.key, s.digest] as const);
  addKeyed(secrets(a), secrets(b), (key, x, y) => {
    // Never the value: that a secret is set, and whether both sides hold the same one.
    const shown = (d: string | null) => (d === null ? null : SECRET_PLACEHOLDER);
    add(`secret '${key}'`, shown(x), x !== null && y !== null && x !== y ? `${SECRET_PLACEHOLDER} (a different value)` : shown(y));
  });
  return out;
}

/** Calls `report` for each key whose value differs (null where absent), in first-seen order. */
function addKeyed(a: readonly (readonly [string, string])[], b: readonly (readonly [string, string])[], report: (key: string, x: string | null, y: string | null) => void): void {
  const ma = new Map(a);
  const mb = new Map(b);
  for (const key of new Set([...ma.keys(), ...mb.keys()])) {
    const x = ma.get(key) ?? null;
    const y = mb.get(key) ?? null;
    if (x !== y) report(key, x, y);
  }
}

function columns(cols: readonly ModelColumn[]): string {
  return cols.map((c) => `${c.name} ${c.type}${c.comment === undefined ? '' : ` COMMENT '${c.comment}'`}`).join(', ');
}

function describeModel(m: SnapshotModel): string {
  return `versions ${m.versions.map((v) => v.version).join(', ')} (default ${m.defaultVersion})`;
}
