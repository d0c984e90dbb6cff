/**
 * The ML_PREDICT grid: rows × features × database (in-memory, file) × projection
 * (`SELECT *`, `SELECT id, prediction`), each cell timed for modelsql, the hand-written
 * pipeline and the model as a native SQL expression (predict-grid-worker.ts). Every side of
 * every repetition runs in a fresh process (its peak RSS is its own); the sides alternate
 * within a cell, so that the machine's load bills them alike, and the fastest repetition
 * of each side counts.
 *
 * Environment: `BENCH_GRID=quick` runs a small grid (200,000 rows; 3 and 10 features);
 * `BENCH_GRID_ROWS`, `BENCH_GRID_FEATURES`, `BENCH_GRID_DBS` (`memory,file`),
 * `BENCH_GRID_SHAPES` (`star,id`), comma-separated, and `BENCH_GRID_REPEAT` (default 2)
 * override either grid. `postgres` in `BENCH_GRID_DBS` adds Postgres cells (an embedded
 * server started here, or `MODELSQL_BENCH_POSTGRES_URL`): the hand-written side is `COPY
 * ... TO STDOUT` → run → `COPY ... FROM STDIN`; peak RSS is the Node process's only.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { startPostgres, type PostgresServer } from '../test/support/postgres-server.js';
import type { BenchmarkResult } from './benchmark-result.js';
import { tableSql, type WorkerResult, type WorkerTask } from './predict-grid-worker.js';

type Side = WorkerTask['side'];

/** Where a cell runs: DuckDB in memory, a DuckDB file, or Postgres. */
type Database = 'memory' | 'file' | 'postgres';

/** The grid to run, from the environment. */
function gridOf(env: NodeJS.ProcessEnv): { rows: number[]; features: number[]; dbs: Database[]; shapes: WorkerTask['shape'][]; repeat: number } {
  const quick = env.BENCH_GRID === 'quick';
  const list = (value: string | undefined, fallback: string) => (value ?? fallback).split(',').map((s) => s.trim());
  return {
    rows: list(env.BENCH_GRID_ROWS, quick ? '200000' : '1000000,10000000').map(Number),
    features: list(env.BENCH_GRID_FEATURES, quick ? '3,10' : '3,10,50').map(Number),
    dbs: list(env.BENCH_GRID_DBS, 'memory,file,postgres') as Database[],
    shapes: list(env.BENCH_GRID_SHAPES, 'star,id') as WorkerTask['shape'][],
    repeat: Number(env.BENCH_GRID_REPEAT ?? 2),
  };
}

function runWorker(task: WorkerTask): Promise<WorkerResult> {
  const child = fork(fileURLToPath(new URL('./predict-grid-worker.js', import.meta.url)), [JSON.stringify(task)]);
  return new Promise<WorkerResult>((resolve, reject) => {
    child.once('message', (r) => resolve(r as WorkerResult));
    child.once('exit', (code) => reject(new Error(`grid worker ${JSON.stringify(task)} exited (${code}) without a result`)));
  });
}

/** One side's figures in a cell: fastest wall and CPU seconds, largest peak RSS. */
interface CellSide {
  readonly seconds: number;
  readonly cpu: number | undefined;
  readonly rss: number;
  readonly checksum: number;
  readonly rows: number;
}

