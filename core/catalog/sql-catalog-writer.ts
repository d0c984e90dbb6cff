/**
 * The catalog writer of a host without roles (DuckDB): plain statements on the catalog
 * tables, in the SQL both hosts share (`$1` parameters). Every session of such a host may
 * change everything, so there is nothing to check. A model gets an id (`models.model_id`,
 * from the sequence `ml_catalog.model_ids`); its other rows are found by name, and a drop
 * removes every one of them (DuckDB's foreign keys cannot cascade:
 * https://duckdb.org/docs/stable/sql/constraints#foreign-keys).
 */
import { DuplicateModelError } from '../errors.js';
import type { Host } from '../host.js';
import { quoteString } from '../sql/format.js';
import type { CatalogWriter, RunRecord, VersionUpdate, VersionWrite } from './catalog-writer.js';
import type { ModelKey } from '../model-types.js';

/** Tables holding rows of one version, keyed by model name and version. */
const VERSION_TABLES = ['model_versions', 'artifacts', 'training_metrics', 'model_secrets'] as const;

const NOW = 'CAST(now() AS TIMESTAMP)';

/**
 * Writes the catalog with plain statements.
 *
 * @example
 * await new SqlCatalogWriter(host).setDefaultVersion({ schema: 'main', name: 'price' }, 2);
 */
export class SqlCatalogWriter implements CatalogWriter {
  /** `c`: the catalog schema as SQL (`ml_catalog`, or `"db".ml_catalog` in an attached database). */
  constructor(
    private readonly host: Host,
    private readonly c = 'ml_catalog',
  ) {}

