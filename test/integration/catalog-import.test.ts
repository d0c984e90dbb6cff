/**
 * Catalog snapshots on every adapter (core/catalog/catalog-snapshot.ts, catalog-import.ts,
 * script-import.ts, catalog-diff.ts): read, import under each conflict policy, dry runs,
 * secrets, the prediction cache, a newer target layout, and imports that fail half-way
 * leaving the target as it was.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBHost } from '../../adapters/duckdb/index.js';
import { PgClientConnection, PostgresHost } from '../../adapters/postgres/index.js';
import { importSnapshot } from '../../core/catalog/catalog-import.js';
import { diffSnapshots } from '../../core/catalog/catalog-diff.js';
import { readSnapshot, type CatalogSnapshot, type SnapshotModel } from '../../core/catalog/catalog-snapshot.js';
import { importScript } from '../../core/catalog/script-import.js';
import { withOnnxBytes } from '../../core/catalog/snapshot-onnx.js';
import type { Host } from '../../core/host.js';
import { ModelSession } from '../../core/session/model-session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { writeModelFiles } from '../support/model-files.js';
import { linearRegressorModel } from '../support/onnx-models.js';
import { createTestDatabase } from '../support/postgres-server.js';

const files = writeModelFiles();
const create = (name: string, extra = '') =>
  `CREATE MODEL ${name} INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}'${extra})`;

/** A fresh database's host, and a session over the same connection. */
async function openHost(adapter: string): Promise<{ host: Host; session: ModelSession }> {
  let host: Host;
  if (adapter === 'duckdb') host = await DuckDBHost.open();
  else host = new PostgresHost(await PgClientConnection.connect(await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!)));
  return { host, session: new ModelSession(host) };
}

/** A snapshot of `count` models `m0`, `m1`, … with one 1 kB artifact each. */
function syntheticSnapshot(count: number): CatalogSnapshot {
  const content = new Uint8Array(1000).fill(7);
  const models: SnapshotModel[] = Array.from({ length: count }, (_, i) => ({
    name: `m${i}`,
    defaultVersion: 1,
    owner: 'tester',
    createdAt: '2026-01-02 03:04:05.123',
    updatedAt: '2026-01-02 03:04:05.123',
    grants: [],
    versions: [
      {
        version: 1,
        provider: 'onnx',
        input: [{ name: 'a', type: 'DOUBLE' }],
        output: [{ name: 'y', type: 'DOUBLE' }],
        options: [['provider', 'onnx'], ['path', files.linear]],
        createdAt: '2026-01-02 03:04:05.123',
        secrets: [],
        artifacts: [{ name: 'model.onnx', sha256: createHash('sha256').update(content).digest('hex'), size: content.byteLength, content }],
        metrics: [],
      },
    ],
  }));
  return { layout: 2, models };
}

const versionsOf = async (session: ModelSession, name: string) => (await session.sql(`SHOW MODEL VERSIONS ${name}`)).rows.map((r) => [r[0], r[1]]);
const modelNames = async (session: ModelSession) => (await session.sql('SHOW MODELS')).rows.map((r) => r[0]);