/** One cell: every side `repeat` times, alternating; the fastest run of each side and its largest peak RSS. */
async function runCell(task: Omit<WorkerTask, 'side'>, repeat: number): Promise<Record<Side, CellSide>> {
  const sides: Side[] = ['hand', 'modelsql', 'sql'];
  const best = {} as Record<Side, CellSide>;
  for (let r = 0; r < repeat; r++) {
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      const result = await runWorker({ ...task, side });
      const previous = best[side];
      best[side] = {
        seconds: Math.min(previous?.seconds ?? Infinity, result.seconds),
        cpu: result.cpuSeconds === undefined ? undefined : Math.min(previous?.cpu ?? Infinity, result.cpuSeconds),
        rss: Math.max(previous?.rss ?? 0, result.maxRssBytes),
        checksum: result.checksum,
        rows: result.outputRows,
      };
    }
  }
  for (const side of sides) {
    if (best[side].rows !== task.rows) throw new Error(`${side} wrote ${best[side].rows} rows of ${task.rows}`);
    const relative = Math.abs(best[side].checksum - best.sql.checksum) / Math.max(1, Math.abs(best.sql.checksum));
    if (!(relative < 1e-4)) throw new Error(`${side}'s predictions differ: sum ${best[side].checksum}, native SQL ${best.sql.checksum}`);
  }
  return best;
}

/** Runs the grid; the result's ratio is the worst cell's modelsql / hand-written. */
export async function benchmarkPredictGrid(): Promise<BenchmarkResult> {
  const grid = gridOf(process.env);
  const dir = mkdtempSync(join(tmpdir(), 'modelsql-grid-'));
  const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`;
  const lines = ['rows | features | database | projection | modelsql s | hand-written s | SQL expression s | vs hand-written | vs SQL | peak RSS modelsql / hand-written / SQL | CPU s modelsql / hand-written / SQL'];
  let worst = Infinity;
  let totalRows = 0;
  let ours = 0;
  let theirs = 0;
  let server: PostgresServer | undefined;
  const url = grid.dbs.includes('postgres') ? (process.env.MODELSQL_BENCH_POSTGRES_URL ?? (server = await startPostgres()).url) : undefined;
  try {
    for (const rows of grid.rows) {
      for (const features of grid.features) {
        if (url) {
          const client = new pg.Client({ connectionString: url });
          await client.connect();
          await client.query('DROP TABLE IF EXISTS t');
          await client.query(tableSql(rows, features, 'postgres'));
          await client.query('VACUUM ANALYZE t');
          await client.end();
        }
        let file: string | undefined;
        if (grid.dbs.includes('file')) {
          file = join(dir, `t_${rows}_${features}.duckdb`);
          const instance = await DuckDBInstance.create(file);
          const connection = await instance.connect();
          await connection.run(tableSql(rows, features));
          connection.closeSync();
          instance.closeSync();
        }
        for (const db of grid.dbs) {
          for (const shape of grid.shapes) {
            const cell = await runCell({ rows, features, shape, ...(db === 'file' ? { file: file! } : db === 'postgres' ? { url: url! } : {}) }, grid.repeat);
            const ratio = cell.hand.seconds / cell.modelsql.seconds;
            worst = Math.min(worst, ratio);
            totalRows += rows;
            ours += cell.modelsql.seconds;
            theirs += cell.hand.seconds;
            const line = [
              rows.toLocaleString('en-US'),
              features,
              db,
              shape === 'star' ? 'SELECT *' : 'SELECT id, prediction',
              cell.modelsql.seconds.toFixed(2),
              cell.hand.seconds.toFixed(2),
              cell.sql.seconds.toFixed(2),
              ratio.toFixed(2),
              (cell.sql.seconds / cell.modelsql.seconds).toFixed(2),
              `${mb(cell.modelsql.rss)} / ${mb(cell.hand.rss)} / ${mb(cell.sql.rss)}`,
              [cell.modelsql, cell.hand, cell.sql].map((side) => side.cpu?.toFixed(2) ?? '-').join(' / '),
            ].join(' | ');
            lines.push(line);
            process.stderr.write(`${line}\n`);
          }
        }
        if (file) rmSync(file, { force: true });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await server?.stop();
  }
  return {
    name: `ML_PREDICT grid (DuckDB and Postgres; ratio = the worst cell's)`,
    rows: totalRows,
    modelsqlRowsPerSecond: totalRows / ours,
    handWrittenRowsPerSecond: totalRows / theirs,
    ratio: worst,
    details: lines,
  };
}
