/**
 * The rows of `ml_catalog.materialized_tables` (catalog layout 5; on Postgres written through modelsql's functions, layout 7): one per materialized
 * table, with its definition, its state (ACTIVE / SUSPENDED, the model version its
 * predictions came from) and its refresh statistics.
 */
import type { Host, MaterializedCatalogSql } from '../host.js';
import type { RefreshMode } from '../sql/ast.js';
import { CatalogStore, timestampText } from '../catalog/catalog-store.js';

/** ACTIVE: kept fresh; SUSPENDED: left as it is until RESUME (Flink's states). */
export type MaterializedStatus = 'ACTIVE' | 'SUSPENDED';

/** A materialized table as the catalog holds it. */
export interface MaterializedTable {
  /** Unique in the database; names the table's private objects (`ml_catalog.mt_<id>_state`). */
  readonly id: number;
  readonly schema: string;
  readonly name: string;
  /** The CREATE statement as written. */
  readonly definition: string;
  /** The query after AS. */
  readonly query: string;
  readonly mode: RefreshMode;
  readonly freshnessSeconds: number;
  readonly status: MaterializedStatus;
  /** CONTINUOUS: the source table, its primary key and the model. */
  readonly source?: { readonly schema: string; readonly name: string };
  readonly sourceKey?: readonly string[];
  readonly model?: { readonly schema: string; readonly name: string };
  /** CONTINUOUS: the model version whose predictions the state holds (a new default version refreshes everything). */
  readonly modelVersion?: number;
  readonly comment?: string;
  readonly owner: string;
  readonly stats: RefreshStats;
}

/** What refreshes did, summed since CREATE, and the last one's figures. */
export interface RefreshStats {
  readonly lastRefreshAt?: string;
  readonly lastRefreshMs?: number;
  /** Commit of the oldest change the last refresh applied → that refresh's commit, in ms. */
  readonly lastLagMs?: number;
  readonly refreshCount: number;
  /** Result rows written or deleted. */
  readonly rowsRefreshed: number;
  /** Source rows sent to the model. */
  readonly rowsPredicted: number;
  readonly rowsDeleted: number;
  /** Rows the model's provider was asked for (predicted rows not answered from the prediction cache). */
  readonly providerRows: number;
  readonly errorCount: number;
  readonly lastError?: string;
}

/** The figures of one refresh, added to the totals by {@link MaterializedStore.recordRefresh}. */
export interface RefreshOutcome {
  readonly durationMs: number;
  readonly lagMs?: number;
  readonly rowsRefreshed: number;
  readonly rowsPredicted: number;
  readonly rowsDeleted: number;
  readonly providerRows: number;
  readonly modelVersion?: number;
}

const COLUMNS =
  'table_id, schema_name, table_name, definition, query, refresh_mode, freshness_seconds, status, source_schema, source_table, source_key, model_schema, model_name, model_version, comment, owner, ' +
  'CAST(last_refresh_at AS TEXT), last_refresh_ms, last_lag_ms, refresh_count, rows_refreshed, rows_predicted, rows_deleted, provider_rows, error_count, last_error';

/**
 * Reads and writes materialized tables' catalog rows.
 *
 * @example
 * const store = new MaterializedStore(host, catalogStore);
 * const table = await store.get('public', 'review_labels');
 */
export class MaterializedStore {
  constructor(
    private readonly host: Host,
    private readonly catalog: CatalogStore,
  ) {}

  /** Every materialized table, by schema and name. */
  async list(): Promise<MaterializedTable[]> {
    await this.catalog.ensure();
    const r = await this.host.execute(`SELECT ${COLUMNS} FROM ml_catalog.materialized_tables ORDER BY schema_name, table_name`);
    return r.rows.map(fromRow);
  }

  /** One materialized table, or undefined. */
  async get(schema: string, name: string): Promise<MaterializedTable | undefined> {
    await this.catalog.ensure();
    const r = await this.host.execute(`SELECT ${COLUMNS} FROM ml_catalog.materialized_tables WHERE schema_name = $1 AND table_name = $2`, [schema, name]);
    return r.rows.length === 0 ? undefined : fromRow(r.rows[0]!);
  }

