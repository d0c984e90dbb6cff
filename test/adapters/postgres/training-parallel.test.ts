/**
 * Training's layered aggregates on Postgres: each layer's columns are computed once per row
 * (the planner does not pull the layer's subquery up and inline its expressions into every
 * reference), and the aggregate can run in parallel workers (`Gather` over a `Partial
 * Aggregate`), which the earlier `OFFSET 0` fence prevented. Checked with `EXPLAIN (VERBOSE)`
 * on the statements training sends, with parallel plans made cheap so that a small table
 * gets one.
 */
import type { Host } from '../../../core/host.js';
import { normalEquations } from '../../../core/training/linear-regression.js';
import { logisticStep } from '../../../core/training/logistic-regression.js';
import { describeTrainingQuery, prepareTrainingData, type TrainingData } from '../../../core/training/training-data.js';
import { parseTrainingOptions } from '../../../core/training/training-options.js';
import { ADAPTERS } from '../../support/adapters.js';

const postgres = ADAPTERS.find((a) => a.name === 'postgres');

/** The host, and every statement sent to it through `execute`. */
function recording(host: Host): { host: Host; statements: string[] } {
  const statements: string[] = [];
  const proxy = new Proxy(host, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (key !== 'execute') return value.bind(target);
      return (sql: string, ...rest: unknown[]) => {
        statements.push(sql);
        return (value as (...a: unknown[]) => unknown).call(target, sql, ...rest);
      };
    },
  });
  return { host: proxy, statements };
}

(postgres ? describe : describe.skip)('training aggregates on Postgres', () => {
  let bare: Host;
  let host: Host;
  let statements: string[];
  const QUERY = 'SELECT x, z, city, y, fast FROM t';

  async function data(raw: readonly (readonly [string, string])[]): Promise<TrainingData> {
    const positions = { option: () => undefined };
    const columns = await describeTrainingQuery(host, QUERY, positions);
    return prepareTrainingData(host, QUERY, columns, parseTrainingOptions(raw), positions);
  }

  /** The plan of the last statement sent, as text. */
  async function planOfLast(): Promise<string> {
    const sql = statements[statements.length - 1]!;
    const plan = await bare.execute(`EXPLAIN (VERBOSE, COSTS OFF) ${sql}`);
    return plan.rows.map((r) => String(r[0])).join('\n');
  }

  /**
   * The columns the table scan outputs. Pulled up, the layer would leave the scan with the
   * plain columns (`t.x`) and its expressions in every reference above; fenced, the scan
   * computes them (EXPLAIN then shows the levels above reading them by the same text).
   */
  function scanOutput(plan: string): string {
    const lines = plan.split('\n');
    const scan = lines.findIndex((l) => /Seq Scan on \S*\bt\b/.test(l));
    return lines[scan + 1]!.trim();
  }

  beforeAll(async () => {
    bare = await postgres!.openHost();
    ({ host, statements } = recording(bare));
    await bare.execute(
      "CREATE TABLE t AS SELECT CAST(i % 97 AS double precision) AS x, CAST((i * 7) % 31 AS double precision) AS z, CASE i % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'b' ELSE 'c' END AS city, " +
        'CAST(i % 11 AS double precision) AS y, (i % 5) < 2 AS fast FROM generate_series(1, 100000) AS g(i)',
    );
    await bare.execute('ANALYZE t');
    // Parallel plans at no cost, for any table size (https://www.postgresql.org/docs/current/runtime-config-query.html).
    for (const s of ['parallel_setup_cost = 0', 'parallel_tuple_cost = 0', 'min_parallel_table_scan_size = 0', 'max_parallel_workers_per_gather = 2']) await bare.execute(`SET ${s}`);
  });
  afterAll(async () => {
    await bare.close();
  });

  it('sums XᵀX in parallel workers, each encoded column computed once per row', async () => {
    await normalEquations(await data([['algorithm', 'linear_regression'], ['label', 'y']]));
    const plan = await planOfLast();
    expect(plan).toMatch(/Gather[\s\S]*Partial \w*Aggregate[\s\S]*Parallel Seq Scan/);
    expect(scanOutput(plan)).toMatch(/^Output: \(\(COALESCE\(t\.x, /);
  });

  it('runs a Newton step of logistic regression in parallel workers, each layer computed once per row', async () => {
    const d = await data([['algorithm', 'logistic_regression'], ['label', 'fast']]);
    const theta = new Array<number>(d.encoded.length + 1).fill(0.25);
    const step = await logisticStep(d, d.classes!, theta, 0);
    expect(step.gradient.every(Number.isFinite)).toBe(true);
    const plan = await planOfLast();
    expect(plan).toMatch(/Gather[\s\S]*Partial \w*Aggregate[\s\S]*Parallel Seq Scan/);
    expect(scanOutput(plan)).toMatch(/^Output: \(\(COALESCE\(t\.x, /);
    // The probability's layer (three exp in the sigmoid, one in the loss) once per row, not once per sum that reads p.
    expect(plan.match(/exp\(/g)).toHaveLength(4);
  });
});
