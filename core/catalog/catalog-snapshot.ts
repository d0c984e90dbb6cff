/**
 * A catalog snapshot: every persistent model of one database with its versions, artifacts,
 * training metrics, literal secrets (only when asked for) and grants, in a host-neutral
 * form that `modelsql catalog export | import | migrate | diff` move and compare.
 *
 * Models in the host's default schema (`main` on DuckDB, `public` on Postgres) carry no
 * schema in a snapshot, so that they land in the target's default schema.
 */
import { createHash } from 'node:crypto';
import type { Host } from '../host.js';
import { SECRET_PLACEHOLDER, isSecretKey } from '../secrets.js';
import { quoteIdentifier } from '../sql/format.js';
import { CATALOG_VERSION, CatalogStore } from './catalog-store.js';
import { readModelGrants, type ModelGrant } from './catalog-grants.js';
import { likeMatcher } from './model-catalog.js';
import type { ModelEntry, ModelVersion } from '../model-types.js';

/** Bytes the catalog keeps for a version (a trained model's ONNX graph and spec). */
export interface SnapshotArtifact {
  readonly name: string;
  /** Hex SHA-256 of `content`, as stored in `ml_catalog.artifacts`. */
  readonly sha256: string;
  readonly size: number;
  /** The bytes; absent when the snapshot was read for comparing only. */
  readonly content?: Uint8Array;
}

/** A literal secret of a version (`api-key`): its digest always, its value only when exported on purpose. */
export interface SnapshotSecret {
  readonly key: string;
  /** Hex SHA-256 of the value, to compare secrets without showing them. */
  readonly digest: string;
  readonly value?: string;
}

/**
 * One version of a model: the stored version (options in the order written, literal
 * secrets holding `'******'`, `${env:...}` references kept) with its secrets, artifacts and
 * training metrics.
 */
export interface SnapshotVersion extends Omit<ModelVersion, 'schema' | 'name' | 'secrets'> {
  readonly secrets: readonly SnapshotSecret[];
  readonly artifacts: readonly SnapshotArtifact[];
  /** Training metrics by name. */
  readonly metrics: readonly (readonly [string, number])[];
}

/** One model. */
export interface SnapshotModel {
  /** The schema, or undefined for the host's default schema. */
  readonly schema?: string;
  readonly name: string;
  readonly defaultVersion: number;
  readonly owner: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly grants: readonly ModelGrant[];
  /** Ascending by version. */
  readonly versions: readonly SnapshotVersion[];
}

/** A row of `ml_catalog.prediction_cache`. */
export interface CacheRow {
  readonly cacheKey: string;
  readonly provider: string;
  readonly model: string;
  readonly answer: string;
  readonly createdAt: string;
}

/** What {@link readSnapshot} returns. */
export interface CatalogSnapshot {
  /** The catalog layout the rows were read in. */
  readonly layout: number;
  /** Ordered by schema (default schema first) and name. */
  readonly models: readonly SnapshotModel[];
  /** The prediction cache, when asked for. */
  readonly cache?: readonly CacheRow[];
}

/** What to read; every field optional. */
export interface SnapshotOptions {
  /** A LIKE pattern (`%`, `_`) on the model name, or on `schema.name` when it holds a dot. */
  readonly models?: string;
  /**
   * Literal secret values (default: digests only), of the models the reading role may
   * alter (owner, member of the owner, catalog owner): a grantee's snapshot holds digests
   * only. Opening them needs the key (`secretKey`).
   */
  readonly includeSecrets?: boolean;
  /** The key literal secrets are sealed with (default: `MODELSQL_SECRET_KEY`). */
  readonly secretKey?: string;
  /** Artifact bytes (default: names and checksums only). */
  readonly artifactContent?: boolean;
  /** The prediction cache (default: no). */
  readonly withCache?: boolean;
}

/** Thrown inside the read transaction to roll it back. */
class ReadDone extends Error {
  constructor(readonly snapshot: CatalogSnapshot) {
    super('read done');
  }
}

/**
 * Reads the persistent catalog of `host` without changing it: the read runs in a
 * transaction that is always rolled back, so a database with no catalog reads as empty
 * (and keeps none), and an older layout is read through the migrations without being
 * upgraded. A newer layout is refused by the catalog's own check (55000).
 *
 * @example
 * const snapshot = await readSnapshot(host, { artifactContent: true });
 */
export async function readSnapshot(host: Host, options: SnapshotOptions = {}): Promise<CatalogSnapshot> {
  try {
    await host.transaction(async () => {
      throw new ReadDone(await readInTransaction(host, options));
    });
  } catch (error) {
    if (error instanceof ReadDone) return error.snapshot;
    throw error;
  }
  throw new Error('unreachable');
}

