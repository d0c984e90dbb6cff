/**
 * `npm run bench`: every benchmark, each measured side by side with the best hand-written
 * way to do the same work, printing both rates and the ratio (modelsql / hand-written).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchmarkResult } from './benchmark-result.js';
import { benchmarkPredictOnnx } from './predict-onnx.js';
import { benchmarkPredictGrid } from './predict-grid.js';
import { benchmarkRemoteOpenAI } from './remote-openai.js';
import { benchmarkRemoteTriton } from './remote-triton.js';
import { benchmarkPredictTrainedVsOnnx, benchmarkPredictTrainedVsSql, benchmarkTrainLinear } from './train-linear.js';
import { benchmarkPredictOnnxPostgres } from './predict-onnx-postgres.js';
import { benchmarkPredictParallelPostgres } from './predict-parallel-postgres.js';
import { benchmarkTrainHosts } from './train-hosts.js';
import { benchmarkProxyLatency } from './proxy-latency.js';
import { benchmarkProxyPassthrough } from './proxy-passthrough.js';
import { benchmarkProxyLargeMessage } from './proxy-large-message.js';
import { benchmarkCatalogMigrate } from './catalog-migrate.js';
import { benchmarkGuardOverhead } from './guard-overhead.js';
import { benchmarkProxyLoad } from './proxy-load.js';
import { benchmarkModelPermissions } from './model-permissions.js';
import { benchmarkContinuousRefresh } from './continuous-refresh.js';
import { benchmarkTextEmbedding } from './text-embedding.js';
import { benchmarkVectorSearch } from './vector-search.js';
import { benchmarkPredictCompiledPostgres } from './predict-compiled-postgres.js';
import { benchmarkCliStartUp } from './cli-start-up.js';

const benchmarks: Readonly<Record<string, () => Promise<BenchmarkResult>>> = {
  'predict-onnx': benchmarkPredictOnnx,
  'predict-grid': benchmarkPredictGrid,
  'remote-openai': benchmarkRemoteOpenAI,
  'remote-triton': benchmarkRemoteTriton,
  'predict-onnx-postgres': benchmarkPredictOnnxPostgres,
  'proxy-passthrough': benchmarkProxyPassthrough,
  'proxy-large-message': benchmarkProxyLargeMessage,
  'proxy-latency': benchmarkProxyLatency,
  'proxy-load': benchmarkProxyLoad,
  'train-linear': benchmarkTrainLinear,
  'predict-trained-vs-sql': benchmarkPredictTrainedVsSql,
  'predict-trained-vs-onnx': benchmarkPredictTrainedVsOnnx,
  'train-hosts': benchmarkTrainHosts,
  'predict-parallel-postgres': benchmarkPredictParallelPostgres,
  'catalog-migrate': benchmarkCatalogMigrate,
  'guard-overhead': benchmarkGuardOverhead,
  'model-permissions': benchmarkModelPermissions,
  'continuous-refresh': benchmarkContinuousRefresh,
  'text-embedding': benchmarkTextEmbedding,
  'vector-search': benchmarkVectorSearch,
  'predict-compiled-postgres': benchmarkPredictCompiledPostgres,
  'cli-start-up': benchmarkCliStartUp,
};

function print(r: BenchmarkResult): void {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`${r.name}`);
  const unit = r.unit ?? 'rows/s';
  console.log(`  modelsql:     ${fmt(r.modelsqlRowsPerSecond)} ${unit}`);
  console.log(`  hand-written: ${fmt(r.handWrittenRowsPerSecond)} ${unit}`);
  console.log(`  ratio:        ${r.ratio.toFixed(2)}`);
  for (const line of r.details ?? []) console.log(`  ${line}`);
}

// Benchmarks that store literal model keys seal them (core/catalog/secret-cipher.ts): a
// fixed key of their own unless the run names one; every benchmark process inherits it.
process.env.MODELSQL_SECRET_KEY ??= 'be7c'.repeat(16);

// Each benchmark runs in a process of its own (this file with the benchmark's name as its
// argument): one benchmark's heap, threads and compiled code do not bill the next one.
// `npm run bench -- <name>...` runs the named ones only.
const [only] = process.argv.slice(2);
if (process.send !== undefined && only !== undefined) {
  const result = await benchmarks[only]!();
  process.send(result, () => process.exit(0));
} else {
  const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(benchmarks);
  const unknown = names.filter((name) => !(name in benchmarks));
  if (unknown.length > 0) throw new Error(`no benchmark ${unknown.join(', ')}; there are: ${Object.keys(benchmarks).join(', ')}`);
  for (const name of names) {
    const child = fork(fileURLToPath(import.meta.url), [name]);
    const result = new Promise<BenchmarkResult>((resolve, reject) => {
      child.once('message', (r) => resolve(r as BenchmarkResult));
      child.once('exit', (code) => reject(new Error(`benchmark ${name} exited (${code}) without a result`)));
    });
    print(await result);
  }
}
