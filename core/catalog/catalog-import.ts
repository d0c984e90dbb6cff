/**
 * Writes a catalog snapshot (catalog-snapshot.ts) into a host's catalog, in one
 * transaction: every model, version, artifact, training metric, literal secret (when the
 * snapshot carries it), grant and default version, and the prediction cache when the
 * snapshot holds it. A model that already exists in the target is handled by the
 * conflict policy; a failure anywhere leaves the target as it was.
 */
import { isKnownProvider } from './model-options.js';
import { DuplicateModelError, ModelSqlError } from '../errors.js';
import type { Host, SqlDialect } from '../host.js';
import { RuntimeLoader } from '../runtime/runtime-loader.js';
import { CATALOG_VERSION, CatalogStore } from './catalog-store.js';
import { missingSecrets, modelLabel, type CacheRow, type CatalogSnapshot, type SnapshotModel, type SnapshotVersion } from './catalog-snapshot.js';
import { importModelGrants, type ModelGrant } from './catalog-grants.js';
import { ModelCatalog } from './model-catalog.js';
import { snapshotProblem } from './snapshot-check.js';
import { splitSecrets } from '../secrets.js';
import { compileModel } from '../training/compile-sql.js';
import { parseTrainedModel, SPEC_ARTIFACT } from '../training/trained-model.js';
import type { ModelEntry, ModelVersion } from '../model-types.js';

/** What to do with a model whose name exists in the target. */
export const CONFLICT_POLICIES = ['error', 'skip', 'replace', 'new-version'] as const;

/**
 * `error` (default): refuse the whole import; `skip`: keep the target's model; `replace`:
 * drop the target's model and write the imported one with its version numbers;
 * `new-version`: add the imported versions after the target's highest, the imported
 * default becoming the default.
 */
export type ConflictPolicy = (typeof CONFLICT_POLICIES)[number];

/** What happened (or, in a dry run, would happen) to one model. */
export interface ModelImport {
  /** `name`, or `schema.name` outside the default schema. */
  readonly model: string;
  readonly action: 'create' | 'replace' | 'skip' | 'new-version';
  /** Each imported version and the number it has in the target (none when skipped). */
  readonly versions: readonly { readonly from: number; readonly to: number }[];
  /** The target's default version after the import. */
  readonly defaultVersion: number;
  /** Artifacts written and their total size. */
  readonly artifacts: number;
  readonly bytes: number;
}

/** The outcome of an import. */
export interface ImportReport {
  readonly dryRun: boolean;
  readonly models: readonly ModelImport[];
  /** Prediction cache rows written (entries the target had already are kept). */
  readonly cacheRows: number;
  /** Things the user should act on, e.g. a literal secret that was not exported. */
  readonly warnings: readonly string[];
}

/** Options of {@link importSnapshot}; every field optional. */
export interface ImportOptions {
  /** Default `error`. */
  readonly onConflict?: ConflictPolicy;
  /** Plan and check everything, write nothing. */
  readonly dryRun?: boolean;
  /** Called after each group of models is written, with models done and total. */
  readonly onProgress?: (done: number, total: number) => void;
}


/** Models per group of bulk inserts (and per progress step). */
const GROUP_MODELS = 250;
/** Bound parameters per INSERT statement. */
const MAX_PARAMS = 16_000;
/** Bytes of artifact content per INSERT statement. */
const MAX_BYTES = 1024 * 1024;

/**
 * Imports `snapshot` into the catalog of `host` in one transaction (created when missing,
 * refused when newer than this modelsql).
 *
 * @throws DuplicateModelError (42710) for a name clash under the `error` policy;
 *   ModelSqlError 22023 for a snapshot of the wrong shape (snapshot-check.ts: a model or
 *   version twice, a default version it does not have, ...); 3F000 when a model's schema does not exist in the target.
 * @example
 * const report = await importSnapshot(target, await readSnapshot(source, { artifactContent: true }), { onConflict: 'replace' });
 */
