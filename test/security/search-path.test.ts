/**
 * The search_path hijack: a hostile role with CREATE on `public` plants operators, functions
 * and aggregates there for every (left type, right type) pair the generated SQL could use,
 * each recording its caller when it runs. Postgres prefers an exact-type match found on the
 * caller's search path over a built-in operator that needs an implicit cast, so any untyped
 * literal or unqualified operator in modelsql's SQL would run the hostile code as the
 * caller. Training (all five algorithms), ML_PREDICT, ML_EVALUATE (every task) and a
 * superuser calling every model function must leave the record empty; a control statement
 * with an unqualified mixed-type operator shows the trap works.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { connectPostgres } from '../../adapters/postgres/index.js';
import { startProxy, type RunningProxy } from '../../adapters/postgres/proxy/index.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { linearClassifierModel, typedColumnsModel } from '../support/onnx-models.js';
import { createTestDatabase } from '../support/postgres-server.js';
import { hostileObjects } from './hostile-objects.js';

const dir = mkdtempSync(join(tmpdir(), 'modelsql-search-path-'));
const embedder = join(dir, 'embedder.onnx');
const echo = join(dir, 'echo.onnx');
writeFileSync(embedder, linearClassifierModel([[1, 0], [0, 1], [0.5, 0.5]], [0, 0.2, 0.1], [0, 1, 2]));
writeFileSync(echo, typedColumnsModel());

const TRAINED = [
  ['lin', `'algorithm' = 'linear_regression', 'label' = 'price', 'test-split' = '0.25'`, 'sqft, rooms, city, price', 'regression'],
  ['logit2', `'algorithm' = 'logistic_regression', 'label' = 'big', 'test-split' = '0.25', 'max-iterations' = '5'`, 'sqft, rooms, city, big', 'classification'],
  ['logit3', `'algorithm' = 'logistic_regression', 'label' = 'city', 'max-iterations' = '5'`, 'sqft, rooms, price, city', 'classification'],
  ['km', `'algorithm' = 'kmeans', 'k' = '3'`, 'sqft, rooms, city', 'clustering'],
  ['tree', `'algorithm' = 'decision_tree', 'label' = 'price', 'bins' = '8'`, 'sqft, rooms, city, price', 'regression'],
  ['treec', `'algorithm' = 'decision_tree', 'label' = 'rooms', 'task' = 'classification', 'bins' = '8'`, 'sqft, city, rooms', 'classification'],
  ['gbt', `'algorithm' = 'gradient_boosted_trees', 'label' = 'price', 'rounds' = '2', 'bins' = '8', 'test-split' = '0.25'`, 'sqft, rooms, city, price', 'regression'],
  ['gbt2', `'algorithm' = 'gradient_boosted_trees', 'label' = 'big', 'rounds' = '2', 'bins' = '8'`, 'sqft, rooms, city, big', 'classification'],
  ['gbt3', `'algorithm' = 'gradient_boosted_trees', 'label' = 'city', 'rounds' = '2', 'bins' = '8'`, 'sqft, rooms, price, city', 'classification'],
] as const;

// Nine models trained on Postgres on a busy machine: minutes, not seconds.
const SLOW = 600_000;

const postgres = ADAPTERS.find((a) => a.name === 'postgres');
(postgres ? describe : describe.skip)('generated SQL is immune to operators and functions planted on the search path', () => {
  let url: string;
  let admin: pg.Client;
  let db: Session;
  const hostile = `modelsql_hostile_${Math.random().toString(36).slice(2, 8)}`;
  const record = async () => (await admin.query('SELECT who, what FROM public.hijack_log')).rows;

  beforeAll(async () => {
    url = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`CREATE ROLE ${hostile}`);
    await admin.query(`GRANT CREATE, USAGE ON SCHEMA public TO ${hostile}`);
    await admin.query('CREATE TABLE public.hijack_log (who text, what text)');
    await admin.query('GRANT INSERT ON public.hijack_log TO PUBLIC');
    await admin.query(`SET ROLE ${hostile}`);
    await admin.query(hostileObjects().join(';\n'));
    await admin.query('RESET ROLE');
    db = await connectPostgres(url);
    await db.sql(
      `CREATE TABLE houses AS SELECT i AS id, CAST(500 + (i * 37) % 2000 AS integer) AS sqft, CAST(1 + i % 5 AS smallint) AS rooms, ` +
        `(ARRAY['oslo', 'it''s', 'a\\b'])[1 + i % 3] AS city, CAST(100000 + ((i * 37) % 2000) * 150 + (i % 5) * 9000 + (i % 7) * 1000 AS numeric(12, 2)) AS price, ` +
        `(i * 37) % 2000 > 1000 AS big FROM generate_series(1, 60) AS g(i)`,
    );
  }, SLOW);

  afterAll(async () => {
    await db?.close();
    await admin.query(`DROP OWNED BY ${hostile}`).catch(() => undefined);
    await admin.end();
    const server = new pg.Client({ connectionString: process.env.MODELSQL_TEST_POSTGRES_URL! });
    await server.connect();
    await server.query(`DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)}`).catch(() => undefined);
    await server.query(`DROP ROLE IF EXISTS ${hostile}`).catch(() => undefined);
    await server.end();
  }, SLOW);

  it('training all five algorithms, predicting and evaluating run none of them', async () => {
    for (const [name, options, columns] of TRAINED) await db.sql(`CREATE MODEL ${name} WITH (${options}) AS SELECT ${columns} FROM houses`);
    expect(await record()).toEqual([]);
    for (const [name, , columns, task] of TRAINED) {
      const inputs = columns.split(', ').slice(0, task === 'clustering' ? undefined : -1).join(', ');
      const predicted = await db.sql(`SELECT * FROM ML_PREDICT(TABLE houses, MODEL ${name}, DESCRIPTOR(${inputs})) WHERE id < 10`);
      expect(predicted.rows).toHaveLength(9);
      const label = task === 'clustering' ? 'rooms' : columns.split(', ').at(-1)!;
      const evaluated = await db.sql(`SELECT * FROM ML_EVALUATE(TABLE houses, MODEL ${name}, DESCRIPTOR(${label}), DESCRIPTOR(${inputs}), '${task}')`);
      expect(evaluated.rows).toHaveLength(1);
    }
    expect(await record()).toEqual([]);
  }, SLOW);

  it('evaluating embedding and text_generation models runs none of them', async () => {
    await db.sql(`CREATE TABLE emb AS SELECT CAST(i AS double precision) AS a, CAST(i % 3 AS double precision) AS b, ARRAY[0.5, CAST(i AS double precision), 1] AS target FROM generate_series(1, 20) AS g(i)`);
    await db.sql(`CREATE MODEL e INPUT (a DOUBLE, b DOUBLE) OUTPUT (probabilities ARRAY<FLOAT>) WITH ('provider' = 'onnx', 'path' = '${embedder}', 'task' = 'embedding')`);
    expect((await db.sql('SELECT * FROM ML_EVALUATE(TABLE emb, MODEL e, DESCRIPTOR(target), DESCRIPTOR(a, b))')).rows).toHaveLength(1);
    await db.sql(`CREATE TABLE gen AS SELECT 1.0 AS d, CAST(1 AS BIGINT) AS i, 1 AS j, 'the cat sat' AS s, true AS flag, 'the cat sat down' AS ref FROM generate_series(1, 3)`);
    await db.sql(`CREATE MODEL g INPUT (d DOUBLE, i BIGINT, j INT, s STRING, flag BOOLEAN) OUTPUT (s_out STRING) WITH ('provider' = 'onnx', 'path' = '${echo}', 'task' = 'text_generation')`);
    expect((await db.sql('SELECT * FROM ML_EVALUATE(TABLE gen, MODEL g, DESCRIPTOR(ref), DESCRIPTOR(d, i, j, s, flag))')).rows).toHaveLength(1);
    expect(await record()).toEqual([]);
  }, SLOW);

  it('a superuser calling every model function runs none of them, and the functions are inlined', async () => {
    for (const [name, , columns, task] of TRAINED) {
      const inputs = columns.split(', ').slice(0, task === 'clustering' ? undefined : -1).join(', ');
      const r = await admin.query(`SELECT public.ml_predict_${name}(${inputs}) FROM houses WHERE id < 5`);
      expect(r.rows).toHaveLength(4);
      const plan = await admin.query(`EXPLAIN VERBOSE SELECT public.ml_predict_${name}(${inputs}) FROM houses`);
      expect(plan.rows.map((row) => String(row['QUERY PLAN'])).join('\n')).not.toContain(`ml_predict_${name}`);
    }
    expect(await record()).toEqual([]);
  }, SLOW);

  it('a model function runs none of them with the hostile schema searched before pg_catalog', async () => {
    await admin.query('SET search_path = public, pg_catalog');
    try {
      for (const [name, , columns, task] of TRAINED) {
        const inputs = columns.split(', ').slice(0, task === 'clustering' ? undefined : -1).join(', ');
        expect((await admin.query(`SELECT public.ml_predict_${name}(${inputs}) FROM houses`)).rows).toHaveLength(60);
      }
    } finally {
      await admin.query('RESET search_path');
    }
    expect(await record()).toEqual([]);
  }, SLOW);

  describe.each(['library', 'proxy'] as const)('with the hostile schema searched before pg_catalog, through the %s', (via) => {
    let proxy: RunningProxy | undefined;
    afterAll(async () => proxy?.close());

    it('model statements (catalog reads and writes, training, prediction, evaluation, grants) run none of them', async () => {
      let session: Session;
      if (via === 'library') session = await connectPostgres(url);
      else {
        const upstream = new URL(url);
        proxy = await startProxy({ upstream: `postgres://${upstream.host}${upstream.pathname}?sslmode=disable`, listen: 0 });
        const client = new pg.Client({ connectionString: `postgres://${upstream.username}:${upstream.password}@127.0.0.1:${proxy.port}${upstream.pathname}` });
        await client.connect();
        session = {
          sql: async (text: string) => {
            const r = await client.query({ text, rowMode: 'array' });
            return { command: r.command, columns: [], rows: r.rows as unknown[][] };
          },
          close: () => client.end(),
        } as unknown as Session;
      }
      const failure = (text: string) => session.sql(text).then(() => undefined, (e: { code?: string; sqlstate?: string }) => e.code ?? e.sqlstate);
      const name = `sp_${via}`;
      const statements = [
        `CREATE MODEL ${name} WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, rooms, city, price FROM houses`,
        `CREATE OR REPLACE MODEL ${name} WITH ('algorithm' = 'linear_regression', 'label' = 'price') AS SELECT sqft, rooms, city, price FROM houses`,
        `ALTER MODEL ${name} SET ('default-version' = '1')`,
        `GRANT USAGE ON MODEL ${name} TO PUBLIC`,
        `REVOKE USAGE ON MODEL ${name} FROM PUBLIC`,
        `SHOW MODELS LIKE '${name}'`,
        `DESCRIBE MODEL EXTENDED ${name}`,
        `SHOW CREATE MODEL ${name}`,
        `SHOW MODEL VERSIONS ${name}`,
        `SELECT * FROM ML_PREDICT(TABLE houses, MODEL ${name}, DESCRIPTOR(sqft, rooms, city)) WHERE id < 10`,
        `SELECT * FROM ML_EVALUATE(TABLE houses, MODEL ${name}, DESCRIPTOR(price), DESCRIPTOR(sqft, rooms, city))`,
        `ALTER MODEL ${name} RENAME TO ${name}_2`,
        `DROP MODEL ${name}_2$1`,
        `DROP MODEL ${name}_2`,
      ];
      try {
        // Searched before pg_catalog, the hostile schema would stand in for the built-ins in modelsql's own SQL: every model statement is refused before it runs any.
        for (const path of ['public, pg_catalog', '"$user", public, pg_catalog', 'pg_temp, public, pg_catalog']) {
          await session.sql(`SET search_path = ${path}`);
          for (const statement of statements) expect([statement, await failure(statement)]).toEqual([statement, '42501']);
        }
        // With pg_catalog first (or left implicit), every statement runs, and runs none of them either.
        for (const path of ['pg_catalog, public', 'public']) {
          await session.sql(`SET search_path = ${path}`);
          for (const statement of statements) await session.sql(statement);
        }
      } finally {
        await session.close();
      }
      expect(await record()).toEqual([]);
    }, SLOW);
  });

  it('a big scan calling a model function uses parallel workers', async () => {
    // Parallel plans made cheap for a small table, instead of a table of millions of rows.
    await admin.query('SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2');
    try {
      const plan = await admin.query('EXPLAIN SELECT sum(public.ml_predict_lin(sqft, rooms, city)) FROM houses');
      expect(plan.rows.map((row) => String(row['QUERY PLAN'])).join('\n')).toMatch(/Workers Planned: [12]/);
    } finally {
      await admin.query('RESET ALL');
    }
  }, SLOW);

  it('control: an unqualified mixed-type operator runs the planted one', async () => {
    await admin.query('SELECT sqft - CAST(1.5 AS double precision) FROM houses WHERE id = 1');
    expect(await record()).toEqual([{ who: 'postgres', what: 'integer - double precision' }]);
  }, SLOW);
});