  /** One materialized table by id, or undefined (dropped meanwhile). */
  async byId(id: number): Promise<MaterializedTable | undefined> {
    const r = await this.host.execute(`SELECT ${COLUMNS} FROM ml_catalog.materialized_tables WHERE table_id = $1`, [id]);
    return r.rows.length === 0 ? undefined : fromRow(r.rows[0]!);
  }

  /** The materialized tables reading `schema.name` as their source. */
  async readersOf(schema: string, name: string): Promise<MaterializedTable[]> {
    const r = await this.host.execute(`SELECT ${COLUMNS} FROM ml_catalog.materialized_tables WHERE source_schema = $1 AND source_table = $2 ORDER BY schema_name, table_name`, [schema, name]);
    return r.rows.map(fromRow);
  }

  /** The SQL of a host whose roles write the rows through functions of their own (Postgres). */
  private get writes(): MaterializedCatalogSql | undefined {
    return this.host.dialect.roles?.materialized;
  }

  /**
   * The materialized tables this session may refresh: on a host with roles, those of the
   * roles whose privileges it has (the catalog owner sees every table but may not write
   * another role's result table).
   */
  async refreshable(): Promise<MaterializedTable[]> {
    const tables = await this.list();
    const writes = this.writes;
    if (!writes) return tables;
    const may = new Map<string, boolean>();
    for (const owner of new Set(tables.map((t) => t.owner))) may.set(owner, (await this.host.execute(writes.mayRefresh, [owner])).rows[0]![0] === true);
    return tables.filter((t) => may.get(t.owner));
  }

  /** Adds the row of a new materialized table (statistics zero), in the caller's transaction; resolves to its id. */
  async insert(table: Omit<MaterializedTable, 'stats' | 'owner' | 'id'>): Promise<number> {
    const values = [
      table.schema,
      table.name,
      table.definition,
      table.query,
      table.mode,
      table.freshnessSeconds,
      table.status,
      table.source?.schema ?? null,
      table.source?.name ?? null,
      table.sourceKey ? JSON.stringify(table.sourceKey) : null,
      table.model?.schema ?? null,
      table.model?.name ?? null,
      table.modelVersion ?? null,
      table.comment ?? null,
    ];
    if (this.writes) return Number((await this.host.execute(this.writes.create, values)).rows[0]![0]);
    const id = Number((await this.host.execute('SELECT coalesce(max(table_id), 0) + 1 FROM ml_catalog.materialized_tables')).rows[0]![0]);
    await this.host.execute(
      'INSERT INTO ml_catalog.materialized_tables (table_id, schema_name, table_name, definition, query, refresh_mode, freshness_seconds, status, source_schema, source_table, source_key, model_schema, model_name, model_version, comment, owner, created_at, updated_at, refresh_count, rows_refreshed, rows_predicted, rows_deleted, provider_rows, error_count) ' +
        'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, CAST(now() AS TIMESTAMP), CAST(now() AS TIMESTAMP), 0, 0, 0, 0, 0, 0)',
      [id, ...values, await this.catalog.currentRole()],
    );
    return id;
  }

  /** Changes the state or settings of a materialized table. */
  async update(id: number, change: { readonly status?: MaterializedStatus; readonly freshnessSeconds?: number; readonly mode?: RefreshMode }): Promise<void> {
    if (this.writes) {
      await this.host.execute(this.writes.alter, [id, change.status ?? null, change.freshnessSeconds ?? null, change.mode ?? null]);
      return;
    }
    const sets: string[] = [];
    const params: unknown[] = [];
    const set = (column: string, value: unknown) => {
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    };
    if (change.status !== undefined) set('status', change.status);
    if (change.freshnessSeconds !== undefined) set('freshness_seconds', change.freshnessSeconds);
    if (change.mode !== undefined) set('refresh_mode', change.mode);
    params.push(id);
    await this.host.execute(`UPDATE ml_catalog.materialized_tables SET ${sets.join(', ')}, updated_at = CAST(now() AS TIMESTAMP) WHERE table_id = $${params.length}`, params);
  }

