/**
 * `npm run bench`: every benchmark, each measured side by side with the best hand-written
 * way to do the same work, printing both rates and the ratio (modelsql / hand-written).
 */
import { benchmarkPredictOnnx } from './predict-onnx.js';
import { benchmarkRemoteOpenAI } from './remote-openai.js';
import { benchmarkPredictTrainedVsOnnx, benchmarkPredictTrainedVsSql, benchmarkTrainLinear } from './train-linear.js';
import { benchmarkPredictOnnxPostgres } from './predict-onnx-postgres.js';
import { benchmarkProxyLatency } from './proxy-latency.js';
import { benchmarkProxyPassthrough } from './proxy-passthrough.js';
import { benchmarkCatalogMigrate } from './catalog-migrate.js';
import { benchmarkGuardOverhead } from './guard-overhead.js';
import { benchmarkProxyLoad } from './proxy-load.js';
import { benchmarkModelPermissions } from './model-permissions.js';

const benchmarks: (() => Promise<{ name: string; modelsqlRowsPerSecond: number; handWrittenRowsPerSecond: number; ratio: number; unit?: string; details?: readonly string[] }>)[] = [benchmarkPredictOnnx, benchmarkRemoteOpenAI, benchmarkPredictOnnxPostgres, benchmarkProxyPassthrough, benchmarkProxyLatency, benchmarkProxyLoad, benchmarkTrainLinear, benchmarkPredictTrainedVsSql, benchmarkPredictTrainedVsOnnx, benchmarkCatalogMigrate, benchmarkGuardOverhead, benchmarkModelPermissions];

for (const bench of benchmarks) {
  const r = await bench();
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`${r.name}`);
  const unit = r.unit ?? 'rows/s';
  console.log(`  modelsql:     ${fmt(r.modelsqlRowsPerSecond)} ${unit}`);
  console.log(`  hand-written: ${fmt(r.handWrittenRowsPerSecond)} ${unit}`);
  console.log(`  ratio:        ${r.ratio.toFixed(2)}`);
  for (const line of r.details ?? []) console.log(`  ${line}`);
}