export async function importSnapshot(host: Host, snapshot: CatalogSnapshot, options: ImportOptions = {}): Promise<ImportReport> {
  const problem = snapshotProblem(snapshot) ?? trainedSpecProblem(snapshot, host.dialect);
  if (problem) throw new ModelSqlError('22023', `the models to import are not a valid catalog snapshot: ${problem}; nothing was imported`);
  if (snapshot.layout > CATALOG_VERSION) {
    throw new ModelSqlError('55000', `the models to import come from a catalog of layout version ${snapshot.layout}, newer than this modelsql understands (${CATALOG_VERSION}); upgrade modelsql`);
  }
  return inImportTransaction(host, options.dryRun ?? false, async () => {
    const store = new CatalogStore(host);
    await store.ensure();
    const defaultSchema = await host.currentSchema();
    const existing = new Map((await store.list()).map((e) => [JSON.stringify([e.schema, e.name]), e]));
    await checkSchemas(host, new Set(snapshot.models.map((m) => m.schema ?? defaultSchema)));
    const policy = options.onConflict ?? 'error';
    const targetOf = (m: SnapshotModel) => existing.get(JSON.stringify([m.schema ?? defaultSchema, m.name]));
    // A model the importing role may not see: no policy may change it (write_version would refuse it half-way).
    const hidden: SnapshotModel[] = [];
    for (const m of snapshot.models) if (!targetOf(m) && (await store.taken({ schema: m.schema ?? defaultSchema, name: m.name }))) hidden.push(m);
    if (hidden.length > 0) {
      throw new DuplicateModelError(
        `${hidden.length === 1 ? 'model' : 'models'} ${hidden.map(modelLabel).join(', ')} already ${hidden.length === 1 ? 'exists' : 'exist'} in the target catalog, owned by a role whose models this one may not see; nothing was imported (no on-conflict policy changes another role's model)`,
      );
    }
    const clashes = snapshot.models.filter((m) => targetOf(m) !== undefined);
    if (policy === 'error' && clashes.length > 0) {
      throw new DuplicateModelError(
        `${clashes.length === 1 ? 'model' : 'models'} ${clashes.map(modelLabel).join(', ')} already ${clashes.length === 1 ? 'exists' : 'exist'} in the target catalog; nothing was imported (choose an on-conflict policy: skip, replace or new-version)`,
      );
    }
    const ownerWarnings: string[] = [];
    const plans: ModelPlan[] = [];
    for (const m of snapshot.models) {
      const plan = planModel(m, targetOf(m), policy);
      plans.push(await ownedByARole(store, plan, ownerWarnings));
    }
    const report: ImportReport = {
      dryRun: options.dryRun ?? false,
      models: plans.map((p) => p.summary),
      cacheRows: 0,
      warnings: [
        ...missingSecrets(snapshot).map((m) => `model ${m.model}$${m.version}: its literal '${m.key}' was not exported; set it with ALTER MODEL ${m.model}$${m.version} SET ('${m.key}' = '...')`),
        ...ownerWarnings,
      ],
    };
    if (options.dryRun) return { ...report, cacheRows: snapshot.cache?.length ?? 0 };
    const writer = new CatalogWriter(host, store, defaultSchema);
    const total = plans.length;
    for (let i = 0; i < plans.length; i += GROUP_MODELS) {
      await writer.write(plans.slice(i, i + GROUP_MODELS));
      options.onProgress?.(Math.min(i + GROUP_MODELS, total), total);
    }
    const cacheRows = snapshot.cache ? await writer.writeCache(snapshot.cache) : 0;
    const grantWarnings: string[] = [];
    for (const p of plans) if (p.summary.action !== 'skip') grantWarnings.push(...(await writer.grant(p.summary.model, p.model.grants)));
    return { ...report, cacheRows, warnings: [...report.warnings, ...grantWarnings] };
  });
}

/**
 * The first version with a provider this modelsql does not know, or the first trained
 * version whose training spec (`model.json`) is not one training writes: bytes that do not parse, another format, a shape that does not compile to SQL,
 * or features that are not the version's INPUT columns. Its host function and every
 * prediction are compiled from it, so it is checked before anything is written.
 */
function trainedSpecProblem(snapshot: CatalogSnapshot, dialect: SqlDialect): string | undefined {
  for (const model of snapshot.models) {
    for (const v of model.versions) {
      const label = `model ${modelLabel(model)}$${v.version}`;
      // A provider this modelsql does not run would fail at every ML_PREDICT, not here.
      if (!isKnownProvider(v.provider)) return `${label} has provider '${v.provider}', which this modelsql does not know`;
      if (v.provider !== 'internal') continue;
      const spec = v.artifacts.find((a) => a.name === SPEC_ARTIFACT);
      if (!spec) return `${label} is a trained model without its training spec (${SPEC_ARTIFACT})`;
      if (!spec.content) continue;
      try {
        const trained = parseTrainedModel(spec.content);
        if (!Array.isArray(trained.features) || trained.features.length !== v.input.length) throw new Error(`its features are not the ${v.input.length} INPUT columns`);
        compileModel(trained, dialect, v.input.map((c) => dialect.quoteIdentifier(c.name)), true);
      } catch (error) {
        return `${label} has a training spec (${SPEC_ARTIFACT}) that training could not have written (${error instanceof Error ? error.message : String(error)})`;
      }
    }
  }
  return undefined;
}

