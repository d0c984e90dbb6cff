/**
 * ML_EVALUATE on every adapter: regression and classification metrics checked against
 * values computed in the test.
 */
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { classifierExpected, linearExpected, writeModelFiles } from '../support/model-files.js';

const files = writeModelFiles();
const N = 40;
const data = Array.from({ length: N }, (_, i) => {
  const a = (i % 10) * 0.7 - 2;
  const b = ((i * 3) % 11) * 0.4 - 1.5;
  return { a, b, target: linearExpected(a, b) + ((i % 5) - 2) * 0.3, klass: (i * 7) % 3 };
});

function near(actual: unknown, expected: number, tolerance = 1e-4): void {
  expect(typeof actual).toBe('number');
  expect(Math.abs((actual as number) - expected)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(expected)));
}

/** AUC of scores for positives vs negatives, ties counted half. */
function auc(scores: number[], positive: boolean[]): number {
  let sum = 0;
  let pairs = 0;
  scores.forEach((s, i) => {
    if (!positive[i]) return;
    scores.forEach((t, j) => {
      if (positive[j]) return;
      pairs++;
      sum += s > t ? 1 : s === t ? 0.5 : 0;
    });
  });
  return sum / pairs;
}

for (const adapter of ADAPTERS) {
  describe(`ML_EVALUATE on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
      const values = data.map((d) => `(${d.a}, ${d.b}, ${d.target}, ${d.klass})`).join(', ');
      await db.sql(
        `CREATE TABLE e AS SELECT CAST(a AS DOUBLE PRECISION) AS a, CAST(b AS DOUBLE PRECISION) AS b, CAST(target AS DOUBLE PRECISION) AS target, CAST(klass AS INTEGER) AS klass FROM (VALUES ${values}) AS v(a, b, target, klass)`,
      );
      await db.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}', 'task' = 'regression')`);
      await db.sql(`CREATE MODEL cls INPUT (a DOUBLE, b DOUBLE) OUTPUT (label BIGINT, probabilities ARRAY<FLOAT>) WITH ('provider' = 'onnx', 'path' = '${files.classifier}')`);
    });
    afterAll(async () => {
      await db.close();
    });

    it('computes regression metrics', async () => {
      const r = await db.sql('SELECT * FROM ML_EVALUATE(TABLE e, MODEL lin, DESCRIPTOR(target), DESCRIPTOR(a, b))');
      expect(r.columns.map((c) => c.name)).toEqual(['result', 'mae', 'mse', 'rmse', 'mape', 'r2']);
      const errors = data.map((d) => d.target - linearExpected(d.a, d.b));
      const mse = errors.reduce((s, e) => s + e * e, 0) / N;
      const mean = data.reduce((s, d) => s + d.target, 0) / N;
      const variance = data.reduce((s, d) => s + (d.target - mean) ** 2, 0) / N;
      const nonZero = data.filter((d) => d.target !== 0);
      const row = r.rows[0]!;
      near(row[1], errors.reduce((s, e) => s + Math.abs(e), 0) / N);
      near(row[2], mse);
      near(row[3], Math.sqrt(mse));
      near(row[4], nonZero.reduce((s, d) => s + Math.abs((d.target - linearExpected(d.a, d.b)) / d.target), 0) / nonZero.length);
      near(row[5], 1 - mse / variance);
      expect(Object.keys(row[0] as object).length).toBeGreaterThan(0);
    });

    it('computes classification metrics with LogLoss and AUC from probabilities', async () => {
      const r = await db.sql("SELECT * FROM ML_EVALUATE(TABLE e, MODEL cls, DESCRIPTOR(klass), DESCRIPTOR(a, b), 'classification')");
      expect(r.columns.map((c) => c.name)).toEqual(['result', 'accuracy', 'precision', 'recall', 'f1', 'logloss', 'auc']);
      const predicted = data.map((d) => classifierExpected(d.a, d.b));
      const classes = [0, 1, 2];
      const accuracy = data.filter((d, i) => predicted[i]!.label === d.klass).length / N;
      const per = classes.map((c) => {
        const tp = data.filter((d, i) => d.klass === c && predicted[i]!.label === c).length;
        const predictedC = predicted.filter((p) => p.label === c).length;
        const actualC = data.filter((d) => d.klass === c).length;
        const precision = predictedC ? tp / predictedC : 0;
        const recall = actualC ? tp / actualC : 0;
        return { precision, recall, f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0 };
      });
      const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
      const logLoss = -mean(data.map((d, i) => Math.log(Math.max(predicted[i]!.probabilities[d.klass]!, 1e-15))));
      const aucs = classes.map((c) => auc(predicted.map((p) => p.probabilities[c]!), data.map((d) => d.klass === c)));
      const row = r.rows[0]!;
      near(row[1], accuracy);
      near(row[2], mean(per.map((p) => p.precision)));
      near(row[3], mean(per.map((p) => p.recall)));
      near(row[4], mean(per.map((p) => p.f1)));
      near(row[5], logLoss, 1e-3);
      near(row[6], mean(aucs), 1e-3);
    });

    it('reads metric columns unquoted in any case, quoted in lower case, and the result map by the metric names', async () => {
      const all = await db.sql('SELECT * FROM ML_EVALUATE(TABLE e, MODEL lin, DESCRIPTOR(target), DESCRIPTOR(a, b))');
      const r2 = all.rows[0]![5];
      const regression = await db.sql(
        'SELECT R2, r2 AS lower, "r2" AS quoted, Mae + RMSE AS errors FROM ML_EVALUATE(TABLE e, MODEL lin, DESCRIPTOR(target), DESCRIPTOR(a, b))',
      );
      expect(regression.columns.map((c) => c.name)).toEqual(['r2', 'lower', 'quoted', 'errors']);
      expect(regression.rows[0]!.slice(0, 3)).toEqual([r2, r2, r2]);
      near(regression.rows[0]![3], (all.rows[0]![1] as number) + (all.rows[0]![3] as number));
      // The map's keys keep the metric names: `->>` reads a jsonb key on every Postgres, `[...]` a DuckDB MAP.
      const key = adapter.name === 'postgres' ? "CAST(result ->> 'R2' AS DOUBLE PRECISION)" : "result['R2']";
      const fromMap = await db.sql(`SELECT ${key} FROM ML_EVALUATE(TABLE e, MODEL lin, DESCRIPTOR(target), DESCRIPTOR(a, b))`);
      near(fromMap.rows[0]![0], r2 as number, 1e-12);
      const classification = await db.sql(
        "SELECT Accuracy, Precision, Recall, F1, LogLoss, AUC FROM ML_EVALUATE(TABLE e, MODEL cls, DESCRIPTOR(klass), DESCRIPTOR(a, b), 'classification')",
      );
      expect(classification.columns.map((c) => c.name)).toEqual(['accuracy', 'precision', 'recall', 'f1', 'logloss', 'auc']);
    });

    it('takes the task from the model and rejects a missing one', async () => {
      const r = await db.sql('SELECT MAE FROM ML_EVALUATE(TABLE e, MODEL lin, DESCRIPTOR(target), DESCRIPTOR(a, b))');
      expect(r.rows).toHaveLength(1);
      await expectSqlError(db.sql('SELECT * FROM ML_EVALUATE(TABLE e, MODEL cls, DESCRIPTOR(klass), DESCRIPTOR(a, b))'), '22023', /task/);
      await expectSqlError(db.sql('SELECT * FROM ML_EVALUATE(TABLE e, MODEL lin, DESCRIPTOR(nope), DESCRIPTOR(a, b))'), '42703', /nope/);
    });
  });
}
