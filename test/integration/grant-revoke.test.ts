/**
 * GRANT / REVOKE USAGE ON MODEL on every host: refused with 0A000 on DuckDB (no roles,
 * model not looked up); on Postgres recorded in ml_catalog.model_grants, with clear errors
 * for a missing model, a missing role and a temporary model, and undone by ROLLBACK.
 * (Two-role enforcement: test/adapters/postgres/model-permissions.test.ts.)
 */
import { formatError } from '../../core/errors.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';

const MODEL = `INPUT (t STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:1/v1', 'model' = 'x', 'api-key' = '\${env:HOME}')`;

for (const adapter of ADAPTERS) {
  describe(`GRANT / REVOKE on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
      await db.sql(`CREATE MODEL m ${MODEL}`);
      await db.sql(`CREATE TEMPORARY MODEL tmp ${MODEL}`);
    });
    afterAll(async () => {
      await db.close();
    });

    if (adapter.name === 'duckdb') {
      it.each([
        ['GRANT USAGE ON MODEL m TO analyst', 'GRANT'],
        ['REVOKE USAGE ON MODEL no_such_model FROM analyst', 'REVOKE'],
      ])('%s is 0A000 with a caret at the statement', async (sql, verb) => {
        const error = await expectSqlError(db.sql(sql), '0A000', new RegExp(`^${verb} USAGE ON MODEL needs a host with roles \\(PostgreSQL\\); duckdb has none$`));
        expect(formatError(error).split('\n')[2]).toBe(' '.repeat('LINE 1: '.length) + '^');
      });
      return;
    }

    const grants = async () => (await db.sql(`SELECT grantee FROM ml_catalog.model_grants WHERE model_name = 'm' ORDER BY grantee`)).rows.map((r) => r[0]);

    it('records a grant once, and REVOKE removes it', async () => {
      await db.sql('GRANT USAGE ON MODEL m TO PUBLIC');
      await db.sql('GRANT USAGE ON MODEL public.m TO public');
      expect(await grants()).toEqual(['public']);
      await db.sql('REVOKE USAGE ON MODEL m FROM PUBLIC');
      await db.sql('REVOKE USAGE ON MODEL m FROM PUBLIC');
      expect(await grants()).toEqual([]);
    });

    it('is undone by ROLLBACK', async () => {
      await db.sql('BEGIN');
      await db.sql('GRANT USAGE ON MODEL m TO PUBLIC');
      expect(await grants()).toEqual(['public']);
      await db.sql('ROLLBACK');
      expect(await grants()).toEqual([]);
    });

    it('follows the model through RENAME TO and goes with DROP', async () => {
      await db.sql(`CREATE MODEL r ${MODEL}`);
      await db.sql('GRANT USAGE ON MODEL r TO PUBLIC');
      await db.sql('ALTER MODEL r RENAME TO r2');
      expect((await db.sql(`SELECT model_name, grantee FROM ml_catalog.model_grants WHERE model_name LIKE 'r%'`)).rows).toEqual([['r2', 'public']]);
      await db.sql('DROP MODEL r2');
      expect((await db.sql(`SELECT count(*) FROM ml_catalog.model_grants WHERE model_name LIKE 'r%'`)).rows).toEqual([[0n]]);
    });

    it.each([
      ['GRANT USAGE ON MODEL nope TO PUBLIC', '42704', /^model public\.nope does not exist$/, 22],
      ['GRANT USAGE ON MODEL m TO nobody_of_that_name', '42704', /^role nobody_of_that_name does not exist$/, 27],
      ['GRANT USAGE ON MODEL tmp TO PUBLIC', '0A000', /^model public\.tmp is temporary: it is visible to this session only, and cannot be granted$/, 22],
    ])('%s → %s', async (sql, sqlstate, message, column) => {
      const error = await expectSqlError(db.sql(sql), sqlstate, message);
      expect(error.position?.column).toBe(column);
      expect(await grants()).toEqual([]);
    });

    it('DESCRIBE MODEL EXTENDED names the connected role as the owner', async () => {
      const role = (await db.sql('SELECT CAST(current_user AS text)')).rows[0]![0];
      expect((await db.sql('DESCRIBE MODEL EXTENDED m')).rows.find((r) => r[0] === 'owner')?.[1]).toBe(role);
    });
  });
}
