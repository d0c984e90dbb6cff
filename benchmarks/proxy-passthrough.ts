/**
 * Pass-through cost of the proxy: `pgbench -S -c 8 -T 10` (select-only, scale 10)
 * through the proxy against the same server directly, same run. Required ratio ≥ 0.6.
 * Direct and proxied runs alternate, `BENCH_PGBENCH_ROUNDS` times each (default 2), and
 * the best of each side counts: on a shared machine another job's burst then spoils one
 * run, not the ratio. `BENCH_PGBENCH_SECONDS` changes the duration of each run.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { openProxyBench } from './proxy-support.js';

const run = promisify(execFile);

/** One measured comparison (the shape `run.ts` prints). */
export interface ProxyBenchmarkResult {
  readonly name: string;
  readonly modelsqlRowsPerSecond: number;
  readonly handWrittenRowsPerSecond: number;
  readonly ratio: number;
  /** What the rates count (default rows/s). */
  readonly unit?: string;
  /** Extra lines to print. */
  readonly details?: readonly string[];
}

const SECONDS = Number(process.env.BENCH_PGBENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_PGBENCH_ROUNDS ?? 2);

/** libpq environment for a URL (pgbench takes a database name and PG* variables). */
function libpqEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return { ...process.env, PGHOST: u.hostname, PGPORT: u.port, PGUSER: decodeURIComponent(u.username), PGPASSWORD: decodeURIComponent(u.password), PGDATABASE: u.pathname.slice(1), PGSSLMODE: 'disable' };
}

async function pgbench(url: string): Promise<number> {
  const { stdout } = await run('pgbench', ['-S', '-c', '8', '-T', String(SECONDS), '-n'], { env: libpqEnv(url), maxBuffer: 16 << 20 });
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout) ?? /tps = ([\d.]+)/.exec(stdout);
  if (!m) throw new Error(`cannot read pgbench output:\n${stdout}`);
  return Number(m[1]);
}

/** Runs the comparison. */
export async function benchmarkProxyPassthrough(): Promise<ProxyBenchmarkResult> {
  const bench = await openProxyBench();
  try {
    await run('pgbench', ['-i', '-s', '10', '-q'], { env: libpqEnv(bench.directUrl), maxBuffer: 16 << 20 });
    const directRuns: number[] = [];
    const proxiedRuns: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      directRuns.push(await pgbench(bench.directUrl));
      proxiedRuns.push(await pgbench(bench.proxyUrl));
    }
    const direct = Math.max(...directRuns);
    const proxied = Math.max(...proxiedRuns);
    return {
      name: `pgbench -S -c 8 -T ${SECONDS}, scale 10: through the proxy vs direct`,
      modelsqlRowsPerSecond: proxied,
      handWrittenRowsPerSecond: direct,
      ratio: proxied / direct,
      unit: 'TPS',
      details: [`runs (TPS): direct ${directRuns.map(Math.round).join(', ')}; proxy ${proxiedRuns.map(Math.round).join(', ')}`, 'required ratio: ≥ 0.6'],
    };
  } finally {
    await bench.close();
  }
}
