/**
 * ML_PREDICT of a remote `openai` model against a loopback OpenAI-compatible server with a
 * fixed 50 ms latency (test/providers/openai-server.ts), for concurrency 1, 4, 16, 64 and
 * row packing 1, 8, 32. Each configuration sends 30 full waves of requests, so the ideal
 * rate is concurrency ÷ latency × rows per request; the achieved rate must reach 0.9 of it.
 * Side by side, the hand-written way: the `openai` SDK called directly over the same
 * prompts with the same concurrency and packing (no database, no cache). Each setting runs
 * `BENCH_REMOTE_ROUNDS` times (default 3), the two sides alternating, and the median of
 * each side counts: on a shared machine another job's burst then spoils one run, not the
 * ratio (the details print every run). Then a warm rerun answered from the prediction cache
 * must be at least 20× faster than the cold run.
 *
 * The server runs in a worker thread (loopback-worker.ts): in-process, its own CPU time
 * would be billed to the client.
 */
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import OpenAI from 'openai';
import { openDuckDB } from '../adapters/duckdb/index.js';
import { packedMessage } from '../core/runtime/providers/provider-client.js';

const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 50);
const WAVES = Number(process.env.BENCH_WAVES ?? 30);
const CONCURRENCY = [1, 4, 16, 64];
const PACKING = [1, 8, 32];
const ROUNDS = Number(process.env.BENCH_REMOTE_ROUNDS ?? 3);

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
const KEY = 'sk-bench';

/** The hand-written client: a pool of `concurrency` workers, `packing` prompts per request. */
async function handWritten(baseURL: string, prompts: readonly string[], concurrency: number, packing: number): Promise<number> {
  const client = new OpenAI({ apiKey: KEY, baseURL, maxRetries: 0 });
  const packs: string[][] = [];
  for (let i = 0; i < prompts.length; i += packing) packs.push(prompts.slice(i, i + packing));
  const answers: string[] = new Array(prompts.length);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let p = next++; p < packs.length; p = next++) {
        const pack = packs[p]!;
        const message = pack.length === 1 ? pack[0]! : packedMessage(pack, false);
        const schema = { type: 'object', properties: { answers: { type: 'array', items: { type: 'string' } } } };
        const r = await client.chat.completions.create({
          model: 'bench',
          messages: [{ role: 'user', content: message }],
          ...(pack.length > 1 ? { response_format: { type: 'json_schema', json_schema: { name: 'answer', schema } } } : {}),
        });
        const text = r.choices[0]!.message.content!;
        const items = pack.length === 1 ? [text] : (JSON.parse(text) as { answers: string[] }).answers;
        items.forEach((a, i) => (answers[p * packing + i] = a));
      }
    }),
  );
  return prompts.length / ((performance.now() - started) / 1000);
}

