/**
 * logistic_regression (binary and multinomial): the stored weights are the optimum of the
 * regularized log-loss (gradient computed here < 1e-6) and agree with an independent Newton
 * solver written here; predictions by compiled SQL, the macro and the ONNX artifact agree.
 */
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { catalogDump, close, gaussSolve, meanStd, storedSpec } from '../core/training/training-helpers.js';

const N = 300;
const data = Array.from({ length: N }, (_, i) => {
  const a = Math.sin(i * 0.91) * 3 + (i % 7) * 0.2;
  const b = Math.cos(i * 1.37) * 2 + ((i * 3) % 5) * 0.1;
  const color = ['red', 'green', 'blue'][(i * 7) % 3]!;
  const score = 1.2 * a - 0.8 * b + (color === 'red' ? 0.7 : 0) + Math.sin(i * 12.9898) * 1.5;
  const binary = score > 0.3 ? 'yes' : 'no';
  const s2 = -0.5 * a + 1.1 * b + Math.cos(i * 4.1) * 1.2;
  const klass = score > 1 ? 2 : s2 > 0 ? 1 : 0;
  return { a, b, color, binary, klass: klass + 1 }; // classes 1, 2, 3: not 0-based on purpose
});

/** Encoded rows as the model sees them (standardized numbers, full one-hot, categories sorted). */
function encode(): number[][] {
  const a = meanStd(data.map((d) => d.a));
  const b = meanStd(data.map((d) => d.b));
  return data.map((d) => [(d.a - a.mean) / a.std, (d.b - b.mean) / b.std, ...['blue', 'green', 'red'].map((c) => (d.color === c ? 1 : 0))]);
}

/** Gradient of (1/n) Σ -log p(y|x) + l2/2 Σ‖w_k‖², θ[k][0] the intercept. Binary: one logit. */
function gradient(x: number[][], y: number[], classes: number, theta: number[][], l2: number): number[] {
  const logits = classes === 2 ? 1 : classes;
  const width = x[0]!.length + 1;
  const g = new Array<number>(logits * width).fill(0);
  x.forEach((row, r) => {
    const xs = [1, ...row];
    const z = theta.map((t) => t.reduce((s, v, i) => s + v * xs[i]!, 0));
    let p: number[];
    if (logits === 1) p = [1 / (1 + Math.exp(-z[0]!))];
    else {
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const s = e.reduce((u, v) => u + v, 0);
      p = e.map((v) => v / s);
    }
    for (let k = 0; k < logits; k++) {
      const target = logits === 1 ? (y[r] === 1 ? 1 : 0) : y[r] === k ? 1 : 0;
      for (let i = 0; i < width; i++) g[k * width + i]! += ((p[k]! - target) * xs[i]!) / x.length;
    }
  });
  return g.map((v, a) => v + (a % width !== 0 ? l2 * theta[Math.floor(a / width)]![a % width]! : 0));
}

/** An independent Newton solver with a numerically differentiated Hessian. */
function referenceFit(x: number[][], y: number[], classes: number, l2: number): number[][] {
  const logits = classes === 2 ? 1 : classes;
  const width = x[0]!.length + 1;
  let flat = new Array<number>(logits * width).fill(0);
  const shape = (v: number[]) => Array.from({ length: logits }, (_, k) => v.slice(k * width, (k + 1) * width));
  for (let it = 0; it < 50; it++) {
    const g = gradient(x, y, classes, shape(flat), l2);
    if (Math.sqrt(g.reduce((s, v) => s + v * v, 0)) < 1e-12) break;
    const h = flat.map((_, a) => {
      const eps = 1e-6;
      const plus = [...flat];
      plus[a]! += eps;
      const minus = [...flat];
      minus[a]! -= eps;
      const gp = gradient(x, y, classes, shape(plus), l2);
      const gm = gradient(x, y, classes, shape(minus), l2);
      return gp.map((v, b) => (v - gm[b]!) / (2 * eps));
    });
    const delta = gaussSolve(h, g);
    flat = flat.map((v, a) => v - delta[a]!);
  }
  const fitted = shape(flat);
  // Softmax intercepts are defined up to a common shift: center them as modelsql does.
  const shift = logits === 1 ? 0 : fitted.reduce((s, t) => s + t[0]!, 0) / logits;
  return fitted.map((t) => [t[0]! - shift, ...t.slice(1)]);
}

const TRAINING_ADAPTERS = ADAPTERS;

