/**
 * Finding the models of a statement, on every host: one catalog query per statement
 * (no secrets read for a model without any), and always the catalog as it is when the
 * statement runs — after a model is replaced, dropped and recreated in one transaction,
 * rolled back, changed by another session, or when the current schema changes.
 */
import type { Host } from '../../core/host.js';
import { ModelSession } from '../../core/session/model-session.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';

/** A table `d<k>` whose label is exactly `k·x`: a linear model trained on it predicts `k·x`. */
async function createData(db: Session, k: number, schema?: string): Promise<void> {
  const name = schema === undefined ? `d${k}` : `${schema}.d${k}`;
  await db.sql(`CREATE TABLE ${name} AS SELECT CAST(i AS DOUBLE PRECISION) AS x, CAST(${k} * i AS DOUBLE PRECISION) AS y FROM generate_series(1, 20) AS g(i)`);
}

/** `CREATE [OR REPLACE] MODEL <name>` trained on `d<k>` (slope k). */
function train(name: string, k: number, orReplace = false, schema?: string): string {
  const from = schema === undefined ? `d${k}` : `${schema}.d${k}`;
  return `CREATE ${orReplace ? 'OR REPLACE ' : ''}MODEL ${name} WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM ${from}`;
}

/** The prediction of `model` at x = 3, read from table `q` in `schema` (qualified, so a schema switch does not move it). */
async function slopeOf(db: Session, model: string, schema: string): Promise<number> {
  const r = await db.sql(`SELECT predicted_y FROM ML_PREDICT(TABLE ${schema}.q, MODEL ${model}, DESCRIPTOR(x))`);
  return Math.round((r.rows[0]![0] as number) / 3);
}

/** A host that records every statement the core sends it (execute, stream and describe). */
function recording(host: Host): { host: Host; statements: string[] } {
  const statements: string[] = [];
  const watched = new Set(['execute', 'stream', 'describe']);
  const proxy = new Proxy(host, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (!watched.has(String(key))) return value.bind(target);
      return (sql: string, ...rest: unknown[]) => {
        statements.push(sql);
        return (value as (...a: unknown[]) => unknown).call(target, sql, ...rest);
      };
    },
  });
  return { host: proxy, statements };
}

const catalogQueries = (statements: readonly string[]) => statements.filter((s) => s.includes('ml_catalog.'));

