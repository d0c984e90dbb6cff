/**
 * Logistic regression by Newton's method (IRLS): every iteration is ONE aggregate query
 * over the host returning the loss, the gradient and the Hessian at the current weights;
 * the small (L·(P+1))² system is solved here.
 *
 * Binary labels use one logit (`P(classes[1]) = σ(z)`); three or more classes use one
 * logit per class (softmax). Objective, on the encoded features:
 * `(1/n) Σ -log p(yᵢ | xᵢ) + (l2 / 2) Σ ‖w_k‖²` (intercepts are not penalized).
 * Iterations stop when the gradient's Euclidean norm is below `tolerance`; a step that
 * raises the loss is halved. Multinomial intercepts are centered (they sum to 0), which
 * picks one of the equivalent optima.
 */
import { expressionBuilder } from '../sql/expression-builder.js';
import { categoryGroups, triangleIndex, type CategoryGroups } from './category-groups.js';
import { sigmoid } from './compile-sql.js';
import { norm, solveSymmetric } from './linear-algebra.js';
import { upperTriangle } from './linear-regression.js';
import { oneHotFeatures, productSums } from './product-sums.js';
import type { ClassValue, ModelParameters } from './trained-model.js';
import { aggregate, aggregateGroups, requireColumns, requireParameters, type LabelColumn, type TrainingData } from './training-data.js';
import type { TrainingOptions } from './training-options.js';

/** `label = value`, compared as the label's kind. */
export function labelEquals(d: TrainingData['dialect'], label: LabelColumn, value: ClassValue): string {
  if (label.numeric) return d.operator(`CAST(${label.ref} AS DOUBLE PRECISION)`, '=', d.double(Number(value)));
  if (label.boolean) return value ? label.ref : `NOT ${label.ref}`;
  return d.operator(label.ref, '=', d.quoteString(String(value)));
}

/** Loss, gradient and Hessian (of the whole objective) at `theta`, by one query. */
export interface NewtonStep {
  readonly loss: number;
  readonly gradient: number[];
  readonly hessian: number[][];
}

/**
 * Evaluates the objective at `theta` (`theta[k * (P + 1) + i]`, i = 0 the intercept of logit k).
 */
