/**
 * The model catalog as system tables in schema `ml_catalog` of the host database
 * (SPEC §4). Written in the SQL both hosts share (`$1` parameters); column types come
 * from the dialect. Uniqueness of (schema, model, version) is kept by the store inside
 * transactions rather than by index constraints, so that a rename can rewrite keys freely.
 */
import { userInfo } from 'node:os';
import { DuplicateModelError, ModelSqlError, type SourcePosition } from '../errors.js';
import type { Host, SessionReading } from '../host.js';
import { applyCatalogUpgrade, CATALOG_VERSION, catalogSchema, planCatalogUpgrade } from './catalog-layout.js';
import type { CatalogWriter, VersionWrite } from './catalog-writer.js';
import { SecretCipher } from './secret-cipher.js';
import { SqlCatalogWriter } from './sql-catalog-writer.js';
import type { ModelColumn, ModelEntry, ModelKey, ModelVersion } from '../model-types.js';
import { quoteIdentifier } from '../sql/format.js';
import { ONNX_ARTIFACT, SPEC_ARTIFACT } from '../training/trained-model.js';

/** The catalog layout this modelsql writes; its migrations are in catalog-layout.ts. */
export { CATALOG_VERSION } from './catalog-layout.js';

/** A model name as a statement wrote it: with a schema, or (`schema` undefined) in the current one. */
export interface ModelRef {
  readonly schema?: string;
  readonly name: string;
}

/** What one {@link CatalogStore.lookup} read. */
export interface CatalogLookup {
  /** The names it was asked for. */
  readonly refs: readonly ModelRef[];
  /**
   * `current_schema()` and `current_database()` as the query saw them; undefined when it
   * found no model (or, for the schema, when the host names none: a Postgres
   * `search_path` of missing schemas).
   */
  readonly currentSchema: string | undefined;
  readonly currentDatabase: string | undefined;
  /** The persistent models found, by schema and name, versions ascending and without secrets. */
  readonly models: readonly ModelEntry[];
  /**
   * On hosts whose dialect has `SqlDialect.sessionReading`: the session's settings as the
   * same query read them (among them the search-path check). Absent on others.
   */
  readonly session?: SessionReading;
}

/** Options of a {@link CatalogStore}. */
export interface CatalogStoreOptions {
  /**
   * The key literal secrets are sealed with (secret-cipher.ts): 32 bytes as 64 hex digits
   * or base64. Default: the environment variable `MODELSQL_SECRET_KEY`.
   */
  readonly secretKey?: string;
  /**
   * The attached database whose catalog this store reads and writes (`"db".ml_catalog`);
   * default: the current database's (`ml_catalog`, as the host resolves it).
   */
  readonly database?: string;
}

/**
 * Reads and writes the persistent catalog of one host.
 *
 * @example
 * const store = new CatalogStore(host);
 * const model = await store.get({ schema: 'main', name: 'price' });
 */
export class CatalogStore {
  /**
   * Set once the catalog was found at the current layout with no transaction open, i.e.
   * committed: no ROLLBACK can take it away then. Inside a transaction (which may have
   * created it) it is checked again on every use.
   */
  private found = false;
  /** How this host writes the catalog (Postgres: through modelsql's own functions). */
  private readonly writer: CatalogWriter;
  private sealer: SecretCipher | undefined;
  /** The catalog schema as SQL (`ml_catalog`, or `"db".ml_catalog` for an attached database). */
  private readonly c: string;

  constructor(
    private readonly host: Host,
    private readonly options: CatalogStoreOptions = {},
  ) {
    this.c = catalogSchema(options.database);
    this.writer = host.dialect.roles?.catalogWriter(host) ?? new SqlCatalogWriter(host, this.c);
  }

  /** The attached database this store's catalog is in; undefined for the current database's. */
  get database(): string | undefined {
    return this.options.database;
  }

  /** The cipher of literal secrets, from the options or the environment (read on first use). */
  get cipher(): SecretCipher {
    this.sealer ??= SecretCipher.fromSetting(this.options.secretKey);
    return this.sealer;
  }

  /**
   * Creates the catalog on first use and upgrades an older one automatically, in one
   * transaction (catalog-layout.ts); refuses a catalog written by a newer modelsql (55000).
   */
  async ensure(): Promise<void> {
    await this.prepare();
  }

