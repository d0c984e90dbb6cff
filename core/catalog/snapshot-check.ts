/**
 * Checks the shape of a catalog snapshot that came from outside the process (a bundle's
 * manifest, a library caller's object) before any of it is written: a bundle's checksum
 * only says the file is whole, not that its manifest is one `catalog export` could write.
 * A hostile or hand-edited manifest must be refused with a clear error, never written into
 * the catalog as duplicate versions, fractional version numbers, option values that are not
 * strings or columns whose type does not parse.
 */
import { parseDataType } from '../sql/types.js';
import { modelLabel, type CatalogSnapshot } from './catalog-snapshot.js';

/**
 * The first problem of `value` as a {@link CatalogSnapshot}, or undefined when it has the
 * shape `readSnapshot` returns: a positive integer layout; models with a non-empty name,
 * each (schema, name) once, with at least one version; versions numbered by ascending
 * positive integers, the default among them; columns with names and parseable types;
 * options, secrets, artifacts (each name once per version), metrics, grants and cache rows
 * of the right types (a metric may be null: JSON writes a NaN metric so). Artifact bytes are not looked at (a bundle checks them by SHA-256).
 *
 * @example
 * const problem = snapshotProblem(JSON.parse(manifest).snapshot);
 * if (problem) throw new ModelSqlError('XX001', `invalid bundle: ${problem}`);
 */
export function snapshotProblem(value: unknown): string | undefined {
  try {
    checkSnapshot(value);
    return undefined;
  } catch (error) {
    if (error instanceof ShapeError) return error.message;
    throw error;
  }
}

class ShapeError extends Error {}

function fail(message: string): never {
  throw new ShapeError(message);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

function array(v: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(v)) fail(`${what} is not a list`);
  return v;
}

function string(v: unknown, what: string, optional = false): void {
  if (v === undefined && optional) return;
  if (!isString(v)) fail(`${what} is not a string`);
}

function checkSnapshot(value: unknown): asserts value is CatalogSnapshot {
  if (!isObject(value)) fail('the snapshot is not an object');
  if (!isCount(value.layout)) fail('its catalog layout is not a positive integer');
  const seen = new Set<string>();
  for (const [i, m] of array(value.models, 'its model list').entries()) {
    if (!isObject(m)) fail(`model ${i + 1} is not an object`);
    string(m.schema, `the schema of model ${i + 1}`, true);
    if (!isString(m.name) || m.name === '') fail(`model ${i + 1} has no name`);
    if (m.schema === '') fail(`model ${i + 1} has an empty schema`);
    const label = modelLabel({ name: m.name, ...(isString(m.schema) ? { schema: m.schema } : {}) });
    const key = JSON.stringify([m.schema ?? null, m.name]);
    if (seen.has(key)) fail(`model ${label} appears twice`);
    seen.add(key);
    for (const field of ['owner', 'createdAt', 'updatedAt']) string(m[field], `the ${field} of model ${label}`);
    for (const g of array(m.grants, `the grant list of model ${label}`)) {
      if (!isObject(g) || !isString(g.role) || g.role === '' || g.privilege !== 'USAGE') fail(`model ${label} has a grant that is not USAGE to a role`);
    }
    const versions = array(m.versions, `the version list of model ${label}`);
    if (versions.length === 0) fail(`model ${label} has no versions`);
    let last = 0;
    for (const v of versions) {
      if (!isObject(v) || !isCount(v.version)) fail(`model ${label} has a version whose number is not a positive integer`);
      if (v.version <= last) fail(`model ${label} lists version ${v.version} ${v.version === last ? 'twice' : 'out of order'}`);
      last = v.version;
      checkVersion(v, `${label}$${v.version}`);
    }
    if (!isCount(m.defaultVersion) || !versions.some((v) => (v as { version: number }).version === m.defaultVersion)) {
      fail(`the default version of model ${label} (${JSON.stringify(m.defaultVersion)}) is not one of its versions`);
    }
  }
  if (value.cache !== undefined) {
    for (const row of array(value.cache, 'its prediction cache list')) {
      if (!isObject(row) || !['cacheKey', 'provider', 'model', 'answer', 'createdAt'].every((k) => isString(row[k]))) fail('a prediction cache row is not five strings');
    }
  }
}

function checkVersion(v: Record<string, unknown>, label: string): void {
  if (!isString(v.provider) || v.provider === '') fail(`model ${label} has no provider`);
  for (const field of ['task', 'comment', 'asQuery']) string(v[field], `the ${field} of model ${label}`, true);
  string(v.createdAt, `the createdAt of model ${label}`);
  for (const side of ['input', 'output']) {
    for (const c of array(v[side], `the ${side} column list of model ${label}`)) {
      if (!isObject(c) || !isString(c.name) || c.name === '' || !isString(c.type)) fail(`model ${label} has an ${side} column without a name or type`);
      string(c.comment, `the comment of column ${c.name} of model ${label}`, true);
      try {
        parseDataType(c.type);
      } catch {
        fail(`column ${c.name} of model ${label} has type ${JSON.stringify(c.type)}, which is not a type`);
      }
    }
  }
  const keys = new Set<string>();
  for (const o of array(v.options, `the option list of model ${label}`)) {
    if (!Array.isArray(o) || o.length !== 2 || !isString(o[0]) || !isString(o[1])) fail(`model ${label} has an option that is not a pair of strings`);
    const key = o[0].toLowerCase();
    if (keys.has(key)) fail(`model ${label} has option '${o[0]}' twice`);
    keys.add(key);
  }
  for (const s of array(v.secrets, `the secret list of model ${label}`)) {
    if (!isObject(s) || !isString(s.key) || !isString(s.digest) || !(s.value === undefined || isString(s.value))) fail(`model ${label} has a secret that is not a key, a digest and a string value`);
  }
  const names = new Set<string>();
  for (const a of array(v.artifacts, `the artifact list of model ${label}`)) {
    if (!isObject(a) || !isString(a.name) || a.name === '') fail(`model ${label} has an artifact without a name`);
    if (names.has(a.name)) fail(`model ${label} has artifact '${a.name}' twice`);
    names.add(a.name);
    if (!isString(a.sha256) || !/^[0-9a-f]{64}$/.test(a.sha256)) fail(`artifact '${a.name}' of model ${label} has no SHA-256`);
    if (typeof a.size !== 'number' || !Number.isSafeInteger(a.size) || a.size < 0) fail(`artifact '${a.name}' of model ${label} has no size`);
  }
  for (const metric of array(v.metrics, `the metric list of model ${label}`)) {
    if (!Array.isArray(metric) || metric.length !== 2 || !isString(metric[0]) || !(typeof metric[1] === 'number' || metric[1] === null)) fail(`model ${label} has a metric that is not a name and a number`);
  }
}
