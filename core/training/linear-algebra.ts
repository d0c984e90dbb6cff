/**
 * The small dense linear algebra training needs in the Node process: the systems are
 * (features × features), never (rows × features).
 */

/** A square matrix, row-major rows. */
export type Matrix = number[][];

/** An n×n zero matrix. */
export function zeros(n: number): Matrix {
  return Array.from({ length: n }, () => new Array<number>(n).fill(0));
}

/**
 * Solves `A x = b` for a symmetric positive definite `A` by Cholesky (`A = L Lᵀ`).
 * Returns undefined when `A` is not (numerically) positive definite.
 *
 * @example
 * choleskySolve([[4, 2], [2, 3]], [2, 1]) // [0.5, 0]
 */
export function choleskySolve(a: readonly (readonly number[])[], b: readonly number[]): number[] | undefined {
  const n = b.length;
  const l = zeros(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i]![j]!;
      for (let k = 0; k < j; k++) sum -= l[i]![k]! * l[j]![k]!;
      if (i === j) {
        if (!(sum > 1e-12 * Math.max(1, Math.abs(a[i]![i]!)))) return undefined;
        l[i]![i] = Math.sqrt(sum);
      } else {
        l[i]![j] = sum / l[j]![j]!;
      }
    }
  }
  const y = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    let sum = b[i]!;
    for (let k = 0; k < i; k++) sum -= l[i]![k]! * y[k]!;
    y[i] = sum / l[i]![i]!;
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let sum = y[i]!;
    for (let k = i + 1; k < n; k++) sum -= l[k]![i]! * x[k]!;
    x[i] = sum / l[i]![i]!;
  }
  return x;
}

/**
 * Solves a symmetric positive semi-definite system: Cholesky, and when `A` is singular
 * (collinear features with no penalty) Cholesky of `A + εI` with the smallest ε from
 * 1e-10·max|diag| up that works, which gives (nearly) the minimum-norm solution.
 */
export function solveSymmetric(a: readonly (readonly number[])[], b: readonly number[]): number[] {
  const direct = choleskySolve(a, b);
  if (direct) return direct;
  const scale = Math.max(1, ...a.map((row, i) => Math.abs(row[i]!)));
  for (let eps = 1e-10 * scale; eps < scale * 1e6; eps *= 10) {
    const x = choleskySolve(
      a.map((row, i) => row.map((v, j) => (i === j ? v + eps : v))),
      b,
    );
    if (x) return x;
  }
  throw new Error('internal error: the training system could not be solved');
}

/** Euclidean norm. */
export function norm(v: readonly number[]): number {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}
