/**
 * Start-up of `modelsql run -c "select 1"` on in-memory DuckDB (`node dist/cli/main.js`, what
 * an installed `modelsql` runs) against the least a Node program does for the
 * same answer: `require('@duckdb/node-api')`, an in-memory instance, `select 1`, print.
 * Wall time of whole processes, the two run alternately `BENCH_START_UP_ROUNDS` times
 * (default 20); the median counts. Required: the CLI's median under 500 ms.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchmarkResult } from './benchmark-result.js';
import { median } from './statistics.js';

const ROUNDS = Number(process.env.BENCH_START_UP_ROUNDS ?? 20);
/** The repository root (this file is dist/benchmarks/cli-start-up.js). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const HAND_WRITTEN = `const { DuckDBInstance } = require('@duckdb/node-api');
(async () => {
  const connection = await (await DuckDBInstance.create(':memory:')).connect();
  const reader = await connection.runAndReadAll('select 1');
  process.stdout.write(JSON.stringify(reader.getRows()) + '\\n');
  connection.closeSync();
})();`;

/** Milliseconds from spawning `command` to its exit; fails unless it exits 0 and prints `expected`. */
function timed(command: string, args: readonly string[], expected: RegExp): Promise<number> {
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', fail);
    child.on('close', (status) => {
      const ms = performance.now() - started;
      if (status !== 0 || !expected.test(out)) fail(new Error(`${command} ${args.join(' ')} exited ${status}: ${out}`));
      else done(ms);
    });
  });
}

/** Runs the comparison. */
export async function benchmarkCliStartUp(): Promise<BenchmarkResult> {
  const cli = join(ROOT, 'dist', 'cli', 'main.js');
  const load = loadavg()[0]!;
  const modelsql: number[] = [];
  const hand: number[] = [];
  const bare: number[] = [];
  // One untimed run of each: the files are in the page cache before timing starts.
  await timed(process.execPath, [cli, 'run', '-c', 'select 1'], /│ 1 │/);
  await timed(process.execPath, ['-e', HAND_WRITTEN], /\[\[1\]\]/);
  for (let round = 0; round < ROUNDS; round++) {
    modelsql.push(await timed(process.execPath, [cli, 'run', '-c', 'select 1'], /│ 1 │/));
    hand.push(await timed(process.execPath, ['-e', HAND_WRITTEN], /\[\[1\]\]/));
    bare.push(await timed(process.execPath, ['-e', '0'], /^$/));
  }
  const ms = (xs: readonly number[]) => `median ${median(xs).toFixed(0)} ms, min ${Math.min(...xs).toFixed(0)} ms`;
  return {
    name: `start-up: modelsql run -c "select 1" (in-memory DuckDB) vs @duckdb/node-api by hand, ${ROUNDS} runs each`,
    modelsqlRowsPerSecond: 1000 / median(modelsql),
    handWrittenRowsPerSecond: 1000 / median(hand),
    ratio: median(hand) / median(modelsql),
    unit: 'starts/s',
    details: [
      `modelsql: ${ms(modelsql)} (required: median < 500 ms ${median(modelsql) < 500 ? '✔' : '✘'})`,
      `by hand: ${ms(hand)}; node -e 0: ${ms(bare)}`,
      `load average at the start: ${load.toFixed(1)}, at the end: ${loadavg()[0]!.toFixed(1)} (2 cores)`,
    ],
  };
}
