/**
 * ONNX batch-size benchmark: 1M rows × 4 features through a linear model, for several
 * batch sizes, through the modelsql ONNX runtime (worker thread, 2 batches in flight, as
 * the executor pipelines them) versus the best hand-written way: a plain `session.run`
 * on the main thread with the same batch size (which blocks the event loop).
 *
 * Run: `npm run build && node dist/benchmarks/onnx-batch-size.js [rows]`.
 */
import * as ort from 'onnxruntime-node';
import type { ModelRuntime } from '../core/runtime/model-runtime.js';
import { bindOnnxSignature, inspectOnnx } from '../core/runtime/onnx-model.js';
import { createOnnxRuntime } from '../core/runtime/onnx-runtime.js';
import { linearRegressorModel } from '../test/support/onnx-models.js';

const ROWS = Number(process.argv[2] ?? 1_000_000);
const SIZES = [4096, 16384, 32768, 65536, 131072];
const REPEATS = 5;

const bytes = linearRegressorModel([1, 2, 3, 4], 0.5);
const columns = [0, 1, 2, 3].map((j) => Float64Array.from({ length: ROWS }, (_, i) => ((i * (j + 1)) % 97) / 10));

async function viaRuntime(runtime: ModelRuntime, batchSize: number): Promise<number> {
  const started = performance.now();
  const inflight: Promise<unknown>[] = [];
  for (let offset = 0; offset < ROWS; offset += batchSize) {
    const n = Math.min(batchSize, ROWS - offset);
    inflight.push(runtime.predictBatch({ rowCount: n, columns: columns.map((c) => ({ kind: 'number' as const, values: c.subarray(offset, offset + n) })) }));
    if (inflight.length >= 2) await inflight.shift();
  }
  await Promise.all(inflight);
  return performance.now() - started;
}

async function viaMainThread(session: ort.InferenceSession, batchSize: number): Promise<number> {
  const started = performance.now();
  for (let offset = 0; offset < ROWS; offset += batchSize) {
    const n = Math.min(batchSize, ROWS - offset);
    const x = new Float32Array(n * 4);
    for (let j = 0; j < 4; j++) {
      const c = columns[j] as Float64Array;
      for (let i = 0; i < n; i++) x[i * 4 + j] = c[offset + i] as number;
    }
    const out = await session.run({ x: new ort.Tensor('float32', x, [n, 4]) });
    if ((out.y?.data as Float32Array).length !== n) throw new Error('bad output');
  }
  return performance.now() - started;
}

const best = async (f: () => Promise<number>): Promise<number> => {
  let min = Infinity;
  for (let r = 0; r < REPEATS; r++) min = Math.min(min, await f());
  return min;
};
const rate = (ms: number): string => `${((ROWS / ms) * 1000 / 1e6).toFixed(1)}M rows/s`;

const binding = bindOnnxSignature(await inspectOnnx(bytes), ['a', 'b', 'c', 'd'].map((name) => ({ name, type: 'DOUBLE' })), [{ name: 'y', type: 'DOUBLE' }]);
const session = await ort.InferenceSession.create(bytes);
console.log(`${ROWS} rows × 4 features, best of ${REPEATS}`);
for (const batchSize of SIZES) {
  const line: string[] = [`batch ${String(batchSize).padStart(6)}`];
  const main = await best(() => viaMainThread(session, batchSize));
  for (const workers of [1, 2]) {
    const runtime = await createOnnxRuntime(bytes, binding, { batchSize, workers });
    const ms = await best(() => viaRuntime(runtime, batchSize));
    await runtime.close();
    line.push(`runtime(${workers}w) ${rate(ms)}`);
  }
  line.push(`main-thread session.run ${rate(main)}`);
  console.log(line.join('  '));
}
await session.release();
