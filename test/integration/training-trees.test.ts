/**
 * decision_tree and gradient_boosted_trees: a split computed by hand, a depth-2 tree and two
 * boosting rounds against independent implementations written here, binary boosting on
 * separable data, compiled SQL = macro = ONNX (runtime path and standalone onnxruntime), and
 * bad options failing before anything is stored, on every host.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { catalogDump, close, expectSame, runOnnxFile, storedSpec } from '../core/training/training-helpers.js';

const N = 120;
/** Integer features 0..19 / 0..9 (fewer distinct values than bins, so histogram = exact CART), a city, noise. */
const rows = Array.from({ length: N }, (_, i) => {
  const a = (i * 7) % 20;
  const b = (i * 3) % 10;
  const city = ['berlin', 'lyon', 'oslo'][(i * 5) % 3]!;
  const y = (a > 11 ? 30 : 5) + (b < 4 ? 7 * b : -3) + (city === 'oslo' ? 4 : 0) + Math.sin(i * 1.3) * 2;
  const label = a + 2 * b > 20 ? 'big' : 'small';
  return { id: i, a, b, city, y, label };
});

type Row = { readonly x: readonly number[]; readonly g: number; readonly h?: number };
type Tree = { leaf: true; value: number } | { leaf: false; f: number; t: number; left: Tree; right: Tree };

/** Independent exact CART by squared error on raw feature values; `value` makes a leaf value from its rows. */
function cart(data: readonly Row[], depth: number, value: (rows: readonly Row[]) => number): Tree {
  const sse = (rs: readonly Row[]) => {
    const m = rs.reduce((s, r) => s + r.g, 0) / rs.length;
    return rs.reduce((s, r) => s + (r.g - m) ** 2, 0);
  };
  if (depth === 0 || data.length < 2) return { leaf: true, value: value(data) };
  const parent = sse(data);
  let best: { f: number; t: number; gain: number } | undefined;
  for (let f = 0; f < data[0]!.x.length; f++) {
    const values = [...new Set(data.map((r) => r.x[f]!))].sort((u, v) => u - v);
    for (let k = 0; k < values.length - 1; k++) {
      const t = (values[k]! + values[k + 1]!) / 2;
      const gain = parent - sse(data.filter((r) => r.x[f]! <= t)) - sse(data.filter((r) => r.x[f]! > t));
      if (gain > 1e-9 && (!best || gain > best.gain + 1e-9)) best = { f, t, gain };
    }
  }
  if (!best) return { leaf: true, value: value(data) };
  return {
    leaf: false,
    f: best.f,
    t: best.t,
    left: cart(data.filter((r) => r.x[best!.f]! <= best!.t), depth - 1, value),
    right: cart(data.filter((r) => r.x[best!.f]! > best!.t), depth - 1, value),
  };
}

function predict(tree: Tree, x: readonly number[]): number {
  return tree.leaf ? tree.value : predict(x[tree.f]! <= tree.t ? tree.left : tree.right, x);
}

const mean = (rs: readonly Row[]) => rs.reduce((s, r) => s + r.g, 0) / rs.length;

const TRAINING_ADAPTERS = ADAPTERS;