  /**
   * {@link ensure}; false, changing nothing, when an attached read-only database holds no
   * catalog and `absentOk` (nothing to read there). A read-only database whose catalog
   * would have to be created or upgraded otherwise fails with 25006.
   */
  private async prepare(absentOk = false): Promise<boolean> {
    if (this.found) return true;
    const database = this.options.database;
    const plan = await planCatalogUpgrade(this.host, database);
    if (plan.from === plan.to) {
      this.found = !(await this.host.inTransaction());
      return true;
    }
    if (database !== undefined && (await this.host.attachedDatabase?.(database))?.readOnly) {
      if (absentOk && plan.from === 0) return false;
      throw new ModelSqlError(
        '25006',
        `database ${quoteIdentifier(database)} is attached read-only: its model catalog cannot be ${plan.from === 0 ? 'created' : `upgraded from layout ${plan.from}`} there (ATTACH it without READ_ONLY)`,
      );
    }
    try {
      try {
        await applyCatalogUpgrade(this.host, plan, { secretKey: this.options.secretKey });
      } catch (error) {
        // Another client upgraded it meanwhile (40001, nothing ran): once more from its layout.
        if (!(error instanceof ModelSqlError && error.sqlstate === '40001')) throw error;
        await applyCatalogUpgrade(this.host, await planCatalogUpgrade(this.host, database), { secretKey: this.options.secretKey });
      }
    } catch (error) {
      // 42501 insufficient_privilege: only the role owning the catalog (or a superuser) can change its tables.
      // A role without rights on an older catalog's tables sees no catalog at all (layout 0).
      if (error instanceof ModelSqlError && error.sqlstate === '42501') {
        throw new ModelSqlError(
          '42501',
          `the model catalog (schema ml_catalog) is missing or older than layout ${CATALOG_VERSION}, and this role may not create or upgrade it (${error.message.split('\n')[0]}): run a model statement once as the role owning ml_catalog, or, for a new catalog, as a role with CREATE on the database`,
          { cause: error },
        );
      }
      throw error;
    }
    return true;
  }

  /**
   * 25006 when this store's database is attached read-only (DuckDB `ATTACH ... (READ_ONLY)`):
   * its models can be read and run, not created, changed or dropped.
   */
  async checkWritable(position?: SourcePosition): Promise<void> {
    const database = this.options.database;
    if (database !== undefined && (await this.host.attachedDatabase?.(database))?.readOnly) {
      throw new ModelSqlError('25006', `database ${quoteIdentifier(database)} is attached read-only: models cannot be created, changed or dropped there (ATTACH it without READ_ONLY)`, { position });
    }
  }

  /**
   * The one catalog look-up: the session's current schema and database, and the models
   * `refs` name with every version (without their secrets: see {@link secrets}), in ONE
   * query run as the session's user. The name of a ref without a schema is looked up in
   * the current schema of that same query, so a `SET search_path` / `USE` in between
   * cannot split them. Nothing is cached: every call reads the catalog as it is now. On
   * hosts that read session settings, the same query reads them ({@link CatalogLookup.session}),
   * and names nothing the search path could change.
   *
   * @example
   * const { currentSchema, models } = await store.lookup([{ name: 'price' }, { schema: 'ops', name: 'churn' }]);
   */
  async lookup(refs: readonly ModelRef[]): Promise<CatalogLookup> {
    const params: string[] = [];
    const param = (value: string): string => {
      params.push(value);
      return `$${params.length}`;
    };
    const d = this.host.dialect;
    const matches = refs.map((r) => `(${d.operator('model_name', '=', param(r.name))} AND ${d.operator('schema_name', '=', r.schema === undefined ? d.call('current_schema') : param(r.schema))})`);
    return { ...(await this.read(matches.length === 0 ? 'FALSE' : matches.join(' OR '), params)), refs };
  }

  /** Every persistent model, optionally of one schema, ordered by schema and name (versions without secrets). */
  async list(schema?: string): Promise<readonly ModelEntry[]> {
    return (await this.read(schema === undefined ? 'TRUE' : this.host.dialect.operator('schema_name', '=', '$1'), schema === undefined ? [] : [schema])).models;
  }

  /** One persistent model (versions without secrets), or undefined. */
  async get(key: ModelKey): Promise<ModelEntry | undefined> {
    return (await this.lookup([key])).models[0];
  }

  /**
   * The literal secrets stored for a version, by option key, opened with this process's key
   * (secret-cipher.ts). Only versions whose readable options hold the placeholder have any
   * (`hasStoredSecrets`), so only those need this read. Through the view `usable_secrets`:
   * on hosts with roles it keeps the secrets of the models the caller may use.
   *
   * @throws ModelSqlError 55000 when there are secrets and this process has no key.
   */
  async secrets(version: ModelKey & { readonly version: number }, owner: string): Promise<readonly (readonly [string, string])[]> {
    const r = await this.host.execute(`SELECT option_key, secret FROM ${this.c}.usable_secrets WHERE schema_name = $1 AND model_name = $2 AND version = $3 ORDER BY option_key`, [
      version.schema,
      version.name,
      version.version,
    ]);
    return r.rows.map((row) => [String(row[0]), this.cipher.open(String(row[1]), { owner, option: String(row[0]) })] as const);
  }

