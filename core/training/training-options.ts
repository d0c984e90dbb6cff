/**
 * The WITH options of `CREATE MODEL ... AS <query>` (SPEC §3): which keys exist, their
 * defaults, and their validation. Every default is listed in docs/training.md.
 */
import { InvalidOptionError, type SourcePosition } from '../errors.js';

/** Algorithms that train inside the database. */
export const ALGORITHMS = ['linear_regression', 'logistic_regression', 'kmeans', 'decision_tree', 'gradient_boosted_trees'] as const;

/** One training algorithm. */
export type Algorithm = (typeof ALGORITHMS)[number];

/** Tasks a trained model can have. */
export type TrainingTask = 'regression' | 'classification' | 'clustering';

/** Where ML_PREDICT runs a trained model: as a host SQL expression (default) or through its ONNX artifact. */
export type PredictRuntime = 'sql' | 'onnx';

/** Every option key a trained model accepts (besides the common ones of model-options.ts). */
export const TRAINING_OPTION_KEYS = [
  'algorithm',
  'label',
  'test-split',
  'seed',
  'l2',
  'max-iterations',
  'tolerance',
  'max-categories',
  'k',
  'max-depth',
  'rounds',
  'learning-rate',
  'bins',
  'min-rows',
  'runtime',
] as const;

/** Which algorithm-specific options each algorithm takes (the others are common to all). */
const ALGORITHM_OPTIONS: Readonly<Record<Algorithm, readonly string[]>> = {
  linear_regression: ['l2'],
  logistic_regression: ['l2', 'max-iterations', 'tolerance'],
  kmeans: ['k', 'max-iterations', 'tolerance'],
  decision_tree: ['max-depth', 'bins', 'min-rows'],
  gradient_boosted_trees: ['max-depth', 'bins', 'min-rows', 'rounds', 'learning-rate'],
};

/** Options every algorithm takes. */
const COMMON_TRAINING_OPTIONS = ['algorithm', 'label', 'test-split', 'seed', 'max-categories', 'runtime'];

/** The validated training options, defaults filled in. */
export interface TrainingOptions {
  readonly algorithm: Algorithm;
  readonly task: TrainingTask;
  /** The label column as written in the options; absent for clustering. */
  readonly label?: string;
  /** Fraction of rows held out for the stored metrics (default 0). */
  readonly testSplit: number;
  /** Seed of the split and of k-means++ seeding (default 42). */
  readonly seed: number;
  /** L2 penalty (default 0 for linear, 1e-4 for logistic regression). */
  readonly l2: number;
  /** Newton / Lloyd iterations at most (default 100). */
  readonly maxIterations: number;
  /** Convergence tolerance (default 1e-10 gradient norm for logistic, 1e-8 relative inertia change for k-means). */
  readonly tolerance: number;
  /** Categories kept per STRING feature, most frequent first (default 100). */
  readonly maxCategories: number;
  /** Clusters (k-means; default 3). */
  readonly k: number;
  /** Tree depth: splits from the root to a leaf at most (default 5). */
  readonly maxDepth: number;
  /** Boosting rounds (default 50). */
  readonly rounds: number;
  /** Boosting learning rate (default 0.1). */
  readonly learningRate: number;
  /** Histogram bins per numeric feature in split search (default 32). */
  readonly bins: number;
  /** Fewest training rows in a tree leaf (default 1). */
  readonly minRows: number;
  /** How ML_PREDICT runs the model (default `sql`). */
  readonly runtime: PredictRuntime;
}

/** Default task of each algorithm (trees: decided from the label's type when not given). */
const DEFAULT_TASK: Readonly<Record<Algorithm, TrainingTask | undefined>> = {
  linear_regression: 'regression',
  logistic_regression: 'classification',
  kmeans: 'clustering',
  decision_tree: undefined,
  gradient_boosted_trees: undefined,
};

const ALLOWED_TASKS: Readonly<Record<Algorithm, readonly TrainingTask[]>> = {
  linear_regression: ['regression'],
  logistic_regression: ['classification'],
  kmeans: ['clustering'],
  decision_tree: ['regression', 'classification'],
  gradient_boosted_trees: ['regression', 'classification'],
};

/**
 * Validates the options of a training statement. `labelIsNumeric` decides the default task
 * of tree models (regression for a numeric label, else classification) and is asked only
 * when needed.
 *
 * @example
 * parseTrainingOptions([['algorithm', 'linear_regression'], ['label', 'price']])
 */
