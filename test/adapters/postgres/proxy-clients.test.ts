/**
 * The client matrix through the proxy, each a real client: psql (`FETCH_COUNT`, `\x`),
 * node-postgres with `pg-cursor` and `DECLARE`, psycopg2 (named cursor, `copy_expert`) and
 * the PostgreSQL JDBC driver (describe before execute, `setFetchSize`, declared parameter
 * types). Cursors over model statements keep their stage as long as they read it; Describe
 * and plain EXPLAIN run no model.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { linearExpected, writeModelFiles, type ModelFiles } from '../../support/model-files.js';
import { createPointsAndModel, eventually, leftoverTempTables, proxyFixture, type ProxyFixture } from './proxy-helpers.js';

const run = promisify(execFile);

let fx: ProxyFixture;
let models: ModelFiles;
let db: pg.Client;
let direct: pg.Client;

const PREDICT = 'SELECT id, y FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p';

beforeAll(async () => {
  models = writeModelFiles();
  fx = await proxyFixture();
  db = await fx.client();
  direct = await fx.direct();
  await createPointsAndModel(db, models.linear);
}, 60_000);

afterAll(async () => {
  await fx?.close();
});


/** Prediction runs recorded so far (the lineage log). */
async function predictionRuns(): Promise<number> {
  const { rows } = await direct.query('SELECT count(*)::int AS n FROM ml_catalog.prediction_runs');
  return rows[0].n as number;
}

/** The expected `y` of row `id` of `pts`. */
const expectedY = (id: number): number => linearExpected(id * 0.5, 10 - id);

describe('psql', () => {
  const psql = (args: readonly string[], vars: readonly string[] = []) =>
    run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', ...vars.flatMap((v) => ['-v', v]), fx.proxyUrl, ...args], { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } });

  test('FETCH_COUNT reads an ML_PREDICT through a cursor, every row, and the stage goes afterwards', async () => {
    const { stdout } = await psql(['-At', '-c', `${PREDICT} ORDER BY id`], ['FETCH_COUNT=7']);
    const rows = stdout.trim().split('\n').map((line) => line.split('|').map(Number));
    expect(rows).toHaveLength(20);
    for (const [id, y] of rows) expect(y).toBeCloseTo(expectedY(id!), 4);
    await eventually(async () => (await leftoverTempTables(direct)) === 0, 10_000, 'the stage to be dropped');
  });

  test('\\x shows a model statement expanded', async () => {
    const { stdout } = await psql(['-c', '\\x on', '-c', `${PREDICT} WHERE id = 3`]);
    expect(stdout).toMatch(/^id\s*\|\s*3$/m);
    expect(stdout).toMatch(/^y\s*\|/m);
  });
});

