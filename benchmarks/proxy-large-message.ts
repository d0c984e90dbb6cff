/**
 * A 64 MB message through the proxy against the same message sent directly, same server,
 * same run: a 64 MB Bind parameter (`SELECT length($1)`, client to server) and a 64 MB
 * result row (`SELECT repeat(...)`, server to client), each timed end to end with
 * node-postgres. Required: through the proxy within 1.5× the direct time (ratio ≥ 0.67 in
 * MB/s). The best of `BENCH_LARGE_ROUNDS` runs (default 3) counts on each side.
 */
import pg from 'pg';
import type { BenchmarkResult } from './benchmark-result.js';
import { openBenchServer, startProxyProcess } from './proxy-support.js';

const SIZE = 64 * 1024 * 1024;
const ROUNDS = Number(process.env.BENCH_LARGE_ROUNDS ?? 3);

/** Seconds one client takes to send a 64 MB parameter and to receive a 64 MB row. */
async function timeBothWays(url: string, value: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const started = performance.now();
    const sent = await client.query('SELECT length($1::text) AS n', [value]);
    if (sent.rows[0].n !== SIZE) throw new Error(`wrong length ${sent.rows[0].n}`);
    const back = await client.query(`SELECT repeat('x', ${SIZE}) AS s`);
    if ((back.rows[0].s as string).length !== SIZE) throw new Error('wrong result length');
    return (performance.now() - started) / 1000;
  } finally {
    await client.end();
  }
}

/** Runs the comparison. */
export async function benchmarkProxyLargeMessage(): Promise<BenchmarkResult> {
  const server = await openBenchServer();
  const proxy = await startProxyProcess(server.directUrl);
  try {
    const value = 'y'.repeat(SIZE);
    const direct: number[] = [];
    const proxied: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      direct.push(await timeBothWays(server.directUrl, value));
      proxied.push(await timeBothWays(proxy.url, value));
    }
    const megabytes = (2 * SIZE) / 1e6;
    const bestDirect = Math.min(...direct);
    const bestProxied = Math.min(...proxied);
    return {
      name: '64 MB each way (a Bind parameter up, a result row down): through the proxy vs direct',
      modelsqlRowsPerSecond: megabytes / bestProxied,
      handWrittenRowsPerSecond: megabytes / bestDirect,
      ratio: bestDirect / bestProxied,
      unit: 'MB/s',
      details: [
        `direct: best ${bestDirect.toFixed(2)} s (runs ${direct.map((s) => s.toFixed(2)).join(', ')})`,
        `proxy: best ${bestProxied.toFixed(2)} s (runs ${proxied.map((s) => s.toFixed(2)).join(', ')})`,
        `proxy time ÷ direct time: ${(bestProxied / bestDirect).toFixed(2)} (required ≤ 1.5)`,
      ],
    };
  } finally {
    await proxy.close();
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // run alone: node dist/benchmarks/proxy-large-message.js
  console.log(await benchmarkProxyLargeMessage());
}
