/**
 * Who keeps materialized tables fresh: `modelsql worker` as a real process (killed with
 * SIGKILL in the middle of a refresh and started again: no row lost or doubled, no row
 * whose answer was stored asked again), a worker woken by Postgres notifications, and two
 * refreshers racing on one Postgres table.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDuckDB } from '../../adapters/duckdb/index.js';
import type { ModelSession } from '../../core/session/model-session.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { writeModelFiles } from '../support/model-files.js';
import { MAIN, ROOT, runCli } from '../support/run-cli.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { startOpenAIServer } from '../providers/openai-server.js';

const KEY = 'sk-worker';
const files = writeModelFiles();
const ROWS = 300;

/** Polls `check` every 50 ms until it holds (the test's own timeout bounds the wait). */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 50));
}

/** Starts `modelsql worker` with `args`; its output is collected. */
function startWorker(args: readonly string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [MAIN, 'worker', ...args], { cwd: ROOT, stdio: 'pipe' });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

for (const adapter of ADAPTERS) {
  describe(`modelsql worker on ${adapter.name}`, () => {
    let server: LoopbackServer;
    beforeAll(async () => {
      server = await startOpenAIServer({ apiKey: KEY, latencyMs: 15, answer: (prompt) => `label of ${prompt}` });
    });
    afterAll(() => server.close());
    beforeEach(() => server.reset());

    const setUp = async (db: Session): Promise<void> => {
      await db.sql(`CREATE MODEL labeler INPUT (body STRING) OUTPUT (label STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt-test', 'api-key' = '${KEY}', 'prompt' = '{body}', 'max-concurrent-operations' = '4')`);
      await db.sql('CREATE TABLE reviews (id INTEGER PRIMARY KEY, body VARCHAR)');
      await db.sql(`CREATE MATERIALIZED TABLE labels FRESHNESS = INTERVAL '1' SECOND AS SELECT id, label FROM ML_PREDICT(TABLE reviews, MODEL labeler, DESCRIPTOR(body))`);
    };
    const checkResult = async (db: Session): Promise<void> => {
      const rows = (await db.sql('SELECT id, label FROM labels ORDER BY id')).rows;
      expect(rows).toEqual(Array.from({ length: ROWS }, (_, i) => [i + 1, `label of review ${i + 1}`]));
    };

    it('resumes after SIGKILL in the middle of a refresh: no row lost or doubled, no stored answer asked again', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'modelsql-worker-'));
      let { session: db, cliArgs } = await adapter.openShared(dir);
      await setUp(db);
      await db.sql(`INSERT INTO reviews SELECT i, 'review ' || CAST(i AS VARCHAR) FROM generate_series(1, ${ROWS}) AS r(i)`);
      if (adapter.name === 'duckdb') await db.close();
      const first = startWorker(cliArgs);
      await until(() => server.answered.length >= ROWS / 3);
      first.child.kill('SIGKILL');
      await first.exited;
      // Read by another process: on DuckDB the file is opened by the next worker, not by this one.
      const read = await runCli(['run', '--format', 'json', '-c', 'SELECT answer FROM ml_catalog.prediction_cache', ...cliArgs]);
      expect(read.stderr).toBe('');
      const stored = new Set((JSON.parse(read.stdout) as { answer: string }[]).map((r) => (JSON.parse(r.answer) as string[])[0]!.replace('label of ', '')));
      expect(stored.size).toBeGreaterThan(0);
      expect(stored.size).toBeLessThan(ROWS);
      const askedBefore = server.requests.length;
      const second = await runCli(['worker', '--once', ...cliArgs]);
      expect(second.stderr).toBe('');
      expect(second.status).toBe(0);
      if (adapter.name === 'duckdb') db = await openDuckDB(cliArgs[1]!);
      const askedAfter = server.requests.slice(askedBefore).flatMap((r) => r.prompts);
      // No stored answer is asked again (on DuckDB too: the answers the killed process
      // committed are replayed from the write-ahead log, adapters/duckdb/wal-recovery.ts).
      expect(askedAfter.filter((p) => stored.has(p))).toEqual([]);
      // Per row: a stored answer was asked once in all; a row in flight at the kill at most twice.
      const perRow = new Map<string, number>();
      for (const prompt of server.requests.flatMap((r) => r.prompts)) perRow.set(prompt, (perRow.get(prompt) ?? 0) + 1);
      expect(perRow.size).toBe(ROWS);
      expect([...stored].filter((p) => perRow.get(p) !== 1)).toEqual([]);
      expect(Math.max(...perRow.values())).toBeLessThanOrEqual(2);
      expect(new Set([...stored, ...askedAfter]).size).toBe(ROWS);
      await checkResult(db);
      await db.close();
    });

    if (adapter.openPair) {
      it('refreshes as soon as a change commits (NOTIFY), and two refreshers never refresh one table twice', async () => {
        const [db, other] = await adapter.openPair!();
        await setUp(db);
        // Two refreshers racing: each change predicted once.
        await db.sql(`INSERT INTO reviews SELECT i, 'review ' || CAST(i AS VARCHAR) FROM generate_series(1, ${ROWS / 2}) AS r(i)`);
        const a = (db as ModelSession).materialized;
        const b = (other as ModelSession).materialized;
        const table = (await a.store.list())[0]!;
        // One session runs one statement at a time: each refresher races on its own.
        const waiting = await Promise.all([a.refresh(table, true), b.refresh(table, true)]);
        expect(waiting.map((o) => o?.rowsPredicted).sort()).toEqual([0, ROWS / 2]);
        expect(server.requests).toHaveLength(ROWS / 2);
        await db.sql(`UPDATE reviews SET body = body || '!' WHERE id <= 10`);
        const trying = await Promise.all([a.refresh(table, false), b.refresh(table, false)]);
        expect(trying.reduce((n, o) => n + (o?.rowsPredicted ?? 0), 0)).toBe(10);
        expect(server.requests).toHaveLength(ROWS / 2 + 10);
        await db.sql(`UPDATE reviews SET body = rtrim(body, '!') WHERE id <= 10`);
        await a.refresh(table, true);
        expect(server.requests).toHaveLength(ROWS / 2 + 10);
        await db.sql(`INSERT INTO reviews SELECT i, 'review ' || CAST(i AS VARCHAR) FROM generate_series(${ROWS / 2 + 1}, ${ROWS}) AS r(i)`);
        await Promise.all([a.refresh(table, true), b.refresh(table, true)]);
        expect(server.requests).toHaveLength(ROWS + 10);
        await checkResult(db);
        await other.close();
        await db.close();
      });

      it('a local model\'s refresh killed with SIGKILL is all or nothing, and the next one applies every change once', async () => {
        const burst = 20_000;
        const { session: db, cliArgs } = await adapter.openShared(mkdtempSync(join(tmpdir(), 'modelsql-worker-')));
        try {
          await db.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
          await db.sql('CREATE TABLE points (id BIGINT PRIMARY KEY, a DOUBLE PRECISION, b DOUBLE PRECISION, note TEXT)');
          await db.sql(`CREATE MATERIALIZED TABLE point_y FRESHNESS = INTERVAL '1' SECOND AS SELECT id, note, y FROM ML_PREDICT(TABLE points, MODEL lin, DESCRIPTOR(a, b))`);
          const worker = startWorker(cliArgs);
          await until(() => worker.output().includes('modelsql worker: started'));
          // Each key recorded five times before the worker takes them (its insert; each update records the old and the new key).
          await db.sql('BEGIN');
          await db.sql(`INSERT INTO points SELECT i, i % 100, i % 7, 'a' FROM generate_series(1, ${burst}) AS r(i)`);
          await db.sql(`UPDATE points SET a = a + 1`);
          await db.sql(`UPDATE points SET note = 'b'`);
          await db.sql('COMMIT');
          // Killed once its refresh has written (taken the change records) and before it commits, when the machine lets us see it.
          await until(async () => Number((await db.sql('SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()')).rows[0]![0]) > 0 || Number((await db.sql('SELECT count(*) FROM point_y')).rows[0]![0]) > 0);
          worker.child.kill('SIGKILL');
          await worker.exited;
          const state = async () => {
            const described = new Map((await db.sql('DESCRIBE MATERIALIZED TABLE point_y')).rows.map((r) => [r[0], r[1]]));
            return [Number((await db.sql('SELECT count(*) FROM point_y')).rows[0]![0]), Number(described.get('pending_changes')), Number(described.get('rows_predicted'))];
          };
          // All or nothing: every row with its change records consumed, or none and every record pending.
          expect([[0, 5 * burst, 0], [burst, 0, burst]]).toContainEqual(await state());
          const again = await runCli(['worker', '--once', ...cliArgs]);
          expect(again.stderr).toBe('');
          expect(await state()).toEqual([burst, 0, burst]);
          const [count, distinct, notes, wrong] = (await db.sql(`SELECT count(*), count(DISTINCT t.id), count(*) FILTER (WHERE t.note = 'b'), count(*) FILTER (WHERE abs(t.y - (2 * s.a + 3 * s.b - 1)) > 1e-3) FROM point_y AS t JOIN points AS s ON s.id = t.id`)).rows[0]!.map(Number);
          expect([count, distinct, notes, wrong]).toEqual([burst, burst, burst, 0]);
        } finally {
          await db.close();
        }
      });

      it('a worker started on Postgres refreshes on notification', async () => {
        const { session: db, cliArgs } = await adapter.openShared(mkdtempSync(join(tmpdir(), 'modelsql-worker-')));
        await setUp(db);
        await db.sql(`ALTER MATERIALIZED TABLE labels SET FRESHNESS = INTERVAL '1' HOUR`);
        const worker = startWorker(cliArgs);
        try {
          await until(() => worker.output().includes('modelsql worker: started'));
          await db.sql(`INSERT INTO reviews SELECT i, 'review ' || CAST(i AS VARCHAR) FROM generate_series(1, ${ROWS}) AS r(i)`);
          await until(async () => Number((await db.sql('SELECT count(*) FROM labels')).rows[0]![0]) === ROWS);
          await checkResult(db);
          expect(server.requests).toHaveLength(ROWS);
          const described = new Map((await db.sql('DESCRIBE MATERIALIZED TABLE labels')).rows.map((r) => [r[0], r[1]]));
          expect(described.get('pending_changes')).toBe('0');
          expect(Number(described.get('lag_ms'))).toBeGreaterThanOrEqual(0);
        } finally {
          worker.child.kill('SIGTERM');
          expect(await worker.exited).toBe(0);
          await db.close();
        }
        expect(worker.output()).toMatch(/public\.labels: \d+ rows refreshed/);
      });
    }
  });
}
