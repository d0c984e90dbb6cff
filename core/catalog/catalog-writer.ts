import type { ModelKey, ModelVersion } from '../model-types.js';
/**
 * Every change to the persistent catalog, as one operation per call. The catalog store
 * (catalog-store.ts) decides what to write; a host's writer decides how: on a host without
 * roles (DuckDB) plain statements on the catalog tables (sql-catalog-writer.ts), on
 * Postgres calls of modelsql's own `SECURITY DEFINER` functions, which check the caller's
 * rights and are the only way an ordinary role can change the catalog
 * (`RoleDialect.catalogWriter`). Each operation is atomic on its own; callers group
 * several in `Host.transaction`.
 */

/** A stored artifact of a version. */
export interface ArtifactRow {
  readonly name: string;
  readonly content: Uint8Array;
  readonly sha256: string;
}

/** One new version, with the model row when the model does not exist yet. */
export interface VersionWrite {
  readonly version: Omit<ModelVersion, 'secrets' | 'createdAt'> & { readonly createdAt?: string };
  /** Literal secrets, already sealed (secret-cipher.ts), by option key. */
  readonly sealedSecrets: readonly (readonly [string, string])[];
  readonly artifacts: readonly ArtifactRow[];
  readonly metrics: readonly (readonly [string, number])[];
  /**
   * The owner the model must have: a new model gets it (default: the acting role), an
   * existing one of another owner is refused (42710). Hosts with roles check that the
   * acting role may act for it.
   */
  readonly owner?: string;
  /** The model's default version after the write (default: this version). */
  readonly defaultVersion?: number;
  /** Timestamps of a new model row (catalog imports keep the source's); default now. */
  readonly modelCreatedAt?: string;
  readonly modelUpdatedAt?: string;
}

/** The readable part of a stored version that ALTER MODEL changes. */
export interface VersionUpdate extends ModelKey {
  readonly version: number;
  readonly provider: string;
  readonly task?: string;
  readonly options: readonly (readonly [string, string])[];
  /** The version's literal secrets after the change, sealed; they replace the stored ones. */
  readonly sealedSecrets: readonly (readonly [string, string])[];
  /** An artifact to remove with the change (an imported ONNX model pointed at another file). */
  readonly dropArtifact?: string;
}

/** One prediction run, for the lineage log. */
export interface RunRecord {
  readonly runId: string;
  readonly version: ModelVersion;
  /** A TEMPORARY model's run: it names no catalog model, and only its runner sees it. */
  readonly temporary?: boolean;
  readonly inputRelation: string;
  readonly rows: number;
  readonly errors: number;
  /** `YYYY-MM-DD HH:MM:SS.sss` UTC. */
  readonly startedAt: string;
  readonly durationMs: number;
  readonly tokens?: number;
  readonly cacheHits?: number;
}

/** The write operations of one host's catalog. */
export interface CatalogWriter {
  /** Adds a version (and the model, when new); refuses a version number the model has (23505). */
  addVersion(write: VersionWrite): Promise<void>;
  /** Replaces a version's options, provider, task and secrets (and drops an artifact). */
  updateVersion(update: VersionUpdate): Promise<void>;
  /** Sets the version ML_PREDICT uses when none is named. */
  setDefaultVersion(key: ModelKey, version: number): Promise<void>;
  /** Moves a model, with every row of it, to a new name. */
  rename(from: ModelKey, to: ModelKey): Promise<void>;
  /** Drops one version (the model with its last one), or with `version` undefined the whole model. */
  drop(key: ModelKey, version?: number): Promise<void>;
  /** Records (or removes) USAGE on a model for `role`. */
  setGrant(key: ModelKey, role: string, grant: boolean): Promise<void>;
  /** Appends a run to the lineage log. */
  recordRun(run: RunRecord): Promise<void>;
}