export function parseTrainingOptions(
  options: readonly (readonly [string, string])[],
  at: (key: string) => SourcePosition | undefined = () => undefined,
  labelIsNumeric?: (label: string) => boolean | undefined,
): TrainingOptions {
  const get = (key: string): string | undefined => options.find(([k]) => k.toLowerCase() === key)?.[1];
  const algorithmText = get('algorithm');
  if (algorithmText === undefined) throw new InvalidOptionError(`CREATE MODEL ... AS <query> needs 'algorithm': one of ${ALGORITHMS.join(', ')}`);
  const algorithm = algorithmText.trim().toLowerCase() as Algorithm;
  if (!ALGORITHMS.includes(algorithm)) {
    throw new InvalidOptionError(`unknown algorithm '${algorithmText}'; known algorithms: ${ALGORITHMS.join(', ')}`, at('algorithm'));
  }
  const allowed = new Set([...COMMON_TRAINING_OPTIONS, ...ALGORITHM_OPTIONS[algorithm]]);
  for (const [key] of options) {
    const k = key.toLowerCase();
    if ((TRAINING_OPTION_KEYS as readonly string[]).includes(k) && !allowed.has(k)) {
      throw new InvalidOptionError(`option '${key}' does not apply to algorithm '${algorithm}'; it takes ${[...allowed].join(', ')}`, at(key));
    }
  }
  const label = get('label');
  if (algorithm === 'kmeans') {
    if (label !== undefined) throw new InvalidOptionError(`kmeans is unsupervised and takes no 'label'`, at('label'));
  } else if (label === undefined || label.trim() === '') {
    throw new InvalidOptionError(`algorithm '${algorithm}' needs 'label': the column of the query to predict`, label === undefined ? at('algorithm') : at('label'));
  }
  const taskText = get('task')?.trim().toLowerCase();
  let task: TrainingTask;
  if (taskText !== undefined) {
    if (!(ALLOWED_TASKS[algorithm] as readonly string[]).includes(taskText)) {
      throw new InvalidOptionError(`algorithm '${algorithm}' does not do task '${taskText}'; it does ${ALLOWED_TASKS[algorithm].join(', ')}`, at('task'));
    }
    task = taskText as TrainingTask;
  } else {
    task = DEFAULT_TASK[algorithm] ?? (labelIsNumeric?.(label!) === false ? 'classification' : 'regression');
  }
  const isTree = algorithm === 'decision_tree' || algorithm === 'gradient_boosted_trees';
  const runtime = (get('runtime') ?? 'sql').trim().toLowerCase();
  if (runtime !== 'sql' && runtime !== 'onnx') throw new InvalidOptionError(`option 'runtime' must be 'sql' or 'onnx', not '${get('runtime')}'`, at('runtime'));
  return {
    algorithm,
    task,
    label: label?.trim(),
    testSplit: number(get, at, 'test-split', 0, (v) => v >= 0 && v < 1, 'a number in [0, 1)'),
    seed: integer(get, at, 'seed', 42, 0),
    l2: number(get, at, 'l2', algorithm === 'logistic_regression' ? 1e-4 : 0, (v) => v >= 0, 'a number >= 0'),
    maxIterations: integer(get, at, 'max-iterations', 100, 1),
    tolerance: number(get, at, 'tolerance', algorithm === 'kmeans' ? 1e-8 : 1e-10, (v) => v > 0, 'a number > 0'),
    maxCategories: integer(get, at, 'max-categories', 100, 1),
    k: integer(get, at, 'k', 3, 1),
    maxDepth: integer(get, at, 'max-depth', 5, 1, 12),
    rounds: integer(get, at, 'rounds', isTree ? 50 : 1, 1, 1000),
    learningRate: number(get, at, 'learning-rate', 0.1, (v) => v > 0 && v <= 1, 'a number in (0, 1]'),
    bins: integer(get, at, 'bins', 32, 2, 1024),
    minRows: integer(get, at, 'min-rows', 1, 1),
    runtime: runtime as PredictRuntime,
  };
}

function number(
  get: (key: string) => string | undefined,
  at: (key: string) => SourcePosition | undefined,
  key: string,
  fallback: number,
  ok: (v: number) => boolean,
  what: string,
): number {
  const text = get(key);
  if (text === undefined) return fallback;
  const value = text.trim() === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value) || !ok(value)) throw new InvalidOptionError(`option '${key}' must be ${what}, not '${text}'`, at(key));
  return value;
}

function integer(get: (key: string) => string | undefined, at: (key: string) => SourcePosition | undefined, key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const text = get(key);
  if (text === undefined) return fallback;
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(`option '${key}' must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, not '${text}'`, at(key));
  }
  return value;
}