for (const adapter of TRAINING_ADAPTERS) {
  describe(`logistic_regression training on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
      const values = data.map((d) => `(${d.a}, ${d.b}, '${d.color}', '${d.binary}', ${d.klass})`).join(', ');
      await db.sql(
        `CREATE TABLE t AS SELECT CAST(a AS DOUBLE PRECISION) AS a, CAST(b AS DOUBLE PRECISION) AS b, CAST(color AS VARCHAR) AS color, CAST(bin AS VARCHAR) AS outcome, CAST(klass AS INTEGER) AS klass FROM (VALUES ${values}) AS v(a, b, color, bin, klass)`,
      );
    });
    afterAll(async () => {
      await db.close();
    });

    it.each([
      ['binary', 'outcome', 2],
      ['multinomial', 'klass', 3],
    ] as const)('%s: reaches the optimum of the regularized log-loss and agrees with an independent solver', async (_kind, label, classes) => {
      const l2 = 0.05;
      await db.sql(`CREATE OR REPLACE MODEL lr WITH ('algorithm' = 'logistic_regression', 'label' = '${label}', 'l2' = '${l2}') AS SELECT a, b, color, ${label} FROM t`);
      const spec = await storedSpec(db, 'lr');
      const theta: number[][] = spec.parameters.weights.map((w: number[], k: number) => [spec.parameters.intercepts[k], ...w]);
      const x = encode();
      const y = label === 'outcome' ? data.map((d) => (d.binary === 'yes' ? 1 : 0)) : data.map((d) => d.klass - 1);
      const g = gradient(x, y, classes, theta, l2);
      expect(Math.sqrt(g.reduce((s, v) => s + v * v, 0))).toBeLessThan(1e-6);
      const reference = referenceFit(x, y, classes, l2);
      reference.flat().forEach((v, i) => expect(close(theta.flat()[i]!, v, 1e-5)).toBe(true));

      // The output columns: the label's type, and probabilities in class order.
      const described = await db.sql('DESCRIBE MODEL lr');
      expect(described.rows.filter((r) => r[3] === 'output').map((r) => [r[0], r[1]])).toEqual([
        [`predicted_${label}`, label === 'outcome' ? 'STRING' : 'INT'],
        [`predicted_${label}_probs`, 'ARRAY<DOUBLE>'],
      ]);
      const compiled = await db.sql(`SELECT predicted_${label}, predicted_${label}_probs FROM ML_PREDICT(TABLE t, MODEL lr, DESCRIPTOR(a, b, color))`);
      const macro = await db.sql('SELECT ml_predict_lr(a, b, color) FROM t');
      await db.sql(`ALTER MODEL lr SET ('runtime' = 'onnx')`);
      const onnx = await db.sql(`SELECT predicted_${label}, predicted_${label}_probs FROM ML_PREDICT(TABLE t, MODEL lr, DESCRIPTOR(a, b, color))`);
      compiled.rows.forEach((row, i) => {
        expect(macro.rows[i]![0]).toEqual(row[0]);
        expect(onnx.rows[i]![0]).toEqual(row[0]);
        const probs = row[1] as number[];
        expect(probs).toHaveLength(classes);
        expect(close(probs.reduce((s, v) => s + v, 0), 1, 1e-12)).toBe(true);
        (onnx.rows[i]![1] as number[]).forEach((v, k) => expect(close(v, probs[k]!, 1e-5)).toBe(true));
        // probabilities as computed here from the stored weights
        const xs = [1, ...x[i]!];
        const z = theta.map((t) => t.reduce((s, v, j) => s + v * xs[j]!, 0));
        const expected = classes === 2 ? [1 - 1 / (1 + Math.exp(-z[0]!)), 1 / (1 + Math.exp(-z[0]!))] : z.map((v) => Math.exp(v) / z.reduce((s, u) => s + Math.exp(u), 0));
        expected.forEach((v, k) => expect(close(probs[k]!, v, 1e-9)).toBe(true));
      });
      // Training metrics include LogLoss and AUC from the probabilities.
      const metrics = Object.fromEntries((await db.sql('DESCRIBE MODEL EXTENDED lr')).rows.filter((r) => r[3] === 'metric').map((r) => [r[0], Number(r[1])]));
      expect(metrics.train_Accuracy!).toBeGreaterThan(0.6);
      expect(metrics.train_LogLoss!).toBeGreaterThan(0);
      expect(metrics.train_LogLoss!).toBeLessThan(Math.log(classes));
      expect(metrics.train_AUC!).toBeGreaterThan(0.7);
    });

    it('rejects a label with one class before storing anything', async () => {
      const before = await catalogDump(db);
      await expectSqlError(db.sql(`CREATE MODEL one WITH ('algorithm' = 'logistic_regression', 'label' = 'c') AS SELECT a, b, 'same' AS c FROM t`), '22000', /has one class/);
      expect(await catalogDump(db)).toBe(before);
    });
  });
}
