/**
 * The proxy's HTTP endpoint for operations (`--metrics 127.0.0.1:9187`): `GET /healthz`
 * answers 200 `ok` when the upstream Postgres accepts a connection (503 with the reason
 * otherwise), `GET /metrics` the Prometheus metrics (proxy-metrics.ts). Anything else is 404.
 */
import { createServer, type Server } from 'node:http';
import type { ProxyMetrics } from './proxy-metrics.js';

/** A running metrics endpoint. */
export interface MetricsEndpoint {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Starts the endpoint on `host:port` (port 0 picks a free one). `health` resolves to
 * undefined when the upstream is reachable, else to the reason it is not.
 */
export async function startMetricsServer(host: string, port: number, metrics: ProxyMetrics, health: () => Promise<string | undefined>): Promise<MetricsEndpoint> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const answer = async (): Promise<void> => {
      if (path === '/metrics') {
        const text = await metrics.text();
        response.writeHead(200, { 'content-type': metrics.contentType }).end(text);
      } else if (path === '/healthz') {
        const problem = await health();
        response.writeHead(problem === undefined ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(problem === undefined ? 'ok\n' : `${problem}\n`);
      } else {
        response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics or /healthz\n');
      }
    };
    answer().catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`${error instanceof Error ? error.message : String(error)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address : { address: host, port };
  return {
    host: bound.address,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