/** Reads the catalog inside an open transaction (creating or upgrading it there when needed). */
export async function readInTransaction(host: Host, options: SnapshotOptions = {}): Promise<CatalogSnapshot> {
  const store = new CatalogStore(host, { secretKey: options.secretKey });
  await store.ensure();
  const defaultSchema = await host.currentSchema();
  const matches = options.models === undefined ? () => true : modelMatcher(options.models);
  const entries = (await store.list()).filter((m) => matches(m.schema, m.name));
  const wanted = new Set(entries.map((m) => versionKey(m.schema, m.name)));
  const artifacts = await groupRows(
    host,
    // Not sorted by the host: sorting would move every artifact's bytes once more.
    `SELECT schema_name, model_name, version, artifact_name, sha256, ${options.artifactContent ? 'content' : 'octet_length(content)'} FROM ml_catalog.artifacts`,
    wanted,
    (row): SnapshotArtifact => {
      const content = options.artifactContent ? toBytes(row[5]) : undefined;
      return { name: String(row[3]), sha256: String(row[4]), size: content ? content.byteLength : Number(row[5]), ...(content ? { content } : {}) };
    },
  );
  for (const list of artifacts.values()) list.sort((a, b) => compare(a.name, b.name));
  const metrics = await groupRows(
    host,
    'SELECT schema_name, model_name, version, metric, value FROM ml_catalog.training_metrics ORDER BY schema_name, model_name, version, metric',
    wanted,
    (row) => [String(row[3]), Number(row[4])] as const,
  );
  // Literal secrets, through the view that keeps those of the models this role may use.
  const secrets = await groupRows(
    host,
    'SELECT schema_name, model_name, version, option_key, secret FROM ml_catalog.usable_secrets ORDER BY option_key',
    wanted,
    (row) => [String(row[3]), String(row[4])] as const,
  );
  const grants = await readModelGrants(host);
  const owned = new Set<ModelEntry>();
  if (options.includeSecrets) for (const m of entries) if (await store.mayAlter(m)) owned.add(m);
  // Digests of the plaintext when this process can open the secrets (so equal keys compare equal), else of the sealed value.
  const open = (m: ModelEntry, option: string, sealed: string) => (store.cipher.hasKey || (options.includeSecrets && owned.has(m)) ? store.cipher.open(sealed, { owner: m.owner, option }) : sealed);
  const models = entries.map((m): SnapshotModel => {
    const versions = m.versions.map((v): SnapshotVersion => {
      const key = versionKey(m.schema, m.name, v.version);
      return {
        version: v.version,
        provider: v.provider,
        ...(v.task === undefined ? {} : { task: v.task }),
        input: v.input,
        output: v.output,
        options: v.options,
        ...(v.comment === undefined ? {} : { comment: v.comment }),
        ...(v.asQuery === undefined ? {} : { asQuery: v.asQuery }),
        createdAt: v.createdAt,
        secrets: (secrets.get(key) ?? []).map(([k, sealed]) => {
          const value = open(m, k, sealed);
          return { key: k, digest: sha256Hex(value), ...(options.includeSecrets && owned.has(m) ? { value } : {}) };
        }),
        artifacts: artifacts.get(key) ?? [],
        metrics: metrics.get(key) ?? [],
      };
    });
    return {
      ...(m.schema === defaultSchema ? {} : { schema: m.schema }),
      name: m.name,
      defaultVersion: m.defaultVersion,
      owner: m.owner,
      createdAt: m.createdAt,
      updatedAt: m.updatedAt,
      grants: grants.get(versionKey(m.schema, m.name)) ?? [],
      versions,
    };
  });
  models.sort((a, b) => compare(a.schema ?? '', b.schema ?? '') || compare(a.name, b.name));
  const cache = options.withCache ? await readCache(host) : undefined;
  return { layout: CATALOG_VERSION, models, ...(cache ? { cache } : {}) };
}

/** `name` for a model of the default schema, else `schema.name`, quoted as SQL would need. */
export function modelLabel(model: { readonly schema?: string; readonly name: string }): string {
  return model.schema === undefined ? quoteIdentifier(model.name) : `${quoteIdentifier(model.schema)}.${quoteIdentifier(model.name)}`;
}

/** A literal secret a snapshot names but does not hold (read without `includeSecrets`). */
export interface MissingSecret {
  /** See {@link modelLabel}. */
  readonly model: string;
  readonly version: number;
  readonly key: string;
}

/** The literal secrets of `snapshot` whose values it does not hold: their options read `'******'`. */
export function missingSecrets(snapshot: CatalogSnapshot): MissingSecret[] {
  return snapshot.models.flatMap((m) =>
    m.versions.flatMap((v) =>
      v.options
        .filter(([key, value]) => isSecretKey(key) && value === SECRET_PLACEHOLDER && !v.secrets.some((s) => s.key === key && s.value !== undefined))
        .map(([key]) => ({ model: modelLabel(m), version: v.version, key })),
    ),
  );
}

/** Hex SHA-256 of text or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A host value of a BLOB / bytea column as bytes. */
export function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new Error(`expected bytes, got ${typeof value}`);
}

function modelMatcher(pattern: string): (schema: string, name: string) => boolean {
  const like = likeMatcher(pattern);
  return pattern.includes('.') ? (schema, name) => like(`${schema}.${name}`) : (_schema, name) => like(name);
}

async function readCache(host: Host): Promise<CacheRow[]> {
  const text = host.dialect.catalogTypes.text;
  const r = await host.execute(`SELECT cache_key, provider, model, answer, CAST(created_at AS ${text}) FROM ml_catalog.prediction_cache ORDER BY cache_key`);
  return r.rows.map((row) => ({ cacheKey: String(row[0]), provider: String(row[1]), model: String(row[2]), answer: String(row[3]), createdAt: String(row[4]) }));
}

/** Runs a query whose rows start with schema, model, version and groups the mapped rows by version, for wanted models only. */
async function groupRows<T>(host: Host, sql: string, wanted: ReadonlySet<string>, map: (row: readonly unknown[]) => T): Promise<Map<string, T[]>> {
  const out = new Map<string, T[]>();
  for (const row of (await host.execute(sql)).rows) {
    if (!wanted.has(versionKey(String(row[0]), String(row[1])))) continue;
    const key = versionKey(String(row[0]), String(row[1]), Number(row[2]));
    const list = out.get(key);
    if (list) list.push(map(row));
    else out.set(key, [map(row)]);
  }
  return out;
}

function versionKey(schema: string, name: string, version?: number): string {
  return JSON.stringify(version === undefined ? [schema, name] : [schema, name, version]);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
