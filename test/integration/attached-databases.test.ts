/**
 * Model names with a database part (Flink's `catalog.database.model`). DuckDB: every
 * attached database keeps its own model catalog, reached by three-part names, `USE` and
 * `SHOW MODELS FROM db.schema`, and kept in its file across DETACH / ATTACH; a read-only one
 * is read, never written. Postgres: any schema of the current database, and a three-part
 * name naming another database refused as Postgres refuses cross-database references.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDuckDB } from '../../adapters/duckdb/index.js';
import type { Session } from '../../core/session/session.js';
import { readModelArtifact } from '../../core/training/export-artifact.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';

/** `CREATE [TEMPORARY] MODEL <name>` trained on `houses` (price = 2·sqft + 1, exactly). */
function train(name: string, houses = 'houses', temporary = false): string {
  return `CREATE ${temporary ? 'TEMPORARY ' : ''}MODEL ${name} WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, price FROM ${houses}`;
}

const HOUSES = 'CREATE TABLE houses AS SELECT CAST(i AS DOUBLE PRECISION) AS sqft, CAST(2 * i + 1 AS DOUBLE PRECISION) AS price FROM generate_series(1, 20) AS g(i)';

/** Model names, schema and name, of a SHOW MODELS answer. */
async function shown(db: Session, statement: string): Promise<string[]> {
  return (await db.sql(statement)).rows.map((r) => `${String(r[1])}.${String(r[0])}`);
}

/** Rows of `ml_catalog.models` in database `database`. */
async function catalogRows(db: Session, database: string): Promise<string[]> {
  return (await db.sql(`SELECT schema_name || '.' || model_name FROM "${database}".ml_catalog.models ORDER BY 1`)).rows.map((r) => String(r[0]));
}

