/**
 * A load of many clients through the Postgres proxy, with every answer checked, and an
 * optional upstream restart in the middle. Shared by the load benchmark
 * (benchmarks/proxy-load.ts) and the fault test (test/adapters/postgres/proxy-faults.test.ts).
 *
 * Each client loops over a mix of statements until the time is up:
 * - `plain`: `SELECT k * 2, current_setting('application_name')` (simple protocol) and
 *   `SELECT $1::int + 1` (extended protocol);
 * - `onnx`: ML_PREDICT of the linear ONNX model over ten rows, and over one row chosen by a
 *   `$1` parameter (extended protocol);
 * - `remote`: ML_PREDICT of an OpenAI-compatible model over five rows (the loopback server
 *   answers `echo: <prompt>`);
 * - `catalog` (one client in 25): `CREATE OR REPLACE MODEL ... AS SELECT` (a trained model,
 *   a new version with its artifacts) and `DROP MODEL`, in turn;
 * - `abandon` (one statement in ten): a remote or ONNX ML_PREDICT whose client drops its connection a few
 *   milliseconds in (the proxy must stop the statement and free its session), then
 *   connects again.
 *
 * What counts as a failure of the proxy (see {@link classify}): a wrong or missing answer;
 * a statement that hangs past `hangMs`; any error, except (a) a remote model request that
 * still failed after its retries (SQLSTATE 38000 "... (after N retries)": the server
 * genuinely failed it every time) and (b) during an upstream restart, a lost connection
 * (08xxx, 57P01-57P03, or the driver's "Connection terminated") for a statement that began
 * before the upstream was back plus `graceMs`. A client whose connection was lost opens a
 * new one.
 */
import pg from 'pg';
import { linearExpected } from './model-files.js';

/** The kinds of statement a load mixes. */
export type LoadKind = 'plain' | 'onnx' | 'remote' | 'catalog' | 'abandon';

/** Rows of the `pts` table a load reads: id 1..PTS_ROWS, a = id / 2, b = id % 7. */
export const PTS_ROWS = 1000;

/** Creates the tables and models of a load through `client` (a proxy client). */
export async function prepareLoad(client: pg.Client, models: { readonly onnxPath: string; readonly openaiUrl?: string }): Promise<void> {
  await client.query(`CREATE TABLE pts AS SELECT i AS id, i * 0.5 AS a, (i % 7)::float8 AS b FROM generate_series(1, ${PTS_ROWS}) i`);
  await client.query('CREATE TABLE train AS SELECT i * 0.5 AS a, (i % 7)::float8 AS b, 2 * i * 0.5 + 3 * (i % 7) - 1 AS y FROM generate_series(1, 100) i');
  await client.query(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.onnxPath}')`);
  if (models.openaiUrl) {
    await client.query(
      `CREATE MODEL chat INPUT (txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${models.openaiUrl}/v1', 'model' = 'load', 'api-key' = 'sk-load', ` +
        `'cache' = 'false', 'retry-num' = '3', 'retry-initial-delay' = '10ms', 'retry-max-delay' = '100ms', 'max-concurrent-operations' = '5')`,
    );
  }
}

/** An upstream restart during the load. */
export interface LoadRestart {
  /** Seconds into the load when the upstream goes down. */
  readonly atSeconds: number;
  /** How long it stays down, in ms. */
  readonly downMs: number;
  shutdown(): Promise<void>;
  start(): Promise<void>;
}

/** Options of {@link runLoad}. */
export interface LoadOptions {
  /** URL of the database through the proxy. */
  readonly url: string;
  readonly clients: number;
  /**
   * How long the clients run at least; with a restart, or with `untilServed`, they go on
   * until what those ask for was seen (see runLoad).
   */
  readonly seconds: number;
  /** Kinds each answered right at least once before the load ends (within `maxSeconds`). */
  readonly untilServed?: readonly LoadKind[];
  /** When the load ends whatever it has seen (default `seconds` plus `hangMs`). */
  readonly maxSeconds?: number;
  readonly kinds: readonly LoadKind[];
  readonly restart?: LoadRestart;
  /** A statement running longer than this is a hang (default 30 s). */
  readonly hangMs?: number;
  /** After the upstream is back, how long lost connections are still excused (default 2 s). */
  readonly graceMs?: number;
}

