/**
 * The session API on every adapter: `run` yields each statement's result, `stream` yields
 * batches, progress events arrive, and `cancel` stops a model stage and cleans up.
 */
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { formatError } from '../../core/errors.js';
import { linearExpected, writeModelFiles } from '../support/model-files.js';
import type { ProgressEvent } from '../../core/model-types.js';

const files = writeModelFiles();

for (const adapter of ADAPTERS) {
  describe(`session API on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
      await db.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
      await db.sql('CREATE TABLE big AS SELECT CAST(i AS DOUBLE PRECISION) AS a, CAST(1.0 AS DOUBLE PRECISION) AS b FROM generate_series(0, 199999) AS r(i)');
    });
    afterAll(async () => {
      await db.close();
    });

    const leftovers = () => adapter.countTempTables(db);

    it('positions host errors and model errors alike: the line within the submitted text, with a caret', async () => {
      const script = `-- a comment\nSELECT 1;\n\nSELECT\n  nocol FROM lin_input;\n`;
      await db.sql('CREATE TABLE IF NOT EXISTS lin_input AS SELECT 1.0 AS a, 2.0 AS b');
      const host = await db.sql(script).catch((e: unknown) => e);
      expect(formatError(host)).toMatch(/\nLINE 5:   nocol FROM lin_input;\n {10}\^/);
      const model = await db.sql(`-- a comment\nSELECT 1;\n\nSELECT * FROM\n  ML_PREDICT(TABLE lin_input, MODEL nomodel, DESCRIPTOR(a, b));\n`).catch((e: unknown) => e);
      expect(formatError(model)).toMatch(/\nLINE 5: {3}ML_PREDICT\(TABLE lin_input, MODEL nomodel/);
      const streamed = await (async () => {
        for await (const batch of db.stream(script)) void batch;
      })().catch((e: unknown) => e);
      expect(formatError(streamed)).toMatch(/\nLINE 5:   nocol FROM lin_input;\n {10}\^/);
    });

    it('run yields one result per statement, in order', async () => {
      const commands: string[] = [];
      for await (const r of db.run('CREATE TABLE s AS SELECT 1 AS x; SELECT x FROM s; SHOW MODELS; DROP TABLE s')) commands.push(r.command);
      expect(commands).toEqual(['CREATE TABLE', 'SELECT', 'SHOW MODELS', 'DROP TABLE']);
    });

    it('stream yields the rows of the last statement in batches, model SQL included', async () => {
      let rows = 0;
      let batches = 0;
      let first: readonly unknown[] | undefined;
      for await (const batch of db.stream('SELECT 1; SELECT a, y FROM ML_PREDICT(TABLE (SELECT * FROM big WHERE a < 10000 ORDER BY a), MODEL lin, DESCRIPTOR(a, b))')) {
        expect(batch.columns.map((c) => c.name)).toEqual(['a', 'y']);
        first ??= batch.rows[0];
        rows += batch.rows.length;
        batches++;
      }
      expect(rows).toBe(10000);
      expect(batches).toBeGreaterThan(1);
      expect(first).toEqual([0, linearExpected(0, 1)]);
      expect(await leftovers()).toBe(0n);
    });

    it('emits progress events ending in a finished one', async () => {
      const events: ProgressEvent[] = [];
      const listener = (e: ProgressEvent) => events.push(e);
      db.events.on('progress', listener);
      // Ten batches of 1000 rows: an event after each, whatever the machine's speed.
      await db.sql("SELECT count(*) FROM ML_PREDICT(TABLE (SELECT * FROM big WHERE a < 10000), MODEL lin, DESCRIPTOR(a, b), MAP['batch-size', '1000'])");
      db.events.off('progress', listener);
      expect(events.length).toBeGreaterThanOrEqual(10);
      const done = events.map((e) => e.rowsDone);
      expect(done).toEqual([...done].sort((x, y) => x - y));
      expect(events.slice(0, -1).filter((e) => e.finished)).toEqual([]);
      const last = events[events.length - 1]!;
      expect(last).toMatchObject({ model: 'lin', rowsDone: 10000, rowsTotal: 10000, errors: 0, finished: true });
    });

    it('cancel stops a running prediction with 57014 and removes its temporary tables', async () => {
      // Cancelled once the stage reports its first batch: mid-run, however fast the machine.
      db.events.once('progress', () => db.cancel());
      const running = db.sql('SELECT count(*) FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b), MAP[\'batch-size\', \'1000\'])');
      await expectSqlError(running, '57014');
      expect(await leftovers()).toBe(0n);
      expect((await db.sql('SELECT 42')).rows).toEqual([[42]]);
    });
  });
}
