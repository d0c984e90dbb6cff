/**
 * `modelsql catalog import` and `migrate` into a Postgres where other roles own models
 * (test/security/attack-fixture.ts: `admin` owns the catalog, `alice` and `bob` have CREATE
 * on schema public). An import writes through modelsql's catalog functions as the importing
 * role, so it must neither reach a model that role may not change nor leave a model to a
 * role that does not exist (whoever creates that role later would own it); and a failing
 * import leaves the target as it was.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBHost, openDuckDB } from '../../adapters/duckdb/index.js';
import { encodeBundle } from '../../cli/catalog/bundle.js';
import { readSnapshot, type CatalogSnapshot } from '../../core/catalog/catalog-snapshot.js';
import { runCli } from '../support/run-cli.js';
import { NONE, ROLE, as, catalogRows, failure, roleUrl, rows, tag } from './attack-fixture.js';

let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'modelsql-import-attacks-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const remote = (name: string) => `CREATE MODEL ${name} INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'gpt', 'api-key' = '\${env:IMPORT_ATTACK_KEY}')`;

/** A DuckDB file holding `names` as remote models, every row of them owned by `owner`; its path. */
async function duckdbFile(file: string, names: readonly string[], owner: string): Promise<string> {
  const path = join(dir, file);
  const db = await openDuckDB(path);
  try {
    process.env.IMPORT_ATTACK_KEY = 'unused';
    for (const name of names) await db.sql(remote(name));
    for (const table of ['models', 'model_versions', 'artifacts', 'training_metrics', 'model_secrets']) await db.sql(`UPDATE ml_catalog.${table} SET owner = '${owner}'`);
  } finally {
    await db.close();
  }
  return path;
}

/** A bundle of the models of a DuckDB file; its path. */
async function bundleOf(duckdb: string, file: string): Promise<string> {
  const host = await DuckDBHost.open(duckdb);
  let snapshot: CatalogSnapshot;
  try {
    snapshot = await readSnapshot(host, { artifactContent: true });
  } finally {
    await host.close();
  }
  const path = join(dir, file);
  writeFileSync(path, encodeBundle(snapshot, { source: `duckdb:${duckdb}`, createdAt: new Date().toISOString() }));
  return path;
}

test('an import or migration onto the name of bob’s model, which alice may not see: 42710 under every policy, nothing written, bob’s model intact', async () => {
  const hidden = `hidden_${tag}`;
  const fresh = `fresh_${tag}`;
  await as('bob', 'proxy', (c) => c.query(remote(hidden)));
  const bobs = await catalogRows('public', hidden);
  const source = await duckdbFile('hidden.duckdb', [fresh, hidden], ROLE.alice);
  const bundle = await bundleOf(source, 'hidden.bundle');
  for (const policy of ['error', 'skip', 'replace', 'new-version']) {
    for (const args of [
      ['catalog', 'import', '--to', roleUrl('alice', 'direct'), bundle, '--on-conflict', policy],
      ['catalog', 'migrate', '--from', `duckdb:${source}`, '--to', roleUrl('alice', 'direct'), '--on-conflict', policy],
    ]) {
      const r = await runCli(args);
      expect(r.stderr).toContain(`ERROR:  42710: model ${hidden} already exists in the target catalog, owned by a role whose models this one may not see; nothing was imported`);
      expect(r.status).toBe(1);
    }
  }
  expect(await catalogRows('public', fresh)).toEqual(NONE);
  expect(await catalogRows('public', hidden)).toEqual(bobs);
  expect(await as('superuser', 'direct', (c) => rows(c, 'SELECT owner FROM ml_catalog.models WHERE model_name = $1', [hidden]))).toEqual([[ROLE.bob]]);
});

test('a model whose owner is no role of the target goes to the importing role: a role of that name created later gets nothing', async () => {
  const ghost = `ghost_${tag}`;
  const name = `orphan_${tag}`;
  const bundle = await bundleOf(await duckdbFile('ghost.duckdb', [name], ghost), 'ghost.bundle');
  const r = await runCli(['catalog', 'import', '--to', roleUrl('admin', 'direct'), bundle]);
  expect(r.stderr).toContain(`WARNING:  model ${name}: its owner ${ghost} is not a role of the target database; it is owned by ${ROLE.admin}, the importing role`);
  expect(r.status).toBe(0);
  // bob creates the role the bundle named (here the superuser does it for him) and makes it his.
  await as('superuser', 'direct', async (c) => {
    await c.query(`CREATE ROLE ${ghost}`);
    await c.query(`GRANT ${ghost} TO ${ROLE.bob}`);
  });
  await as('bob', 'proxy', async (c) => {
    expect(await failure(c.query(`ALTER MODEL ${name} SET ('endpoint' = 'http://127.0.0.1:10/v1')`))).toBe('42704');
    expect(await rows(c, 'SELECT count(*) FROM ml_catalog.models WHERE model_name = $1', [name])).toEqual([['0']]);
  });
  expect(await as('superuser', 'direct', (c) => rows(c, 'SELECT DISTINCT owner FROM ml_catalog.model_versions WHERE model_name = $1', [name]))).toEqual([[ROLE.admin]]);
});

test('alice migrates the models of a DuckDB file (owned by its operating-system user) into Postgres: they are hers', async () => {
  const name = `from_duckdb_${tag}`;
  const source = await duckdbFile('mine.duckdb', [name], `os_user_${tag}`);
  const r = await runCli(['catalog', 'migrate', '--from', `duckdb:${source}`, '--to', roleUrl('alice', 'direct')]);
  expect(r.stderr).toContain(`1 of 1 models written`);
  expect(r.status).toBe(0);
  await as('alice', 'proxy', async (c) => {
    expect(await rows(c, 'SELECT owner FROM ml_catalog.models WHERE model_name = $1', [name])).toEqual([[ROLE.alice]]);
    await c.query(`DROP MODEL ${name}`);
  });
});