for (const adapter of TRAINING_ADAPTERS) {
  describe(`tree training on ${adapter.name}`, () => {
    let db: Session;
    beforeEach(async () => {
      db = await adapter.open();
      const values = rows.map((r) => `(${r.id}, ${r.a}, ${r.b}, '${r.city}', ${r.y}, '${r.label}')`).join(', ');
      await db.sql(
        `CREATE TABLE t AS SELECT CAST(id AS INTEGER) AS id, CAST(a AS DOUBLE PRECISION) AS a, CAST(b AS INTEGER) AS b, CAST(city AS VARCHAR) AS city, CAST(y AS DOUBLE PRECISION) AS y, CAST(label AS VARCHAR) AS label FROM (VALUES ${values}) AS v(id, a, b, city, y, label)`,
      );
    });
    afterEach(async () => {
      await db.close();
    });

    it('reproduces a hand-computable split: threshold between 4 and 5, leaves the two means', async () => {
      await db.sql(`CREATE TABLE s AS SELECT * FROM (VALUES (1.0, 3.0, 1.0), (2.0, 1.0, 2.0), (3.0, 4.0, 1.0), (4.0, 2.0, 2.0), (5.0, 3.0, 10.0), (6.0, 1.0, 11.0), (7.0, 4.0, 10.0), (8.0, 2.0, 12.0)) AS v(x, z, y)`);
      await db.sql(`CREATE MODEL stump WITH ('algorithm' = 'decision_tree', 'label' = 'y', 'max-depth' = '1') AS SELECT x, z, y FROM s`);
      const spec = await storedSpec(db, 'stump');
      expect(spec.task).toBe('regression');
      const tree = spec.parameters.trees[0][0];
      expect(tree.feature).toBe(0);
      // x is standardized: (4.5 - mean) / std = 0 is the midpoint between 4 and 5.
      expect(Math.abs(tree.threshold)).toBeLessThan(1e-12);
      expect(tree.left.value).toBeCloseTo((1 + 2 + 1 + 2) / 4, 12);
      expect(tree.right.value).toBeCloseTo((10 + 11 + 10 + 12) / 4, 12);
      const p = await db.sql('SELECT ml_predict_stump(4.0, 0.0), ml_predict_stump(4.6, 0.0), ml_predict_stump(NULL, 0.0)');
      expect(p.rows[0]).toEqual([1.5, 10.75, 1.5]); // NULL → the mean 4.5 → 0 <= 0 → left
      // 'min-rows' = '5' leaves no split of 8 rows with 5 a side: one leaf, the mean.
      await db.sql(`CREATE MODEL leaf WITH ('algorithm' = 'decision_tree', 'label' = 'y', 'min-rows' = '5') AS SELECT x, z, y FROM s`);
      expect((await storedSpec(db, 'leaf')).parameters.trees[0][0]).toEqual({ leaf: true, value: 49 / 8 });
    });

    it('splits a STRING feature one category against the rest (an unseen category goes left)', async () => {
      await db.sql(`CREATE MODEL c1 WITH ('algorithm' = 'decision_tree', 'label' = 'v', 'max-depth' = '1') AS SELECT city, CASE WHEN city = 'oslo' THEN 10.0 ELSE 1.0 END + b * 0.01 AS v FROM t`);
      const spec = await storedSpec(db, 'c1');
      expect(spec.features[0].categories).toEqual(['berlin', 'lyon', 'oslo']);
      const tree = spec.parameters.trees[0][0];
      expect([tree.feature, tree.threshold]).toEqual([2, 0.5]); // the one-hot column city=oslo
      const mean = (rs: typeof rows) => rs.reduce((s, r) => s + (r.city === 'oslo' ? 10 : 1) + r.b * 0.01, 0) / rs.length;
      expect(tree.left.value).toBeCloseTo(mean(rows.filter((r) => r.city !== 'oslo')), 12);
      expect(tree.right.value).toBeCloseTo(mean(rows.filter((r) => r.city === 'oslo')), 12);
      const p = await db.sql(`SELECT ml_predict_c1('oslo'), ml_predict_c1('paris')`);
      expect(p.rows[0]).toEqual([tree.right.value, tree.left.value]);
    });

    it('bins a feature with more distinct values than bins by quantiles (ntile) and splits at a bin boundary', async () => {
      // a takes 0..19, six rows each: 4 equal-count bins end at 4, 9, 14, 19; candidates 4.5, 9.5, 14.5.
      await db.sql(`CREATE MODEL q WITH ('algorithm' = 'decision_tree', 'label' = 'y', 'max-depth' = '1', 'bins' = '4') AS SELECT a, y FROM t`);
      const spec = await storedSpec(db, 'q');
      const { mean: m, std } = spec.features[0];
      const tree = spec.parameters.trees[0][0];
      const sse = (rs: typeof rows) => {
        const mu = rs.reduce((s, r) => s + r.y, 0) / rs.length;
        return rs.reduce((s, r) => s + (r.y - mu) ** 2, 0);
      };
      const best = [4.5, 9.5, 14.5].sort((u, v) => sse(rows.filter((r) => r.a <= u)) + sse(rows.filter((r) => r.a > u)) - sse(rows.filter((r) => r.a <= v)) - sse(rows.filter((r) => r.a > v)))[0]!;
      expect(tree.threshold * std + m).toBeCloseTo(best, 9);
      const left = rows.filter((r) => r.a <= best);
      expect(tree.left.value).toBeCloseTo(left.reduce((s, r) => s + r.y, 0) / left.length, 9);
    });

    it('classifies an integer label with a BOOLEAN feature, the ONNX runtime path agreeing', async () => {
      await db.sql(`CREATE MODEL ib WITH ('algorithm' = 'decision_tree', 'label' = 'b', 'task' = 'classification', 'max-depth' = '4') AS SELECT a, a > 9 AS big, CAST(b AS BIGINT) % 3 AS b FROM t`);
      const spec = await storedSpec(db, 'ib');
      expect(spec.parameters.classes).toEqual([0, 1, 2]);
      const sql = await db.sql(`SELECT predicted_b, predicted_b_probs FROM ML_PREDICT(TABLE (SELECT id, a, a > 9 AS big FROM t), MODEL ib, DESCRIPTOR(a, big)) ORDER BY id`);
      await db.sql(`ALTER MODEL ib SET ('runtime' = 'onnx')`);
      const onnx = await db.sql(`SELECT predicted_b, predicted_b_probs FROM ML_PREDICT(TABLE (SELECT id, a, a > 9 AS big FROM t), MODEL ib, DESCRIPTOR(a, big)) ORDER BY id`);
      onnx.rows.forEach((r, i) => {
        expect(Number(r[0])).toBe(Number(sql.rows[i]![0]));
        (r[1] as number[]).forEach((v, k) => expect(Math.abs(v - (sql.rows[i]![1] as number[])[k]!)).toBeLessThan(1e-7)); // float32 leaf sums in ONNX
      });
    });

    it('grows a depth-2 regression tree equal to an independent exact CART', async () => {
      await db.sql(`CREATE MODEL d2 WITH ('algorithm' = 'decision_tree', 'label' = 'y', 'max-depth' = '2') AS SELECT a, b, y FROM t`);
      const reference = cart(rows.map((r) => ({ x: [r.a, r.b], g: r.y })), 2, mean);
      const p = await db.sql('SELECT a, b, ml_predict_d2(a, b) FROM t ORDER BY id');
      p.rows.forEach((r) => expect(close(r[2] as number, predict(reference, [r[0] as number, r[1] as number]), 1e-9)).toBe(true));
      const spec = await storedSpec(db, 'd2');
      const depth = (n: any): number => (n.leaf ? 0 : 1 + Math.max(depth(n.left), depth(n.right)));
      expect(depth(spec.parameters.trees[0][0])).toBe(2);
    });

    it('boosts regression trees: two rounds equal an independent implementation, loss decreases with rounds', async () => {
      await db.sql(`CREATE MODEL g2 WITH ('algorithm' = 'gradient_boosted_trees', 'label' = 'y', 'max-depth' = '2', 'rounds' = '2', 'learning-rate' = '0.5') AS SELECT a, b, y FROM t`);
      const data = rows.map((r) => ({ x: [r.a, r.b], y: r.y }));
      const base = data.reduce((s, r) => s + r.y, 0) / N;
      const trees: Tree[] = [];
      const f = (x: readonly number[]) => base + trees.reduce((s, t) => s + predict(t, x), 0);
      for (let round = 0; round < 2; round++) trees.push(cart(data.map((r) => ({ x: r.x, g: r.y - f(r.x) })), 2, (rs) => 0.5 * mean(rs)));
      const p = await db.sql('SELECT a, b, predicted_y FROM ML_PREDICT(TABLE t, MODEL g2, DESCRIPTOR(a, b)) ORDER BY id');
      p.rows.forEach((r) => expect(close(r[2] as number, f([r[0] as number, r[1] as number]), 1e-9)).toBe(true));

      const mse: number[] = [];
      for (const rounds of [1, 2, 5, 20]) {
        await db.sql(`CREATE OR REPLACE MODEL g WITH ('algorithm' = 'gradient_boosted_trees', 'label' = 'y', 'max-depth' = '2', 'rounds' = '${rounds}', 'learning-rate' = '0.5') AS SELECT a, b, y FROM t`);
        const m = await db.sql(`SELECT MSE FROM ML_EVALUATE(TABLE t, MODEL g, DESCRIPTOR(y), DESCRIPTOR(a, b))`);
        mse.push(m.rows[0]![0] as number);
      }
      expect(await adapter.countTempTables(db)).toBe(0n); // the running-score table is dropped
      const variance = data.reduce((s, r) => s + (r.y - base) ** 2, 0) / N;
      expect(mse[0]!).toBeLessThan(variance);
      for (let i = 1; i < mse.length; i++) expect(mse[i]!).toBeLessThan(mse[i - 1]!);
    });

    it('boosts a binary classifier with log-loss: probabilities in [0, 1], accurate on separable data, equal to an independent implementation', async () => {
      await db.sql(`CREATE MODEL gc WITH ('algorithm' = 'gradient_boosted_trees', 'label' = 'label', 'max-depth' = '3', 'rounds' = '30', 'learning-rate' = '0.3') AS SELECT a, b, label FROM t`);
      const spec = await storedSpec(db, 'gc');
      expect(spec.task).toBe('classification');
      expect(spec.parameters.classes).toEqual(['big', 'small']);
      const p = await db.sql('SELECT label, predicted_label, predicted_label_probs FROM ML_PREDICT(TABLE t, MODEL gc, DESCRIPTOR(a, b))');
      let right = 0;
      for (const [label, predicted, probs] of p.rows as [string, string, number[]][]) {
        expect(probs).toHaveLength(2);
        probs.forEach((q) => expect(q >= 0 && q <= 1).toBe(true));
        expect(probs[0]! + probs[1]!).toBeCloseTo(1, 12);
        if (label === predicted) right++;
      }
      expect(right / N).toBe(1);

      // Two rounds against Friedman's log-loss boosting written here.
      await db.sql(`CREATE MODEL gc2 WITH ('algorithm' = 'gradient_boosted_trees', 'label' = 'label', 'max-depth' = '2', 'rounds' = '2', 'learning-rate' = '0.5') AS SELECT a, b, label FROM t`);
      const data = rows.map((r) => ({ x: [r.a, r.b], y: r.label === 'small' ? 1 : 0 }));
      const prior = data.reduce((s, r) => s + r.y, 0) / N;
      const base = Math.log(prior / (1 - prior));
      const trees: Tree[] = [];
      const sigma = (z: number) => 1 / (1 + Math.exp(-z));
      const f = (x: readonly number[]) => base + trees.reduce((s, t) => s + predict(t, x), 0);
      for (let round = 0; round < 2; round++) {
        const residuals = data.map((r) => ({ x: r.x, g: r.y - sigma(f(r.x)) }));
        trees.push(cart(residuals, 2, (rs) => (0.5 * rs.reduce((s, r) => s + r.g, 0)) / rs.reduce((s, r) => s + sigma(f(r.x)) * (1 - sigma(f(r.x))), 0)));
      }
      const q = await db.sql('SELECT a, b, predicted_label_probs FROM ML_PREDICT(TABLE t, MODEL gc2, DESCRIPTOR(a, b)) ORDER BY id');
      q.rows.forEach((r) => expect(close((r[2] as number[])[1]!, sigma(f([r[0] as number, r[1] as number])), 1e-9)).toBe(true));
    });

    it('boosts three classes by softmax: two rounds equal an independent implementation', async () => {
      await db.sql(`CREATE TABLE u AS SELECT *, CASE WHEN y > 25 THEN 'hi' WHEN y > 8 THEN 'mid' ELSE 'lo' END AS k FROM t`);
      await db.sql(`CREATE MODEL gm WITH ('algorithm' = 'gradient_boosted_trees', 'label' = 'k', 'max-depth' = '2', 'rounds' = '2', 'learning-rate' = '0.5') AS SELECT a, b, k FROM u`);
      const classes = ['hi', 'lo', 'mid'];
      const K = classes.length;
      const labels = (await db.sql('SELECT k FROM u ORDER BY id')).rows.map((r) => classes.indexOf(r[0] as string));
      const data = rows.map((r, i) => ({ x: [r.a, r.b], k: labels[i]! }));
      const logs = classes.map((_, c) => Math.log(data.filter((r) => r.k === c).length / N));
      const base = logs.map((v) => v - logs.reduce((s, u) => s + u, 0) / K);
      const trees: Tree[][] = classes.map(() => []);
      const softmax = (x: readonly number[]) => {
        const z = base.map((b, c) => b + trees[c]!.reduce((s, t) => s + predict(t, x), 0));
        const m = Math.max(...z);
        const e = z.map((v) => Math.exp(v - m));
        return e.map((v) => v / e.reduce((s, u) => s + u, 0));
      };
      for (let round = 0; round < 2; round++) {
        const p = data.map((r) => softmax(r.x));
        const grown = classes.map((_, c) =>
          cart(data.map((r, i) => ({ x: r.x, g: (r.k === c ? 1 : 0) - p[i]![c]!, h: p[i]![c]! * (1 - p[i]![c]!) })), 2, (rs) => (0.5 * ((K - 1) / K) * rs.reduce((s, r) => s + r.g, 0)) / rs.reduce((s, r) => s + r.h!, 0)),
        );
        grown.forEach((t, c) => trees[c]!.push(t));
      }
      const q = await db.sql('SELECT a, b, predicted_k, predicted_k_probs FROM ML_PREDICT(TABLE u, MODEL gm, DESCRIPTOR(a, b)) ORDER BY id');
      q.rows.forEach((r) => {
        const expected = softmax([r[0] as number, r[1] as number]);
        (r[3] as number[]).forEach((v, c) => expect(close(v, expected[c]!, 1e-9)).toBe(true));
        expect(r[2]).toBe(classes[expected.indexOf(Math.max(...expected))]);
      });
    });

    it.each([
      ['decision_tree regression', `'algorithm' = 'decision_tree', 'label' = 'y', 'max-depth' = '3'`, 'y'],
      ['decision_tree classification (3 classes)', `'algorithm' = 'decision_tree', 'label' = 'k', 'max-depth' = '3', 'bins' = '8'`, 'k'],
      ['gradient_boosted_trees regression', `'algorithm' = 'gradient_boosted_trees', 'label' = 'y', 'rounds' = '5'`, 'y'],
      ['gradient_boosted_trees binary', `'algorithm' = 'gradient_boosted_trees', 'label' = 'label', 'rounds' = '5', 'max-depth' = '2'`, 'label'],
      ['gradient_boosted_trees 3 classes', `'algorithm' = 'gradient_boosted_trees', 'label' = 'k', 'rounds' = '4', 'max-depth' = '3', 'min-rows' = '3'`, 'k'],
    ])('%s: compiled SQL = macro = ONNX (runtime path and standalone onnxruntime)', async (_what, options, label) => {
      await db.sql(`CREATE TABLE u AS SELECT id, a, b, city, y, label, CASE WHEN y > 25 THEN 'hi' WHEN y > 8 THEN 'mid' ELSE 'lo' END AS k FROM t`);
      await db.sql(`CREATE MODEL m WITH (${options}) AS SELECT a, b, city, ${label} FROM u`);
      await db.sql(`INSERT INTO u VALUES (1000, 3.5, 7, 'paris', 0, 'x', 'x'), (1001, NULL, 2, 'oslo', 0, 'x', 'x')`); // an unseen category, a NULL number
      const compiled = await db.sql(`SELECT * FROM ML_PREDICT(TABLE (SELECT id, a, b, city FROM u), MODEL m, DESCRIPTOR(a, b, city)) ORDER BY id`);
      const macro = await db.sql('SELECT ml_predict_m(a, b, city) FROM u ORDER BY id');
      const inputs = await db.sql('SELECT a, b, city FROM u ORDER BY id');
      expect(compiled.rows).toHaveLength(N + 2);
      const same = (u: unknown, v: unknown) => (typeof v === 'number' ? close(u as number, v, 1e-5) : u === v);
      compiled.rows.forEach((row, i) => expect(same(macro.rows[i]![0], row[4])).toBe(true));

      await db.sql(`ALTER MODEL m SET ('runtime' = 'onnx')`);
      const viaOnnx = await db.sql(`SELECT * FROM ML_PREDICT(TABLE (SELECT id, a, b, city FROM u), MODEL m, DESCRIPTOR(a, b, city)) ORDER BY id`);
      viaOnnx.rows.forEach((row, i) => {
        if (inputs.rows[i]!.some((v) => v === null)) return; // NULL inputs: NULL outputs through the ONNX runtime path
        expect(same(row[4], compiled.rows[i]![4])).toBe(true);
        if (row.length > 5) (row[5] as number[]).forEach((v, k) => expect(close(v, (compiled.rows[i]![5] as number[])[k]!, 1e-5)).toBe(true));
      });

      const bytes = (await db.sql(`SELECT content FROM ml_catalog.artifacts WHERE model_name = 'm' AND artifact_name = 'model.onnx'`)).rows[0]![0] as Uint8Array;
      const file = join(mkdtempSync(join(tmpdir(), 'modelsql-trees-')), 'm.onnx');
      writeFileSync(file, bytes);
      const result = runOnnxFile(file, {
        a: { type: 'float64', data: inputs.rows.map((r) => r[0] as number | null) },
        b: { type: 'float64', data: inputs.rows.map((r) => Number(r[1])) },
        city: { type: 'string', data: inputs.rows.map((r) => r[2] as string) },
      });
      const outputs = Object.keys(result);
      const first = result[`predicted_${label}`]!;
      first.forEach((v, i) => expect(same(v, compiled.rows[i]![4])).toBe(true));
      if (outputs.length > 1) {
        result[`predicted_${label}_probs`]!.forEach((probs, i) => (probs as number[]).forEach((v, k) => expect(close(v, (compiled.rows[i]![5] as number[])[k]!, 1e-5)).toBe(true)));
      }
    });

    it('trains on groups of rows that share their bins and label: the table repeated 15 times gives the models of the table itself', async () => {
      // 1,800 rows; a (20 values) × b (10) × city (3 and none) = 800 bin combinations, or
      // a × b × classes (2 or 3) = 400 or 600: fewer than half the rows, so the repeated table
      // is trained as groups, the table itself (120 rows) row by row.
      await db.sql(`CREATE TABLE t15 AS SELECT t.* FROM t CROSS JOIN (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12), (13), (14), (15)) AS r(k)`);
      const k = `CASE WHEN y > 25 THEN 'hi' WHEN y > 8 THEN 'mid' ELSE 'lo' END AS k`;
      for (const [options, columns] of [
        [`'algorithm' = 'decision_tree', 'label' = 'y', 'max-depth' = '4'`, 'a, b, city, y'],
        [`'algorithm' = 'decision_tree', 'label' = 'k', 'max-depth' = '4'`, `a, b, ${k}`],
        [`'algorithm' = 'gradient_boosted_trees', 'label' = 'y', 'max-depth' = '3', 'rounds' = '4'`, 'a, b, city, y'],
        [`'algorithm' = 'gradient_boosted_trees', 'label' = 'label', 'max-depth' = '2', 'rounds' = '3'`, 'a, b, label'],
        [`'algorithm' = 'gradient_boosted_trees', 'label' = 'k', 'max-depth' = '2', 'rounds' = '3'`, `a, b, ${k}`],
      ]) {
        await db.sql(`CREATE OR REPLACE MODEL rows1 WITH (${options}) AS SELECT ${columns} FROM t`);
        await db.sql(`CREATE OR REPLACE MODEL rows15 WITH (${options}) AS SELECT ${columns} FROM t15`);
        expectSame((await storedSpec(db, 'rows15')).parameters, (await storedSpec(db, 'rows1')).parameters, options);
      }
      expect(await adapter.countTempTables(db)).toBe(0n);
    });

    it("a decision tree's training metrics (its rows grouped by prediction) equal ML_EVALUATE's over the same rows", async () => {
      await db.sql(`CREATE TABLE u AS SELECT a, b, city, CASE WHEN y > 25 THEN 'hi' WHEN y > 8 THEN 'mid' ELSE 'lo' END AS k FROM t`);
      await db.sql(`CREATE MODEL dk WITH ('algorithm' = 'decision_tree', 'label' = 'k', 'max-depth' = '3') AS SELECT a, b, city, k FROM u`);
      const stored = await db.sql(`SELECT metric, value FROM ml_catalog.training_metrics WHERE model_name = 'dk'`);
      const evaluated = await db.sql(`SELECT accuracy, precision, recall, f1, logloss, auc FROM ML_EVALUATE(TABLE u, MODEL dk, DESCRIPTOR(k), DESCRIPTOR(a, b, city))`);
      const metrics = Object.fromEntries(stored.rows.filter((r) => /^train_[A-Z]/.test(r[0] as string)).map((r) => [r[0] as string, r[1] as number]));
      expect(Object.keys(metrics).sort()).toEqual(['train_AUC', 'train_Accuracy', 'train_F1', 'train_LogLoss', 'train_Precision', 'train_Recall']);
      ['Accuracy', 'Precision', 'Recall', 'F1', 'LogLoss', 'AUC'].forEach((name, i) => expect(close(metrics[`train_${name}`]!, evaluated.rows[0]![i] as number, 1e-12)).toBe(true));
      expect(metrics.train_Accuracy).toBeGreaterThan(0.5);
    });

    it('trains inside a transaction: ROLLBACK leaves no model, no function and no temporary table', async () => {
      const before = await catalogDump(db);
      await db.sql('BEGIN');
      await db.sql(`CREATE MODEL tx WITH ('algorithm' = 'gradient_boosted_trees', 'label' = 'y', 'rounds' = '3') AS SELECT a, b, city, y FROM t`);
      expect(((await db.sql('SELECT ml_predict_tx(3.0, 2, \'oslo\')')).rows[0]![0] as number) > 0).toBe(true);
      await db.sql('ROLLBACK');
      expect(await catalogDump(db)).toBe(before);
      expect(await adapter.countFunctions(db, 'ml_predict_tx')).toBe(0);
      expect(await adapter.countTempTables(db)).toBe(0n);
    });

    it.each([
      ['max-depth 0', `'algorithm' = 'decision_tree', 'label' = 'y', 'max-depth' = '0'`, '22023', /'max-depth' must be an integer from 1 to 12/],
      ['a learning rate above 1', `'algorithm' = 'gradient_boosted_trees', 'label' = 'y', 'learning-rate' = '2'`, '22023', /'learning-rate' must be a number in \(0, 1\]/],
      ['rounds 0', `'algorithm' = 'gradient_boosted_trees', 'label' = 'y', 'rounds' = '0'`, '22023', /'rounds' must be an integer from 1 to 1000/],
      ['rounds for a single tree', `'algorithm' = 'decision_tree', 'label' = 'y', 'rounds' = '3'`, '22023', /'rounds' does not apply/],
      ['bins 1', `'algorithm' = 'decision_tree', 'label' = 'y', 'bins' = '1'`, '22023', /'bins' must be an integer from 2 to 1024/],
      ['min-rows not a number', `'algorithm' = 'decision_tree', 'label' = 'y', 'min-rows' = 'x'`, '22023', /'min-rows' must be an integer >= 1/],
      ['an unknown task', `'algorithm' = 'decision_tree', 'label' = 'y', 'task' = 'clustering'`, '22023', /does not do task 'clustering'/],
      ['regression on a string label', `'algorithm' = 'decision_tree', 'label' = 'label', 'task' = 'regression'`, '42804', /regression label must be numeric/],
      ['a tree option on kmeans', `'algorithm' = 'kmeans', 'max-depth' = '3'`, '22023', /'max-depth' does not apply/],
    ])('rejects %s before storing anything', async (_what, options, sqlstate, message) => {
      await db.sql(`CREATE MODEL keep WITH ('algorithm' = 'decision_tree', 'label' = 'y', 'max-depth' = '1') AS SELECT a, y FROM t`);
      const before = await catalogDump(db);
      await expectSqlError(db.sql(`CREATE MODEL bad WITH (${options}) AS SELECT a, b, label, y FROM t`), sqlstate, message);
      expect(await catalogDump(db)).toBe(before);
    });
  });
}
