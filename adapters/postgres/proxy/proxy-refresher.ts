/**
 * The proxy keeps materialized tables fresh (docs/proxy.md, "Materialized tables"): one
 * refresher per upstream database it serves, started when the first client of that
 * database has logged in. A refresher is a session of its own, connected with the
 * credentials of the proxy's refresh URL (never a client's), that listens for change
 * capture's notifications and runs the same scheduler as `modelsql worker`
 * (core/materialized/refresh-scheduler.ts): each refresh holds the table's refresh claim,
 * so proxies and workers on one database never refresh a table at the same time. It
 * refreshes the tables of the roles whose privileges its role has, acting as each table's
 * owner for its refresh (`SET ROLE`), and never creates or upgrades a catalog: it waits
 * until the database holds one of this modelsql's layout.
 */
import { readCatalogVersion, CATALOG_VERSION } from '../../../core/catalog/catalog-layout.js';
import type { MaterializedTable, RefreshOutcome } from '../../../core/materialized/materialized-store.js';
import { RefreshScheduler } from '../../../core/materialized/refresh-scheduler.js';
import type { ModelSession } from '../../../core/session/model-session.js';
import { listenForChanges, type ChangeListener } from '../change-listener.js';
import { PgClientConnection } from '../pg-client-connection.js';
import { PostgresHost } from '../postgres-host.js';
import { mapPostgresError } from '../postgres-errors.js';

/** What refreshers report, with the database they serve. */
export interface RefresherHooks {
  /** A session on `host`, with the proxy's model settings (allow-lists, caps, loader, inference gate). */
  readonly createSession: (host: PostgresHost) => ModelSession;
  /** A refresh that changed rows, or that another refresher held (`outcome` undefined). */
  readonly onRefresh: (database: string, table: MaterializedTable, outcome: RefreshOutcome | undefined) => void;
  /** A refresh that failed (the table is tried again at its next interval or notification). */
  readonly onError: (database: string, table: MaterializedTable, error: unknown) => void;
  /** A refresher could not start or stopped on an error; it is started again by a later client. */
  readonly onFailure: (database: string, error: unknown) => void;
}

/** Longest wait between two looks at a database without a current catalog, and between scheduler passes, in ms. */
const POLL_MS = 1000;
/** After a refresher failed, the next client of its database starts it again only after this many ms. */
const RETRY_MS = 5000;
/** On close, how long a refresh in progress may go on before its connection is closed (the refresh rolls back; another refresher redoes it). */
const STOP_GRACE_MS = 5000;

/** One database's refresher. */
interface Refresher {
  stop(): Promise<void>;
}

/**
 * The refreshers of one proxy, by database.
 *
 * @example
 * const refreshers = new ProxyRefreshers('postgres://refresher@db:5432/', hooks);
 * refreshers.serve('shop'); // when a client of shop has logged in
 * await refreshers.close();
 */
export class ProxyRefreshers {
  private readonly running = new Map<string, Promise<Refresher | undefined>>();
  private readonly failedAt = new Map<string, number>();
  private closed = false;

  /** `url`: the refresh credentials and address; its database is replaced by each served one. */
  constructor(
    private readonly url: string,
    private readonly hooks: RefresherHooks,
  ) {}

  /** The databases with a refresher running or starting. */
  get databases(): string[] {
    return [...this.running.keys()];
  }

  /** Starts the refresher of `database` unless one runs (or failed less than {@link RETRY_MS} ago). */
  serve(database: string): void {
    if (this.closed || this.running.has(database) || Date.now() - (this.failedAt.get(database) ?? 0) < RETRY_MS) return;
    const started = this.start(database).catch((error: unknown) => {
      this.fail(database, error);
      return undefined;
    });
    this.running.set(database, started);
  }

  /** Stops every refresher (after the refresh each is running). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.running.values()];
    this.running.clear();
    for (const refresher of await Promise.all(all)) await refresher?.stop();
  }

  private fail(database: string, error: unknown): void {
    this.running.delete(database);
    this.failedAt.set(database, Date.now());
    if (!this.closed) this.hooks.onFailure(database, error);
  }

  /** The refresh URL naming `database`. */
  private urlOf(database: string): string {
    const url = new URL(this.url);
    url.pathname = `/${encodeURIComponent(database)}`;
    return url.toString();
  }

  private async start(database: string): Promise<Refresher> {
    const url = this.urlOf(database);
    let connection: PgClientConnection;
    try {
      connection = await PgClientConnection.connect(url);
    } catch (error) {
      throw mapPostgresError(error);
    }
    const host = new PostgresHost(connection);
    const session = this.hooks.createSession(host);
    let stopped = false;
    let wake: (() => void) | undefined;
    const scheduler = new RefreshScheduler(session.materialized, {
      onRefresh: (table, outcome) => this.hooks.onRefresh(database, table, outcome),
      onError: (table, error) => this.hooks.onError(database, table, error),
      pollMs: POLL_MS,
    });
    let failure: unknown;
    const stopAll = (error?: unknown): void => {
      if (!stopped && error !== undefined) failure = error;
      stopped = true;
      scheduler.stop();
      wake?.();
    };
    let listener: ChangeListener;
    try {
      listener = await listenForChanges(url, (id) => scheduler.notify(id), stopAll);
    } catch (error) {
      await session.close().catch(() => undefined);
      throw error;
    }
    const loop = (async () => {
      try {
        // Only a catalog of this layout: the refresher never creates or upgrades one.
        while (!stopped && (await readCatalogVersion(host)) !== CATALOG_VERSION) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, POLL_MS);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        if (!stopped) await scheduler.run();
      } catch (error) {
        stopAll(error);
      }
      await listener.close().catch(() => undefined);
      await session.close().catch(() => undefined);
      if (failure !== undefined) this.fail(database, failure);
    })();
    return {
      async stop() {
        stopAll();
        let timer: NodeJS.Timeout | undefined;
        const late = await Promise.race([loop.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_GRACE_MS)))]);
        clearTimeout(timer);
        if (late) await session.close().catch(() => undefined);
        await loop;
      },
    };
  }
}
