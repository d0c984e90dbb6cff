/**
 * `modelsql worker`: keeps the materialized tables of one database fresh
 * (core/materialized/refresh-scheduler.ts). On Postgres it listens for change capture's
 * notifications, so a changed source is refreshed at once; on DuckDB (one writer per file)
 * each table is refreshed every FRESHNESS interval. One line per refresh on stdout; SIGINT
 * or SIGTERM ends it after the refresh in progress.
 */
import { listenForChanges, type ChangeListener } from '../adapters/postgres/index.js';
import type { ModelSession } from '../core/session/model-session.js';
import type { Session } from '../core/session/session.js';
import { RefreshScheduler } from '../core/materialized/refresh-scheduler.js';
import type { RefreshOutcome } from '../core/materialized/materialized-store.js';

/** What the worker prints and where its session is. */
export interface WorkerIo {
  readonly write: (text: string) => void;
  readonly writeError: (text: string) => void;
  readonly formatError: (error: unknown) => string;
}

/**
 * Runs the worker on `session` until a signal (or, with `once`, for one pass). `postgres`
 * is the URL to listen on for notifications. Resolves to the exit status.
 */
export async function runWorker(session: Session, options: { readonly postgres?: string; readonly once: boolean }, io: WorkerIo): Promise<number> {
  const tables = (session as ModelSession).materialized;
  let failed = false;
  const scheduler = new RefreshScheduler(tables, {
    onRefresh: (table, outcome) => io.write(`${table.schema}.${table.name}: ${describeOutcome(outcome)}\n`),
    onError: (table, error) => io.writeError(`${table.schema}.${table.name}: refresh failed: ${io.formatError(error)}\n`),
  });
  if (options.once) {
    await scheduler.runOnce(true);
    return 0;
  }
  let listener: ChangeListener | undefined;
  if (options.postgres !== undefined) {
    listener = await listenForChanges(options.postgres, (id) => scheduler.notify(id), (error) => {
      io.writeError(`modelsql worker: the notification connection failed: ${io.formatError(error)}\n`);
      failed = true;
      scheduler.stop();
    });
  }
  io.write(`modelsql worker: started${listener ? ', listening for changes' : ''} (SIGINT or SIGTERM stops it)\n`);
  const stop = (): void => scheduler.stop();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    await scheduler.run();
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await listener?.close().catch(() => undefined);
  }
  return failed ? 1 : 0;
}

function describeOutcome(outcome: RefreshOutcome | undefined): string {
  if (!outcome) return 'another refresher is refreshing it; skipped';
  const lag = outcome.lagMs === undefined ? '' : `, lag ${Math.round(outcome.lagMs)} ms`;
  return `${outcome.rowsRefreshed} rows refreshed (${outcome.rowsPredicted} predicted, ${outcome.rowsDeleted} deleted, ${outcome.providerRows} asked of the provider) in ${Math.round(outcome.durationMs)} ms${lag}`;
}