/** What a load saw. */
export interface LoadReport {
  /** Statements answered right, by kind. */
  readonly ok: Readonly<Record<LoadKind, number>>;
  /** Latencies (ms) of the statements answered right, sorted. */
  readonly latencies: readonly number[];
  /** Remote calls that failed after their retries (allowed). */
  readonly genuineFailures: number;
  /** Statements that lost their connection to the upstream restart (allowed). */
  readonly restartErrors: number;
  /** Failures of the proxy: wrong answers, hangs, unexpected errors (must be empty). */
  readonly failures: readonly string[];
  /** Model names the catalog loop left created (its last statement on each succeeded as CREATE). */
  readonly modelsLeft: readonly string[];
  /** Models whose last catalog statement failed: their state is whatever committed. */
  readonly modelsUnknown: readonly string[];
  /** When the upstream went down and came back (ms since the load began), if it did. */
  readonly restart?: { readonly downAt: number; readonly upAt: number; readonly firstServedAt?: number };
  /** Seconds the load ran. */
  readonly seconds: number;
}

/** An error a statement may end with, by cause. */
type Verdict = 'genuine' | 'restart' | 'failure';

const LOST = /Connection terminated|not queryable|ECONNRESET|EPIPE|ECONNREFUSED|write after end/i;

/** Classifies an error of a statement that began at `startedAt` (see the file comment). */
function classify(error: unknown, startedAt: number, restart: { downAt?: number; upAt?: number }, graceMs: number): Verdict {
  const e = error as { code?: string; message?: string };
  const message = e.message ?? String(error);
  if (e.code === '38000' && /after \d+ retr/.test(message)) return 'genuine';
  const lost = (e.code !== undefined && /^(08...|57P0[123])$/.test(e.code)) || (e.code === undefined && LOST.test(message));
  if (lost && restart.downAt !== undefined && (restart.upAt === undefined || startedAt < restart.upAt + graceMs)) return 'restart';
  return 'failure';
}

function near(actual: unknown, expected: number): boolean {
  return typeof actual === 'number' && Math.abs(actual - expected) <= 1e-4 * Math.max(1, Math.abs(expected));
}

/** One statement of a kind: returns what is wrong with the answer, or undefined. */
async function runStatement(client: pg.Client, kind: LoadKind, app: string, n: number): Promise<string | undefined> {
  const id = 1 + ((n * 37) % (PTS_ROWS - 10));
  switch (kind) {
    case 'plain': {
      if (n % 2 === 0) {
        const r = await client.query(`SELECT ${n}::int * 2 AS v, current_setting('application_name') AS app`);
        return r.rows[0]?.v === n * 2 && r.rows[0]?.app === app ? undefined : `plain: ${JSON.stringify(r.rows)}`;
      }
      const r = await client.query('SELECT $1::int + 1 AS v', [n]);
      return r.rows[0]?.v === n + 1 ? undefined : `plain $1: ${JSON.stringify(r.rows)}`;
    }
    case 'onnx': {
      const r =
        n % 2 === 0
          ? await client.query(`SELECT id, a, b, y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id BETWEEN ${id} AND ${id + 9}), MODEL lin, DESCRIPTOR(a, b)) ORDER BY id`)
          : await client.query('SELECT id, a, b, y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id = $1), MODEL lin, DESCRIPTOR(a, b))', [id]);
      const want = n % 2 === 0 ? 10 : 1;
      const bad = r.rows.length !== want || r.rows.some((row, i) => row.id !== id + i || !near(row.y, linearExpected(row.id * 0.5, row.id % 7)));
      return bad ? `onnx: ${JSON.stringify(r.rows)}` : undefined;
    }
    case 'remote': {
      const r = await client.query(`SELECT id, answer FROM ML_PREDICT(TABLE (SELECT id, 'p' || id AS txt FROM pts WHERE id BETWEEN ${id} AND ${id + 4}), MODEL chat, DESCRIPTOR(txt)) ORDER BY id`);
      const bad = r.rows.length !== 5 || r.rows.some((row, i) => row.id !== id + i || row.answer !== `echo: p${id + i}`);
      return bad ? `remote: ${JSON.stringify(r.rows)}` : undefined;
    }
    case 'abandon': {
      // No answer to check: the statement is dropped on purpose, and the connection with it.
      const model = n % 2 === 0 ? 'MODEL chat, DESCRIPTOR(txt)' : 'MODEL lin, DESCRIPTOR(a, b)';
      void client.query(`SELECT * FROM ML_PREDICT(TABLE (SELECT id, a, b, 'p' || id AS txt FROM pts WHERE id BETWEEN ${id} AND ${id + 4}), ${model})`).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, n % 30));
      (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      return undefined;
    }
    case 'catalog':
      throw new Error('catalog statements run through catalogStep');
  }
}

