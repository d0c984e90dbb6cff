/**
 * The model catalog as system tables in schema `ml_catalog` of the host database
 * (SPEC §4). Written in the SQL both hosts share (`$1` parameters); column types come
 * from the dialect. Uniqueness of (schema, model, version) is kept by the store inside
 * transactions rather than by index constraints, so that a rename can rewrite keys freely.
 */
import { userInfo } from 'node:os';
import { DuplicateModelError, ModelSqlError } from '../errors.js';
import type { Host } from '../host.js';
import { applyCatalogUpgrade, CATALOG_VERSION, planCatalogUpgrade } from './catalog-layout.js';
import type { ModelColumn } from '../runtime/model-runtime.js';
import { quoteIdentifier } from '../sql/format.js';

/** The catalog layout this modelsql writes; its migrations are in catalog-layout.ts. */
export { CATALOG_VERSION } from './catalog-layout.js';

/** A qualified model name inside one database. */
export interface ModelKey {
  readonly schema: string;
  readonly name: string;
}

/** One version of a model, as stored. */
export interface ModelVersion extends ModelKey {
  readonly version: number;
  readonly provider: string;
  readonly task?: string;
  readonly input: readonly ModelColumn[];
  readonly output: readonly ModelColumn[];
  /** Options in the order they were written. */
  readonly options: readonly (readonly [string, string])[];
  readonly comment?: string;
  /** The training query of `CREATE MODEL ... AS`. */
  readonly asQuery?: string;
  readonly createdAt: string;
  /**
   * Literal secrets (`api-key`) by option key, kept out of `options` (which hold
   * `'******'` in their place) and stored in `ml_catalog.model_secrets` (core/secrets.ts).
   */
  readonly secrets?: readonly (readonly [string, string])[];
}

/** A model with its versions. */
export interface ModelEntry extends ModelKey {
  readonly defaultVersion: number;
  readonly owner: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly temporary: boolean;
  /** Ascending by version. */
  readonly versions: readonly ModelVersion[];
}