export async function logisticStep(data: TrainingData, classes: readonly ClassValue[], theta: readonly number[], l2: number): Promise<NewtonStep> {
  const d = data.dialect;
  const p = data.encoded.length;
  const width = p + 1;
  const logits = classes.length === 2 ? 1 : classes.length;
  requireParameters(data, logits * width);
  const { add, sub, mul, div, neg, num, fn, sum } = expressionBuilder(d);
  const x = (i: number) => `x${i}`;
  // With the STRING features grouped (category-groups.ts), the rows carry the numeric columns
  // and the group keys only: no one-hot column is computed per row.
  const groups = categoryGroups(data);
  // The gradient's sums (and, grouped, the Hessian's per group) before the Hessian's (logits · width)² pairs are planned.
  const blocks = (logits * (logits + 1)) / 2;
  requireColumns(data, groups ? logits * groups.base.length + (blocks * groups.base.length * (groups.base.length + 1)) / 2 : logits * width);
  const columns = groups ? groups.base.slice(1) : Array.from({ length: width - 1 }, (_, i) => i + 1);
  const layer0: (readonly [string, string])[] = columns.map((c) => [x(c), data.encoded[c - 1]!] as const);
  const targets = logits === 1 ? [classes[1]!] : classes;
  targets.forEach((c, k) => layer0.push([`y${k}`, `(CASE WHEN ${labelEquals(d, data.label!, c)} THEN ${num(1)} ELSE ${num(0)} END)`]));
  if (groups) layer0.push(...groups.keys);
  // z = intercept + Σ θᵢ xᵢ (the intercept's column is the constant 1).
  const layer1 = Array.from({ length: logits }, (_, k) => [`z${k}`, sum([num(theta[k * width]!), ...logitTerms(data, groups, theta.slice(k * width + 1, (k + 1) * width))])] as const);
  const layers: (readonly (readonly [string, string])[])[] = [layer0, layer1];
  if (logits === 1) {
    // loss = max(z, 0) + ln(1 + e^-|z|) - y z
    layers.push([
      ['p0', sigmoid(d, 'z0')],
      ['loss', sub(add(`greatest(z0, ${num(0)})`, fn('ln', add(num(1), fn('exp', neg(fn('abs', 'z0')))))), mul('y0', 'z0'))],
    ]);
  } else {
    const zs = Array.from({ length: logits }, (_, k) => `z${k}`);
    layers.push([['m', `greatest(${zs.join(', ')})`]]);
    layers.push(zs.map((z, k) => [`e${k}`, fn('exp', `greatest(${sub(z, 'm')}, ${num(-700)})`)] as const));
    layers.push([['s', sum(zs.map((_, k) => `e${k}`))]]);
    layers.push([...zs.map((_, k) => [`p${k}`, div(`e${k}`, 's')] as const), ['loss', sub(add('m', fn('ln', 's')), sum(zs.map((z, k) => mul(`y${k}`, z))))] as const]);
  }
  const size = logits * width;
  // Per row once, behind the layer fence: the residuals r_k = p_k − y_k, the Hessian weights
  // h_kl (k ≤ l) and their products with every column (the constant one excepted; with the
  // STRING features grouped, the numeric columns only), so that each sum below is one
  // multiplication (the same arithmetic, in the same order, as summing r·x_i and (h·x_i)·x_j).
  // The products repeat h's expression (one or two multiplications) rather than read it from
  // a layer of their own: a layer costs Postgres more per row.
  const weightPairs = upperTriangle(logits);
  const h = (k: number, l: number) => `h${k}_${l}`;
  const hx = (k: number, l: number, i: number) => `h${k}_${l}_x${i}`;
  const weight = (k: number, l: number) => (logits === 1 ? mul('p0', sub(num(1), 'p0')) : k === l ? mul(`p${k}`, sub(num(1), `p${k}`)) : neg(mul(`p${k}`, `p${l}`)));
  layers.push([
    ...Array.from({ length: logits }, (_, k) => [`r${k}`, sub(`p${k}`, `y${k}`)] as const),
    ...weightPairs.map(([k, l]) => [h(k, l), weight(k, l)] as const),
    ...weightPairs.flatMap(([k, l]) => columns.map((c) => [hx(k, l, c), mul(weight(k, l), x(c))] as const)),
  ]);
  if (groups) return groupedStep(data, groups, layers, theta, l2, logits);
  const gradient = Array.from({ length: size }, (_, a) => {
    const [k, i] = [Math.floor(a / width), a % width];
    return fn('sum', i > 0 ? mul(`r${k}`, x(i)) : `r${k}`);
  });
  const pairs = upperTriangle(size);
  const hessian = productSums(oneHotFeatures(data.features), pairs, width, (a, b) => {
    const [k, i, l, j] = [Math.floor(a / width), a % width, Math.floor(b / width), b % width];
    if (i > 0) return fn('sum', j > 0 ? mul(hx(k, l, i), x(j)) : hx(k, l, i));
    return fn('sum', j > 0 ? hx(k, l, j) : h(k, l));
  });
  const values = await aggregate(data, data.trainWhere, layers, [fn('count', '*'), fn('sum', 'loss'), ...gradient, ...hessian.sums]);
  const hessianValues = hessian.values(values.slice(2 + size));
  const matrix = Array.from({ length: size }, () => new Array<number>(size).fill(0));
  pairs.forEach(([a, b], t) => {
    matrix[a]![b] = hessianValues[t]!;
  });
  return newtonStep(values[0]!, values[1]!, values.slice(2, 2 + size), matrix, theta, l2, width);
}

/**
 * The terms of `Σ θᵢ xᵢ` over the encoded columns, in their order: `θᵢ * xᵢ` each, except that
 * with the STRING features grouped a STRING feature's one-hot block is one
 * `CASE WHEN key = 'c' THEN θ_c ... ELSE 0 END` over its group key. That is the same value
 * bit for bit: of a block's terms one is θ_c · 1 = θ_c and the others add an exact 0.
 */
function logitTerms(data: TrainingData, groups: CategoryGroups | undefined, weights: readonly number[]): string[] {
  const d = data.dialect;
  const { mul, num } = expressionBuilder(d);
  const terms: string[] = [];
  let column = 0;
  let key = 0;
  for (const f of data.features) {
    if (f.kind === 'categorical' && groups) {
      const whens = f.categories.map((c, i) => `WHEN ${d.operator(groups.keys[key]![0], '=', d.quoteString(c))} THEN ${num(weights[column + i]!)}`);
      terms.push(`(CASE ${whens.join(' ')} ELSE ${num(0)} END)`);
      key++;
      column += f.categories.length;
    } else {
      const width = f.kind === 'categorical' ? f.categories.length : 1;
      for (let i = 0; i < width; i++, column++) terms.push(mul(num(weights[column]!), `x${column + 1}`));
    }
  }
  return terms;
}

/**
 * The objective's loss, gradient and Hessian from the sums over the rows: `n`, Σ loss, Σ r·x
 * and the upper triangle of Σ h·x·xᵀ (filled symmetric here), with the penalty added.
 */
function newtonStep(n: number, lossSum: number, gradientSums: readonly number[], hessianSums: number[][], theta: readonly number[], l2: number, width: number): NewtonStep {
  const size = gradientSums.length;
  const penalized = (a: number) => a % width !== 0;
  for (let a = 0; a < size; a++) {
    for (let b = a; b < size; b++) {
      const v = hessianSums[a]![b]! / n + (a === b && penalized(a) ? l2 : 0);
      hessianSums[a]![b] = v;
      hessianSums[b]![a] = v;
    }
  }
  const penalty = theta.reduce((s, v, a) => s + (penalized(a) ? v * v : 0), 0);
  return {
    loss: lossSum / n + (l2 / 2) * penalty,
    gradient: gradientSums.map((g, a) => g / n + (penalized(a) ? l2 * theta[a]! : 0)),
    hessian: hessianSums,
  };
}