  /**
   * Models and versions matching `filter` (a condition over `schema_name` and `model_name`,
   * which every catalog table has), in one query; a version carries the digests of its
   * spec and stored ONNX artifacts, when the catalog holds them, and its identity as the
   * host assigned it (`ModelVersion.storedId`: the host's instance, the model's id and the
   * dialect's `storedVersionIdentity` of the version row), which the runtime loader keys
   * catalog-held runtimes by: the checksums and timestamps are the writer's to choose (a
   * catalog import keeps them), the identity is not. The query is a UNION ALL
   * of plain scans, one per table, rows tagged by kind, each row with the current schema and database (known when any row matched):
   * on DuckDB a small query costs about one pipeline per scan, and joins, sorts or a
   * separate row for the current schema would add more. On hosts that read session
   * settings, one more row (kind 0) carries them, and every name is the dialect's.
   */
  private async read(filter: string, params: readonly string[]): Promise<Omit<CatalogLookup, 'refs'>> {
    if (!(await this.prepare(true))) return { currentSchema: undefined, currentDatabase: undefined, models: [] };
    const d = this.host.dialect;
    const text = (expression: string) => `CAST(${expression} AS ${d.catalogTypes.text})`;
    const nulls = (count: number) => Array.from({ length: count }, () => text('NULL')).join(', ');
    const session = `${text(d.call('current_schema'))}, ${text(d.call('current_database'))}`;
    const artifact = (name: string) => d.operator('artifact_name', '=', `'${name}'`);
    const reading = d.sessionReading;
    // Sent by every ML statement, with only the names changing: kept prepared where the host can.
    const r = await this.host.execute(
      [
        `SELECT 1 AS kind, ${session}, schema_name, model_name, default_version, owner, ${text('created_at')}, ${text('updated_at')}, ${text('model_id')}, ${nulls(5)} FROM ${this.c}.models WHERE ${filter}`,
        `SELECT 2, ${session}, schema_name, model_name, version, provider, task, input_schema, output_schema, options, comment, as_query, ${text('created_at')}, ${text(d.storedVersionIdentity ?? 'NULL')} FROM ${this.c}.model_versions WHERE ${filter}`,
        `SELECT 3, ${session}, schema_name, model_name, version, sha256, artifact_name, ${nulls(7)} FROM ${this.c}.artifacts WHERE (${artifact(SPEC_ARTIFACT)} OR ${artifact(ONNX_ARTIFACT)}) AND (${filter})`,
        ...(reading === undefined ? [] : [`SELECT 0, ${session}, ${reading.unsafeSearchPath}, ${text(reading.statementTimeout)}, NULL, ${nulls(9)}`]),
      ].join(' UNION ALL '),
      params,
      { repeated: true },
    );
    const rows = (kind: number) => r.rows.filter((row) => Number(row[0]) === kind).map((row) => row.slice(3));
    const key = (row: readonly unknown[], version?: unknown) => JSON.stringify([row[0], row[1], ...(version === undefined ? [] : [Number(version)])]);
    const digests = (artifact: string) => new Map(rows(3).filter((row) => row[4] === artifact).map((row) => [key(row, row[2]), String(row[3])]));
    const specs = digests(SPEC_ARTIFACT);
    const graphs = digests(ONNX_ARTIFACT);
    // A version's identity: the host's names of its instance, its model row (id) and its version row (ModelVersion.storedId).
    // Not the model's updated_at: every write to the model (a default-version change) would
    // give every version a new identity, and the runtime loader a new runtime for each.
    const modelIds = new Map(rows(1).map((row) => [key(row), row[6] ?? null]));
    const instance = this.host.instanceId ?? null;
    const versions = new Map<string, ModelVersion[]>();
    for (const row of rows(2)) {
      const v = versionFromRow(row);
      const spec = specs.get(key(row, v.version));
      const graph = graphs.get(key(row, v.version));
      const storedId = JSON.stringify([instance, this.options.database ?? null, modelIds.get(key(row)) ?? null, row[11] ?? null]);
      versions.set(key(row), [...(versions.get(key(row)) ?? []), { ...v, ...(spec === undefined ? {} : { specSha256: spec }), ...(graph === undefined ? {} : { onnxSha256: graph }), storedId }]);
    }
    const database = this.options.database === undefined ? {} : { database: this.options.database };
    const models: ModelEntry[] = rows(1).map((row) => ({
      ...database,
      schema: String(row[0]),
      name: String(row[1]),
      defaultVersion: Number(row[2]),
      owner: String(row[3] ?? ''),
      createdAt: String(row[4]),
      updatedAt: String(row[5]),
      temporary: false,
      versions: (versions.get(key(row)) ?? []).sort((a, b) => a.version - b.version).map((v) => ({ ...database, ...v })),
    }));
    models.sort((a, b) => compareText(a.schema, b.schema) || compareText(a.name, b.name));
    const first = r.rows[0];
    const known = (value: unknown) => (value === null || value === undefined ? undefined : String(value));
    const read = rows(0)[0];
    const settings = read === undefined ? {} : { session: { unsafeSearchPath: known(read[0]), statementTimeout: known(read[1]) } };
    return { currentSchema: known(first?.[1]), currentDatabase: known(first?.[2]), models, ...settings };
  }

