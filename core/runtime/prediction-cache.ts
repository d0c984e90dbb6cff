/**
 * The persistent prediction cache (SPEC §4): table `ml_catalog.prediction_cache` of the
 * host (catalog migration 2), one row per answered input, keyed by a hash of the provider,
 * the model, the options that change answers and the prompt (see
 * `RemoteRuntime.cacheKeys`). A repeated query, or one rerun after a crash or a cancel,
 * calls the provider only for rows without an answer.
 *
 * Answers are collected in memory as requests complete ({@link PredictionCache.remember})
 * and written by the executor between its own host calls ({@link PredictionCache.flush}):
 * after each appended batch, and when a stage ends, fails or is cancelled. A process killed
 * outright loses at most the answers since the last flush.
 */
import { ModelSqlError } from '../errors.js';
import type { Host } from '../host.js';

/** Keys per lookup statement, rows per insert statement. */
const LOOKUP_CHUNK = 10_000;
/** What a cache key is: a hex digest. */
const HEX = /^[0-9a-f]+$/;
const INSERT_CHUNK = 200;

/**
 * The cache of one stage's model.
 *
 * @example
 * const cache = new PredictionCache(host, 'openai', 'gpt-4o-mini');
 * const hits = await cache.lookup(keys);
 */
export class PredictionCache {
  private pending: { key: string; values: readonly unknown[] }[] = [];

  constructor(
    private readonly host: Host,
    private readonly provider: string,
    private readonly model: string,
  ) {}

  /**
   * Stored answers (OUTPUT values) by key, for the keys that have one. Keys are hex digests
   * (`RemoteRuntime.cacheKeys`), sent as ONE comma-separated text parameter that the host
   * splits (`string_to_array`, on DuckDB and Postgres alike): a long `IN` list of literals
   * or parameters costs the planner about 10 µs a key, the split a fraction of that.
   */
  async lookup(keys: readonly string[]): Promise<Map<string, unknown[]>> {
    const found = new Map<string, unknown[]>();
    const unique = [...new Set(keys)];
    const bad = unique.find((k) => !HEX.test(k));
    if (bad !== undefined) throw new ModelSqlError('XX000', `internal error: a prediction cache key is not a hex digest: ${JSON.stringify(bad)}`);
    for (let i = 0; i < unique.length; i += LOOKUP_CHUNK) {
      const list = unique.slice(i, i + LOOKUP_CHUNK).join(',');
      const r = await this.host.execute(`SELECT cache_key, answer FROM ml_catalog.prediction_cache WHERE cache_key IN (SELECT unnest(string_to_array($1, ',')))`, [list]);
      for (const row of r.rows) found.set(String(row[0]), JSON.parse(String(row[1])) as unknown[]);
    }
    return found;
  }

  /** Queues an answer for the next {@link flush}. */
  remember(key: string, values: readonly unknown[]): void {
    this.pending.push({ key, values });
  }

  /** Writes queued answers. */
  async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const chunk = this.pending.splice(0, INSERT_CHUNK);
      const rows = chunk.map((_, j) => `($${j * 4 + 1}, $${j * 4 + 2}, $${j * 4 + 3}, $${j * 4 + 4}, CAST(now() AS TIMESTAMP))`).join(', ');
      const params = chunk.flatMap((a) => [a.key, this.provider, this.model, JSON.stringify(a.values)]);
      await this.host.execute(`INSERT INTO ml_catalog.prediction_cache (cache_key, provider, model, answer, created_at) VALUES ${rows}`, params);
    }
  }
}
