/**
 * Pass-through cost of the proxy: `pgbench -S -c 8 -T 10` (select-only, scale 10) through
 * the proxy, through pgbouncer (session pooling, pgbouncer-process.ts) and directly, same
 * server, same run. The headline is the proxy against pgbouncer, both reaching the server
 * the same way; both are reported against direct too. Required: proxy ≥ 1.0 × pgbouncer.
 *
 * The proxy runs in its own process (`modelsql proxy`), as users run it. pgbench always
 * reaches the proxy over TCP on loopback; the proxy reaches Postgres over TCP, and, when
 * the server has a Unix socket on this machine, also over that socket (`--upstream
 * 'postgres:///db?host=/tmp&port=5432'`, a separate proxy process). Direct runs go over
 * TCP and over the Unix socket too, so each proxy variant has its like-for-like baseline.
 * The headline is the proxy with its upstream over the Unix socket (the recommended
 * deployment next to Postgres; over TCP when there is no socket) against pgbouncer reaching
 * the server the same way (against direct over TCP when pgbouncer is not installed).
 *
 * Runs alternate between the variants, `BENCH_PGBENCH_ROUNDS` times each (default 3), in
 * one order in even rounds and the reverse in odd ones; the headline compares the median run
 * of each side: the machine's rate drifts by ±10 % within a run (other jobs, a virtual
 * machine's host), which the median of several alternating runs resists and the best run
 * (the headline before) did not. The details print the best-run ratio and each round's
 * ratio too. `BENCH_PGBENCH_SECONDS`
 * changes the duration of each run; `BENCH_PROXY_ARGS` passes flags to the proxies
 * (`--relay-scheduling normal`). The CPU time per transaction of the proxy and of pgbouncer
 * (user + system, and the user part, from `/proc`) is printed, and the whole machine's busy
 * CPU and context switches per transaction (`/proc/stat`; pgbench and the server included):
 * TPS follows the latter when the cores are saturated.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadNativeRelay } from '../adapters/postgres/proxy/native-relay.js';
import type { BenchmarkResult } from './benchmark-result.js';
import { machineCpu, openBenchServer, processCpuSeconds, startProxyProcess, type ProxyProcess } from './proxy-support.js';
import { median } from './statistics.js';
import { PGBOUNCER_SETTINGS, pgbouncerAvailable, startPgbouncer, type PgbouncerProcess } from './pgbouncer-process.js';

const run = promisify(execFile);

const SECONDS = Number(process.env.BENCH_PGBENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_PGBENCH_ROUNDS ?? 3);

/** libpq environment for a URL (pgbench takes a database name and PG* variables). */
function libpqEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    ...process.env,
    PGHOST: u.searchParams.get('host') ?? u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: u.pathname.slice(1),
    PGSSLMODE: 'disable',
  };
}

/** One pgbench run: TPS and the number of transactions. */
async function pgbench(url: string): Promise<{ tps: number; transactions: number }> {
  const { stdout } = await run('pgbench', ['-S', '-c', '8', '-T', String(SECONDS), '-n'], { env: libpqEnv(url), maxBuffer: 16 << 20 });
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout) ?? /tps = ([\d.]+)/.exec(stdout);
  const n = /number of transactions actually processed: (\d+)/.exec(stdout);
  if (!m || !n) throw new Error(`cannot read pgbench output:\n${stdout}`);
  return { tps: Number(m[1]), transactions: Number(n[1]) };
}

/** How the proxy relays plain traffic (its default, `--relay auto`). */
function relayInUse(): string {
  const native = loadNativeRelay();
  return native.relay ? 'relays idle plain sessions with its native relay (an epoll thread, 64 KiB buffers)' : `relays in JavaScript (native relay: ${native.problem}), reading into 64 KiB reused buffers`;
}

/** A way to reach the server, and its runs. */
interface Variant {
  readonly label: string;
  readonly url: string;
  /** The process between pgbench and the server (the proxy, pgbouncer), for its CPU time. */
  readonly pid?: number;
  readonly tps: number[];
  /** CPU µs per transaction of the process in between, per run. */
  readonly cpu: number[];
  /** The user-time part of {@link cpu}. */
  readonly user: number[];
  /** The whole machine's busy CPU µs per transaction, per run (pgbench, server, relay and all else). */
  readonly machine: number[];
  /** The whole machine's context switches per transaction, per run. */
  readonly switches: number[];
}