for (const adapter of ADAPTERS) {
  describe(`model look-up on ${adapter.name}`, () => {
    let db: Session;
    beforeEach(async () => {
      db = await adapter.open();
      for (const k of [2, 5, 7]) await createData(db, k);
      await db.sql('CREATE TABLE q AS SELECT CAST(3 AS DOUBLE PRECISION) AS x');
    });
    afterEach(async () => {
      await db.close();
    });

    it('predicts with a model dropped and created again inside one transaction (same text, same timestamps, new parameters)', async () => {
      await db.sql('CREATE TABLE d AS SELECT * FROM d2');
      const create = `CREATE MODEL m WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM d`;
      await db.sql('BEGIN');
      await db.sql(create);
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(2);
      await db.sql('DROP MODEL m');
      await db.sql('DELETE FROM d');
      await db.sql('INSERT INTO d SELECT * FROM d5');
      await db.sql(create);
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(5);
      await db.sql('COMMIT');
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(5);
      expect(await slopeOf(db, 'm$1', adapter.schema)).toBe(5);
    });

    it('follows CREATE OR REPLACE and ALTER ... default-version, and a ROLLBACK of them', async () => {
      await db.sql(train('m', 2));
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(2);
      await db.sql(train('m', 5, true));
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(5);
      await db.sql(`ALTER MODEL m SET ('default-version' = '1')`);
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(2);

      await db.sql('BEGIN');
      await db.sql(`ALTER MODEL m SET ('default-version' = '2')`);
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(5);
      await db.sql('DROP MODEL m');
      await db.sql(train('m', 7));
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(7);
      await db.sql('ROLLBACK');
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(2);
      expect(await slopeOf(db, 'm$2', adapter.schema)).toBe(5);

      await db.sql('BEGIN');
      await db.sql('DROP MODEL m');
      await expectSqlError(db.sql(`SELECT * FROM ML_PREDICT(TABLE q, MODEL m, DESCRIPTOR(x))`), '42704', /model .*m does not exist/);
      await db.sql('ROLLBACK');
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(2);
    });

    it.each(adapter.useSchema.map((use, i) => [i, use] as const))('resolves an unqualified name in the current schema, whichever way it is set (way %s)', async (_i, use) => {
      await db.sql('CREATE SCHEMA other');
      await db.sql(train('m', 2));
      await db.sql(train('other.m', 5));
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(2);
      await db.sql(use('other'));
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(5);
      expect(await slopeOf(db, `${adapter.schema}.m`, adapter.schema)).toBe(2);
      // A temporary model shadows the persistent one of its schema only.
      await db.sql(`CREATE TEMPORARY MODEL m WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM ${adapter.schema}.d7`);
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(7);
      await db.sql(use(adapter.schema));
      expect(await slopeOf(db, 'm', adapter.schema)).toBe(2);
      // One statement, two calls: `m` in the current schema, `other.m` the temporary model that shadows it there.
      const r = await db.sql(
        `SELECT predicted_y, predicted_y0 FROM ML_PREDICT(TABLE (SELECT x, predicted_y FROM ML_PREDICT(TABLE q, MODEL m, DESCRIPTOR(x))), MODEL other.m, DESCRIPTOR(x))`,
      );
      expect(r.rows.map((row) => row.map((v) => Math.round((v as number) / 3)))).toEqual([[2, 7]]);
    });

    it('reads the catalog once per statement, secrets only for a model that stored some', async () => {
      const { host, statements } = recording(await adapter.openHost());
      const session = new ModelSession(host);
      try {
        for (const k of [2, 5]) await createData(session, k);
        await session.sql('CREATE TABLE q AS SELECT CAST(3 AS DOUBLE PRECISION) AS x');
        await session.sql(train('m', 2));
        await session.sql(train('n', 5));
        await session.sql(
          `CREATE MODEL keyed INPUT (x DOUBLE) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:1/v1', 'model' = 'gpt', 'api-key' = 'sk-lookup-test-1234')`,
        );
        const during = async (sql: string): Promise<string[]> => {
          statements.length = 0;
          await session.sql(sql).catch(() => undefined);
          return catalogQueries(statements);
        };
        const one = await during(`SELECT predicted_y FROM ML_PREDICT(TABLE q, MODEL m, DESCRIPTOR(x))`);
        expect(one).toHaveLength(1);
        const nested = await during(`SELECT * FROM ML_PREDICT(TABLE (SELECT x FROM ML_PREDICT(TABLE q, MODEL m, DESCRIPTOR(x))), MODEL n, DESCRIPTOR(x))`);
        expect(nested).toHaveLength(1);
        expect([...one, ...nested].join('\n')).not.toMatch(/model_secrets|usable_secrets/);
        expect(await during('DESCRIBE MODEL keyed')).toHaveLength(1);
        // The descriptor is wrong, so the call stops once the model (with its key) is found.
        const keyed = await during(`SELECT * FROM ML_PREDICT(TABLE q, MODEL keyed, DESCRIPTOR(x, x))`);
        expect(keyed).toHaveLength(2);
        expect(keyed[1]).toContain('usable_secrets');
      } finally {
        await session.close();
      }
    });
  });
}

for (const adapter of ADAPTERS.filter((a) => a.openPair)) {
  describe(`model look-up with two sessions on ${adapter.name}`, () => {
    let a: Session;
    let b: Session;
    beforeEach(async () => {
      [a, b] = await adapter.openPair!();
      for (const k of [2, 5, 7]) await createData(a, k);
      await a.sql('CREATE TABLE q AS SELECT CAST(3 AS DOUBLE PRECISION) AS x');
    });
    afterEach(async () => {
      await a.close();
      await b.close();
    });

    it("sees the other session's committed DDL at its next statement, and none of its uncommitted DDL", async () => {
      await a.sql(train('m', 2));
      expect(await slopeOf(a, 'm', adapter.schema)).toBe(2);
      await b.sql(train('m', 5, true));
      expect(await slopeOf(a, 'm', adapter.schema)).toBe(5);
      await b.sql(`ALTER MODEL m SET ('default-version' = '1')`);
      expect(await slopeOf(a, 'm', adapter.schema)).toBe(2);

      await b.sql('BEGIN');
      await b.sql('DROP MODEL m');
      await b.sql(train('m', 7));
      expect(await slopeOf(b, 'm', adapter.schema)).toBe(7);
      expect(await slopeOf(a, 'm', adapter.schema)).toBe(2);
      await b.sql('ROLLBACK');
      expect(await slopeOf(a, 'm', adapter.schema)).toBe(2);

      await b.sql('DROP MODEL m');
      await expectSqlError(a.sql(`SELECT * FROM ML_PREDICT(TABLE q, MODEL m, DESCRIPTOR(x))`), '42704', /does not exist/);
      // Recreated by the other session: same name, same version number, new parameters.
      await b.sql(train('m', 7));
      expect(await slopeOf(a, 'm', adapter.schema)).toBe(7);
      await b.sql(`ALTER MODEL m RENAME TO renamed`);
      await expectSqlError(a.sql(`SELECT * FROM ML_PREDICT(TABLE q, MODEL m, DESCRIPTOR(x))`), '42704', /does not exist/);
      expect(await slopeOf(a, 'renamed', adapter.schema)).toBe(7);
    });
  });
}