/** Runs a load; see the file comment. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const hangMs = options.hangMs ?? 30_000;
  const graceMs = options.graceMs ?? 2000;
  const began = performance.now();
  const now = (): number => performance.now() - began;
  const deadline = options.seconds * 1000;
  const limit = options.maxSeconds !== undefined ? options.maxSeconds * 1000 : deadline + hangMs;
  const ok: Record<LoadKind, number> = { plain: 0, onnx: 0, remote: 0, catalog: 0, abandon: 0 };
  const latencies: number[] = [];
  const failures: string[] = [];
  const restart: { downAt?: number; upAt?: number; firstServedAt?: number } = {};
  let genuineFailures = 0;
  let restartErrors = 0;
  const models = new Map<string, 'created' | 'dropped' | 'unknown'>();
  const mixed = options.kinds.filter((k) => k !== 'catalog' && k !== 'abandon');
  const abandon = options.kinds.includes('abandon');

  const connect = async (app: string): Promise<pg.Client> => {
    for (;;) {
      const startedAt = now();
      const client = new pg.Client({ connectionString: options.url, application_name: app });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return client;
      } catch (error) {
        await client.end().catch(() => undefined);
        if (classify(error, startedAt, restart, graceMs) !== 'restart' || startedAt > limit) {
          throw new Error(`${app}: connect failed: ${(error as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  /** Runs `work` under the hang watchdog; returns false when the connection is gone. */
  const guarded = async (client: pg.Client, kind: LoadKind, app: string, work: () => Promise<string | undefined>): Promise<boolean> => {
    const startedAt = now();
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), hangMs)));
    try {
      const outcome = await Promise.race([work(), hang]);
      if (outcome === 'hang') {
        failures.push(`${app}: a ${kind} statement hung for ${hangMs} ms (began at ${Math.round(startedAt)} ms)`);
        return false;
      }
      if (outcome !== undefined) failures.push(`${app}: wrong answer: ${outcome}`);
      else {
        ok[kind]++;
        latencies.push(now() - startedAt);
        if (restart.upAt !== undefined && restart.firstServedAt === undefined && startedAt > restart.upAt) restart.firstServedAt = now();
      }
      return true;
    } catch (error) {
      const verdict = classify(error, startedAt, restart, graceMs);
      const e = error as { code?: string; message?: string };
      if (verdict === 'genuine') genuineFailures++;
      else if (verdict === 'restart') restartErrors++;
      else failures.push(`${app}: ${kind} failed at ${Math.round(startedAt)} ms: ${e.code ?? ''} ${e.message ?? String(error)}`);
      // A lost connection is not queryable any more; any other error leaves it usable.
      return !(e.code === undefined || /^(08|57P0)/.test(e.code));
    } finally {
      clearTimeout(timer);
    }
  };

  const catalogStep = async (client: pg.Client, name: string, n: number): Promise<string | undefined> => {
    if (n % 3 === 2) {
      models.set(name, 'unknown');
      await client.query(`DROP MODEL IF EXISTS ${name}`);
      models.set(name, 'dropped');
      return undefined;
    }
    models.set(name, 'unknown');
    await client.query(`CREATE OR REPLACE MODEL ${name} WITH ('task' = 'regression', 'algorithm' = 'linear_regression', 'label' = 'y') AS SELECT a, b, y FROM train`);
    models.set(name, 'created');
    return undefined;
  };

  // The load goes on past its time until what it is there to see was seen (until `limit`):
  // with a restart, the upstream back and a statement begun after that served (on a
  // slow machine the restart may end late); and each kind of `untilServed` answered right.
  const unseen = (): boolean =>
    (options.restart !== undefined && restart.firstServedAt === undefined) || (options.untilServed ?? []).some((kind) => ok[kind] === 0);
  const awaitingUnseen = (): boolean => unseen() && now() < limit;

  const worker = async (k: number): Promise<void> => {
    const app = `load${k}`;
    const catalog = options.kinds.includes('catalog') && k % 25 === 0;
    let client: pg.Client | undefined;
    try {
      for (let n = 0; now() < deadline || awaitingUnseen(); n++) {
        client ??= await connect(app);
        const kind: LoadKind = catalog && n % 4 === 1 ? 'catalog' : abandon && n % 10 === 4 ? 'abandon' : mixed[(n + k) % mixed.length]!;
        const c = client;
        const alive = await guarded(c, kind, app, () => (kind === 'catalog' ? catalogStep(c, `cat${k}`, n) : runStatement(c, kind, app, n)));
        if (!alive || kind === 'abandon') {
          client = undefined;
          void c.end().catch(() => undefined);
        }
      }
    } catch (error) {
      failures.push((error as Error).message);
    } finally {
      await client?.end().catch(() => undefined);
    }
  };

  const restarting = options.restart
    ? (async (r: LoadRestart) => {
        await new Promise((resolve) => setTimeout(resolve, r.atSeconds * 1000));
        restart.downAt = now();
        await r.shutdown();
        await new Promise((resolve) => setTimeout(resolve, r.downMs));
        await r.start();
        restart.upAt = now();
      })(options.restart)
    : Promise.resolve();
  await Promise.all([...Array.from({ length: options.clients }, (_, k) => worker(k)), restarting]);
  return {
    ok,
    latencies: latencies.sort((a, b) => a - b),
    genuineFailures,
    restartErrors,
    failures,
    modelsLeft: [...models].filter(([, s]) => s === 'created').map(([m]) => m),
    modelsUnknown: [...models].filter(([, s]) => s === 'unknown').map(([m]) => m),
    restart: restart.downAt !== undefined && restart.upAt !== undefined ? { downAt: restart.downAt, upAt: restart.upAt, firstServedAt: restart.firstServedAt } : undefined,
    seconds: now() / 1000,
  };
}

