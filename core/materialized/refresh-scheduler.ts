/**
 * Keeps materialized tables fresh (`modelsql worker`): every ACTIVE table is refreshed when
 * its source changed (a notification from change capture, `notify(id)`) and at least once
 * per FRESHNESS interval. A refresh another refresher holds (Postgres: the table's refresh claim) is
 * skipped, not waited for: that one applies the changes. Tables are refreshed one at a
 * time, on the scheduler's one session.
 */
import type { MaterializedTables } from './materialized-tables.js';
import type { MaterializedTable, RefreshOutcome } from './materialized-store.js';

/** What a scheduler reports. */
export interface SchedulerOptions {
  /** After a refresh that did something (or that another refresher held: `outcome` undefined). */
  readonly onRefresh?: (table: MaterializedTable, outcome: RefreshOutcome | undefined) => void;
  /** After a refresh failed; the table is tried again at its next interval or notification. */
  readonly onError?: (table: MaterializedTable, error: unknown) => void;
  /** Longest sleep between passes, in ms, so that new tables and RESUMEs are seen (default 1000). */
  readonly pollMs?: number;
}

/**
 * Refreshes the materialized tables of one database as they come due. Give it a session of
 * its own: its refreshes run their SQL on that session without waiting for other calls'
 * statements (a statement of another call run meanwhile would land inside a refresh).
 *
 * @example
 * const scheduler = new RefreshScheduler(session.materialized);
 * listener.on('change', (id) => scheduler.notify(id));
 * await scheduler.run(); // until stop()
 */
export class RefreshScheduler {
  private readonly notified = new Set<number>();
  /** When each table was last refreshed or checked by this scheduler (ms since the epoch). */
  private readonly checked = new Map<number, number>();
  private stopped = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly tables: MaterializedTables,
    private readonly options: SchedulerOptions = {},
  ) {}

  /** The source of table `id` changed: refresh it at the next pass, and start that pass now. */
  notify(id: number): void {
    this.notified.add(id);
    this.wake?.();
  }

  /** Ends `run` after the refresh in progress. */
  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** One pass: refreshes each ACTIVE table that is due (with `all`, every ACTIVE table); resolves to the ms until the next one is due. */
  async runOnce(all = false): Promise<number> {
    const tables = await this.tables.store.refreshable();
    let next = Infinity;
    for (const table of tables) {
      if (this.stopped) break;
      if (table.status !== 'ACTIVE') continue;
      const interval = table.freshnessSeconds * 1000;
      const last = this.checked.get(table.id) ?? lastRefresh(table);
      const due = all || this.notified.has(table.id) || last === undefined || Date.now() - last >= interval;
      if (due) {
        this.notified.delete(table.id);
        this.checked.set(table.id, Date.now());
        try {
          const outcome = await this.tables.refreshAsOwner(table);
          if (outcome === undefined || outcome.rowsRefreshed > 0) this.options.onRefresh?.(table, outcome);
        } catch (error) {
          this.options.onError?.(table, error);
        }
      }
      next = Math.min(next, (this.checked.get(table.id) ?? Date.now()) + interval - Date.now());
    }
    return this.notified.size > 0 ? 0 : Math.max(0, next);
  }

  /** Passes until `stop()`, sleeping until the next table is due, a notification, or `pollMs`. */
  async run(): Promise<void> {
    while (!this.stopped) {
      const wait = Math.min(await this.runOnce(), this.options.pollMs ?? 1000);
      if (this.stopped || wait <= 0) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, wait);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
      this.wake = undefined;
    }
  }
}

/** The catalog's last refresh time of a table (UTC text), in ms since the epoch. */
function lastRefresh(table: MaterializedTable): number | undefined {
  const at = table.stats.lastRefreshAt;
  return at === undefined ? undefined : Date.parse(`${at.replace(' ', 'T')}Z`);
}