describe('node-postgres', () => {
  test('DECLARE over ML_PREDICT in a transaction: FETCH reads every row; the stage is dropped at COMMIT', async () => {
    await db.query('BEGIN');
    await db.query(`DECLARE c NO SCROLL CURSOR FOR ${PREDICT} ORDER BY id`);
    const seen: number[] = [];
    for (;;) {
      const { rows } = await db.query('FETCH FORWARD 6 FROM c');
      if (rows.length === 0) break;
      for (const r of rows) {
        expect(r.y).toBeCloseTo(expectedY(r.id), 4);
        seen.push(r.id);
      }
    }
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // Still there for the cursor (seen from its own session: the table is not committed yet).
    const held = await db.query(`SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = pg_my_temp_schema() AND relname LIKE '\\_\\_modelsql%'`);
    expect(held.rows[0].n).toBeGreaterThan(0);
    await db.query('CLOSE c');
    await db.query('COMMIT');
    await eventually(async () => (await leftoverTempTables(direct)) === 0, 10_000, 'the stage to be dropped');
  });

  test('a cursor WITH HOLD outlives its transaction (materialized at commit)', async () => {
    await db.query('BEGIN');
    await db.query(`DECLARE h CURSOR WITH HOLD FOR ${PREDICT} ORDER BY id`);
    await db.query('COMMIT');
    const { rows } = await db.query('FETCH ALL FROM h');
    expect(rows).toHaveLength(20);
    await db.query('CLOSE h');
    await eventually(async () => (await leftoverTempTables(direct)) === 0, 10_000, 'the stage to be dropped');
  });

  test('pg-cursor reads an ML_PREDICT in slices (Execute with a row limit, PortalSuspended)', async () => {
    const cursor = db.query(new Cursor(`${PREDICT} WHERE id <= $1 ORDER BY id`, [17]));
    const seen: number[] = [];
    for (;;) {
      const rows = (await cursor.read(5)) as { id: number; y: number }[];
      if (rows.length === 0) break;
      expect(rows.length).toBeLessThanOrEqual(5);
      for (const r of rows) {
        expect(r.y).toBeCloseTo(expectedY(r.id), 4);
        seen.push(r.id);
      }
    }
    await cursor.close();
    expect(seen).toEqual(Array.from({ length: 17 }, (_, i) => i + 1));
    // The client goes on as usual, and the stage goes once the implicit transaction has ended.
    expect((await db.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await eventually(async () => (await leftoverTempTables(direct)) === 0, 10_000, 'the stage to be dropped');
  });

  test('plain EXPLAIN shows the host plan and runs no model; EXPLAIN ANALYZE runs it', async () => {
    const before = await predictionRuns();
    const plan = await db.query(`EXPLAIN ${PREDICT} WHERE id > 3`);
    const text = plan.rows.map((r) => r['QUERY PLAN'] as string).join('\n');
    expect(text).toMatch(/Scan .*on pts/);
    expect(await predictionRuns()).toBe(before);
    await db.query(`EXPLAIN (COSTS false, ANALYZE false) ${PREDICT}`);
    expect(await predictionRuns()).toBe(before);
    await db.query(`EXPLAIN ANALYZE ${PREDICT}`);
    expect(await predictionRuns()).toBe(before + 1);
    await eventually(async () => (await leftoverTempTables(direct)) === 0, 10_000, 'the stage to be dropped');
  });

  test('parameters over 32,767 pass through (Postgres allows 65,535)', async () => {
    const values = Array.from({ length: 40_000 }, (_, i) => String(i + 1));
    const text = `SELECT $1::int + $40000::int AS s, cardinality(ARRAY[${values.map((_, i) => `$${i + 1}`).join(', ')}]) AS n`;
    const { rows } = await db.query(text, values);
    expect(rows[0]).toEqual({ s: 40_001, n: 40_000 });
  });
});

/** The Python with psycopg2 (Debian's python3-psycopg2), or undefined. */
function pythonWithPsycopg2(): string | undefined {
  for (const python of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(python, ['-c', 'import psycopg2'], { stdio: 'ignore' });
      return python;
    } catch {
      // next
    }
  }
  return undefined;
}

const python = pythonWithPsycopg2();
(python ? describe : describe.skip)('psycopg2', () => {
  test('a named cursor over ML_PREDICT and copy_expert', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelsql-psycopg2-'));
    const script = join(dir, 'client.py');
    writeFileSync(
      script,
      `import io, json, sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor(name='scores')
cur.itersize = 4
cur.execute("${PREDICT} ORDER BY id")
rows = [[r[0], r[1]] for r in cur]
cur.close()
conn.commit()
plain = conn.cursor()
out = io.StringIO()
plain.copy_expert("COPY (SELECT id FROM pts ORDER BY id) TO STDOUT", out)
plain.execute("CREATE TABLE pts_py (id int)")
plain.copy_expert("COPY pts_py FROM STDIN", io.StringIO("1\\n2\\n3\\n"))
plain.execute("SELECT count(*) FROM pts_py")
loaded = plain.fetchone()[0]
conn.commit()
conn.close()
print(json.dumps({"rows": rows, "copied": out.getvalue().split(), "loaded": loaded}))
`,
    );
    const { stdout } = await run(python!, [script, fx.proxyUrl]);
    const result = JSON.parse(stdout) as { rows: [number, number][]; copied: string[]; loaded: number };
    expect(result.loaded).toBe(3);
    expect(result.rows.map(([id]) => id)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const [id, y] of result.rows) expect(y).toBeCloseTo(expectedY(id), 4);
    expect(result.copied).toHaveLength(20);
    await eventually(async () => (await leftoverTempTables(direct)) === 0, 10_000, 'the stage to be dropped');
  });
});

/** The PostgreSQL JDBC driver's jar: Maven's local repository, else Debian's libpostgresql-jdbc-java. */
function jdbcJar(): string | undefined {
  const candidates = [
    join(process.env.HOME ?? '/root', '.m2/repository/org/postgresql/postgresql/42.7.13/postgresql-42.7.13.jar'),
    '/usr/share/java/postgresql.jar',
  ];
  const found = candidates.find((path) => existsSync(path));
  if (!found) return undefined;
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  return found;
}

