/**
 * `modelsql catalog export | import | migrate | diff` through the built CLI (a subprocess,
 * test/support/run-cli.ts): the round trip DuckDB → Postgres → DuckDB, SQL scripts (also
 * Flink's), bundles (also damaged ones), conflicts, dry runs, JSON output and errors.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { connectPostgres } from '../../adapters/postgres/index.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { createTestDatabase, freePort } from '../support/postgres-server.js';
import { expectSqlError } from '../support/expect-error.js';
import { ROOT, runCli as cli } from '../support/run-cli.js';
import { writeTextModel } from '../support/text-models.js';
import { encodeBundle, MAX_BUNDLE_BYTES } from '../../cli/catalog/bundle.js';

const HOUSE = join(ROOT, 'examples', 'models', 'house_price.onnx');
const HOUSES = 'CREATE TABLE houses AS SELECT CAST(500 + i * 7 AS DOUBLE PRECISION) AS sqft, CAST(1 + i % 5 AS DOUBLE PRECISION) AS bedrooms, CAST(i % 40 AS DOUBLE PRECISION) AS age, CAST(20000 + 150 * i + 3000 * (i % 5) AS DOUBLE PRECISION) AS price FROM generate_series(0, 199) AS g(i)';
/** Models of every kind a catalog holds: ONNX with versions, a trained model with artifacts, a remote model with a secret reference. */
const MODELS = `
CREATE MODEL hp INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE COMMENT 'years') OUTPUT (price DOUBLE) COMMENT 'house prices' WITH ('provider' = 'onnx', 'path' = '${HOUSE}');
CREATE OR REPLACE MODEL hp INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE) OUTPUT (price DOUBLE) WITH ('provider' = 'onnx', 'path' = '${HOUSE}', 'batch-size' = '50');
CREATE OR REPLACE MODEL hp INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE) OUTPUT (price DOUBLE) WITH ('provider' = 'onnx', 'path' = '${HOUSE}', 'batch-size' = '70');
DROP MODEL hp$2;
ALTER MODEL hp SET ('default-version' = '1');
CREATE MODEL lin WITH ('algorithm' = 'linear_regression', 'label' = 'price', 'task' = 'regression') AS SELECT sqft, bedrooms, price FROM houses;
CREATE MODEL chat INPUT (q STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'small', 'api-key' = '\${env:CATALOG_TEST_KEY}');
`;
process.env.CATALOG_TEST_KEY = 'sk-test-env-key';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'modelsql-catalog-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Creates a DuckDB file holding `script`'s models and data, closed again (the CLI opens it). */
async function duckdbFile(name: string, script: string): Promise<string> {
  const file = join(dir, name);
  const db = await openDuckDB(file);
  try {
    await db.sql(script);
  } finally {
    await db.close();
  }
  return file;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function withSession<T>(open: () => Promise<Session>, fn: (db: Session) => Promise<T>): Promise<T> {
  const db = await open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Every version's SHOW CREATE MODEL, the artifacts' checksums and the models' predictions on the houses table. */
async function catalogFacts(db: Session): Promise<{ show: string[]; checksums: string[]; predictions: unknown[] }> {
  const show: string[] = [];
  for (const [model] of (await db.sql('SHOW MODELS')).rows) {
    for (const [version] of (await db.sql(`SHOW MODEL VERSIONS ${String(model)}`)).rows) {
      show.push(String((await db.sql(`SHOW CREATE MODEL ${String(model)}$${String(version)}`)).rows[0]![0]).replace(/^(CREATE MODEL )(main|public)\./, '$1'));
    }
  }
  const artifacts = await db.sql('SELECT model_name, version, artifact_name, content, sha256 FROM ml_catalog.artifacts ORDER BY model_name, version, artifact_name');
  const checksums = artifacts.rows.map((r) => {
    const computed = createHash('sha256').update(r[3] as Uint8Array).digest('hex');
    expect(computed).toBe(r[4]);
    return `${String(r[0])}$${String(r[1])}/${String(r[2])}:${computed}`;
  });
  const predictions = [
    ...(await db.sql('SELECT sqft, price FROM ML_PREDICT(TABLE houses, MODEL hp, DESCRIPTOR(sqft, bedrooms, age)) ORDER BY sqft')).rows,
    ...(await db.sql('SELECT sqft, predicted_price FROM ML_PREDICT(TABLE houses, MODEL lin, DESCRIPTOR(sqft, bedrooms)) ORDER BY sqft')).rows,
    ...(await db.sql('SELECT ml_predict_lin(sqft, bedrooms) FROM houses ORDER BY sqft')).rows,
  ];
  return { show, checksums, predictions };
}

const withPostgres = ADAPTERS.some((a) => a.name === 'postgres') ? it : it.skip;

describe('catalog migrate', () => {
  withPostgres('round trip DuckDB → Postgres → DuckDB: no difference, same SHOW CREATE MODEL, artifacts and predictions', async () => {
    const a = await duckdbFile('a.duckdb', `${HOUSES};\n${MODELS}`);
    const pg = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
    const c = join(dir, 'c.duckdb');
    const there = await cli(['catalog', 'migrate', '--from', `duckdb:${a}`, '--to', pg]);
    expect(there.stderr).toMatch(/3 of 3 models written to postgres:\/\/postgres:\*{6}@127\.0\.0\.1:\d+\/modelsql_t_/);
    expect(there.stderr).not.toContain(':modelsql@');
    expect(there.status).toBe(0);
    expect(there.stdout).toMatch(/│ hp +│ create +│ 1, 3 +│ +1 │ +2 │/);
    const back = await cli(['catalog', 'migrate', '--from', pg, '--to', `duckdb:${c}`, '--json']);
    expect(back.status).toBe(0);
    expect(JSON.parse(back.stdout)).toMatchObject({ command: 'migrate', dryRun: false, models: [{ model: 'chat' }, { model: 'hp', versions: [{ from: 1, to: 1 }, { from: 3, to: 3 }] }, { model: 'lin', artifacts: 2 }] });

    for (const [left, right] of [[`duckdb:${a}`, pg], [`duckdb:${a}`, `duckdb:${c}`]] as const) {
      const diff = await cli(['catalog', 'diff', left, right]);
      expect(diff).toMatchObject({ status: 0, stdout: 'no differences\n' });
      const json = await cli(['catalog', 'diff', left, right, '--json']);
      expect(JSON.parse(json.stdout)).toMatchObject({ equal: true, differences: [] });
    }

    const onA = await withSession(() => openDuckDB(a), catalogFacts);
    const onC = await withSession(() => openDuckDB(c), async (db) => {
      await db.sql(HOUSES);
      return catalogFacts(db);
    });
    const onPg = await withSession(() => connectPostgres(pg), async (db) => {
      await db.sql(HOUSES);
      return catalogFacts(db);
    });
    expect(onA.show).toHaveLength(4);
    expect(onA.checksums).toHaveLength(2);
    expect(onA.predictions).toHaveLength(600);
    // The migration carried hp's ONNX bytes (read from its path) as each version's artifact.
    const carried = { ...onA, checksums: [`hp$1/model.onnx:${sha256(readFileSync(HOUSE))}`, `hp$3/model.onnx:${sha256(readFileSync(HOUSE))}`, ...onA.checksums] };
    expect(onC).toEqual(carried);
    expect(onPg).toEqual(carried);
  });

  it('a dry run shows the plan and creates no target file', async () => {
    const a = await duckdbFile('a.duckdb', `${HOUSES};\n${MODELS}`);
    const b = join(dir, 'b.duckdb');
    const r = await cli(['catalog', 'migrate', '--from', `duckdb:${a}`, '--to', `duckdb:${b}`, '--dry-run']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/dry run: 3 of 3 models would be written .*; nothing was written/);
    expect(existsSync(b)).toBe(false);
  });

  it('moves literal secrets only with --include-secrets, and the prediction cache only with --with-cache', async () => {
    const a = await duckdbFile(
      'a.duckdb',
      `CREATE MODEL lit INPUT (q STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'small', 'api-key' = 'sk-literal-4321');
       INSERT INTO ml_catalog.prediction_cache VALUES ('k1', 'openai', 'small', '{"a":"x"}', now())`,
    );
    const b = join(dir, 'b.duckdb');
    const c = join(dir, 'c.duckdb');
    const plain = await cli(['catalog', 'migrate', '--from', `duckdb:${a}`, '--to', `duckdb:${b}`, '--json']);
    expect(JSON.parse(plain.stdout)).toMatchObject({ cacheRows: 0, warnings: [expect.stringMatching(/^model lit\$1: its literal 'api-key' was not exported/)] });
    const full = await cli(['catalog', 'migrate', '--from', `duckdb:${a}`, '--to', `duckdb:${c}`, '--include-secrets', '--with-cache', '--json']);
    expect(JSON.parse(full.stdout)).toMatchObject({ cacheRows: 1, warnings: [] });
    expect(await cli(['catalog', 'diff', `duckdb:${a}`, `duckdb:${b}`])).toMatchObject({ status: 1 });
    expect(await cli(['catalog', 'diff', `duckdb:${a}`, `duckdb:${c}`])).toMatchObject({ status: 0 });
    const stored = (file: string) => withSession(() => openDuckDB(file), async (db) => [(await db.sql('SELECT count(*) FROM ml_catalog.model_secrets')).rows[0]![0], (await db.sql('SELECT count(*) FROM ml_catalog.prediction_cache')).rows[0]![0]]);
    expect(await stored(b)).toEqual([0n, 0n]);
    expect(await stored(c)).toEqual([1n, 1n]);
  });

  it('refuses an unreachable database with a clear error', async () => {
    const port = await freePort();
    const a = await duckdbFile('a.duckdb', MODELS.split('\n').slice(1, 2).join('\n'));
    const r = await cli(['catalog', 'migrate', '--from', `duckdb:${a}`, '--to', `postgres://me:hunter2@127.0.0.1:${port}/shop`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^ERROR:  08001: cannot open postgres://me:\\*{6}@127\\.0\\.0\\.1:${port}/shop: .*ECONNREFUSED`));
    expect(r.stderr).not.toContain('hunter2');
    const missing = await cli(['catalog', 'diff', `duckdb:${join(dir, 'none.duckdb')}`, `duckdb:${a}`]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^ERROR:  58P01: cannot open duckdb:.*none\.duckdb: no such database file/);
  });

  it('refuses a target catalog of a newer layout and leaves it unchanged', async () => {
    const a = await duckdbFile('a.duckdb', MODELS.split('\n').slice(1, 2).join('\n'));
    const b = await duckdbFile('b.duckdb', 'SHOW MODELS; INSERT INTO ml_catalog.schema_version VALUES (99, now())');
    const r = await cli(['catalog', 'migrate', '--from', `duckdb:${a}`, '--to', `duckdb:${b}`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ERROR:  55000: the model catalog in schema ml_catalog has layout version 99, newer than this modelsql understands/);
    const rows = await withSession(() => openDuckDB(b), async (db) => (await db.sql('SELECT count(*) FROM ml_catalog.models')).rows);
    expect(rows).toEqual([[0n]]);
  });

  it('refuses bad locations as bad usage', async () => {
    const r = await cli(['catalog', 'diff', 'shop.duckdb', 'duckdb:x.duckdb']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("not a catalog location: 'shop.duckdb'; give duckdb:path/to/file.duckdb, postgres://");
  });
});

describe('catalog export and import', () => {
  it('a SQL export rebuilds the same versions, numbers and defaults, and keeps literal secrets out', async () => {
    const a = await duckdbFile(
      'a.duckdb',
      `${HOUSES};\n${MODELS}\nCREATE MODEL lit INPUT (q STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'small', 'api-key' = 'sk-literal-9876')`,
    );
    const script = join(dir, 'models.sql');
    const exported = await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--out', script]);
    expect(exported.status).toBe(0);
    expect(exported.stderr).toContain("WARNING:  model lit$1: literal 'api-key' written as '******' (--include-secrets exports it)");
    const text = readFileSync(script, 'utf8');
    expect(text).not.toContain('sk-literal-9876');
    expect(text).toContain("'api-key' = '${env:CATALOG_TEST_KEY}'");
    expect(text).toContain('DROP MODEL hp$2;');
    const b = await duckdbFile('b.duckdb', HOUSES);
    const imported = await cli(['catalog', 'import', '--to', `duckdb:${b}`, script]);
    expect(imported.stderr).toMatch(/imported 4 models: chat \(create\), hp \(create\), lin \(create\), lit \(create\); 0 statements skipped/);
    expect(imported.status).toBe(0);
    const diff = await cli(['catalog', 'diff', `duckdb:${a}`, `duckdb:${b}`, '--json']);
    expect(diff.status).toBe(1);
    // The trained model was trained again from the same rows: same model, same artifacts; the literal secret stayed behind.
    expect(JSON.parse(diff.stdout).differences).toEqual([{ model: 'lit', version: 1, field: "secret 'api-key'", left: '******', right: null }]);

    const withSecrets = await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--models', 'lit', '--include-secrets', '--out', script, '--json']);
    expect(JSON.parse(withSecrets.stdout)).toMatchObject({ command: 'export', format: 'sql', models: [{ model: 'lit', versions: [1] }], warnings: [] });
    expect(readFileSync(script, 'utf8')).toContain("'api-key' = 'sk-literal-9876'");
  });

  it('a bundle carries the trained artifacts; a damaged or truncated bundle is refused and nothing is imported', async () => {
    const a = await duckdbFile('a.duckdb', `${HOUSES};\n${MODELS}`);
    const bundle = join(dir, 'catalog.bundle');
    const exported = await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--format', 'bundle', '--out', bundle, '--json']);
    expect(JSON.parse(exported.stdout)).toMatchObject({ command: 'export', format: 'bundle', versions: 4, artifacts: 4 });
    const bytes = readFileSync(bundle);
    const b = await duckdbFile('b.duckdb', 'SHOW MODELS');
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 100] ^= 0xff;
    writeFileSync(join(dir, 'tampered.bundle'), tampered);
    writeFileSync(join(dir, 'truncated.bundle'), bytes.subarray(0, bytes.length - 500));
    for (const [name, why] of [['tampered.bundle', 'fails its checksum'], ['truncated.bundle', 'is truncated']]) {
      const r = await cli(['catalog', 'import', '--to', `duckdb:${b}`, join(dir, name!)]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`ERROR:  XX001: bundle ${join(dir, name!)} ${why}: the file is damaged or was changed after export; nothing was imported`);
    }
    const diffEmpty = await cli(['catalog', 'diff', `duckdb:${b}`, `duckdb:${join(dir, 'c.duckdb')}`]);
    expect(diffEmpty.status).toBe(2); // c does not exist
    const imported = await cli(['catalog', 'import', '--to', `duckdb:${b}`, '-', '--json'], bytes);
    expect(imported.status).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({ command: 'import', file: '-', dryRun: false, models: [{ model: 'chat', action: 'create' }, { model: 'hp' }, { model: 'lin', artifacts: 2 }] });
    expect(await cli(['catalog', 'diff', `duckdb:${a}`, `duckdb:${b}`])).toMatchObject({ status: 0, stdout: 'no differences\n' });
  });

  it('refuses a bundle whose checksum holds but whose manifest is hostile (bad JSON, a model or version twice, bytes that are not the artifact), leaving the target as it was', async () => {
    const a = await duckdbFile('a.duckdb', `${HOUSES};\n${MODELS}`);
    const bundle = join(dir, 'catalog.bundle');
    expect((await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--format', 'bundle', '--out', bundle])).status).toBe(0);
    const bytes = readFileSync(bundle);
    const length = Number(bytes.readBigUInt64BE(20));
    const manifest = bytes.subarray(28, 28 + length).toString('utf8');
    const data = bytes.subarray(28 + length, bytes.length - 32);
    /** A bundle with this manifest and data, its whole-file checksum made to fit: anyone can write one. */
    const rebundle = (text: string, payload: Uint8Array = data): Buffer => {
      const m = Buffer.from(text, 'utf8');
      const header = Buffer.from(bytes.subarray(0, 28));
      header.writeBigUInt64BE(BigInt(m.length), 20);
      const body = Buffer.concat([header, m, payload]);
      return Buffer.concat([body, createHash('sha256').update(body).digest()]);
    };
    type Manifest = { snapshot: { models: { name: string; versions: { version: number }[] }[] } };
    const edit = (change: (m: Manifest) => void): Buffer => {
      const m = JSON.parse(manifest) as Manifest;
      change(m);
      return rebundle(JSON.stringify(m));
    };
    const flipped = Buffer.from(data);
    flipped[0] ^= 0xff;
    const cases: [string, Buffer, string][] = [
      ['not-json', rebundle('{"snapshot": '), 'holds a manifest that is not JSON'],
      ['no-snapshot', rebundle('[]'), 'holds an invalid manifest: the snapshot is not an object'],
      ['model-twice', edit((m) => m.snapshot.models.push(m.snapshot.models[0]!)), 'holds an invalid manifest: model chat appears twice'],
      ['version-twice', edit((m) => m.snapshot.models[1]!.versions.push(m.snapshot.models[1]!.versions[1]!)), 'holds an invalid manifest: model hp lists version 3 twice'],
      ['long-manifest', (() => {
        const body = Buffer.concat([bytes.subarray(0, 20), Buffer.from([0, 0, 1, 0, 0, 0, 0, 0]), Buffer.from(manifest)]);
        return Buffer.concat([body, createHash('sha256').update(body).digest()]);
      })(), 'declares a manifest of 1099511627776 bytes, longer than the file'],
      ['artifact-bytes', rebundle(manifest, flipped), "holds artifact 'model.onnx' with a wrong checksum"],
    ];
    const b = await duckdbFile('b.duckdb', `${HOUSES};\n${MODELS.split('\n').slice(6, 7).join('\n')}`);
    const facts = () => withSession(() => openDuckDB(b), async (db) => ({ models: (await db.sql('SHOW MODELS')).rows, rows: (await db.sql('SELECT count(*) FROM ml_catalog.model_versions')).rows }));
    const before = await facts();
    for (const [name, file, why] of cases) {
      writeFileSync(join(dir, `${name}.bundle`), file);
      for (const onConflict of ['error', 'replace']) {
        const r = await cli(['catalog', 'import', '--to', `duckdb:${b}`, '--on-conflict', onConflict, join(dir, `${name}.bundle`)]);
        expect(r.stderr).toContain(`ERROR:  XX001: bundle ${join(dir, `${name}.bundle`)} ${why}`);
        expect(r.stderr).toContain('nothing was imported');
        expect(r.status).toBe(1);
      }
    }
    expect(await facts()).toEqual(before);
    expect(before.models.map((r) => r[0])).toEqual(['lin']);
  });

  it('reads a bundle or script at --max-bundle-bytes / --max-script-bytes, and refuses one a byte over with 54000 before opening the target', async () => {
    const a = await duckdbFile('a.duckdb', `${HOUSES};\n${MODELS}`);
    const bundle = join(dir, 'catalog.bundle');
    expect((await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--format', 'bundle', '--out', bundle])).status).toBe(0);
    const script = join(dir, 'models.sql');
    writeFileSync(script, `-- a Flink job\n${MODELS.split('\n').slice(7, 8).join('\n')}\n`);
    for (const [kind, file, flag] of [['bundle', bundle, '--max-bundle-bytes'], ['script', script, '--max-script-bytes']] as const) {
      const size = readFileSync(file).byteLength;
      const target = join(dir, `${kind}-target.duckdb`);
      for (const [input, name] of [[file, file], ['-', 'on stdin']] as const) {
        const stdin = input === '-' ? readFileSync(file) : '';
        const over = await cli(['catalog', 'import', '--to', `duckdb:${target}`, flag, String(size - 1), input], stdin);
        const what = input === '-' ? `has more than ${size - 1} bytes` : `is ${size} bytes`;
        expect(over.stderr).toBe(`ERROR:  54000: ${kind} ${name} ${what}, over the limit of ${size - 1} bytes (${flag}); nothing was imported\n`);
        expect(over.status).toBe(1);
        expect(existsSync(target)).toBe(false);
      }
      const at = await cli(['catalog', 'import', '--to', `duckdb:${target}`, flag, String(size), '-', '--json'], readFileSync(file));
      expect(at.status).toBe(0);
      expect(JSON.parse(at.stdout).models.length).toBeGreaterThan(0);
      expect((await cli(['catalog', 'import', '--to', `duckdb:${join(dir, `${kind}-2.duckdb`)}`, flag, String(size), file])).status).toBe(0);
    }
    const bad = await cli(['catalog', 'import', '--to', `duckdb:${join(dir, 'x.duckdb')}`, '--max-bundle-bytes', String(MAX_BUNDLE_BYTES + 1), bundle]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(`--max-bundle-bytes must be a positive integer of at most ${MAX_BUNDLE_BYTES}`);
  });

  it('reads a file whose size says nothing (a device, a named pipe) only up to its limit; a file it cannot read is 58P01, 42501 or 58030, not an internal error', async () => {
    const target = join(dir, 'untouched.duckdb');
    const zero = await cli(['catalog', 'import', '--to', `duckdb:${target}`, '--max-script-bytes', '1000', '/dev/zero']);
    expect(zero.stderr).toBe('ERROR:  54000: script /dev/zero has more than 1000 bytes, over the limit of 1000 bytes (--max-script-bytes); nothing was imported\n');
    expect(zero.status).toBe(1);
    const fifo = join(dir, 'job.fifo');
    execFileSync('mkfifo', [fifo]);
    // The writer blocks until the CLI opens the pipe, and ends when the CLI closes it.
    const writer = spawn('sh', ['-c', `yes 'SELECT 1;' > ${fifo}`], { stdio: 'ignore' });
    const piped = await cli(['catalog', 'import', '--to', `duckdb:${target}`, '--max-script-bytes', '1000', fifo]);
    writer.kill();
    expect(piped.stderr).toBe(`ERROR:  54000: script ${fifo} has more than 1000 bytes, over the limit of 1000 bytes (--max-script-bytes); nothing was imported\n`);
    const missing = await cli(['catalog', 'import', '--to', `duckdb:${target}`, join(dir, 'missing.sql')]);
    expect(missing.stderr).toMatch(/^ERROR: {2}58P01: cannot read .*missing\.sql: ENOENT.*; nothing was imported\n$/);
    expect(missing.status).toBe(1);
    const directory = await cli(['catalog', 'import', '--to', `duckdb:${target}`, dir]);
    expect(directory.stderr).toBe(`ERROR:  58030: cannot read ${dir}: it is a directory; nothing was imported\n`);
    expect(existsSync(target)).toBe(false);
  });

  it('--model-dir and --allow-endpoint bound what a script\'s CREATE MODEL reads and reaches: outside them 42501, nothing imported', async () => {
    const script = join(dir, 'job.sql');
    writeFileSync(script, `CREATE MODEL h WITH ('provider' = 'onnx', 'path' = '${HOUSE}');\nCREATE MODEL c INPUT (a STRING) OUTPUT (b STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://169.254.169.254/v1', 'model' = 'x', 'api-key' = '\${env:CATALOG_TEST_KEY}');\n`);
    const b = await duckdbFile('b.duckdb', 'SHOW MODELS');
    const models = () => withSession(() => openDuckDB(b), async (db) => (await db.sql('SHOW MODELS')).rows.map((r) => r[0]));
    const file = await cli(['catalog', 'import', '--to', `duckdb:${b}`, '--model-dir', dir, script]);
    expect(file.stderr).toContain(`ERROR:  42501: model file "${HOUSE}" is outside the allowed model directories`);
    expect(file.status).toBe(1);
    const url = await cli(['catalog', 'import', '--to', `duckdb:${b}`, '--model-dir', dir, '--model-dir', join(ROOT, 'examples', 'models'), '--allow-endpoint', 'http://127.0.0.1:8080/', script]);
    expect(url.stderr).toContain('ERROR:  42501: endpoint "http://169.254.169.254/v1" is outside the allowed endpoints');
    expect(url.status).toBe(1);
    expect(await models()).toEqual([]);
    const allowed = await cli(['catalog', 'import', '--to', `duckdb:${b}`, '--model-dir', join(ROOT, 'examples', 'models'), '--allow-endpoint', 'http://169.254.169.254/', script]);
    expect(allowed.status).toBe(0);
    expect(await models()).toEqual(['c', 'h']);
  });

  it('an export refuses to write a bundle larger than catalog import reads (54000)', () => {
    const content = new Uint8Array(100).fill(1);
    const snapshot = {
      layout: 8,
      models: [{ name: 'm', defaultVersion: 1, owner: 'o', createdAt: 't', updatedAt: 't', grants: [], versions: [{ version: 1, provider: 'onnx', input: [], output: [], options: [], createdAt: 't', secrets: [], metrics: [], artifacts: [{ name: 'model.onnx', sha256: sha256(content), size: 100, content }] }] }],
    };
    const info = { source: 'duckdb:a.duckdb', createdAt: 't' };
    const size = encodeBundle(snapshot, info).byteLength;
    expect(encodeBundle(snapshot, info, size).byteLength).toBe(size);
    expect(() => encodeBundle(snapshot, info, size - 1)).toThrow(expect.objectContaining({ sqlstate: '54000', message: expect.stringContaining(`the bundle would be ${size} bytes, over the ${size - 1} bytes catalog import reads`) }));
  });

  withPostgres('a bundle carries the bytes of path-based ONNX models: DuckDB → Postgres → DuckDB with the model file deleted', async () => {
    const file = join(dir, 'hp.onnx');
    copyFileSync(HOUSE, file);
    const a = await duckdbFile('a.duckdb', `${HOUSES};\nCREATE MODEL hp WITH ('provider' = 'onnx', 'path' = '${file}');`);
    const predict = 'SELECT sqft, price FROM ML_PREDICT(TABLE houses, MODEL hp, DESCRIPTOR(sqft, bedrooms, age)) ORDER BY sqft';
    const expected = await withSession(() => openDuckDB(a), async (db) => (await db.sql(predict)).rows);
    expect(expected).toHaveLength(200);
    const toPg = join(dir, 'to-pg.bundle');
    const exported = await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--format', 'bundle', '--out', toPg, '--json']);
    expect(JSON.parse(exported.stdout)).toMatchObject({ versions: 1, artifacts: 1 });
    rmSync(file);

    const pg = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
    expect(await cli(['catalog', 'import', '--to', pg, toPg])).toMatchObject({ status: 0 });
    const toDuck = join(dir, 'to-duck.bundle');
    expect(await cli(['catalog', 'export', '--from', pg, '--format', 'bundle', '--out', toDuck])).toMatchObject({ status: 0 });
    const c = join(dir, 'c.duckdb');
    expect(await cli(['catalog', 'import', '--to', `duckdb:${c}`, toDuck])).toMatchObject({ status: 0 });

    const facts = async (db: Session) => {
      await db.sql(HOUSES);
      const artifacts = await db.sql('SELECT model_name, version, artifact_name, sha256 FROM ml_catalog.artifacts');
      return { rows: (await db.sql(predict)).rows, artifacts: artifacts.rows };
    };
    const onPg = await withSession(() => connectPostgres(pg), facts);
    const onC = await withSession(() => openDuckDB(c), facts);
    const held = [['hp', 1, 'model.onnx', sha256(readFileSync(HOUSE))]];
    expect(onPg).toEqual({ rows: expected, artifacts: held });
    expect(onC).toEqual({ rows: expected, artifacts: held });
    for (const [left, right] of [[`duckdb:${a}`, pg], [pg, `duckdb:${c}`], [`duckdb:${a}`, `duckdb:${c}`]] as const) {
      expect(await cli(['catalog', 'diff', left, right])).toMatchObject({ status: 0, stdout: 'no differences\n' });
    }
  });

  withPostgres('a bundle and a migration carry a text model directory: it runs with the directory deleted, on DuckDB and Postgres', async () => {
    const model = writeTextModel(join(dir, 'embedder'), { seed: 5 });
    // sentence-transformers' Normalize module: the embeddings are unit vectors only if modules.json travels too.
    writeFileSync(join(model, 'modules.json'), JSON.stringify([{ idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' }, { idx: 1, name: '1', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' }]));
    const texts = `CREATE TABLE texts AS SELECT * FROM (VALUES (1, 'the cat sat on the mat'), (2, 'vector search in sql'), (3, NULL), (4, 'hello world')) AS t(id, body)`;
    const a = await duckdbFile('a.duckdb', `${texts};\nCREATE MODEL emb WITH ('provider' = 'onnx', 'path' = '${model}', 'task' = 'embedding', 'pooling' = 'cls');`);
    const predict = 'SELECT id, embedding FROM ML_PREDICT(TABLE texts, MODEL emb, DESCRIPTOR(body)) ORDER BY id';
    const embeddings = async (db: Session): Promise<(number[] | null)[]> => (await db.sql(predict)).rows.map((r) => (r[1] === null ? null : (r[1] as number[]).map(Number)));
    const expected = await withSession(() => openDuckDB(a), embeddings);
    expect(expected[2]).toBeNull();
    expect(Math.hypot(...expected[0]!)).toBeCloseTo(1, 6);
    const expectSame = (actual: (number[] | null)[]): void => {
      expect(actual.map((e) => e === null)).toEqual(expected.map((e) => e === null));
      actual.forEach((e, i) => e?.forEach((x, j) => expect(Math.abs(x - expected[i]![j]!)).toBeLessThanOrEqual(1e-6)));
    };
    const files = ['config.json', 'model.onnx', 'modules.json', 'tokenizer.json', 'tokenizer_config.json'];
    const held = files.map((name) => ['emb', 1, name, sha256(readFileSync(join(model, name === 'model.onnx' ? 'onnx/model.onnx' : name)))]);

    const bundle = join(dir, 'emb.bundle');
    const exported = await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--format', 'bundle', '--out', bundle, '--json']);
    expect(JSON.parse(exported.stdout)).toMatchObject({ versions: 1, artifacts: files.length });
    const pg = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
    expect(await cli(['catalog', 'migrate', '--from', `duckdb:${a}`, '--to', pg])).toMatchObject({ status: 0 });
    rmSync(model, { recursive: true });
    const c = join(dir, 'c.duckdb');
    expect(await cli(['catalog', 'import', '--to', `duckdb:${c}`, bundle])).toMatchObject({ status: 0 });

    const facts = async (db: Session) => {
      await db.sql(texts);
      const artifacts = await db.sql('SELECT model_name, version, artifact_name, sha256 FROM ml_catalog.artifacts ORDER BY artifact_name');
      return { embeddings: await embeddings(db), artifacts: artifacts.rows };
    };
    for (const open of [() => connectPostgres(pg), () => openDuckDB(c)]) {
      const got = await withSession(open, facts);
      expect(got.artifacts).toEqual(held);
      expectSame(got.embeddings);
    }
    expect(await cli(['catalog', 'diff', `duckdb:${a}`, pg])).toMatchObject({ status: 0, stdout: 'no differences\n' });

    // The held files are what ALTER MODEL checks and runs; pointed at another directory, the model runs from there.
    const other = writeTextModel(join(dir, 'other'), { seed: 9 });
    await withSession(() => openDuckDB(c), async (db) => {
      await db.sql(`ALTER MODEL emb SET ('normalize' = 'false')`);
      const plain = await embeddings(db);
      expect(Math.abs(Math.hypot(...plain[0]!) - 1)).toBeGreaterThan(1e-3);
      plain[0]!.forEach((x, j) => expect(x / Math.hypot(...plain[0]!)).toBeCloseTo(expected[0]![j]!, 6));
      await expectSqlError(db.sql(`ALTER MODEL emb SET ('pooling' = 'max')`), '22023', /'pooling' is 'mean' or 'cls'/);
      await db.sql(`ALTER MODEL emb SET ('path' = '${other}')`);
      expect((await db.sql(`SELECT count(*) FROM ml_catalog.artifacts WHERE artifact_name = 'model.onnx'`)).rows[0]![0]).toBe(0n);
      expect(await embeddings(db)).not.toEqual(plain);
    });
    // A new bundle carries the other directory's files, none of the first one's.
    const again = join(dir, 'again.bundle');
    expect(await cli(['catalog', 'export', '--from', `duckdb:${c}`, '--format', 'bundle', '--out', again])).toMatchObject({ status: 0 });
    const d = join(dir, 'd.duckdb');
    expect(await cli(['catalog', 'import', '--to', `duckdb:${d}`, again])).toMatchObject({ status: 0 });
    const carried = await withSession(() => openDuckDB(d), async (db) => (await db.sql('SELECT artifact_name, sha256 FROM ml_catalog.artifacts ORDER BY artifact_name')).rows);
    expect(carried).toEqual(['config.json', 'model.onnx', 'tokenizer.json', 'tokenizer_config.json'].map((name) => [name, sha256(readFileSync(join(other, name === 'model.onnx' ? 'onnx/model.onnx' : name)))]));
  });

  it('a bundle export of a text model whose directory lost a file fails naming the model and path, and writes no bundle', async () => {
    const model = writeTextModel(join(dir, 'embedder'));
    const a = await duckdbFile('a.duckdb', `CREATE MODEL emb WITH ('provider' = 'onnx', 'path' = '${model}');`);
    rmSync(join(model, 'tokenizer.json'));
    const bundle = join(dir, 'catalog.bundle');
    const r = await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--format', 'bundle', '--out', bundle]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`ERROR:  58P01: cannot carry the model directory of model emb$1 ('path' = '${model}'): the model directory "${model}" has no tokenizer.json`);
    expect(existsSync(bundle)).toBe(false);
  });

  it('a bundle export of an ONNX model whose file is gone or no ONNX graph fails naming the model and path, and writes no bundle', async () => {
    const file = join(dir, 'gone.onnx');
    copyFileSync(HOUSE, file);
    const a = await duckdbFile('a.duckdb', `CREATE MODEL hp WITH ('provider' = 'onnx', 'path' = '${file}');`);
    rmSync(file);
    const bundle = join(dir, 'catalog.bundle');
    const r = await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--format', 'bundle', '--out', bundle]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`ERROR:  58P01: cannot carry the ONNX bytes of model hp$1 ('path' = '${file}'): model file "${file}" does not exist`);
    expect(existsSync(bundle)).toBe(false);
    writeFileSync(file, 'not a model any more');
    const other = await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--format', 'bundle', '--out', bundle]);
    expect(other.status).toBe(1);
    expect(other.stderr).toContain(`ERROR:  22P03: cannot carry the ONNX bytes of model hp$1 ('path' = '${file}'): invalid ONNX model`);
    expect(existsSync(bundle)).toBe(false);
    // A script keeps the path and needs no bytes.
    const script = await cli(['catalog', 'export', '--from', `duckdb:${a}`]);
    expect(script.status).toBe(0);
    expect(script.stdout).toContain(`'path' = '${file}'`);
  });

  it('handles a name clash under each --on-conflict, refusing it without one', async () => {
    const a = await duckdbFile('a.duckdb', `${HOUSES};\n${MODELS}`);
    const bundle = join(dir, 'catalog.bundle');
    expect((await cli(['catalog', 'export', '--from', `duckdb:${a}`, '--format', 'bundle', '--out', bundle])).status).toBe(0);
    const b = await duckdbFile('b.duckdb', `${HOUSES};\n${MODELS.split('\n').slice(1, 2).join('\n')}`);
    const versions = async () => withSession(() => openDuckDB(b), async (db) => (await db.sql('SHOW MODEL VERSIONS hp')).rows.map((r) => r[0]));

    const refused = await cli(['catalog', 'import', '--to', `duckdb:${b}`, bundle]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^ERROR:  42710: model hp already exists in the target catalog; nothing was imported/);
    expect(await versions()).toEqual([1]);
    expect(await withSession(() => openDuckDB(b), async (db) => (await db.sql('SHOW MODELS')).rows.length)).toBe(1);

    const skip = await cli(['catalog', 'import', '--to', `duckdb:${b}`, bundle, '--on-conflict', 'skip', '--json']);
    expect(JSON.parse(skip.stdout).models.map((m: { model: string; action: string }) => `${m.model}:${m.action}`)).toEqual(['chat:create', 'hp:skip', 'lin:create']);
    expect(await versions()).toEqual([1]);

    const added = await cli(['catalog', 'import', '--to', `duckdb:${b}`, bundle, '--on-conflict', 'new-version']);
    expect(added.status).toBe(0);
    expect(added.stdout).toMatch(/│ hp +│ new-version +│ 1→2, 3 +│ +2 │/);
    expect(await versions()).toEqual([1, 2, 3]);

    const replaced = await cli(['catalog', 'import', '--to', `duckdb:${b}`, bundle, '--on-conflict', 'replace']);
    expect(replaced.status).toBe(0);
    expect(replaced.stdout).toMatch(/│ hp +│ replace +│ 1, 3 +│ +1 │/);
    expect(await cli(['catalog', 'diff', `duckdb:${a}`, `duckdb:${b}`])).toMatchObject({ status: 0 });
  });

  it('imports the CREATE MODEL statements of a Flink SQL script and lists every other statement with its line', async () => {
    const flink = `-- A Flink job
SET 'execution.runtime-mode' = 'streaming';
CREATE TABLE reviews (id BIGINT, review STRING) WITH ('connector' = 'kafka', 'topic' = 'reviews');

CREATE MODEL \`default_catalog\`.\`default_database\`.\`Sentiment\`
INPUT (review STRING)
OUTPUT (label STRING)
COMMENT 'positive or negative'
WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'small', 'api-key' = '\${env:CATALOG_TEST_KEY}', 'system-prompt' = 'Answer positive or negative');
CREATE TEMPORARY MODEL house WITH ('type' = 'import', 'format' = 'ONNX', 'ONNX.path' = '${HOUSE}');
INSERT INTO results SELECT id, label FROM ML_PREDICT(TABLE reviews, MODEL \`Sentiment\`, DESCRIPTOR(review));
ALTER MODEL house SET ('batch-size' = '64');
DESCRIBE MODEL house;
DROP MODEL elsewhere;
`;
    const script = join(dir, 'job.sql');
    writeFileSync(script, flink);
    const b = join(dir, 'b.duckdb');
    const r = await cli(['catalog', 'import', '--to', `duckdb:${b}`, script, '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.models).toEqual([{ model: '"Sentiment"', action: 'create' }, { model: 'house', action: 'create' }]);
    expect(report.statements).toEqual([
      { line: 2, statement: "SET 'execution.runtime-mode' = 'streaming'", action: 'skipped', note: 'not a model statement' },
      { line: 3, statement: "CREATE TABLE reviews (id BIGINT, review STRING) WITH ('connector' = 'ka…", action: 'skipped', note: 'not a model statement' },
      { line: 5, statement: 'CREATE MODEL `default_catalog`.`default_database`.`Sentiment`', action: 'imported', note: "catalog 'default_catalog' left out of the name; Flink's default_database is the default schema" },
      { line: 10, statement: expect.stringMatching(/^CREATE TEMPORARY MODEL house/), action: 'imported', note: 'TEMPORARY: imported as a persistent model' },
      { line: 11, statement: expect.stringMatching(/^INSERT INTO results/), action: 'skipped', note: 'not a model statement' },
      { line: 12, statement: "ALTER MODEL house SET ('batch-size' = '64')", action: 'imported' },
      { line: 13, statement: 'DESCRIBE MODEL house', action: 'skipped', note: 'reads the catalog; nothing to import' },
      { line: 14, statement: 'DROP MODEL elsewhere', action: 'skipped', note: 'model elsewhere is not created by this script' },
    ]);
    const models = await withSession(() => openDuckDB(b), async (db) => (await db.sql('SHOW MODELS')).rows.map((row) => [row[0], row[5], row[6]]));
    expect(models).toEqual([['Sentiment', false, 'positive or negative'], ['house', false, null]]);
    const table = await cli(['catalog', 'import', '--to', `duckdb:${b}`, script, '--on-conflict', 'skip', '--dry-run']);
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/│ +2 │ SET 'execution\.runtime-mode' = 'streaming' +│ skipped +│ not a model statement/);
    expect(table.stderr).toMatch(/^dry run: would import 2 models: "Sentiment" \(skip\), house \(skip\); 8 statements skipped; nothing was written\n$/);
  });

  it('imports the CREATE MATERIALIZED TABLE statements of a Flink script whose source tables exist in the target', async () => {
    const b = join(dir, 'mt.duckdb');
    await withSession(() => openDuckDB(b), async (db) => {
      await db.sql('CREATE TABLE houses (id INTEGER PRIMARY KEY, sqft DOUBLE, bedrooms DOUBLE, age DOUBLE)');
      await db.sql('INSERT INTO houses VALUES (1, 1000, 2, 10), (2, 1500, 3, 5)');
    });
    const script = join(dir, 'mt.sql');
    writeFileSync(
      script,
      `CREATE MODEL house INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE) OUTPUT (price DOUBLE) WITH ('provider' = 'onnx', 'path' = '${HOUSE}');
CREATE MATERIALIZED TABLE \`default_catalog\`.\`default_database\`.house_prices FRESHNESS = INTERVAL '10' SECOND AS SELECT id, price FROM ML_PREDICT(TABLE houses, MODEL house, DESCRIPTOR(sqft, bedrooms, age));
CREATE MATERIALIZED TABLE other_prices FRESHNESS = INTERVAL '10' SECOND AS SELECT id, price FROM ML_PREDICT(TABLE missing, MODEL house, DESCRIPTOR(sqft, bedrooms, age));
`,
    );
    const r = await cli(['catalog', 'import', '--to', `duckdb:${b}`, script, '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).statements.slice(1)).toEqual([
      { line: 2, statement: expect.stringMatching(/^CREATE MATERIALIZED TABLE/), action: 'imported', note: 'catalog and default_database left out of the name' },
      { line: 3, statement: expect.stringMatching(/^CREATE MATERIALIZED TABLE other_prices/), action: 'skipped', note: 'its source table missing does not exist in the target; create it, then run the statement' },
    ]);
    const shown = await withSession(() => openDuckDB(b), async (db) => [(await db.sql('SHOW MATERIALIZED TABLES')).rows.map((row) => [row[1], row[2]]), (await db.sql('SELECT count(*) FROM house_prices')).rows[0]![0]]);
    expect(shown).toEqual([[['house_prices', 'CONTINUOUS']], 2n]);
  });

  it('reports a script that does not parse with its line and caret, importing nothing', async () => {
    const script = join(dir, 'bad.sql');
    writeFileSync(script, `CREATE MODEL ok WITH ('provider' = 'onnx', 'path' = '${HOUSE}');\nCREATE MODEL bad INPUT (x DOUBLE) WITH ();\n`);
    const b = join(dir, 'b.duckdb');
    const r = await cli(['catalog', 'import', '--to', `duckdb:${b}`, script]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ERROR:  42601: .*\nLINE 2: CREATE MODEL bad INPUT \(x DOUBLE\) WITH \(\);\n +\^/);
    const models = await withSession(() => openDuckDB(b), async (db) => (await db.sql('SHOW MODELS')).rows);
    expect(models).toEqual([]);
  });
});