/** Thrown to roll a dry run back, carrying its report. */
class DryRunDone<T> extends Error {
  constructor(readonly value: T) {
    super('dry run');
  }
}

/**
 * Runs `fn` in one transaction of `host`; in a dry run the transaction is rolled back
 * however `fn` ends, and `fn`'s value returned.
 */
export async function inImportTransaction<T>(host: Host, dryRun: boolean, fn: () => Promise<T>): Promise<T> {
  try {
    return await host.transaction(async () => {
      const value = await fn();
      if (dryRun) throw new DryRunDone(value);
      return value;
    });
  } catch (error) {
    if (error instanceof DryRunDone) return error.value as T;
    throw error;
  }
}

/** Refuses the import when a model's schema is missing in the target (as CREATE MODEL does). */
async function checkSchemas(host: Host, schemas: ReadonlySet<string>): Promise<void> {
  for (const schema of schemas) {
    // The host's own `=` (catalog-layout.ts, readCatalogVersion).
    const found = await host.execute(`SELECT count(*) FROM information_schema.schemata WHERE ${host.dialect.operator('schema_name', '=', '$1')}`, [schema]);
    if (Number(found.rows[0]![0]) === 0) throw new ModelSqlError('3F000', `schema "${schema}" does not exist in the target database; create it first (nothing was imported)`);
  }
}

/** One model's import: what to write and what to report. */
interface ModelPlan {
  readonly model: SnapshotModel;
  readonly before?: ModelEntry;
  /** The owner its rows are written with. */
  readonly owner: string;
  readonly summary: ModelImport;
}

/**
 * The plan with an owner the target knows. On a host with roles, a model written anew
 * (created, or replacing the target's) whose snapshot owner is no role there (a DuckDB
 * file's operating-system user, a role of another server, `public`) is owned by the
 * importing role instead, with a warning: a model left to a role that does not exist
 * would go to whoever later creates a role of that name.
 */
async function ownedByARole(store: CatalogStore, plan: ModelPlan, warnings: string[]): Promise<ModelPlan> {
  if (plan.summary.action === 'skip' || plan.summary.action === 'new-version' || !store.hasRoles || (await store.isRole(plan.owner))) return plan;
  const owner = await store.currentRole();
  warnings.push(`model ${plan.summary.model}: its owner ${plan.owner} is not a role of the target database; it is owned by ${owner}, the importing role`);
  return { ...plan, owner };
}

function planModel(model: SnapshotModel, before: ModelEntry | undefined, policy: ConflictPolicy): ModelPlan {
  const artifacts = model.versions.flatMap((v) => v.artifacts);
  const counts = { artifacts: artifacts.length, bytes: artifacts.reduce((n, a) => n + a.size, 0) };
  const label = modelLabel(model);
  if (before && policy === 'skip') {
    return { model, before, owner: before.owner, summary: { model: label, action: 'skip', versions: [], defaultVersion: before.defaultVersion, artifacts: 0, bytes: 0 } };
  }
  const base = before && policy === 'new-version' ? Math.max(...before.versions.map((v) => v.version)) : 0;
  const renumber = base > 0;
  const versions = model.versions.map((v, i) => ({ from: v.version, to: renumber ? base + i + 1 : v.version }));
  const defaultVersion = versions.find((v) => v.from === model.defaultVersion)?.to ?? versions[versions.length - 1]!.to;
  const action = !before ? 'create' : policy === 'new-version' ? 'new-version' : 'replace';
  return { model, before, owner: before && action === 'new-version' ? before.owner : model.owner, summary: { model: label, action, versions, defaultVersion, ...counts } };
}

/** Writes planned models with multi-row INSERTs (binary parameters for artifact bytes). */
class CatalogWriter {
  private readonly catalog: ModelCatalog;

  constructor(
    private readonly host: Host,
    private readonly store: CatalogStore,
    private readonly defaultSchema: string,
  ) {
    this.catalog = new ModelCatalog(host, new RuntimeLoader({}));
  }

  /** Gives an imported model's grants (see catalog-grants.ts); returns the warnings of those not given. */
  grant(label: string, grants: readonly ModelGrant[]): Promise<string[]> {
    return importModelGrants(this.host, this.catalog, label, grants);
  }

