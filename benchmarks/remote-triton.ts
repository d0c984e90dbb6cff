/**
 * ML_PREDICT of a `triton` model against a loopback Open Inference Protocol server with a
 * fixed 50 ms latency (test/providers/triton-server.ts, in a worker thread), for
 * concurrency 1, 4, 16 and 64 and 1, 16 and 64 rows per request (one tensor batch). Each
 * setting sends 30 full waves of requests, so the ideal rate is concurrency ÷ latency ×
 * rows per request; the achieved rate must reach 0.9 of it. Side by side, the hand-written
 * way: `fetch` posting the same tensors with the same concurrency (no database, no
 * executor). The median of `BENCH_REMOTE_ROUNDS` runs (default 3) of each side counts,
 * after one unmeasured run of each side at the largest setting (so that no setting pays for
 * compiling the code paths). The server reports how late it let its answers go (a starved
 * worker thread answers after its 50 ms): the last columns give each side's rate against the
 * ideal at the latency the server actually kept, which is the part of the loss that is the
 * client's.
 */
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { openDuckDB } from '../adapters/duckdb/index.js';

const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 50);
const WAVES = Number(process.env.BENCH_WAVES ?? 30);
/** Settings measured: `BENCH_CONCURRENCY` / `BENCH_PACKING` (comma-separated) narrow them. */
const CONCURRENCY = numbers(process.env.BENCH_CONCURRENCY) ?? [1, 4, 16, 64];
const PACKING = numbers(process.env.BENCH_PACKING) ?? [1, 16, 64];
const ROUNDS = Number(process.env.BENCH_REMOTE_ROUNDS ?? 3);

function numbers(list: string | undefined): number[] | undefined {
  return list === undefined ? undefined : list.split(',').map(Number);
}

/** The server's lateness since the last ask (triton-worker.ts). */
async function lateness(worker: Worker): Promise<{ meanMs: number; maxMs: number }> {
  worker.postMessage('lateness');
  const [late] = (await once(worker, 'message')) as [{ meanMs: number; maxMs: number }];
  return late;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The hand-written client: `concurrency` workers posting `packing` rows per request. */
async function handWritten(url: string, rows: number, concurrency: number, packing: number): Promise<number> {
  const packs = Math.ceil(rows / packing);
  let next = 0;
  let answered = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let p = next++; p < packs; p = next++) {
        const n = Math.min(packing, rows - p * packing);
        const data = Array.from({ length: n }, (_, i) => [(p * packing + i) * 0.5, 10 - (p * packing + i)]).flat();
        const response = await fetch(`${url}/v2/models/linear/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [n, 2], data }] }),
        });
        const body = (await response.json()) as { outputs: { data: number[] }[] };
        answered += body.outputs[0]!.data.length;
      }
    }),
  );
  if (answered !== rows) throw new Error(`hand-written: ${answered} answers for ${rows} rows`);
  return rows / ((performance.now() - started) / 1000);
}

/** Runs the benchmark; see the file comment. */
export async function benchmarkRemoteTriton(): Promise<{ name: string; modelsqlRowsPerSecond: number; handWrittenRowsPerSecond: number; ratio: number; details: readonly string[] }> {
  const worker = new Worker(new URL('./triton-worker.js', import.meta.url), { workerData: { latencyMs: LATENCY_MS } });
  const [{ url }] = (await once(worker, 'message')) as [{ url: string }];
  const db = await openDuckDB();
  const details: string[] = [
    `concurrency | rows/request | rows | ideal rows/s | modelsql rows/s | ÷ ideal | hand-written rows/s | ÷ ideal | server lateness ms (modelsql / hand-written) | ÷ ideal at the kept latency (modelsql / hand-written) (medians of ${ROUNDS} runs)`,
  ];
  let worst = Infinity;
  let last = { modelsql: 0, hand: 0 };
  try {
    const maxRows = Math.max(...CONCURRENCY) * Math.max(...PACKING) * WAVES;
    await db.sql(`CREATE TABLE pts AS SELECT i AS id, [i * 0.5, 10 - i]::FLOAT[] AS x FROM range(${maxRows}) r(i)`);
    await db.sql(`CREATE MODEL bench INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT) WITH ('provider' = 'triton', 'endpoint' = '${url}/v2/models', 'model-name' = 'linear', 'cache' = 'false')`);
    await db.sql(`SELECT count(*) FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id < 4), MODEL bench, DESCRIPTOR(x))`); // reads the metadata
    const predict = (rows: number, c: number, p: number) =>
      db.sql(`SELECT count(y) FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id < ${rows}), MODEL bench, DESCRIPTOR(x), MAP['max-concurrent-operations', '${c}', 'batch-size', '${p}'])`);
    // Warm-up: both sides once at the largest setting, unmeasured.
    const [cMax, pMax] = [Math.max(...CONCURRENCY), Math.max(...PACKING)];
    await predict(cMax * pMax * WAVES, cMax, pMax);
    await handWritten(url, cMax * pMax * WAVES, cMax, pMax);
    for (const c of CONCURRENCY) {
      for (const p of PACKING) {
        const rows = c * p * WAVES;
        const ideal = (c / (LATENCY_MS / 1000)) * p;
        const modelsqlRuns: number[] = [];
        const handRuns: number[] = [];
        const modelsqlLate: number[] = [];
        const handLate: number[] = [];
        await lateness(worker);
        for (let round = 0; round < ROUNDS; round++) {
          const started = performance.now();
          const r = await predict(rows, c, p);
          modelsqlRuns.push(rows / ((performance.now() - started) / 1000));
          modelsqlLate.push((await lateness(worker)).meanMs);
          if (Number(r.rows[0]![0]) !== rows) throw new Error(`expected ${rows} answers, got ${String(r.rows[0]![0])}`);
          handRuns.push(await handWritten(url, rows, c, p));
          handLate.push((await lateness(worker)).meanMs);
        }
        const modelsql = median(modelsqlRuns);
        const hand = median(handRuns);
        // The ideal rate had the server kept `latency + its mean lateness`.
        const kept = (late: number) => (c / ((LATENCY_MS + late) / 1000)) * p;
        const [mLate, hLate] = [median(modelsqlLate), median(handLate)];
        worst = Math.min(worst, modelsql / ideal);
        last = { modelsql, hand };
        details.push(
          `${c} | ${p} | ${rows} | ${Math.round(ideal)} | ${Math.round(modelsql)} | ${(modelsql / ideal).toFixed(2)} | ${Math.round(hand)} | ${(hand / ideal).toFixed(2)} | ${mLate.toFixed(1)} / ${hLate.toFixed(1)} | ${(modelsql / kept(mLate)).toFixed(2)} / ${(hand / kept(hLate)).toFixed(2)}`,
        );
      }
    }
    details.push(`worst ÷ ideal: ${worst.toFixed(2)} (required ≥ 0.90) ${worst >= 0.9 ? 'ok' : 'BELOW'}`);
  } finally {
    await db.close();
    worker.postMessage('close');
    await once(worker, 'exit');
  }
  return {
    name: `ML_PREDICT remote triton, loopback v2 server ${LATENCY_MS} ms latency (last row: concurrency 64, 64 rows/request)`,
    modelsqlRowsPerSecond: last.modelsql,
    handWrittenRowsPerSecond: last.hand,
    ratio: last.modelsql / last.hand,
    details,
  };
}

// `node dist/benchmarks/remote-triton.js` runs this benchmark alone.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchmarkRemoteTriton();
  console.log(r.name);
  for (const line of r.details) console.log(`  ${line}`);
}
