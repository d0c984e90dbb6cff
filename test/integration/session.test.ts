/**
 * The session API on every adapter: `run` yields each statement's result, `stream` yields
 * batches, progress events arrive, and `cancel` stops a model stage and cleans up.
 * Statements started together run one at a time, in the order they were made.
 */
import type { Session } from '../../core/session/session.js';
import type { ModelSession } from '../../core/session/model-session.js';
import type { QueryStatement } from '../../core/sql/ast.js';
import { parseScript } from '../../core/sql/parser.js';
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

    describe('one statement at a time: calls made while one runs wait for it, in order', () => {
      const predict = `SELECT count(*), count(y), sum(CASE WHEN abs(y - (2 * a + 3 * b - 1)) > 1e-3 * greatest(1, abs(y)) THEN 1 ELSE 0 END) FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b), MAP['batch-size', '1000'])`;

      it('ML statements started together each get every row its own prediction, around host SQL and a direct write', async () => {
        await db.sql('DROP TABLE IF EXISTS conc_out');
        // On DuckDB a statement run between a stage's reads used to end them early: NULL predictions, no error.
        const results = await Promise.all([
          db.sql(predict),
          db.sql('SELECT count(*) FROM big'),
          db.sql(predict),
          db.sql('CREATE TABLE conc_out AS SELECT a, y FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b))'),
          db.sql(predict),
        ]);
        for (const i of [0, 2, 4]) expect(results[i]!.rows.map((r) => r.map(Number))).toEqual([[200000, 200000, 0]]);
        expect(Number(results[1]!.rows[0]![0])).toBe(200000);
        expect((await db.sql('SELECT count(*), count(y) FROM conc_out')).rows.map((r) => r.map(Number))).toEqual([[200000, 200000]]);
        await db.sql('DROP TABLE conc_out');
        expect(await leftovers()).toBe(0n);
      });

      it('runs them in the order they were made, and a failed one lets the next run', async () => {
        await db.sql('DROP TABLE IF EXISTS conc_order');
        const made = [
          db.sql('CREATE TABLE conc_order (n INTEGER)'),
          db.sql('INSERT INTO conc_order VALUES (1)'),
          db.sql('SELECT * FROM ML_PREDICT(TABLE conc_order, MODEL nomodel, DESCRIPTOR(n))'),
          db.sql(`INSERT INTO conc_order SELECT count(*) + 1 FROM ML_PREDICT(TABLE (SELECT * FROM big WHERE a < 100), MODEL lin, DESCRIPTOR(a, b))`),
          db.sql('SELECT n FROM conc_order ORDER BY n'),
        ];
        const settled = await Promise.allSettled(made);
        expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
        await expectSqlError(made[2]!, '42704');
        expect((await made[4]!).rows.map((r) => Number(r[0]))).toEqual([1, 101]);
        await db.sql('DROP TABLE conc_order');
      });

      it('a statement awaited inside a stream loop runs at once, and the stream loses no row', async () => {
        let rows = 0;
        let wrong = 0;
        let inside: unknown[][] = [];
        for await (const batch of db.stream(`SELECT a, b, y FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b), MAP['batch-size', '1000'])`)) {
          // The stream's rows left are read into memory first, then these run (a model statement included).
          if (rows === 0) inside = [(await db.sql(predict)).rows[0]!.map(Number), (await db.sql('SELECT count(*) FROM big')).rows[0]!.map(Number)];
          rows += batch.rows.length;
          wrong += batch.rows.filter(([a, b, y]) => Math.abs((y as number) - linearExpected(a as number, b as number)) > 1e-3 * Math.max(1, Math.abs(y as number))).length;
        }
        expect(inside).toEqual([[200000, 200000, 0], [200000]]);
        expect(rows).toBe(200000);
        expect(wrong).toBe(0);
        expect(await leftovers()).toBe(0n);
      });

      it('cancel() after a stream gave way is not for the stream: its rows are in memory', async () => {
        let rows = 0;
        for await (const batch of db.stream(`SELECT a, y FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b), MAP['batch-size', '1000'])`)) {
          if (rows === 0) {
            expect((await db.sql('SELECT 1')).rows).toEqual([[1]]);
            db.cancel();
          }
          rows += batch.rows.length;
        }
        expect(rows).toBe(200000);
        expect((await db.sql('SELECT 3')).rows).toEqual([[3]]);
        expect(await leftovers()).toBe(0n);
      });

      it('a call from elsewhere while a stream is open runs too; a loop that stops early frees the session', async () => {
        let rows = 0;
        let other: Promise<unknown> | undefined;
        for await (const batch of db.stream('SELECT a FROM big')) {
          other ??= db.sql(predict);
          rows += batch.rows.length;
          await new Promise((resolve) => setImmediate(resolve));
        }
        expect(rows).toBe(200000);
        expect(((await other) as { rows: unknown[][] }).rows[0]!.map(Number)).toEqual([200000, 200000, 0]);
        for await (const batch of db.stream(`SELECT a FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b))`)) {
          expect(batch.rows.length).toBeGreaterThan(0);
          break;
        }
        expect((await db.sql('SELECT 2')).rows).toEqual([[2]]);
        expect(await leftovers()).toBe(0n);
      });

      it('a statement awaited inside a run loop runs between the script\'s statements', async () => {
        const seen: number[] = [];
        for await (const r of db.run('CREATE TABLE conc_run (n INTEGER); INSERT INTO conc_run VALUES (1); SELECT count(*) FROM conc_run')) {
          if (r.command === 'INSERT') await db.sql('INSERT INTO conc_run VALUES (2)');
          if (r.command === 'SELECT') seen.push(Number(r.rows[0]![0]));
        }
        expect(seen).toEqual([2]);
        await db.sql('DROP TABLE conc_run');
      });

      it('a stream of a statement with no rows to read (model DDL, a direct write) lets a call awaited in its loop run, and once dropped holds nothing', async () => {
        await db.sql('DROP TABLE IF EXISTS conc_w');
        const inside: unknown[] = [];
        for await (const batch of db.stream('SHOW MODELS')) {
          void batch;
          inside.push((await db.sql('SELECT 1')).rows[0]![0]);
        }
        for await (const batch of db.stream('CREATE TABLE conc_w AS SELECT a, y FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b))')) {
          void batch;
          inside.push((await db.sql('SELECT count(y) FROM conc_w')).rows[0]![0]);
        }
        expect(inside.map(Number)).toEqual([1, 200000]);
        const dropped = db.stream('SHOW MODELS')[Symbol.asyncIterator]();
        await dropped.next();
        expect((await db.sql('SELECT 2')).rows).toEqual([[2]]);
        await db.sql('DROP TABLE conc_w');
        expect(await leftovers()).toBe(0n);
      });

      it("a prepared query's release waits for the statement running (on DuckDB its drops used to cut a stage's read short)", async () => {
        const text = 'SELECT a, y FROM ML_PREDICT(TABLE (SELECT * FROM big WHERE a < 10), MODEL lin, DESCRIPTOR(a, b))';
        const prepared = await (db as ModelSession).prepareQuery(parseScript(text)[0] as QueryStatement, text);
        let released: Promise<void> | undefined;
        db.events.once('progress', () => (released = prepared.release()));
        const result = await db.sql(predict);
        await released;
        expect(result.rows.map((r) => r.map(Number))).toEqual([[200000, 200000, 0]]);
        expect(await leftovers()).toBe(0n);
      });

      (adapter.name === 'postgres' ? it : it.skip)('run splits its script in its turn, as the host reads strings once the statements before it ran', async () => {
        // With standard_conforming_strings off this is one statement, whose value is: a'; SELECT 1 AS x; --
        const text = "SELECT 'a\\'; SELECT 1 AS x; --' AS v";
        const off = db.sql('SET standard_conforming_strings = off');
        const values: unknown[] = [];
        try {
          for await (const r of db.run(text)) values.push(r.rows[0]![0]);
        } finally {
          await off;
          await db.sql('SET standard_conforming_strings = on');
        }
        expect(values).toEqual(["a'; SELECT 1 AS x; --"]);
      });

      it('a stream whose remaining rows exceed maxSpillBytes fails with 54000 when it gives way; the call runs, and nothing is left', async () => {
        const small = await adapter.open({ maxSpillBytes: 100_000 });
        try {
          await small.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
          await small.sql('CREATE TABLE big AS SELECT CAST(i AS DOUBLE PRECISION) AS a, CAST(1.0 AS DOUBLE PRECISION) AS b FROM generate_series(0, 199999) AS r(i)');
          let rows = 0;
          let inside: unknown;
          const read = (async () => {
            for await (const batch of small.stream(`SELECT a, y FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b), MAP['batch-size', '1000'])`)) {
              if (rows === 0) inside = (await small.sql('SELECT count(*) FROM big')).rows[0]![0];
              rows += batch.rows.length;
            }
          })();
          await expectSqlError(read, '54000', /maxSpillBytes/);
          expect(Number(inside)).toBe(200000);
          // What it held before the limit came through: fewer than every row, in order.
          expect(rows).toBeGreaterThan(0);
          expect(rows).toBeLessThan(200000);
          expect((await small.sql(predict)).rows.map((r) => r.map(Number))).toEqual([[200000, 200000, 0]]);
          expect(await adapter.countTempTables(small)).toBe(0n);
          // The same loop with rows to spare under the limit: every row.
          rows = 0;
          for await (const batch of small.stream(`SELECT a, y FROM ML_PREDICT(TABLE (SELECT * FROM big WHERE a < 2000), MODEL lin, DESCRIPTOR(a, b), MAP['batch-size', '1000'])`)) {
            if (rows === 0) await small.sql('SELECT 1');
            rows += batch.rows.length;
          }
          expect(rows).toBe(2000);
        } finally {
          await small.close();
        }
      });

      it('cancel stops the running statement only; the one waiting runs', async () => {
        db.events.once('progress', () => db.cancel());
        const running = db.sql(`SELECT count(*) FROM ML_PREDICT(TABLE big, MODEL lin, DESCRIPTOR(a, b), MAP['batch-size', '1000'])`);
        const waiting = db.sql(predict);
        await expectSqlError(running, '57014');
        expect((await waiting).rows.map((r) => r.map(Number))).toEqual([[200000, 200000, 0]]);
        expect(await leftovers()).toBe(0n);
      });
    });
  });
}