const duckdb = ADAPTERS.find((a) => a.name === 'duckdb');
(duckdb ? describe : describe.skip)('models in attached DuckDB databases', () => {
  let dir: string;
  let db: Session;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'modelsql-attached-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(async () => {
    db = await openDuckDB();
    await db.sql(HOUSES);
  });
  afterEach(async () => db.close());

  it('keeps each database its own catalog, reached by three-part names in every model statement', async () => {
    const file = join(dir, 'three-part.duckdb');
    await db.sql(`ATTACH '${file}' AS cat1; CREATE SCHEMA cat1.db1`);
    await db.sql(train('cat1.db1.m1'));
    expect(await catalogRows(db, 'cat1')).toEqual(['db1.m1']);
    // The current database's catalog holds nothing.
    expect(await shown(db, 'SHOW MODELS')).toEqual([]);
    expect(await shown(db, 'SHOW MODELS FROM cat1.db1')).toEqual(['db1.m1']);
    expect(await shown(db, 'SHOW MODELS IN cat1.db1 ILIKE \'M%\'')).toEqual(['db1.m1']);
    expect((await db.sql('DESCRIBE MODEL cat1.db1.m1')).rows.map((r) => r[0])).toEqual(['sqft', 'predicted_price']);

    // ML_PREDICT and ML_EVALUATE over a table of the current database with the model of the other.
    const predicted = await db.sql('SELECT sqft, predicted_price FROM ML_PREDICT(TABLE houses, MODEL cat1.db1.m1, DESCRIPTOR(sqft)) ORDER BY sqft LIMIT 2');
    expect(predicted.rows.map((r) => Math.round(r[1] as number))).toEqual([3, 5]);
    const evaluated = await db.sql("SELECT MAE FROM ML_EVALUATE(TABLE houses, MODEL cat1.db1.m1, DESCRIPTOR(price), DESCRIPTOR(sqft), 'regression')");
    expect(evaluated.rows[0]![0] as number).toBeLessThan(1e-6);
    // The trained model's function lives in the model's schema of that database.
    expect(Math.round((await db.sql('SELECT cat1.db1.ml_predict_m1(10)')).rows[0]![0] as number)).toBe(21);
    // Run as ONNX (a stage, logged): the run is in the model's database's log.
    await db.sql("ALTER MODEL cat1.db1.m1 SET ('runtime' = 'onnx')");
    await db.sql('SELECT * FROM ML_PREDICT(TABLE houses, MODEL cat1.db1.m1, DESCRIPTOR(sqft))');
    expect((await db.sql('SELECT schema_name, model_name, row_count FROM cat1.ml_catalog.prediction_runs')).rows).toEqual([['db1', 'm1', 20n]]);
    expect(Number((await db.sql('SELECT count(*) FROM memory.ml_catalog.prediction_runs')).rows[0]![0])).toBe(0);

    // Its ONNX artifact, read by three-part name (`modelsql catalog export-onnx`).
    expect((await readModelArtifact(db, 'cat1.db1.m1')).length).toBeGreaterThan(100);

    // Inside a transaction (DuckDB writes one database per transaction), a write into the
    // current database from the other database's model: its run is logged in the current one.
    await db.sql('CREATE TABLE kept AS SELECT sqft FROM houses WHERE false; BEGIN');
    await db.sql('INSERT INTO kept SELECT sqft FROM ML_PREDICT(TABLE houses, MODEL cat1.db1.m1, DESCRIPTOR(sqft))');
    await db.sql('COMMIT');
    expect(Number((await db.sql('SELECT count(*) FROM kept')).rows[0]![0])).toBe(20);
    expect(Number((await db.sql('SELECT count(*) FROM memory.ml_catalog.prediction_runs')).rows[0]![0])).toBe(1);

    // SHOW CREATE MODEL names the database, and its statement recreates the model.
    const create = String((await db.sql('SHOW CREATE MODEL cat1.db1.m1')).rows[0]![0]);
    expect(create).toMatch(/^CREATE MODEL cat1\.db1\.m1\n/);
    await db.sql('DROP MODEL cat1.db1.m1');
    expect(await catalogRows(db, 'cat1')).toEqual([]);
    await db.sql(create);
    expect(await catalogRows(db, 'cat1')).toEqual(['db1.m1']);

    await db.sql("ALTER MODEL cat1.db1.m1 SET ('description' = 'in cat1')");
    await db.sql('ALTER MODEL cat1.db1.m1 RENAME TO m2');
    expect(await catalogRows(db, 'cat1')).toEqual(['db1.m2']);
    await db.sql('DROP MODEL IF EXISTS cat1.db1.m1');
    await db.sql('DROP MODEL cat1.db1.m2');
    expect(await catalogRows(db, 'cat1')).toEqual([]);
  });

  it('follows USE: plain names are models of the current database and schema', async () => {
    await db.sql(`ATTACH '${join(dir, 'use.duckdb')}' AS cat1; CREATE SCHEMA cat1.db1`);
    await db.sql(train('local'));
    await db.sql('USE cat1.db1');
    await db.sql(train('m1', 'memory.main.houses'));
    expect(await shown(db, 'SHOW MODELS')).toEqual(['db1.m1']);
    expect(await catalogRows(db, 'cat1')).toEqual(['db1.m1']);
    expect(await catalogRows(db, 'memory')).toEqual(['main.local']);
    // From cat1, the model of the other database by its three-part name; the table too.
    const r = await db.sql('SELECT count(*) FROM ML_PREDICT(TABLE memory.main.houses, MODEL memory.main.local, DESCRIPTOR(sqft))');
    expect(Number(r.rows[0]![0])).toBe(20);
    await expectSqlError(db.sql('DESCRIBE MODEL local'), '42704', /^model db1\.local does not exist$/);
    await db.sql('USE memory');
    expect(await shown(db, 'SHOW MODELS')).toEqual(['main.local']);
  });

  it('keeps the models in the database file across DETACH and ATTACH, and in a new session', async () => {
    const file = join(dir, 'kept.duckdb');
    await db.sql(`ATTACH '${file}' AS cat1; CREATE SCHEMA cat1.db1`);
    await db.sql(train('cat1.db1.kept'));
    await db.sql('DETACH cat1');
    await expectSqlError(db.sql('SHOW MODELS FROM cat1.db1'), '3D000', /^database cat1 does not exist/);
    await db.sql(`ATTACH '${file}' AS again`);
    expect(await shown(db, 'SHOW MODELS FROM again.db1')).toEqual(['db1.kept']);
    expect(Number((await db.sql('SELECT count(*) FROM ML_PREDICT(TABLE houses, MODEL again.db1.kept, DESCRIPTOR(sqft))')).rows[0]![0])).toBe(20);
    await db.sql('DETACH again');
    const direct = await openDuckDB(file);
    try {
      expect(await shown(direct, 'SHOW MODELS FROM db1')).toEqual(['db1.kept']);
    } finally {
      await direct.close();
    }
  });

  it('reads and runs the models of a read-only database, and refuses to change them (25006)', async () => {
    const file = join(dir, 'read-only.duckdb');
    const empty = join(dir, 'no-catalog.duckdb');
    await db.sql(`ATTACH '${file}' AS w; CREATE SCHEMA w.db1; ATTACH '${empty}' AS e; CREATE TABLE e.t (x INTEGER)`);
    await db.sql(train('w.db1.frozen'));
    await db.sql('DETACH w; DETACH e');
    await db.sql(`ATTACH '${file}' AS ro (READ_ONLY); ATTACH '${empty}' AS ro2 (READ_ONLY)`);
    expect(await shown(db, 'SHOW MODELS FROM ro.db1')).toEqual(['db1.frozen']);
    expect(Number((await db.sql('SELECT count(*) FROM ML_PREDICT(TABLE houses, MODEL ro.db1.frozen, DESCRIPTOR(sqft))')).rows[0]![0])).toBe(20);
    // A read-only database without a catalog has no models (and gets no catalog).
    expect(await shown(db, 'SHOW MODELS FROM ro2.main')).toEqual([]);
    await expectSqlError(db.sql('DESCRIBE MODEL ro2.main.m'), '42704');
    const readOnly = /^database ro2? is attached read-only: /;
    const error = await expectSqlError(db.sql(train('ro.db1.other')), '25006', readOnly);
    expect(error.position).toMatchObject({ line: 1, column: 14 });
    await expectSqlError(db.sql(train('ro2.main.other')), '25006', readOnly);
    await expectSqlError(db.sql("ALTER MODEL ro.db1.frozen SET ('description' = 'x')"), '25006', readOnly);
    await expectSqlError(db.sql('ALTER MODEL ro.db1.frozen RENAME TO thawed'), '25006', readOnly);
    await expectSqlError(db.sql('DROP MODEL ro.db1.frozen'), '25006', readOnly);
    expect(await shown(db, 'SHOW MODELS FROM ro.db1')).toEqual(['db1.frozen']);
    // A temporary model is the session's: it may name any database.
    await db.sql(train('ro.db1.scratch', 'houses', true));
    expect(await shown(db, 'SHOW MODELS FROM ro.db1')).toEqual(['db1.frozen', 'db1.scratch']);
    expect(await shown(db, 'SHOW MODELS')).toEqual([]);
  });

  it('rejects bad names clearly and changes nothing', async () => {
    await db.sql(`ATTACH '${join(dir, 'bad.duckdb')}' AS cat1; CREATE SCHEMA cat1.db1`);
    await db.sql(train('cat1.db1.m1'));
    const unknown = await expectSqlError(db.sql(`SELECT 1;\n${train('nosuch.db1.m')}`), '3D000', /^database nosuch does not exist/);
    expect(unknown.position).toMatchObject({ line: 2, column: 14 });
    await expectSqlError(db.sql('SHOW MODELS FROM nosuch.db1'), '3D000');
    await expectSqlError(db.sql('SELECT * FROM ML_PREDICT(TABLE houses, MODEL nosuch.db1.m1, DESCRIPTOR(sqft))'), '3D000');
    const fourParts = await expectSqlError(db.sql('DROP MODEL a.cat1.db1.m1'), '42601', /syntax error at or near "\."/);
    expect(fourParts.position).toMatchObject({ line: 1, column: 22 });
    await expectSqlError(db.sql(train('cat1.nope.m')), '3F000', /^schema cat1\."nope" does not exist$/);
    await expectSqlError(db.sql('ALTER MODEL cat1.db1.m1 RENAME TO memory.main.m1'), '0A000', /keeps a model in its database/);
    await expectSqlError(db.sql(train('cat1.db1.m1')), '42710', /^model cat1\.db1\.m1 already exists$/);
    expect(await catalogRows(db, 'cat1')).toEqual(['db1.m1']);
    expect(await shown(db, 'SHOW MODELS')).toEqual([]);
  });
});