/**
 * {@link logisticStep} from sums per combination of the STRING features' values
 * (category-groups.ts): per group, Σ r_k·u and Σ h_kl·u·v over the constant column and the
 * numeric ones only. `layers` end with the residuals r_k, the Hessian weights h_kl and their
 * products with the numeric columns; the first holds the group keys.
 */
async function groupedStep(
  data: TrainingData,
  groups: CategoryGroups,
  layers: readonly (readonly (readonly [string, string])[])[],
  theta: readonly number[],
  l2: number,
  logits: number,
): Promise<NewtonStep> {
  const { mul, fn } = expressionBuilder(data.dialect);
  const width = data.encoded.length + 1;
  const size = logits * width;
  const base = groups.base;
  const x = (c: number) => `x${c}`;
  const weightPairs = upperTriangle(logits);
  const hx = (k: number, l: number, c: number) => `h${k}_${l}_x${c}`;
  const gradient = Array.from({ length: logits }, (_, k) => base.map((c, i) => fn('sum', i === 0 ? `r${k}` : mul(`r${k}`, x(c))))).flat();
  const products = upperTriangle(base.length);
  const hessian = weightPairs.flatMap(([k, l]) => products.map(([i, j]) => fn('sum', i === 0 ? (j === 0 ? `h${k}_${l}` : hx(k, l, base[j]!)) : mul(hx(k, l, base[i]!), x(base[j]!)))));
  const rows = await aggregateGroups(data, data.trainWhere, layers, groups.keys.map(([name]) => name), [fn('count', '*'), fn('sum', 'loss'), ...gradient, ...hessian]);
  let n = 0;
  let lossSum = 0;
  const gradientSums = new Array<number>(size).fill(0);
  const hessianSums = Array.from({ length: size }, () => new Array<number>(size).fill(0));
  const hessianAt = 2 + gradient.length;
  for (const row of rows) {
    const sums = row.sums;
    n += sums[0]!;
    lossSum += sums[1]!;
    const active = groups.active(row.keys);
    for (let k = 0; k < logits; k++) for (const [a, i] of active) gradientSums[k * width + a]! += sums[2 + k * base.length + i]!;
    weightPairs.forEach(([k, l], w) => {
      for (const [a, i] of active) {
        for (const [b, j] of active) {
          // Block (k, l), k ≤ l: the whole block off the diagonal, its upper triangle on it.
          if (k < l || a <= b) hessianSums[k * width + a]![l * width + b]! += sums[hessianAt + w * products.length + triangleIndex(base.length, i, j)]!;
        }
      }
    });
  }
  return newtonStep(n, lossSum, gradientSums, hessianSums, theta, l2, width);
}

/** Fits logistic regression (see the file comment). */
export async function fitLogisticRegression(data: TrainingData, options: TrainingOptions): Promise<ModelParameters> {
  const classes = data.classes!;
  const width = data.encoded.length + 1;
  const logits = classes.length === 2 ? 1 : classes.length;
  let theta = new Array<number>(logits * width).fill(0);
  let best: { theta: number[]; loss: number; gradientNorm: number } | undefined;
  let previous: { theta: number[]; loss: number; delta: number[] } | undefined;
  let step = 1;
  for (let iteration = 0; iteration < options.maxIterations; iteration++) {
    const at = await logisticStep(data, classes, theta, options.l2);
    const gradientNorm = norm(at.gradient);
    if (!best || at.loss < best.loss) best = { theta, loss: at.loss, gradientNorm };
    if (previous && at.loss > previous.loss + 1e-12 * Math.abs(previous.loss) && gradientNorm >= options.tolerance) {
      step /= 2;
      if (step < 1e-8) break;
      theta = previous.theta.map((v, a) => v - step * previous!.delta[a]!);
      continue;
    }
    if (gradientNorm < options.tolerance) {
      best = { theta, loss: at.loss, gradientNorm };
      break;
    }
    const delta = solveSymmetric(at.hessian, at.gradient);
    previous = { theta, loss: at.loss, delta };
    step = 1;
    theta = theta.map((v, a) => v - delta[a]!);
  }
  const final = best!.theta;
  // Softmax is unchanged by adding one constant to every (unpenalized) intercept: center them.
  const shift = logits === 1 ? 0 : Array.from({ length: logits }, (_, k) => final[k * width]!).reduce((s, v) => s + v, 0) / logits;
  return {
    kind: 'logistic',
    classes,
    intercepts: Array.from({ length: logits }, (_, k) => final[k * width]! - shift),
    weights: Array.from({ length: logits }, (_, k) => final.slice(k * width + 1, (k + 1) * width)),
  };
}
