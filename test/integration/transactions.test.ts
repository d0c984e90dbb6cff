/**
 * Model SQL inside the user's own transaction, on every adapter: predictions see the
 * transaction's rows, and ROLLBACK takes the model (and a catalog created inside it) away.
 */
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { linearExpected, writeModelFiles } from '../support/model-files.js';

const files = writeModelFiles();
const create = (name: string) => `CREATE MODEL ${name} INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`;

for (const adapter of ADAPTERS) {
  describe(`transactions on ${adapter.name}`, () => {
    let db: Session;
    beforeEach(async () => {
      db = await adapter.open();
    });
    afterEach(async () => {
      await db.close();
    });

    it('predicts inside BEGIN ... ROLLBACK, and the rollback removes the model and the catalog it created', async () => {
      await db.sql('BEGIN');
      await db.sql(create('m'));
      await db.sql('CREATE TABLE t AS SELECT CAST(i AS DOUBLE PRECISION) AS a, CAST(2 AS DOUBLE PRECISION) AS b FROM generate_series(0, 99999) AS g(i)');
      const r = await db.sql('SELECT sum(y) FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b))');
      const expected = Array.from({ length: 100000 }, (_, i) => linearExpected(i, 2)).reduce((x, y) => x + y, 0);
      expect(Math.abs((r.rows[0]![0] as number) - expected) / expected).toBeLessThan(1e-6);
      await db.sql('ROLLBACK');
      expect((await db.sql('SHOW MODELS')).rows).toEqual([]);
    });

    it('keeps a model created inside BEGIN ... COMMIT', async () => {
      await db.sql('SHOW MODELS');
      await db.sql('BEGIN');
      await db.sql(create('kept'));
      await db.sql('COMMIT');
      expect((await db.sql('SHOW MODELS')).rows.map((row) => row[0])).toEqual(['kept']);
    });
  });
}