  async addVersion(write: VersionWrite): Promise<void> {
    const v = write.version;
    await this.host.transaction(async () => {
      const found = await this.host.execute(`SELECT owner FROM ${this.c}.models WHERE schema_name = $1 AND model_name = $2`, [v.schema, v.name]);
      let owner: string;
      const defaultVersion = write.defaultVersion ?? v.version;
      if (found.rows.length === 0) {
        owner = write.owner ?? '';
        await this.host.execute(
          `INSERT INTO ${this.c}.models (model_id, schema_name, model_name, default_version, owner, created_at, updated_at) VALUES (nextval(${quoteString(`${this.c}.model_ids`)}), $1, $2, $3, $4, ${orNow(5)}, ${orNow(6)})`,
          [v.schema, v.name, defaultVersion, owner, write.modelCreatedAt ?? null, write.modelUpdatedAt ?? null],
        );
      } else {
        owner = String(found.rows[0]![0] ?? '');
        if (write.owner !== undefined && write.owner !== owner) throw new DuplicateModelError(`model ${v.schema}.${v.name} already exists, owned by another role`);
        await this.host.execute(`UPDATE ${this.c}.models SET default_version = $1, updated_at = ${NOW} WHERE schema_name = $2 AND model_name = $3`, [defaultVersion, v.schema, v.name]);
      }
      const key = [v.schema, v.name, v.version];
      await this.host.execute(
        `INSERT INTO ${this.c}.model_versions (schema_name, model_name, version, provider, task, input_schema, output_schema, options, comment, as_query, created_at, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, ${orNow(12)}, $11)`,
        [...key, v.provider, v.task ?? null, JSON.stringify(v.input), JSON.stringify(v.output), JSON.stringify(v.options), v.comment ?? null, v.asQuery ?? null, owner, v.createdAt ?? null],
      );
      for (const a of write.artifacts) {
        await this.host.execute(`INSERT INTO ${this.c}.artifacts (schema_name, model_name, version, artifact_name, content, sha256, owner) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [...key, a.name, a.content, a.sha256, owner]);
      }
      for (const [metric, value] of write.metrics) {
        await this.host.execute(`INSERT INTO ${this.c}.training_metrics (schema_name, model_name, version, metric, value, owner) VALUES ($1, $2, $3, $4, $5, $6)`, [...key, metric, value, owner]);
      }
      await this.writeSecrets(key, write.sealedSecrets, owner);
    });
  }

  async updateVersion(update: VersionUpdate): Promise<void> {
    await this.host.transaction(async () => {
      const found = await this.host.execute(`SELECT owner FROM ${this.c}.models WHERE schema_name = $1 AND model_name = $2`, [update.schema, update.name]);
      if (found.rows.length === 0) return;
      const key = [update.schema, update.name, update.version];
      await this.host.execute(`UPDATE ${this.c}.model_versions SET options = $4, provider = $5, task = $6 WHERE schema_name = $1 AND model_name = $2 AND version = $3`, [
        ...key,
        JSON.stringify(update.options),
        update.provider,
        update.task ?? null,
      ]);
      await this.writeSecrets(key, update.sealedSecrets, String(found.rows[0]![0] ?? ''));
      if (update.dropArtifact !== undefined) {
        await this.host.execute(`DELETE FROM ${this.c}.artifacts WHERE schema_name = $1 AND model_name = $2 AND version = $3 AND artifact_name = $4`, [...key, update.dropArtifact]);
      }
      await this.host.execute(`UPDATE ${this.c}.models SET updated_at = ${NOW} WHERE schema_name = $1 AND model_name = $2`, [update.schema, update.name]);
    });
  }

  async setDefaultVersion(key: ModelKey, version: number): Promise<void> {
    await this.host.execute(`UPDATE ${this.c}.models SET default_version = $1, updated_at = ${NOW} WHERE schema_name = $2 AND model_name = $3`, [version, key.schema, key.name]);
  }

  async rename(from: ModelKey, to: ModelKey): Promise<void> {
    await this.host.transaction(async () => {
      for (const table of ['models', ...VERSION_TABLES, 'model_grants']) {
        await this.host.execute(`UPDATE ${this.c}.${table} SET schema_name = $1, model_name = $2 WHERE schema_name = $3 AND model_name = $4`, [to.schema, to.name, from.schema, from.name]);
      }
      await this.host.execute(`UPDATE ${this.c}.models SET updated_at = ${NOW} WHERE schema_name = $1 AND model_name = $2`, [to.schema, to.name]);
    });
  }

  async drop(key: ModelKey, version?: number): Promise<void> {
    await this.host.transaction(async () => {
      const filter = version === undefined ? '' : ' AND version = $3';
      const params = version === undefined ? [key.schema, key.name] : [key.schema, key.name, version];
      for (const table of VERSION_TABLES) await this.host.execute(`DELETE FROM ${this.c}.${table} WHERE schema_name = $1 AND model_name = $2${filter}`, params);
      const left = await this.host.execute(`SELECT max(version) FROM ${this.c}.model_versions WHERE schema_name = $1 AND model_name = $2`, [key.schema, key.name]);
      const highest = left.rows[0]![0];
      if (highest === null || highest === undefined) {
        await this.host.execute(`DELETE FROM ${this.c}.model_grants WHERE schema_name = $1 AND model_name = $2`, [key.schema, key.name]);
        await this.host.execute(`DELETE FROM ${this.c}.models WHERE schema_name = $1 AND model_name = $2`, [key.schema, key.name]);
      } else {
        await this.host.execute(
          `UPDATE ${this.c}.models SET default_version = $1, updated_at = ${NOW} WHERE schema_name = $2 AND model_name = $3 AND default_version NOT IN (SELECT version FROM ${this.c}.model_versions WHERE schema_name = $2 AND model_name = $3)`,
          [Number(highest), key.schema, key.name],
        );
      }
    });
  }

  async setGrant(key: ModelKey, role: string, grant: boolean): Promise<void> {
    await this.host.transaction(async () => {
      const params = [key.schema, key.name, role];
      await this.host.execute(`DELETE FROM ${this.c}.model_grants WHERE schema_name = $1 AND model_name = $2 AND grantee = $3`, params);
      if (grant) {
        await this.host.execute(`INSERT INTO ${this.c}.model_grants (schema_name, model_name, grantee, owner, granted_by, granted_at) SELECT $1, $2, $3, owner, owner, ${NOW} FROM ${this.c}.models WHERE schema_name = $1 AND model_name = $2`, params);
      }
    });
  }

  async recordRun(run: RunRecord): Promise<void> {
    await this.host.execute(
      `INSERT INTO ${this.c}.prediction_runs (run_id, schema_name, model_name, version, input_relation, row_count, error_count, duration_ms, tokens, started_at, cache_hits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CAST($10 AS TIMESTAMP), $11)`,
      [run.runId, run.version.schema, run.version.name, run.version.version, run.inputRelation, run.rows, run.errors, run.durationMs, run.tokens ?? null, run.startedAt, run.cacheHits ?? null],
    );
  }

  /** Replaces the stored literal secrets of a version (`key`: schema, name, version). */
  private async writeSecrets(key: readonly unknown[], sealed: readonly (readonly [string, string])[], owner: string): Promise<void> {
    await this.host.execute(`DELETE FROM ${this.c}.model_secrets WHERE schema_name = $1 AND model_name = $2 AND version = $3`, key);
    for (const [option, secret] of sealed) {
      await this.host.execute(`INSERT INTO ${this.c}.model_secrets (schema_name, model_name, version, option_key, secret, owner) VALUES ($1, $2, $3, $4, $5, $6)`, [...key, option, secret, owner]);
    }
  }
}

/** Parameter `$n` as a timestamp, now() when it is NULL. */
function orNow(n: number): string {
  return `COALESCE(CAST($${n} AS TIMESTAMP), ${NOW})`;
}