  /**
   * Adds a version (and the model row, owned by the current role, when it is the first);
   * makes it the default. Literal secrets are sealed for the model's owner first, so a
   * process without the key changes nothing.
   *
   * @throws DuplicateModelError (42710) when another role's model, invisible to this one, has the name.
   */
  async addVersion(
    version: Omit<ModelVersion, 'createdAt'>,
    artifacts: readonly { name: string; content: Uint8Array; sha256: string }[] = [],
    metrics: readonly (readonly [string, number])[] = [],
  ): Promise<void> {
    await this.ensure();
    await this.host.transaction(async () => {
      const existing = await this.host.execute(`SELECT owner FROM ${this.c}.models WHERE schema_name = $1 AND model_name = $2`, [version.schema, version.name]);
      const owner = existing.rows.length === 0 ? await this.currentRole() : String(existing.rows[0]![0]);
      const { secrets, createdAt: _createdAt, ...readable } = version as ModelVersion;
      try {
        await this.writer.addVersion({ version: readable, sealedSecrets: this.seal(secrets, owner), artifacts, metrics, owner });
      } catch (error) {
        // 23505 unique_violation of models_name (Postgres).
        if (error instanceof ModelSqlError && (error.sqlstate === '23505' || error.sqlstate === '42710') && existing.rows.length === 0) {
          throw new DuplicateModelError(`model ${quoteIdentifier(version.schema)}.${quoteIdentifier(version.name)} already exists (owned by a role whose models this one may not see)`);
        }
        throw error;
      }
    });
  }

  /**
   * Writes whole imported versions (catalog-import.ts): a new model keeps the snapshot's
   * owner and timestamps, checked by the host like any other write.
   */
  async importVersion(write: Omit<VersionWrite, 'sealedSecrets'>, secrets: readonly (readonly [string, string])[], owner: string): Promise<void> {
    await this.ensure();
    await this.writer.addVersion({ ...write, sealedSecrets: this.seal(secrets, owner) });
  }

  /** Literal secrets sealed for a model of `owner`. */
  private seal(secrets: readonly (readonly [string, string])[] | undefined, owner: string): readonly (readonly [string, string])[] {
    return (secrets ?? []).map(([option, value]) => [option, this.cipher.seal(value, { owner, option })] as const);
  }

  /** The role statements run as: the connection's role on hosts with roles, else the operating-system user. */
  async currentRole(): Promise<string> {
    const roles = this.host.dialect.roles;
    if (!roles) return osUser();
    return String((await this.host.execute(roles.currentRole)).rows[0]![0]);
  }

  /** Whether the host has roles (model owners are roles, grants are given to roles). */
  get hasRoles(): boolean {
    return this.host.dialect.roles !== undefined;
  }

  /** Whether `name` is a role of the host that can own a model (not `public`); false on hosts without roles. */
  async isRole(name: string): Promise<boolean> {
    const roles = this.host.dialect.roles;
    if (!roles || name === 'public') return false;
    return (await this.host.execute(roles.roleExists, [name])).rows.length > 0;
  }

  /**
   * Whether the current role may alter, drop and grant a model: always on hosts without
   * roles; on others the owner, its members and the catalog's owner (and superusers).
   */
  async mayAlter(entry: ModelEntry): Promise<boolean> {
    const roles = this.host.dialect.roles;
    if (!roles || entry.temporary) return true;
    return (await this.host.execute(roles.mayAlter, [entry.owner])).rows[0]![0] === true;
  }