const jar = jdbcJar();
if (!jar) process.stderr.write('proxy-clients: no PostgreSQL JDBC driver or no java (install libpostgresql-jdbc-java and a JRE); the JDBC tests are skipped\n');
(jar ? describe : describe.skip)('JDBC', () => {
  test('describe before execute records one prediction run; setFetchSize reads every row; declared parameter types; a described CREATE MODEL; binary numeric and uuid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelsql-jdbc-'));
    const source = join(dir, 'Client.java');
    writeFileSync(
      source,
      `import java.sql.*;
public class Client {
  public static void main(String[] args) throws Exception {
    try (Connection c = DriverManager.getConnection(args[0], args[1], args[2])) {
      StringBuilder out = new StringBuilder();
      try (PreparedStatement p = c.prepareStatement("${PREDICT} ORDER BY id")) {
        ResultSetMetaData m = p.getMetaData();
        out.append("meta=").append(m.getColumnCount()).append(':').append(m.getColumnName(1)).append(':').append(m.getColumnTypeName(2)).append('\\n');
        System.out.println("runs-after-describe");
        System.out.flush();
        System.in.read();
        int n = 0;
        try (ResultSet r = p.executeQuery()) { while (r.next()) n++; }
        out.append("rows=").append(n).append('\\n');
      }
      c.setAutoCommit(false);
      try (PreparedStatement p = c.prepareStatement("${PREDICT} ORDER BY id")) {
        p.setFetchSize(6);
        int n = 0;
        try (ResultSet r = p.executeQuery()) { while (r.next()) n++; }
        out.append("fetched=").append(n).append('\\n');
      }
      c.commit();
      try (PreparedStatement p = c.prepareStatement("SELECT id, ? + ? AS s FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p WHERE id = 1")) {
        p.setDouble(1, 1.5);
        p.setDouble(2, 2.25);
        try (ResultSet r = p.executeQuery()) { r.next(); out.append("sum=").append(r.getDouble(2)).append('\\n'); }
      }
      c.commit();
      try (PreparedStatement p = c.prepareStatement("CREATE MODEL described INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.linear}')")) {
        out.append("create-params=").append(p.getParameterMetaData().getParameterCount()).append('\\n');
        p.executeUpdate();
      }
      c.commit();
      try (PreparedStatement p = c.prepareStatement("SELECT CAST(? AS text) AS n, CAST(? AS text) AS u FROM ML_PREDICT(TABLE pts, MODEL described, DESCRIPTOR(a, b)) AS p WHERE id = 1")) {
        p.setBigDecimal(1, new java.math.BigDecimal("-12345.0670"));
        p.setObject(2, java.util.UUID.fromString("123e4567-e89b-12d3-a456-426614174000"));
        try (ResultSet r = p.executeQuery()) { r.next(); out.append("binary=").append(r.getString(1)).append(' ').append(r.getString(2)).append('\\n'); }
      }
      c.commit();
      System.out.print(out);
    }
  }
}
`,
    );
    const url = new URL(fx.proxyUrl);
    const jdbcUrl = `jdbc:postgresql://${url.host}${url.pathname}?sslmode=disable&prepareThreshold=1`;
    const child = execFile('java', ['-cp', jar!, source, jdbcUrl, decodeURIComponent(url.username), decodeURIComponent(url.password)]);
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const before = await predictionRuns();
    let runsAfterDescribe: number | undefined;
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (runsAfterDescribe === undefined && stdout.includes('runs-after-describe')) {
        void predictionRuns().then((n) => {
          runsAfterDescribe = n;
          child.stdin!.write('\n');
        });
      }
    });
    const code = await exited;
    if (code !== 0) throw new Error(`java exited with ${code}: ${stderr}`);
    expect(runsAfterDescribe).toBe(before);
    expect(stdout).toMatch(/^meta=2:id:float8$/m);
    expect(stdout).toMatch(/^rows=20$/m);
    expect(stdout).toMatch(/^fetched=20$/m);
    expect(stdout).toMatch(/^sum=3\.75$/m);
    // getParameterMetaData describes CREATE MODEL without running it: executeUpdate then creates it once.
    expect(stdout).toMatch(/^create-params=0$/m);
    // JDBC sends BigDecimal and UUID in binary.
    expect(stdout).toMatch(/^binary=-12345\.0670 123e4567-e89b-12d3-a456-426614174000$/m);
    // describe + execute: one run; the fetch-size query: one; the typed-parameter query: one; the binary-parameter query: one.
    expect(await predictionRuns()).toBe(before + 4);
    await eventually(async () => (await leftoverTempTables(direct)) === 0, 10_000, 'the stage to be dropped');
  }, 120_000);
});

describe('host errors inside ML statements', () => {
  const cases = [
    { sql: `SELECT nope, y FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p`, at: 'nope' },
    { sql: `SELECT y FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p WHERE p.missing > 1`, at: 'p.missing' },
    { sql: `SELECT 'é✓', y FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p ORDER BY nope`, at: 'nope' },
  ];

  test.each(cases)('point at the client’s own text: $at in $sql', async ({ sql, at }) => {
    // The position is 1-based in characters, as Postgres counts.
    const expected = [...sql.slice(0, sql.indexOf(at))].length + 1;
    const simple = await db.query(sql).catch((e: pg.DatabaseError) => e);
    expect((simple as pg.DatabaseError).code).toBe('42703');
    expect(Number((simple as pg.DatabaseError).position)).toBe(expected);
    // Extended protocol, a parameter before the error: the position is still in the text the client prepared.
    const withParam = `${sql.replace('SELECT ', 'SELECT $1::int AS k, ')}`;
    const extended = await db.query(withParam, [1]).catch((e: pg.DatabaseError) => e);
    expect((extended as pg.DatabaseError).code).toBe('42703');
    expect(Number((extended as pg.DatabaseError).position)).toBe([...withParam.slice(0, withParam.indexOf(at))].length + 1);
  });
});