/** Runs the benchmark; see the file comment. */
export async function benchmarkRemoteOpenAI(): Promise<{ name: string; modelsqlRowsPerSecond: number; handWrittenRowsPerSecond: number; ratio: number; details: readonly string[] }> {
  const worker = new Worker(new URL('./loopback-worker.js', import.meta.url), { workerData: { apiKey: KEY, latencyMs: LATENCY_MS } });
  const [{ url }] = (await once(worker, 'message')) as [{ url: string }];
  const server = {
    url,
    count: async (): Promise<number> => {
      worker.postMessage('count');
      return ((await once(worker, 'message')) as [{ requests: number }])[0].requests;
    },
    close: async (): Promise<void> => {
      worker.postMessage('close');
      await once(worker, 'exit');
    },
  };
  const db = await openDuckDB();
  const details: string[] = [`concurrency | rows/request | rows | ideal rows/s | modelsql rows/s | ÷ ideal | hand-written rows/s | ÷ ideal (medians of ${ROUNDS} runs; each run ÷ ideal)`];
  let worst = Infinity;
  let last = { modelsql: 0, hand: 0 };
  try {
    const maxRows = Math.max(...CONCURRENCY) * Math.max(...PACKING) * WAVES;
    await db.sql(`CREATE TABLE prompts AS SELECT i AS id, 'prompt ' || CAST(i AS VARCHAR) AS txt FROM range(${maxRows}) r(i)`);
    await db.sql(`CREATE MODEL bench INPUT (txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'bench', 'api-key' = '${KEY}', 'cache' = 'false')`);
    await db.sql(`SELECT count(*) FROM ML_PREDICT(TABLE (SELECT * FROM prompts WHERE id < 4), MODEL bench, DESCRIPTOR(txt))`); // loads the SDK
    for (const c of CONCURRENCY) {
      for (const p of PACKING) {
        const rows = c * p * WAVES;
        const ideal = (c / (LATENCY_MS / 1000)) * p;
        const prompts = Array.from({ length: rows }, (_, i) => `prompt ${i}`);
        const modelsqlRuns: number[] = [];
        const handRuns: number[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const started = performance.now();
          const r = await db.sql(
            `SELECT count(answer) FROM ML_PREDICT(TABLE (SELECT * FROM prompts WHERE id < ${rows}), MODEL bench, DESCRIPTOR(txt), MAP['max-concurrent-operations', '${c}', 'batch-size', '${p}'])`,
          );
          modelsqlRuns.push(rows / ((performance.now() - started) / 1000));
          if (Number(r.rows[0]![0]) !== rows) throw new Error(`expected ${rows} answers, got ${String(r.rows[0]![0])}`);
          handRuns.push(await handWritten(`${server.url}/v1`, prompts, c, p));
        }
        const modelsql = median(modelsqlRuns);
        const hand = median(handRuns);
        worst = Math.min(worst, modelsql / ideal);
        last = { modelsql, hand };
        const runs = (values: readonly number[]): string => values.map((v) => (v / ideal).toFixed(2)).join(', ');
        details.push(
          `${c} | ${p} | ${rows} | ${Math.round(ideal)} | ${Math.round(modelsql)} | ${(modelsql / ideal).toFixed(2)} (${runs(modelsqlRuns)}) | ${Math.round(hand)} | ${(hand / ideal).toFixed(2)} (${runs(handRuns)})`,
        );
      }
    }
    // Cold, then warm from the prediction cache.
    await db.sql(`CREATE MODEL cached INPUT (txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'bench', 'api-key' = '${KEY}', 'system-prompt' = 'cache run ${Date.now()}', 'max-concurrent-operations' = '16', 'batch-size' = '8')`);
    const cacheRows = 10_000;
    const query = `SELECT count(answer) FROM ML_PREDICT(TABLE (SELECT * FROM prompts WHERE id < ${cacheRows}), MODEL cached, DESCRIPTOR(txt))`;
    let t = performance.now();
    await db.sql(query);
    const cold = performance.now() - t;
    const sent = await server.count();
    t = performance.now();
    await db.sql(query);
    const warm = performance.now() - t;
    if ((await server.count()) !== sent) throw new Error('the warm run sent requests');
    details.push(`worst ÷ ideal: ${worst.toFixed(2)} (required ≥ 0.90) ${worst >= 0.9 ? 'ok' : 'BELOW'}`);
    details.push(`cache: ${cacheRows} rows cold ${Math.round(cold)} ms, warm ${Math.round(warm)} ms, ${(cold / warm).toFixed(1)}× (required ≥ 20×) ${cold / warm >= 20 ? 'ok' : 'BELOW'}`);
  } finally {
    await db.close();
    await server.close();
  }
  return {
    name: `ML_PREDICT remote openai, loopback server ${LATENCY_MS} ms latency (last row: concurrency 64, 32 rows/request)`,
    modelsqlRowsPerSecond: last.modelsql,
    handWrittenRowsPerSecond: last.hand,
    ratio: last.modelsql / last.hand,
    details,
  };
}

// `node dist/benchmarks/remote-openai.js` runs this benchmark alone.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await benchmarkRemoteOpenAI();
  console.log(r.name);
  for (const line of r.details) console.log(`  ${line}`);
}
