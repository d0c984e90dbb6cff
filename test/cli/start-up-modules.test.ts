/**
 * What `modelsql run -c "select 1"` loads: DuckDB and the CLI, not the code of features the
 * statement does not use (provider SDKs, ONNX Runtime, tokenizers, training, the ML_PREDICT
 * planner and executor, the Postgres driver and proxy, the interactive shell). Start-up time
 * follows from what is loaded; the wall time itself is measured by
 * benchmarks/cli-start-up.ts, not asserted here.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAIN, ROOT, runProcess } from '../support/run-cli.js';

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'modelsql-start-up-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI under the module tracer; resolves to its run and the modules it loaded. */
async function traced(args: readonly string[], name: string): Promise<{ stdout: string; status: number | null; modules: string[] }> {
  const trace = join(dir, name);
  const run = await runProcess(process.execPath, ['--import', join(ROOT, 'test', 'support', 'module-trace.mjs'), MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, MODELSQL_MODULE_TRACE: trace },
  });
  expect(run.stderr).toBe('');
  return { stdout: run.stdout, status: run.status, modules: readFileSync(trace, 'utf8').split('\n').filter(Boolean) };
}

/** Modules `select 1` must not load, by package or by our own file. */
const HEAVY = [
  /node_modules\/onnxruntime-node\//,
  /node_modules\/onnx-proto\//,
  /node_modules\/openai\//,
  /node_modules\/@anthropic-ai\//,
  /node_modules\/@google\/genai\//,
  /node_modules\/@huggingface\//,
  /node_modules\/pg(-[a-z]+)?\//,
  /node_modules\/cli-progress\//,
  /\/dist[^/]*\/adapters\/postgres\//,
  /\/dist[^/]*\/core\/training\/train-model\.js$/,
  /\/dist[^/]*\/core\/execution\//,
  /\/dist[^/]*\/core\/planner\/plan-calls\.js$/,
  /\/dist[^/]*\/core\/runtime\/(executor|remote-executor|prediction-cache)\.js$/,
  /\/dist[^/]*\/core\/runtime\/(onnx-runtime|onnx-model)\.js$/,
  /\/dist[^/]*\/core\/runtime\/providers\/(http-fetch|create-remote-runtime|[a-z]+-runtime)\.js$/,
  /\/dist[^/]*\/core\/runtime\/text\//,
  /\/dist[^/]*\/cli\/(shell|shell-completer|pager|progress)\.js$/,
  /\/dist[^/]*\/cli\/catalog\//,
  /^node:(readline|worker_threads|http|https|zlib)$/,
];

it('select 1 loads DuckDB and the CLI, and none of the SDKs, runtimes, training or shell code', async () => {
  const { stdout, status, modules } = await traced(['run', '-c', 'select 1 as x'], 'select-1.txt');
  expect(status).toBe(0);
  expect(stdout).toMatch(/│ x │/);
  // The trace sees both kinds of module: the tracer works.
  expect(modules).toContainEqual(expect.stringMatching(/\/dist[^/]*\/cli\/main\.js$/));
  expect(modules).toContainEqual(expect.stringMatching(/node_modules\/@duckdb\/node-api\/lib\/DuckDBInstance\.js$/));
  expect(modules.filter((m) => HEAVY.some((h) => h.test(m)))).toEqual([]);
});

it('the tracer sees the heavy modules when a statement needs them', async () => {
  // Training a model loads the training code; the check above would see it.
  const sql = `create table h as select i::double as x, 2 * i::double as y from range(20) t(i);
    create model m with ('algorithm' = 'linear_regression', 'label' = 'y', 'task' = 'regression') as select x, y from h`;
  const { status, modules } = await traced(['run', '-c', sql], 'train.txt');
  expect(status).toBe(0);
  expect(modules).toContainEqual(expect.stringMatching(/\/dist[^/]*\/core\/training\/train-model\.js$/));
});
