/**
 * The catalog writer of Postgres (catalog layout 6): each change is one call of a
 * modelsql function (catalog-functions.ts) that learns the acting role from the calling
 * role itself (its `current_user`), checks that role's rights and writes the whole change.
 * One round trip per change.
 */
import type { CatalogWriter, RunRecord, VersionUpdate, VersionWrite } from '../../core/catalog/catalog-writer.js';
import type { Host } from '../../core/host.js';
import type { ModelKey } from '../../core/model-types.js';

/** `SELECT ml_catalog.<fn>($1, ..., $n)`. */
function call(fn: string, count: number): string {
  return `SELECT ml_catalog.${fn}(${Array.from({ length: count }, (_, i) => `$${i + 1}`).join(', ')})`;
}

/**
 * Writes the catalog through modelsql's functions.
 *
 * @example
 * await new PostgresCatalogWriter(host).drop({ schema: 'public', name: 'price' });
 */
export class PostgresCatalogWriter implements CatalogWriter {
  constructor(private readonly host: Host) {}

  async addVersion(write: VersionWrite): Promise<void> {
    const v = write.version;
    await this.host.execute(call('write_version', 22), [
      v.schema,
      v.name,
      write.owner ?? null,
      write.defaultVersion ?? null,
      write.modelCreatedAt ?? null,
      write.modelUpdatedAt ?? null,
      v.version,
      v.provider,
      v.task ?? null,
      JSON.stringify(v.input),
      JSON.stringify(v.output),
      JSON.stringify(v.options),
      v.comment ?? null,
      v.asQuery ?? null,
      v.createdAt ?? null,
      write.artifacts.map((a) => a.name),
      write.artifacts.map((a) => Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength)),
      write.artifacts.map((a) => a.sha256),
      write.metrics.map(([name]) => name),
      write.metrics.map(([, value]) => value),
      write.sealedSecrets.map(([key]) => key),
      write.sealedSecrets.map(([, value]) => value),
    ]);
  }

  async updateVersion(u: VersionUpdate): Promise<void> {
    await this.host.execute(call('update_version', 9), [
      u.schema,
      u.name,
      u.version,
      u.provider,
      u.task ?? null,
      JSON.stringify(u.options),
      u.sealedSecrets.map(([key]) => key),
      u.sealedSecrets.map(([, value]) => value),
      u.dropArtifact ?? null,
    ]);
  }

  async setDefaultVersion(key: ModelKey, version: number): Promise<void> {
    await this.host.execute(call('set_default_version', 3), [key.schema, key.name, version]);
  }

  async rename(from: ModelKey, to: ModelKey): Promise<void> {
    await this.host.execute(call('rename_model', 4), [from.schema, from.name, to.schema, to.name]);
  }

  async drop(key: ModelKey, version?: number): Promise<void> {
    await this.host.execute(call('drop_model', 3), [key.schema, key.name, version ?? null]);
  }

  async setGrant(key: ModelKey, role: string, grant: boolean): Promise<void> {
    await this.host.execute(call('set_grant', 4), [key.schema, key.name, role, grant]);
  }

  /** Sent after every model stage: kept prepared where the host can (`repeated`). */
  async recordRun(run: RunRecord): Promise<void> {
    await this.host.execute(
      call('record_run', 12),
      [
        run.temporary ?? false,
        run.runId,
        run.version.schema,
        run.version.name,
        run.version.version,
        run.inputRelation,
        run.rows,
        run.errors,
        run.durationMs,
        run.tokens ?? null,
        run.startedAt,
        run.cacheHits ?? null,
      ],
      { repeated: true },
    );
  }
}