const postgres = ADAPTERS.find((a) => a.name === 'postgres');
(postgres ? describe : describe.skip)('models in Postgres schemas and databases', () => {
  let db: Session;
  beforeEach(async () => {
    db = await postgres!.open();
    await db.sql(HOUSES);
  });
  afterEach(async () => db.close());

  it('keeps models in any schema, and takes the current database as a first part', async () => {
    await db.sql('CREATE SCHEMA s2');
    await db.sql(train('s2.m1'));
    const current = String((await db.sql('SELECT current_database()')).rows[0]![0]);
    expect(await shown(db, 'SHOW MODELS FROM s2')).toEqual(['s2.m1']);
    expect(await shown(db, `SHOW MODELS FROM "${current}".s2`)).toEqual(['s2.m1']);
    expect(await shown(db, 'SHOW MODELS')).toEqual(['s2.m1']);
    const r = await db.sql(`SELECT count(*) FROM ML_PREDICT(TABLE houses, MODEL "${current}".s2.m1, DESCRIPTOR(sqft))`);
    expect(Number(r.rows[0]![0])).toBe(20);
    await db.sql(`ALTER MODEL "${current}".s2.m1 RENAME TO m2`);
    expect(await shown(db, 'SHOW MODELS FROM s2')).toEqual(['s2.m2']);
  });

  it('refuses another database with 0A000 (cross-database references) and changes nothing', async () => {
    await db.sql('CREATE SCHEMA s2');
    await db.sql(train('s2.m1'));
    const crossDatabase = /^cross-database references are not implemented: /;
    const error = await expectSqlError(db.sql(train('other.s2.m9')), '0A000', crossDatabase);
    expect(error.position).toMatchObject({ line: 1, column: 14 });
    await expectSqlError(db.sql('SHOW MODELS FROM other.s2'), '0A000', crossDatabase);
    await expectSqlError(db.sql('DESCRIBE MODEL other.s2.m1'), '0A000', crossDatabase);
    await expectSqlError(db.sql('DROP MODEL IF EXISTS other.s2.m1'), '0A000', crossDatabase);
    await expectSqlError(db.sql('SELECT * FROM ML_PREDICT(TABLE houses, MODEL other.s2.m1, DESCRIPTOR(sqft))'), '0A000', crossDatabase);
    await expectSqlError(db.sql('GRANT USAGE ON MODEL other.s2.m1 TO public'), '0A000', crossDatabase);
    await expectSqlError(db.sql('DROP MODEL a.b.s2.m1'), '42601');
    expect(await shown(db, 'SHOW MODELS')).toEqual(['s2.m1']);
  });
});