/** What a database holds after a load that must be gone: backends of the database (other than the asking one) and temporary tables. */
export async function leftovers(direct: pg.Client): Promise<{ readonly backends: number; readonly tempTables: number }> {
  const b = await direct.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
  const t = await direct.query(`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'pg\\_temp\\_%' AND c.relkind = 'r'`);
  return { backends: b.rows[0].n as number, tempTables: t.rows[0].n as number };
}

/**
 * Half-written catalog entries: a model without its default version, a version without
 * its model, a trained version without both artifacts, an artifact whose bytes do not
 * match its checksum or that belongs to no version, duplicate keys. Returns one line per
 * problem (empty when the catalog is whole).
 */
export async function catalogProblems(direct: pg.Client): Promise<string[]> {
  const checks: [string, string][] = [
    ['model without its default version', 'SELECT m.model_name FROM ml_catalog.models m WHERE NOT EXISTS (SELECT 1 FROM ml_catalog.model_versions v WHERE (v.schema_name, v.model_name, v.version) = (m.schema_name, m.model_name, m.default_version))'],
    ['version without its model', 'SELECT v.model_name FROM ml_catalog.model_versions v WHERE NOT EXISTS (SELECT 1 FROM ml_catalog.models m WHERE (m.schema_name, m.model_name) = (v.schema_name, v.model_name))'],
    ['trained version without both artifacts', "SELECT v.model_name || '$' || v.version FROM ml_catalog.model_versions v WHERE v.as_query IS NOT NULL AND (SELECT count(DISTINCT a.artifact_name) FROM ml_catalog.artifacts a WHERE (a.schema_name, a.model_name, a.version) = (v.schema_name, v.model_name, v.version)) < 2"],
    ['artifact without its version', 'SELECT a.model_name FROM ml_catalog.artifacts a WHERE NOT EXISTS (SELECT 1 FROM ml_catalog.model_versions v WHERE (v.schema_name, v.model_name, v.version) = (a.schema_name, a.model_name, a.version))'],
    ['artifact whose bytes do not match its checksum', "SELECT a.model_name FROM ml_catalog.artifacts a WHERE encode(sha256(a.content), 'hex') <> a.sha256"],
    ['duplicate model', 'SELECT model_name FROM ml_catalog.models GROUP BY schema_name, model_name HAVING count(*) > 1'],
    ['duplicate version', 'SELECT model_name FROM ml_catalog.model_versions GROUP BY schema_name, model_name, version HAVING count(*) > 1'],
  ];
  const problems: string[] = [];
  for (const [what, sql] of checks) {
    for (const row of (await direct.query({ text: sql, rowMode: 'array' })).rows) problems.push(`${what}: ${String(row[0])}`);
  }
  return problems;
}