for (const adapter of ADAPTERS) {
  describe(`catalog import on ${adapter.name}`, () => {
    let source: { host: Host; session: ModelSession };
    let target: { host: Host; session: ModelSession };
    beforeEach(async () => {
      source = await openHost(adapter.name);
      target = await openHost(adapter.name);
      // source: shared v1, v2 (default 1); fresh v1
      await source.session.sql(`${create('shared')}; CREATE OR REPLACE ${create('shared', ", 'batch-size' = '64'").slice('CREATE '.length)}; ALTER MODEL shared SET ('default-version' = '1'); ${create('fresh')}`);
      // target: shared v1, v2, v3 (another definition)
      await target.session.sql(`${create('shared', ", 'batch-size' = '8'")}; CREATE OR REPLACE ${create('shared').slice('CREATE '.length)}; CREATE OR REPLACE ${create('shared').slice('CREATE '.length)}`);
    });
    afterEach(async () => {
      await source.session.close();
      await target.session.close();
    });

    it('reads a database without a catalog as empty, and leaves it without one', async () => {
      const { host, session } = await openHost(adapter.name);
      try {
        expect((await readSnapshot(host)).models).toEqual([]);
        const tables = await host.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ml_catalog'");
        expect(Number(tables.rows[0]![0])).toBe(0);
      } finally {
        await session.close();
      }
    });

    it('refuses a name clash without a policy, and leaves the target as it was', async () => {
      const before = await readSnapshot(target.host);
      await expectSqlError(importSnapshot(target.host, await readSnapshot(source.host, { artifactContent: true })), '42710', /model shared already exists in the target catalog; nothing was imported/);
      expect(diffSnapshots(before, await readSnapshot(target.host))).toEqual([]);
    });

    it('skip keeps the target model and imports the others', async () => {
      const report = await importSnapshot(target.host, await readSnapshot(source.host, { artifactContent: true }), { onConflict: 'skip' });
      expect(report.models.map((m) => [m.model, m.action])).toEqual([['fresh', 'create'], ['shared', 'skip']]);
      expect(await versionsOf(target.session, 'shared')).toEqual([[1, false], [2, false], [3, true]]);
      expect(await modelNames(target.session)).toEqual(['fresh', 'shared']);
    });

    it('replace writes the source model with its version numbers and default', async () => {
      await importSnapshot(target.host, await readSnapshot(source.host, { artifactContent: true }), { onConflict: 'replace' });
      expect(await versionsOf(target.session, 'shared')).toEqual([[1, true], [2, false]]);
      expect(diffSnapshots(await readSnapshot(source.host), await readSnapshot(target.host))).toEqual([]);
    });

    it('new-version adds the source versions after the target ones, the source default becoming the default', async () => {
      const report = await importSnapshot(target.host, await readSnapshot(source.host, { artifactContent: true }), { onConflict: 'new-version' });
      expect(report.models.find((m) => m.model === 'shared')).toMatchObject({ action: 'new-version', versions: [{ from: 1, to: 4 }, { from: 2, to: 5 }], defaultVersion: 4 });
      expect(await versionsOf(target.session, 'shared')).toEqual([[1, false], [2, false], [3, false], [4, true], [5, false]]);
      const show = (await target.session.sql('SHOW CREATE MODEL shared$5')).rows[0]![0] as string;
      expect(show).toContain("'batch-size' = '64'");
    });

    it('a dry run reports the plan and writes nothing', async () => {
      const before = await readSnapshot(target.host);
      const report = await importSnapshot(target.host, await readSnapshot(source.host, { artifactContent: true }), { onConflict: 'replace', dryRun: true });
      expect(report.dryRun).toBe(true);
      expect(report.models.map((m) => m.action)).toEqual(['create', 'replace']);
      expect(diffSnapshots(before, await readSnapshot(target.host))).toEqual([]);
    });

    it('an import that fails half-way (after its first group of models) leaves the target unchanged', async () => {
      const before = await readSnapshot(target.host);
      let calls = 0;
      const failing = importSnapshot(target.host, syntheticSnapshot(400), {
        onProgress: (done) => {
          calls++;
          if (done === 250) throw new Error('interrupted after 250 models');
        },
      });
      await expect(failing).rejects.toThrow('interrupted after 250 models');
      expect(calls).toBe(1);
      expect(diffSnapshots(before, await readSnapshot(target.host))).toEqual([]);
      expect(await modelNames(target.session)).toEqual(['shared']);
      // and the same import goes through once nothing interrupts it
      await importSnapshot(target.host, syntheticSnapshot(400));
      expect((await modelNames(target.session)).length).toBe(401);
    });

    it('refuses a snapshot of the wrong shape before writing anything: the catalog is never left with a model or version twice', async () => {
      const before = await readSnapshot(target.host);
      const good = syntheticSnapshot(2);
      const [m0, m1] = good.models as [SnapshotModel, SnapshotModel];
      const v1 = m0.versions[0]!;
      const hostile: [string, CatalogSnapshot, RegExp][] = [
        ['a model twice', { ...good, models: [m0, m1, m0] }, /model m0 appears twice/],
        ['a version twice', { ...good, models: [{ ...m0, versions: [v1, v1] }] }, /model m0 lists version 1 twice/],
        ['a fractional version', { ...good, models: [{ ...m0, defaultVersion: 1.5, versions: [{ ...v1, version: 1.5 }] }] }, /model m0 has a version whose number is not a positive integer/],
        ['no versions', { ...good, models: [{ ...m0, versions: [] }] }, /model m0 has no versions/],
        ['a default it does not have', { ...good, models: [{ ...m0, defaultVersion: 7 }] }, /the default version of model m0 \(7\) is not one of its versions/],
        ['an option value that is no string', { ...good, models: [{ ...m0, versions: [{ ...v1, options: [['batch-size', { n: 1 }]] }] }] } as unknown as CatalogSnapshot, /model m0\$1 has an option that is not a pair of strings/],
        ['a column type that is no type', { ...good, models: [{ ...m0, versions: [{ ...v1, input: [{ name: 'a', type: 'DOUBLE); DROP TABLE t; --' }] }] }] }, /column a of model m0\$1 has type .* which is not a type/],
        ['an artifact twice', { ...good, models: [{ ...m0, versions: [{ ...v1, artifacts: [v1.artifacts[0]!, v1.artifacts[0]!] }] }] }, /model m0\$1 has artifact 'model.onnx' twice/],
      ];
      for (const [, snapshot, message] of hostile) {
        for (const onConflict of ['error', 'replace'] as const) {
          await expectSqlError(importSnapshot(target.host, snapshot, { onConflict }), '22023', new RegExp(`the models to import are not a valid catalog snapshot: ${message.source}; nothing was imported`));
        }
      }
      expect(diffSnapshots(before, await readSnapshot(target.host))).toEqual([]);
      expect(await modelNames(target.session)).toEqual(['shared']);
    });

    it('seals a literal key found among a snapshot\'s readable options, as CREATE MODEL does: never stored in the clear', async () => {
      const snapshot = syntheticSnapshot(1);
      const m0 = snapshot.models[0]!;
      const v1 = m0.versions[0]!;
      const clear = 'sk-written-in-the-clear-4321';
      await importSnapshot(target.host, { ...snapshot, models: [{ ...m0, versions: [{ ...v1, options: [...v1.options, ['api-key', clear]] }] }] });
      const options = await target.host.execute("SELECT options FROM ml_catalog.model_versions WHERE model_name = 'm0'");
      expect(JSON.stringify(options.rows)).not.toContain(clear);
      expect(JSON.parse(String(options.rows[0]![0]))).toContainEqual(['api-key', '******']);
      const stored = await target.host.execute("SELECT option_key, secret FROM ml_catalog.model_secrets WHERE model_name = 'm0'");
      expect(stored.rows).toEqual([['api-key', expect.stringMatching(/^modelsql-sealed:v1:/)]]);
      expect((await readSnapshot(target.host, { models: 'm0', includeSecrets: true })).models[0]!.versions[0]!.secrets).toEqual([expect.objectContaining({ key: 'api-key', value: clear })]);
    });

    it('refuses a trained model whose training spec training could not have written, or a provider this modelsql does not know (22023 naming it), leaving the target as it was', async () => {
      await source.session.sql("CREATE TABLE houses AS SELECT CAST(i AS DOUBLE PRECISION) AS sqft, CAST(3 * i + 1 AS DOUBLE PRECISION) AS price FROM generate_series(1, 50) AS g(i); CREATE MODEL lin WITH ('algorithm' = 'linear_regression', 'label' = 'price', 'task' = 'regression') AS SELECT sqft, price FROM houses");
      const good = await readSnapshot(source.host, { models: 'lin', artifactContent: true });
      const lin = good.models[0]!;
      const v1 = lin.versions[0]!;
      const spec = JSON.parse(new TextDecoder().decode(v1.artifacts.find((a) => a.name === 'model.json')!.content)) as Record<string, unknown>;
      const withSpec = (text: string | undefined): CatalogSnapshot => {
        const artifacts = v1.artifacts.filter((a) => a.name !== 'model.json');
        if (text !== undefined) {
          const content = new TextEncoder().encode(text);
          artifacts.push({ name: 'model.json', content, size: content.byteLength, sha256: createHash('sha256').update(content).digest('hex') });
        }
        return { ...good, models: [{ ...lin, versions: [{ ...v1, artifacts }] }] };
      };
      const before = await readSnapshot(target.host);
      const hostile: [string | undefined, RegExp][] = [
        ['not json', /has a training spec \(model.json\) that training could not have written \(.*JSON/],
        [JSON.stringify({ x: 1 }), /unknown trained-model format 'undefined'/],
        [JSON.stringify({ ...spec, parameters: { kind: 'linear', intercept: 'NaN; DROP TABLE houses', weights: [1] } }), /training could not have written/],
        [JSON.stringify({ ...spec, features: [] }), /its features are not the 1 INPUT columns/],
        [undefined, /model lin\$1 is a trained model without its training spec \(model.json\)/],
      ];
      for (const [text, message] of hostile) {
        await expectSqlError(importSnapshot(target.host, withSpec(text)), '22023', new RegExp(`not a valid catalog snapshot: .*${message.source}.*; nothing was imported`));
      }
      // A provider this modelsql does not run fails here, not at every later ML_PREDICT.
      const unknown: CatalogSnapshot = { ...good, models: [{ ...lin, versions: [{ ...v1, provider: 'sagemaker' }] }] };
      await expectSqlError(importSnapshot(target.host, unknown), '22023', /model lin\$1 has provider 'sagemaker', which this modelsql does not know; nothing was imported/);
      expect(diffSnapshots(before, await readSnapshot(target.host))).toEqual([]);
      expect(await modelNames(target.session)).toEqual(['shared']);
      await importSnapshot(target.host, good);
      expect(await modelNames(target.session)).toEqual(['lin', 'shared']);
    });

    it('gives a new model whose owner is no role of the target (a DuckDB file\'s OS user) to the importing role, with a warning', async () => {
      const report = await importSnapshot(target.host, syntheticSnapshot(1));
      const owner = (await target.host.execute("SELECT owner FROM ml_catalog.models WHERE model_name = 'm0'")).rows[0]![0];
      if (adapter.name !== 'postgres') {
        // No roles: the owner is an operating-system user, kept as it was.
        expect(owner).toBe('tester');
        expect(report.warnings).toEqual([]);
        return;
      }
      const me = String((await target.host.execute('SELECT current_user')).rows[0]![0]);
      expect(owner).toBe(me);
      expect(report.warnings).toEqual([`model m0: its owner tester is not a role of the target database; it is owned by ${me}, the importing role`]);
    });

    it('a script whose third statement fails imports nothing', async () => {
      const before = await readSnapshot(target.host);
      const script = `${create('one')};\nCREATE TABLE t1 (x INT);\n${create('two')};\nCREATE MODEL three INPUT (a DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.dir}/missing.onnx');`;
      await expect(importScript(target.host, (s, t) => target.session.runStatement(s, t), script)).rejects.toThrow(/missing\.onnx/);
      expect(diffSnapshots(before, await readSnapshot(target.host))).toEqual([]);
      expect(await modelNames(target.session)).toEqual(['shared']);
    });

    it('reads a Flink script of 100,000 statements in one pass, each reported at its line', async () => {
      // Each statement's line was counted from the script's start: quadratic, about ten minutes here.
      const count = 100_000;
      const script = `${create('many')};\n${'INSERT INTO results VALUES (1);\n'.repeat(count - 1)}/* last */ SELECT 1;\n`;
      const report = await importScript(target.host, (s, t) => target.session.runStatement(s, t), script);
      expect(report.models).toEqual([{ model: 'many', action: 'create' }]);
      expect(report.statements).toHaveLength(count + 1);
      expect(report.statements[1]).toMatchObject({ line: 2, action: 'skipped', statement: 'INSERT INTO results VALUES (1)' });
      expect(report.statements[count]).toMatchObject({ line: count + 1, statement: 'SELECT 1' });
      expect(await modelNames(target.session)).toEqual(['many', 'shared']);
    }, 120_000);

    it('refuses a target catalog of a newer layout, unchanged', async () => {
      await target.host.execute('INSERT INTO ml_catalog.schema_version VALUES (99, CAST(now() AS TIMESTAMP))');
      await expectSqlError(importSnapshot(target.host, await readSnapshot(source.host, { artifactContent: true })), '55000', /layout version 99, newer than this modelsql understands/);
      await expectSqlError(readSnapshot(target.host), '55000');
      await target.host.execute('DELETE FROM ml_catalog.schema_version WHERE version = 99');
      expect(await modelNames(target.session)).toEqual(['shared']);
    });

    it('keeps literal secrets out unless asked for, and ${env:...} references as they are', async () => {
      const remote = (name: string, key: string) =>
        `CREATE MODEL ${name} INPUT (t STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'm', 'api-key' = '${key}')`;
      process.env.MY_KEY = 'sk-from-env-5678';
      await source.session.sql(`${remote('lit', 'sk-literal-1234')}; ${remote('ref', '${env:MY_KEY}')}`);
      const plain = await readSnapshot(source.host, { models: '%' });
      expect(JSON.stringify(plain)).not.toContain('sk-literal-1234');
      const lit = plain.models.find((m) => m.name === 'lit')!.versions[0]!;
      expect(lit.options).toContainEqual(['api-key', '******']);
      expect(plain.models.find((m) => m.name === 'ref')!.versions[0]!.options).toContainEqual(['api-key', '${env:MY_KEY}']);
      const report = await importSnapshot(target.host, plain, { onConflict: 'skip' });
      expect(report.warnings).toEqual([expect.stringMatching(/model lit\$1: its literal 'api-key' was not exported/)]);
      expect(diffSnapshots(await readSnapshot(source.host, { models: 'lit' }), await readSnapshot(target.host, { models: 'lit' }))).toEqual([
        { model: 'lit', version: 1, field: "secret 'api-key'", left: '******', right: null },
      ]);
      const withSecrets = await readSnapshot(source.host, { models: 'lit', includeSecrets: true });
      await importSnapshot(target.host, withSecrets, { onConflict: 'replace' });
      expect(diffSnapshots(await readSnapshot(source.host, { models: 'lit' }), await readSnapshot(target.host, { models: 'lit' }))).toEqual([]);
      const stored = await target.host.execute("SELECT secret FROM ml_catalog.model_secrets WHERE model_name = 'lit'");
      expect(stored.rows).toEqual([[expect.stringMatching(/^modelsql-sealed:v1:/)]]);
      expect(JSON.stringify(stored.rows)).not.toContain('sk-literal-1234');
    });

    it('gives the grants of a snapshot where the host has roles, and reports those it cannot give', async () => {
      const snapshot = syntheticSnapshot(1);
      const grants = [{ role: 'modelsql_import_analyst', privilege: 'USAGE' as const }, { role: 'no_such_role_here', privilege: 'USAGE' as const }];
      if (adapter.name === 'postgres') await target.host.execute('DO $$ BEGIN CREATE ROLE modelsql_import_analyst; EXCEPTION WHEN duplicate_object THEN NULL; END $$');
      // An owner the target has (else the import gives the model to the importing role, with a warning of its own).
      const owner = adapter.name === 'postgres' ? String((await target.host.execute('SELECT current_user')).rows[0]![0]) : 'tester';
      const report = await importSnapshot(target.host, { ...snapshot, models: [{ ...snapshot.models[0]!, owner, grants }] });
      if (adapter.name !== 'postgres') {
        expect(report.warnings).toEqual(grants.map((g) => `model m0: USAGE to ${g.role} not imported (duckdb has no roles); give it with GRANT USAGE ON MODEL m0 TO ${g.role}`));
        return;
      }
      expect(report.warnings).toEqual(['model m0: USAGE to no_such_role_here not imported (role no_such_role_here does not exist); give it with GRANT USAGE ON MODEL m0 TO no_such_role_here']);
      const given = await target.host.execute("SELECT grantee FROM ml_catalog.model_grants WHERE model_name = 'm0'");
      expect(given.rows).toEqual([['modelsql_import_analyst']]);
      expect((await readSnapshot(target.host, { models: 'm0' })).models[0]!.grants).toEqual([grants[0]]);
    });

    it('copies the prediction cache only when the snapshot holds it, keeping the target entries', async () => {
      const row = (key: string) => `INSERT INTO ml_catalog.prediction_cache VALUES ('${key}', 'openai', 'm', '{"a":1}', CAST(now() AS TIMESTAMP))`;
      await source.host.execute(row('k1'));
      await source.host.execute(row('k2'));
      await target.host.execute(row('k2'));
      await importSnapshot(target.host, await readSnapshot(source.host, { artifactContent: true }), { onConflict: 'skip' });
      const count = async () => Number((await target.host.execute('SELECT count(*) FROM ml_catalog.prediction_cache')).rows[0]![0]);
      expect(await count()).toBe(1);
      const report = await importSnapshot(target.host, await readSnapshot(source.host, { artifactContent: true, withCache: true }), { onConflict: 'skip' });
      expect(report.cacheRows).toBe(1);
      expect(await count()).toBe(2);
    });

    it('diff names models, versions, defaults and options that differ', async () => {
      const differences = diffSnapshots(await readSnapshot(source.host), await readSnapshot(target.host));
      expect(differences).toEqual([
        { model: 'fresh', field: 'model', left: 'versions 1 (default 1)', right: null },
        { model: 'shared', field: 'default version', left: '1', right: '3' },
        { model: 'shared', version: 1, field: "option 'batch-size'", left: null, right: '8' },
        { model: 'shared', version: 2, field: "option 'batch-size'", left: '64', right: null },
        { model: 'shared', version: 3, field: 'version', left: null, right: 'present' },
      ]);
    });
  });
}

for (const adapter of ADAPTERS) {
  describe(`catalog-held ONNX bytes on ${adapter.name}`, () => {
    it('take precedence over the path, a session loads replaced bytes anew, and ALTER to another path drops them', async () => {
      const { host, session } = await openHost(adapter.name);
      try {
        await session.sql(`CREATE TABLE pts AS SELECT CAST(1 AS DOUBLE PRECISION) AS a, CAST(2 AS DOUBLE PRECISION) AS b; ${create('held')}`);
        const predict = async () => Number((await session.sql('SELECT y FROM ML_PREDICT(TABLE pts, MODEL held, DESCRIPTOR(a, b))')).rows[0]![0]);
        expect(await predict()).toBeCloseTo(7, 4); // 2·1 + 3·2 − 1, from the path
        const carried = await withOnnxBytes(await readSnapshot(host, { artifactContent: true }), { cacheDir: files.dir });
        expect(carried.models[0]!.versions[0]!.artifacts.map((a) => [a.name, a.size])).toEqual([['model.onnx', readFileSync(files.linear).byteLength]]);
        // The same options with other bytes, twice: each import's bytes are used, none stale.
        for (const [weights, bias, y] of [[[1, 1], 0, 3], [[0, 0], 5, 5]] as const) {
          const content = linearRegressorModel(weights, bias);
          const artifact = { name: 'model.onnx', sha256: createHash('sha256').update(content).digest('hex'), size: content.byteLength, content };
          const models = carried.models.map((m) => ({ ...m, versions: m.versions.map((v) => ({ ...v, artifacts: [artifact] })) }));
          await importSnapshot(host, { ...carried, models }, { onConflict: 'replace' });
          expect(await predict()).toBeCloseTo(y, 4);
        }
        // Other options change with the held bytes checked, the file gone.
        const gone = join(files.dir, 'gone.onnx');
        copyFileSync(files.linear, gone);
        await session.sql(`ALTER MODEL held SET ('path' = '${gone}')`);
        await importSnapshot(host, { ...carried, models: carried.models.map((m) => ({ ...m, versions: m.versions.map((v) => ({ ...v, options: [['provider', 'onnx'], ['path', gone]] as const })) })) }, { onConflict: 'replace' });
        rmSync(gone);
        await session.sql("ALTER MODEL held SET ('batch-size' = '2')");
        expect(await predict()).toBeCloseTo(7, 4);
        // Pointed at another file, the version reads that file again.
        const moved = join(files.dir, 'moved.onnx');
        copyFileSync(files.linear, moved);
        await session.sql(`ALTER MODEL held SET ('path' = '${moved}')`);
        expect(await predict()).toBeCloseTo(7, 4);
        expect((await session.sql("SELECT count(*) FROM ml_catalog.artifacts WHERE model_name = 'held'")).rows[0]![0]).toEqual(0n);
      } finally {
        await session.close();
      }
    });
  });
}