  /** Adds one refresh's figures to the totals (inside the refresh's transaction). */
  async recordRefresh(id: number, outcome: RefreshOutcome, finishedAt: Date): Promise<void> {
    const values = [timestampText(finishedAt), outcome.durationMs, outcome.lagMs ?? null, outcome.rowsRefreshed, outcome.rowsPredicted, outcome.rowsDeleted, outcome.providerRows, outcome.modelVersion ?? null];
    if (this.writes) {
      await this.host.execute(this.writes.recordRefresh, [id, ...values]);
      return;
    }
    await this.host.execute(
      'UPDATE ml_catalog.materialized_tables SET last_refresh_at = CAST($1 AS TIMESTAMP), last_refresh_ms = $2, last_lag_ms = $3, refresh_count = refresh_count + 1, rows_refreshed = rows_refreshed + $4, rows_predicted = rows_predicted + $5, rows_deleted = rows_deleted + $6, provider_rows = provider_rows + $7, model_version = coalesce($8, model_version), last_error = NULL WHERE table_id = $9',
      [...values, id],
    );
  }

  /** Counts a failed refresh and keeps its message. */
  async recordError(id: number, message: string): Promise<void> {
    if (this.writes) await this.host.execute(this.writes.recordError, [id, message.slice(0, 2000)]);
    else await this.host.execute('UPDATE ml_catalog.materialized_tables SET error_count = error_count + 1, last_error = $1 WHERE table_id = $2', [message.slice(0, 2000), id]);
  }

  /** Removes the row (on a host with roles, the table's private objects too). */
  async delete(id: number): Promise<void> {
    if (this.writes) await this.host.execute(this.writes.drop, [id]);
    else await this.host.execute('DELETE FROM ml_catalog.materialized_tables WHERE table_id = $1', [id]);
  }
}

function fromRow(row: readonly unknown[]): MaterializedTable {
  const text = (v: unknown) => (v === null || v === undefined ? undefined : String(v));
  const num = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));
  const [id, schema, name, definition, query, mode, freshness, status, sourceSchema, sourceTable, sourceKey, modelSchema, modelName, modelVersion, comment, owner] = row;
  const [lastAt, lastMs, lagMs, count, refreshed, predicted, deleted, providerRows, errors, lastError] = row.slice(16);
  return {
    id: Number(id),
    schema: String(schema),
    name: String(name),
    definition: String(definition),
    query: String(query),
    mode: String(mode) as RefreshMode,
    freshnessSeconds: Number(freshness),
    status: String(status) as MaterializedStatus,
    ...(sourceSchema !== null ? { source: { schema: String(sourceSchema), name: String(sourceTable) } } : {}),
    ...(sourceKey !== null ? { sourceKey: JSON.parse(String(sourceKey)) as string[] } : {}),
    ...(modelSchema !== null ? { model: { schema: String(modelSchema), name: String(modelName) } } : {}),
    ...(modelVersion !== null ? { modelVersion: Number(modelVersion) } : {}),
    ...(comment !== null ? { comment: String(comment) } : {}),
    owner: String(owner),
    stats: {
      ...(lastAt !== null ? { lastRefreshAt: text(lastAt) } : {}),
      ...(lastMs !== null ? { lastRefreshMs: num(lastMs) } : {}),
      ...(lagMs !== null ? { lastLagMs: num(lagMs) } : {}),
      refreshCount: Number(count),
      rowsRefreshed: Number(refreshed),
      rowsPredicted: Number(predicted),
      rowsDeleted: Number(deleted),
      providerRows: Number(providerRows),
      errorCount: Number(errors),
      ...(lastError !== null ? { lastError: String(lastError) } : {}),
    },
  };
}
