/**
 * What the proxy benchmarks share: a Postgres server (`MODELSQL_BENCH_POSTGRES_URL`, or an
 * embedded one started for the run) and a proxy in front of it.
 */
import { startPostgres } from '../test/support/global-setup.js';
import { startProxy, type RunningProxy } from '../adapters/postgres/proxy/index.js';

/** A server, a proxy in front of it, and both URLs. */
export interface ProxyBench {
  readonly directUrl: string;
  readonly proxyUrl: string;
  readonly proxy: RunningProxy;
  close(): Promise<void>;
}

/** Starts (or reuses) a server and a proxy on a free port. */
export async function openProxyBench(): Promise<ProxyBench> {
  const given = process.env.MODELSQL_BENCH_POSTGRES_URL;
  const server = given ? undefined : await startPostgres();
  const directUrl = given ?? server!.url;
  const u = new URL(directUrl);
  const proxy = await startProxy({ upstream: `postgres://${u.host}${u.pathname}?sslmode=disable`, listen: 0, session: { allowedDirectories: ['/'], allowedUrlPrefixes: ['*'] } });
  const through = new URL(directUrl);
  through.host = `127.0.0.1:${proxy.port}`;
  return {
    directUrl,
    proxyUrl: through.toString(),
    proxy,
    async close() {
      await proxy.close();
      await server?.stop();
    },
  };
}

/** Percentile (0..100) of a sample, nearest rank. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
