/**
 * `npm run bench`: every benchmark, each measured side by side with the best hand-written
 * way to do the same work, printing both rates and the ratio (modelsql / hand-written).
 */
import { benchmarkPredictOnnx } from './predict-onnx.js';

const benchmarks = [benchmarkPredictOnnx];

for (const bench of benchmarks) {
  const r = await bench();
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`${r.name}`);
  console.log(`  modelsql:     ${fmt(r.modelsqlRowsPerSecond)} rows/s`);
  console.log(`  hand-written: ${fmt(r.handWrittenRowsPerSecond)} rows/s`);
  console.log(`  ratio:        ${r.ratio.toFixed(2)}`);
}
