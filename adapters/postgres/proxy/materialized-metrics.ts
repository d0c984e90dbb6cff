/**
 * Prometheus metrics of the materialized tables a proxy's refreshers keep fresh
 * (proxy-refresher.ts), per table (`database`, `schema`, `table` labels), in the proxy's
 * registry (proxy-metrics.ts): refreshes, rows refreshed, predicted and deleted, rows asked
 * of the model's provider, errors, and the last refresh's lag. They count this proxy's
 * refreshes; the totals of every refresher of a table (other proxies, `modelsql worker`,
 * `ALTER ... REFRESH`) are in the catalog (`DESCRIBE MATERIALIZED TABLE`).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { MaterializedTable, RefreshOutcome } from '../../../core/materialized/materialized-store.js';

const LABELS = ['database', 'schema', 'table'] as const;
type Label = (typeof LABELS)[number];

/**
 * The materialized-table metrics of one proxy.
 *
 * @example
 * const mt = new MaterializedMetrics(metrics.registry);
 * mt.refreshed('shop', table, outcome);
 */
export class MaterializedMetrics {
  private readonly refreshes: Counter<Label | 'outcome'>;
  private readonly rows: Counter<Label | 'kind'>;
  private readonly providerRows: Counter<Label>;
  private readonly errors: Counter<Label>;
  private readonly lag: Gauge<Label>;
  private readonly duration: Gauge<Label>;

  constructor(registry: Registry) {
    const registers = [registry];
    const labelNames = [...LABELS];
    this.refreshes = new Counter({
      name: 'modelsql_materialized_refreshes_total',
      help: 'Refreshes of a materialized table by this proxy: refreshed (rows changed), skipped (another refresher held the table), error.',
      labelNames: [...labelNames, 'outcome'],
      registers,
    });
    this.rows = new Counter({
      name: 'modelsql_materialized_rows_total',
      help: 'Rows of a materialized table refreshed by this proxy: refreshed (result rows written or deleted), predicted (source rows sent to the model), deleted.',
      labelNames: [...labelNames, 'kind'],
      registers,
    });
    this.providerRows = new Counter({
      name: 'modelsql_materialized_provider_rows_total',
      help: "Rows of a materialized table's refreshes asked of the model's provider (predicted rows not answered from the prediction cache).",
      labelNames,
      registers,
    });
    this.errors = new Counter({ name: 'modelsql_materialized_refresh_errors_total', help: 'Failed refreshes of a materialized table by this proxy.', labelNames, registers });
    this.lag = new Gauge({
      name: 'modelsql_materialized_lag_seconds',
      help: "Lag of this proxy's last refresh of a materialized table: from the oldest change it applied to its commit.",
      labelNames,
      registers,
    });
    this.duration = new Gauge({ name: 'modelsql_materialized_refresh_seconds', help: "Duration of this proxy's last refresh of a materialized table.", labelNames, registers });
  }

  /** A refresh of `table` in `database` that changed rows, or (`outcome` undefined) that another refresher held. */
  refreshed(database: string, table: MaterializedTable, outcome: RefreshOutcome | undefined): void {
    const labels = { database, schema: table.schema, table: table.name };
    if (!outcome) {
      this.refreshes.inc({ ...labels, outcome: 'skipped' });
      return;
    }
    this.refreshes.inc({ ...labels, outcome: 'refreshed' });
    this.rows.inc({ ...labels, kind: 'refreshed' }, outcome.rowsRefreshed);
    this.rows.inc({ ...labels, kind: 'predicted' }, outcome.rowsPredicted);
    this.rows.inc({ ...labels, kind: 'deleted' }, outcome.rowsDeleted);
    this.providerRows.inc(labels, outcome.providerRows);
    this.duration.set(labels, outcome.durationMs / 1000);
    if (outcome.lagMs !== undefined) this.lag.set(labels, outcome.lagMs / 1000);
  }

  /** A refresh of `table` in `database` failed. */
  failed(database: string, table: MaterializedTable): void {
    const labels = { database, schema: table.schema, table: table.name };
    this.refreshes.inc({ ...labels, outcome: 'error' });
    this.errors.inc(labels);
  }
}