  /**
   * Writes each planned version whole through the store (on hosts with roles, the host
   * checks that the importing role may write a model of the snapshot's owner).
   */
  async write(plans: readonly ModelPlan[]): Promise<void> {
    const synced: { before?: ModelEntry; after: ModelEntry }[] = [];
    for (const { model, before, owner, summary } of plans) {
      if (summary.action === 'skip') continue;
      const schema = model.schema ?? this.defaultSchema;
      if (summary.action === 'replace') await this.store.drop({ schema, name: model.name });
      const written: ModelVersion[] = [];
      for (const [i, v] of model.versions.entries()) {
        const version = summary.versions[i]!.to;
        // As CREATE MODEL: a literal key among the readable options is kept apart and sealed, never stored in the clear.
        const split = splitSecrets(v.options, v.secrets.filter((s) => s.value !== undefined).map((s) => [s.key, s.value!] as const));
        const known = split.secrets;
        const { secrets: _secrets, ...readable } = modelVersion(schema, model.name, version, { ...v, options: split.options }, known);
        await this.store.importVersion(
          {
            version: readable,
            artifacts: v.artifacts.map((a) => ({ name: a.name, content: artifactContent(model, v, a), sha256: a.sha256 })),
            metrics: v.metrics,
            owner,
            defaultVersion: summary.defaultVersion,
            ...(summary.action === 'new-version' ? {} : { modelCreatedAt: model.createdAt, modelUpdatedAt: model.updatedAt }),
          },
          known,
          owner,
        );
        written.push(modelVersion(schema, model.name, version, { ...v, options: split.options }, known));
      }
      const kept = summary.action === 'new-version' ? (before?.versions ?? []) : [];
      const after: ModelEntry = {
        schema,
        name: model.name,
        defaultVersion: summary.defaultVersion,
        owner,
        createdAt: model.createdAt,
        updatedAt: model.updatedAt,
        temporary: false,
        versions: [...kept, ...written],
      };
      // The host function follows a trained default version: one had it before, or one with a training spec comes now.
      const spec = model.versions.find((v) => v.version === model.defaultVersion)?.artifacts.some((a) => a.name === SPEC_ARTIFACT);
      if (isTrainedDefault(before) || (spec && isTrainedDefault(after))) synced.push({ before, after });
    }
    for (const { before, after } of synced) await this.catalog.syncFunction(before, after);
  }

  /** Adds the cache rows the target does not have; returns how many were added. */
  async writeCache(rows: readonly CacheRow[]): Promise<number> {
    const count = async () => Number((await this.host.execute('SELECT count(*) FROM ml_catalog.prediction_cache')).rows[0]![0]);
    const before = await count();
    for (const chunk of chunks(rows.map((r) => [r.cacheKey, r.provider, r.model, r.answer, r.createdAt]), 5)) {
      const values = chunk.map((_, i) => `(${[1, 2, 3, 4, 5].map((k) => `$${i * 5 + k}`).join(', ')})`).join(', ');
      await this.host.execute(
        `INSERT INTO ml_catalog.prediction_cache (cache_key, provider, model, answer, created_at) SELECT v.k, v.p, v.m, v.a, CAST(v.c AS TIMESTAMP) FROM (VALUES ${values}) AS v(k, p, m, a, c) WHERE NOT EXISTS (SELECT 1 FROM ml_catalog.prediction_cache t WHERE t.cache_key = v.k)`,
        chunk.flat(),
      );
    }
    return (await count()) - before;
  }
}

/** Splits rows into statements of at most {@link MAX_PARAMS} parameters and {@link MAX_BYTES} of bytes. */
function* chunks(rows: readonly unknown[][], width: number): Generator<unknown[][]> {
  let chunk: unknown[][] = [];
  let bytes = 0;
  for (const row of rows) {
    const size = row.reduce<number>((n, v) => n + (v instanceof Uint8Array ? v.byteLength : 0), 0);
    if (chunk.length > 0 && ((chunk.length + 1) * width > MAX_PARAMS || bytes + size > MAX_BYTES)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(row);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

function artifactContent(model: SnapshotModel, v: SnapshotVersion, a: SnapshotVersion['artifacts'][number]): Uint8Array {
  if (!a.content) throw new ModelSqlError('22023', `the snapshot holds no bytes for artifact '${a.name}' of model ${modelLabel(model)}$${v.version}`);
  return a.content;
}

function modelVersion(schema: string, name: string, version: number, v: SnapshotVersion, secrets: readonly (readonly [string, string])[]): ModelVersion {
  return {
    schema,
    name,
    version,
    provider: v.provider,
    task: v.task,
    input: v.input,
    output: v.output,
    options: v.options,
    comment: v.comment,
    asQuery: v.asQuery,
    createdAt: v.createdAt,
    ...(secrets.length > 0 ? { secrets } : {}),
  };
}

function isTrainedDefault(entry: ModelEntry | undefined): boolean {
  return entry?.versions.find((v) => v.version === entry.defaultVersion)?.provider === 'internal';
}