  /** Whether a persistent model of this name exists, also one the current role may not see (hosts with roles). */
  async taken(key: ModelKey): Promise<boolean> {
    const roles = this.host.dialect.roles;
    if (!roles) return false;
    await this.ensure();
    return (await this.host.execute(roles.modelTaken, [key.schema, key.name])).rows.length > 0;
  }

  /** The roles granted USAGE on a model (`public` for every role), in name order. */
  async grantees(key: ModelKey): Promise<string[]> {
    const r = await this.host.execute(`SELECT DISTINCT grantee FROM ${this.c}.model_grants WHERE schema_name = $1 AND model_name = $2 ORDER BY grantee`, [key.schema, key.name]);
    return r.rows.map((row) => String(row[0]));
  }

  /** Records (or, with `grant` false, removes) USAGE on a model for `role`; a repeated grant adds nothing. */
  async setGrant(entry: ModelEntry, role: string, grant: boolean): Promise<void> {
    await this.writer.setGrant(entry, role, grant);
  }

  /**
   * Replaces the options (and task/provider, literal secrets) of one stored version; with
   * `dropArtifact`, removes that stored artifact of the version too.
   */
  async updateVersion(version: ModelVersion, owner: string, dropArtifact?: string): Promise<void> {
    const { schema, name, provider, task, options } = version;
    await this.writer.updateVersion({ schema, name, version: version.version, provider, task, options, sealedSecrets: this.seal(version.secrets, owner), dropArtifact });
  }

  /** Sets the version ML_PREDICT uses when none is named. */
  async setDefaultVersion(key: ModelKey, version: number): Promise<void> {
    await this.writer.setDefaultVersion(key, version);
  }

  /** Moves a model, with every version and artifact, to a new name. */
  async rename(from: ModelKey, to: ModelKey): Promise<void> {
    await this.writer.rename(from, to);
  }

  /** Drops one version (or, with `version` undefined, the whole model). */
  async drop(key: ModelKey, version?: number): Promise<void> {
    await this.writer.drop(key, version);
  }

  /** The stored artifact bytes of a version, if any. */
  async artifact(version: ModelVersion, name: string): Promise<Uint8Array | undefined> {
    const r = await this.host.execute(
      `SELECT content FROM ${this.c}.artifacts WHERE schema_name = $1 AND model_name = $2 AND version = $3 AND artifact_name = $4`,
      [version.schema, version.name, version.version, name],
    );
    return r.rows.length === 0 ? undefined : (r.rows[0]![0] as Uint8Array);
  }

  /** Training metrics of a version, by name. */
  async metrics(version: ModelVersion): Promise<readonly (readonly [string, number])[]> {
    const r = await this.host.execute(
      `SELECT metric, value FROM ${this.c}.training_metrics WHERE schema_name = $1 AND model_name = $2 AND version = $3 ORDER BY metric`,
      [version.schema, version.name, version.version],
    );
    return r.rows.map((row) => [String(row[0]), Number(row[1])] as const);
  }

  /** Records one prediction run in the lineage log (`temporary`: of a TEMPORARY model). */
  async recordRun(run: { runId: string; version: ModelVersion; temporary?: boolean; inputRelation: string; rows: number; errors: number; startedAt: Date; durationMs: number; tokens?: number; cacheHits?: number }): Promise<void> {
    // A model of a read-only attached database runs, unlogged: its log cannot be written.
    if (this.options.database !== undefined && (await this.host.attachedDatabase?.(this.options.database))?.readOnly) return;
    await this.ensure();
    await this.writer.recordRun({ ...run, startedAt: timestampText(run.startedAt) });
  }
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** `YYYY-MM-DD HH:MM:SS.sss` in UTC, as both hosts read and print timestamps. */
export function timestampText(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

/** A `kind` 2 row of `read` after its first three columns: schema, name, version, provider, task, input, output, options, comment, as_query, created_at. */
function versionFromRow(row: readonly unknown[]): ModelVersion {
  const [schema, name, version, provider, task, input, output, options, comment, asQuery, createdAt] = row;
  return {
    schema: String(schema),
    name: String(name),
    version: Number(version),
    provider: String(provider),
    task: task === null ? undefined : String(task),
    input: JSON.parse(String(input)) as ModelColumn[],
    output: JSON.parse(String(output)) as ModelColumn[],
    options: JSON.parse(String(options)) as [string, string][],
    comment: comment === null ? undefined : String(comment),
    asQuery: asQuery === null ? undefined : String(asQuery),
    createdAt: String(createdAt),
  };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