/** Tables that hold per-version rows, rewritten together by rename and drop. */
const VERSIONED_TABLES = ['model_versions', 'artifacts', 'training_metrics', 'model_secrets'] as const;

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

  constructor(private readonly host: Host) {}

  /**
   * Creates the catalog on first use and upgrades an older one automatically, in one
   * transaction (catalog-layout.ts); refuses a catalog written by a newer modelsql (55000).
   */
  async ensure(): Promise<void> {
    if (this.found) return;
    const plan = await planCatalogUpgrade(this.host);
    if (plan.from === plan.to) {
      this.found = !(await this.host.inTransaction());
      return;
    }
    try {
      try {
        await applyCatalogUpgrade(this.host, plan);
      } catch (error) {
        // Another client upgraded it meanwhile (40001, nothing ran): once more from its layout.
        if (!(error instanceof ModelSqlError && error.sqlstate === '40001')) throw error;
        await applyCatalogUpgrade(this.host, await planCatalogUpgrade(this.host));
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
  }

  /** Every persistent model, optionally of one schema (and of one name), ordered by schema and name. */
  async list(schema?: string, name?: string): Promise<ModelEntry[]> {
    await this.ensure();
    const where = schema === undefined ? '' : name === undefined ? ' WHERE schema_name = $1' : ' WHERE schema_name = $1 AND model_name = $2';
    const params = schema === undefined ? [] : name === undefined ? [schema] : [schema, name];
    const models = await this.host.execute(
      `SELECT schema_name, model_name, default_version, owner, CAST(created_at AS ${this.host.dialect.catalogTypes.text}), CAST(updated_at AS ${this.host.dialect.catalogTypes.text}) FROM ml_catalog.models${where} ORDER BY schema_name, model_name`,
      params,
    );
    const versions = await this.host.execute(
      `SELECT schema_name, model_name, version, provider, task, input_schema, output_schema, options, comment, as_query, CAST(created_at AS ${this.host.dialect.catalogTypes.text}) FROM ml_catalog.model_versions${where} ORDER BY schema_name, model_name, version`,
      params,
    );
    // Through the view: on hosts with roles it keeps the secrets of the models the caller may use.
    const secretRows = await this.host.execute(`SELECT schema_name, model_name, version, option_key, secret FROM ml_catalog.usable_secrets${where} ORDER BY option_key`, params);
    const secrets = new Map<string, [string, string][]>();
    for (const row of secretRows.rows) {
      const key = JSON.stringify([row[0], row[1], Number(row[2])]);
      secrets.set(key, [...(secrets.get(key) ?? []), [String(row[3]), String(row[4])]]);
    }
    const byModel = new Map<string, ModelVersion[]>();
    for (const row of versions.rows) {
      const stored = versionFromRow(row);
      const found = secrets.get(JSON.stringify([stored.schema, stored.name, stored.version]));
      const v = found ? { ...stored, secrets: found } : stored;
      const key = JSON.stringify([v.schema, v.name]);
      byModel.set(key, [...(byModel.get(key) ?? []), v]);
    }
    return models.rows.map((row) => ({
      schema: String(row[0]),
      name: String(row[1]),
      defaultVersion: Number(row[2]),
      owner: String(row[3] ?? ''),
      createdAt: String(row[4]),
      updatedAt: String(row[5]),
      temporary: false,
      versions: byModel.get(JSON.stringify([row[0], row[1]])) ?? [],
    }));
  }

  /** One persistent model, or undefined. */
  async get(key: ModelKey): Promise<ModelEntry | undefined> {
    return (await this.list(key.schema, key.name))[0];
  }

  /**
   * Adds a version (and the model row, owned by the current role, when it is the first);
   * makes it the default. Every row of the version names the model's owner.
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
      const existing = await this.host.execute('SELECT owner FROM ml_catalog.models WHERE schema_name = $1 AND model_name = $2', [version.schema, version.name]);
      let owner: string;
      if (existing.rows.length === 0) {
        owner = await this.currentRole();
        try {
          await this.host.execute(
            'INSERT INTO ml_catalog.models VALUES ($1, $2, $3, $4, CAST(now() AS TIMESTAMP), CAST(now() AS TIMESTAMP))',
            [version.schema, version.name, version.version, owner],
          );
        } catch (error) {
          // 23505 unique_violation of models_name (Postgres).
          if (error instanceof ModelSqlError && error.sqlstate === '23505') {
            throw new DuplicateModelError(`model ${quoteIdentifier(version.schema)}.${quoteIdentifier(version.name)} already exists (owned by a role whose models this one may not see)`);
          }
          throw error;
        }
      } else {
        owner = String(existing.rows[0]![0]);
        await this.setDefaultVersion(version, version.version);
      }
      await this.host.execute('INSERT INTO ml_catalog.model_versions (schema_name, model_name, version, provider, task, input_schema, output_schema, options, comment, as_query, created_at, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CAST(now() AS TIMESTAMP), $11)', [
        version.schema,
        version.name,
        version.version,
        version.provider,
        version.task ?? null,
        JSON.stringify(version.input),
        JSON.stringify(version.output),
        JSON.stringify(version.options),
        version.comment ?? null,
        version.asQuery ?? null,
        owner,
      ]);
      for (const a of artifacts) {
        await this.host.execute('INSERT INTO ml_catalog.artifacts (schema_name, model_name, version, artifact_name, content, sha256, owner) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
          version.schema,
          version.name,
          version.version,
          a.name,
          a.content,
          a.sha256,
          owner,
        ]);
      }
      for (const [metric, value] of metrics) {
        await this.host.execute('INSERT INTO ml_catalog.training_metrics (schema_name, model_name, version, metric, value, owner) VALUES ($1, $2, $3, $4, $5, $6)', [version.schema, version.name, version.version, metric, value, owner]);
      }
      await this.writeSecrets(version, owner);
    });
  }

  /** Replaces the stored literal secrets of a version. */
  private async writeSecrets(version: Pick<ModelVersion, 'schema' | 'name' | 'version' | 'secrets'>, owner: string): Promise<void> {
    await this.host.execute('DELETE FROM ml_catalog.model_secrets WHERE schema_name = $1 AND model_name = $2 AND version = $3', [version.schema, version.name, version.version]);
    for (const [key, secret] of version.secrets ?? []) {
      await this.host.execute('INSERT INTO ml_catalog.model_secrets (schema_name, model_name, version, option_key, secret, owner) VALUES ($1, $2, $3, $4, $5, $6)', [
        version.schema,
        version.name,
        version.version,
        key,
        secret,
        owner,
      ]);
    }
  }

  /** The role statements run as: the connection's role on hosts with roles, else the operating-system user. */
  async currentRole(): Promise<string> {
    const roles = this.host.dialect.roles;
    if (!roles) return osUser();
    return String((await this.host.execute(roles.currentRole)).rows[0]![0]);
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
    const r = await this.host.execute('SELECT DISTINCT grantee FROM ml_catalog.model_grants WHERE schema_name = $1 AND model_name = $2 ORDER BY grantee', [key.schema, key.name]);
    return r.rows.map((row) => String(row[0]));
  }

  /** Records (or, with `grant` false, removes) USAGE on a model for `role`; a repeated grant adds nothing. */
  async setGrant(entry: ModelEntry, role: string, grant: boolean): Promise<void> {
    await this.host.transaction(async () => {
      const params = [entry.schema, entry.name, role];
      await this.host.execute('DELETE FROM ml_catalog.model_grants WHERE schema_name = $1 AND model_name = $2 AND grantee = $3', params);
      if (grant) {
        await this.host.execute('INSERT INTO ml_catalog.model_grants VALUES ($1, $2, $3, $4, $5, CAST(now() AS TIMESTAMP))', [...params, entry.owner, await this.currentRole()]);
      }
    });
  }

  /** Replaces the options (and task/provider) of one stored version. */
  async updateVersion(version: ModelVersion, owner: string): Promise<void> {
    await this.host.transaction(async () => {
      await this.host.execute(
        'UPDATE ml_catalog.model_versions SET options = $1, provider = $2, task = $3 WHERE schema_name = $4 AND model_name = $5 AND version = $6',
        [JSON.stringify(version.options), version.provider, version.task ?? null, version.schema, version.name, version.version],
      );
      await this.writeSecrets(version, owner);
      await this.touch(version);
    });
  }

  /** Sets the version ML_PREDICT uses when none is named. */
  async setDefaultVersion(key: ModelKey, version: number): Promise<void> {
    await this.host.execute(
      'UPDATE ml_catalog.models SET default_version = $1, updated_at = CAST(now() AS TIMESTAMP) WHERE schema_name = $2 AND model_name = $3',
      [version, key.schema, key.name],
    );
  }

  /** Moves a model, with every version and artifact, to a new name. */
  async rename(from: ModelKey, to: ModelKey): Promise<void> {
    await this.host.transaction(async () => {
      // The model row first: on hosts with roles, a renamed row must name the owner of the model of its new name.
      for (const table of ['models', ...VERSIONED_TABLES, 'model_grants']) {
        await this.host.execute(`UPDATE ml_catalog.${table} SET schema_name = $1, model_name = $2 WHERE schema_name = $3 AND model_name = $4`, [
          to.schema,
          to.name,
          from.schema,
          from.name,
        ]);
      }
      await this.touch(to);
    });
  }

  /** Drops one version (or, with `version` undefined, the whole model). */
  async drop(key: ModelKey, version?: number): Promise<void> {
    await this.host.transaction(async () => {
      const filter = version === undefined ? '' : ' AND version = $3';
      const params = version === undefined ? [key.schema, key.name] : [key.schema, key.name, version];
      for (const table of VERSIONED_TABLES) {
        await this.host.execute(`DELETE FROM ml_catalog.${table} WHERE schema_name = $1 AND model_name = $2${filter}`, params);
      }
      const left = await this.host.execute('SELECT max(version) FROM ml_catalog.model_versions WHERE schema_name = $1 AND model_name = $2', [key.schema, key.name]);
      const highest = left.rows[0]![0];
      if (highest === null || highest === undefined) {
        await this.host.execute('DELETE FROM ml_catalog.model_grants WHERE schema_name = $1 AND model_name = $2', [key.schema, key.name]);
        await this.host.execute('DELETE FROM ml_catalog.models WHERE schema_name = $1 AND model_name = $2', [key.schema, key.name]);
      } else {
        await this.host.execute(
          'UPDATE ml_catalog.models SET default_version = $1, updated_at = CAST(now() AS TIMESTAMP) WHERE schema_name = $2 AND model_name = $3 AND default_version NOT IN (SELECT version FROM ml_catalog.model_versions WHERE schema_name = $2 AND model_name = $3)',
          [Number(highest), key.schema, key.name],
        );
      }
    });
  }

  /** The stored artifact bytes of a version, if any. */
  async artifact(version: ModelVersion, name: string): Promise<Uint8Array | undefined> {
    const r = await this.host.execute(
      'SELECT content FROM ml_catalog.artifacts WHERE schema_name = $1 AND model_name = $2 AND version = $3 AND artifact_name = $4',
      [version.schema, version.name, version.version, name],
    );
    return r.rows.length === 0 ? undefined : (r.rows[0]![0] as Uint8Array);
  }

  /** Training metrics of a version, by name. */
  async metrics(version: ModelVersion): Promise<readonly (readonly [string, number])[]> {
    const r = await this.host.execute(
      'SELECT metric, value FROM ml_catalog.training_metrics WHERE schema_name = $1 AND model_name = $2 AND version = $3 ORDER BY metric',
      [version.schema, version.name, version.version],
    );
    return r.rows.map((row) => [String(row[0]), Number(row[1])] as const);
  }

  /** Records one prediction run in the lineage log. */
  async recordRun(run: { runId: string; version: ModelVersion; inputRelation: string; rows: number; errors: number; startedAt: Date; durationMs: number; tokens?: number; cacheHits?: number }): Promise<void> {
    await this.ensure();
    await this.host.execute('INSERT INTO ml_catalog.prediction_runs (run_id, schema_name, model_name, version, input_relation, row_count, error_count, duration_ms, tokens, started_at, cache_hits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CAST($10 AS TIMESTAMP), $11)', [
      run.runId,
      run.version.schema,
      run.version.name,
      run.version.version,
      run.inputRelation,
      run.rows,
      run.errors,
      run.durationMs,
      run.tokens ?? null,
      timestampText(run.startedAt),
      run.cacheHits ?? null,
    ]);
  }

  private async touch(key: ModelKey): Promise<void> {
    await this.host.execute('UPDATE ml_catalog.models SET updated_at = CAST(now() AS TIMESTAMP) WHERE schema_name = $1 AND model_name = $2', [key.schema, key.name]);
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

function versionFromRow(row: readonly unknown[]): ModelVersion {
  return {
    schema: String(row[0]),
    name: String(row[1]),
    version: Number(row[2]),
    provider: String(row[3]),
    task: row[4] === null ? undefined : String(row[4]),
    input: JSON.parse(String(row[5])) as ModelColumn[],
    output: JSON.parse(String(row[6])) as ModelColumn[],
    options: JSON.parse(String(row[7])) as [string, string][],
    comment: row[8] === null ? undefined : String(row[8]),
    asQuery: row[9] === null ? undefined : String(row[9]),
    createdAt: String(row[10]),
  };
}