/** Runs the comparison. */
export async function benchmarkProxyPassthrough(): Promise<BenchmarkResult> {
  const server = await openBenchServer();
  const proxies: ProxyProcess[] = [];
  let bouncer: PgbouncerProcess | undefined;
  try {
    await run('pgbench', ['-i', '-s', '10', '-q'], { env: libpqEnv(server.directUrl), maxBuffer: 16 << 20 });
    const variant = (label: string, url: string, pid?: number): Variant => ({ label, url, pid, tps: [], cpu: [], user: [], machine: [], switches: [] });
    const tcpProxy = await startProxyProcess(server.directUrl);
    proxies.push(tcpProxy);
    const directTcp = variant('direct, TCP', server.directUrl);
    const viaTcp = variant('proxy, upstream over TCP', tcpProxy.url, tcpProxy.pid);
    const variants = [directTcp, viaTcp];
    let directUnix: Variant | undefined;
    let viaUnix: Variant | undefined;
    if (server.directSocketUrl) {
      const unixProxy = await startProxyProcess(server.directSocketUrl, { via: 'unix' });
      proxies.push(unixProxy);
      directUnix = variant('direct, Unix socket', server.directSocketUrl);
      viaUnix = variant('proxy, upstream over the Unix socket', unixProxy.url, unixProxy.pid);
      variants.push(directUnix, viaUnix);
    }
    // pgbouncer reaches the server as the headline proxy does.
    let viaBouncer: Variant | undefined;
    if (pgbouncerAvailable()) {
      bouncer = await startPgbouncer(server.directSocketUrl ?? server.directUrl, 8);
      viaBouncer = variant(`pgbouncer (session pooling), upstream over ${server.directSocketUrl ? 'the Unix socket' : 'TCP'}`, bouncer.url, bouncer.pid);
      variants.push(viaBouncer);
    }
    for (let round = 0; round < ROUNDS; round++) {
      // Reversed every other round: no variant always runs right after another.
      for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
        const before = v.pid && (await processCpuSeconds(v.pid));
        const machineBefore = await machineCpu();
        const result = await pgbench(v.url);
        const machineAfter = await machineCpu();
        const after = v.pid && (await processCpuSeconds(v.pid));
        v.tps.push(result.tps);
        if (machineBefore && machineAfter) {
          v.machine.push(((machineAfter.busy - machineBefore.busy) / result.transactions) * 1e6);
          v.switches.push((machineAfter.switches - machineBefore.switches) / result.transactions);
        }
        if (before && after) {
          v.cpu.push(((after.user + after.system - before.user - before.system) / result.transactions) * 1e6);
          v.user.push(((after.user - before.user) / result.transactions) * 1e6);
        }
      }
    }
    const best = (v: Variant): number => Math.max(...v.tps);
    // The recommended deployment when Postgres is on this machine (docs/proxy.md), else TCP.
    const proxied = viaUnix ?? viaTcp;
    const details = variants.map((v) => {
      const range = (xs: readonly number[]): string => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}`;
      const cpu = v.cpu.length > 0 ? `; CPU ${range(v.cpu)} µs/transaction (user ${range(v.user)})` : '';
      const machine = v.machine.length > 0 ? `; machine ${range(v.machine)} µs/transaction, ${range(v.switches)} context switches/transaction` : '';
      return `${v.label}: best ${Math.round(best(v))} TPS (runs ${v.tps.map(Math.round).join(', ')})${cpu}${machine}`;
    });
    details.push(`proxy over TCP ÷ direct over TCP: ${(best(viaTcp) / best(directTcp)).toFixed(2)}`);
    if (viaUnix && directUnix) {
      details.push(`proxy over the Unix socket ÷ direct over TCP: ${(best(viaUnix) / best(directTcp)).toFixed(2)}`);
      details.push(`proxy over the Unix socket ÷ direct over the Unix socket: ${(best(viaUnix) / best(directUnix)).toFixed(2)}`);
    }
    if (viaBouncer) {
      details.push(`pgbouncer ÷ direct over TCP: ${(best(viaBouncer) / best(directTcp)).toFixed(2)}`);
      details.push(`set-up: pgbench over TCP on loopback to both; both reach the server over ${server.directSocketUrl ? 'its Unix socket' : 'TCP'}; pgbouncer ${PGBOUNCER_SETTINGS}; the proxy ${relayInUse()}, TCP_NODELAY toward clients`);
      details.push('required: proxy ÷ pgbouncer ≥ 1.0');
    } else details.push('pgbouncer is not installed (apt-get install pgbouncer): the headline compares with direct over TCP');
    const reference = viaBouncer ?? directTcp;
    const paired = proxied.tps.map((tps, round) => tps / reference.tps[round]!);
    details.push(`the headline's two by round: ${paired.map((r) => r.toFixed(2)).join(', ')}; by best run ${(best(proxied) / best(reference)).toFixed(2)}`);
    return {
      name: `pgbench -S -c 8 -T ${SECONDS}, scale 10, median of ${ROUNDS} runs: through the proxy (${proxied.label}) vs ${reference.label}`,
      modelsqlRowsPerSecond: median(proxied.tps),
      handWrittenRowsPerSecond: median(reference.tps),
      ratio: median(proxied.tps) / median(reference.tps),
      unit: 'TPS',
      details,
    };
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
    await bouncer?.close();
    await server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // run alone: node dist/benchmarks/proxy-passthrough.js
  console.log(await benchmarkProxyPassthrough());
}
