/**
 * What the planner asks of its caller. Planning is a generator (a "sans-I/O" planner): it
 * yields a {@link PlanRequest} whenever it needs a fact it does not hold (a model, the
 * columns of an input query, the relation a model stage produced) and resumes with the
 * answer. The executor (core/execution/) answers from the host, the catalog and the
 * runtimes; fixture tests answer from fixed facts, with no database.
 */
import type { SourcePosition } from '../errors.js';
import type { HostColumn, SqlDialect } from '../host.js';
import type { ModelVersion, ResolvedModel } from '../model-types.js';
import type { ResourceCaps } from '../runtime/resource-caps.js';
import type { MlCall, ModelName } from '../sql/ast.js';
import type { EvaluateBinding, InputArgument, PredictBinding } from '../sql/ml-call.js';
import type { TrainedModel } from '../training/trained-model.js';
import type { EvaluationSpec } from './evaluate-metrics.js';

/**
 * A model stage to run: the call's input query feeds the model, and the answer is a host
 * relation of every input column followed by the OUTPUT columns (named `outputNames`).
 */
export interface StagePlan {
  readonly call: MlCall;
  readonly bound: PredictBinding | EvaluateBinding;
  readonly model: ResolvedModel;
  /** The SQL of the call's input (nested calls already replaced by their relations). */
  readonly inputQuery: string;
  /** The input query's columns, as the host described them. */
  readonly inputColumns: readonly HostColumn[];
  /** The DESCRIPTOR's columns, in the model's INPUT order. */
  readonly features: readonly HostColumn[];
  /** The OUTPUT columns' names in the result (clashes renamed) and their host types. */
  readonly outputNames: readonly string[];
  readonly outputColumns: readonly HostColumn[];
  /** ML_EVALUATE: the stage's relation is scored afterwards (it cannot write into a table directly). */
  readonly evaluates: boolean;
}

/** A fact the planner needs, by kind; {@link PlanAnswers} gives the answer's type. */
export type PlanRequest =
  /** The model a call names (with the version to run). */
  | { readonly kind: 'model'; readonly name: ModelName }
  /** The trained model behind a version (undefined for other models). */
  | { readonly kind: 'trained'; readonly version: ModelVersion }
  /** The columns of an input query; host errors point at `input`. */
  | { readonly kind: 'describe'; readonly query: string; readonly input: InputArgument }
  /** Runs a model stage; the answer is its relation. */
  | { readonly kind: 'stage'; readonly stage: StagePlan }
  /** ML_EVALUATE for text generation: pairs are scored outside SQL; the answer is the metrics relation. */
  | { readonly kind: 'text-scores'; readonly spec: EvaluationSpec }
  /**
   * VECTOR_SEARCH: the least and greatest dimension of the searched column's non-NULL
   * vectors, whether one has a NULL component, and the most array dimensions one has (1 where
   * the host does not say; undefined: no vectors). The column is `columns[index]`.
   */
  | { readonly kind: 'vector-dimensions'; readonly source: string; readonly columns: readonly HostColumn[]; readonly index: number; readonly position: SourcePosition }
  /** Whether the host accepts `probe` (VECTOR_SEARCH: the searched table's rows are addressable). */
  | { readonly kind: 'accepts'; readonly probe: string };

/** The answer to each kind of {@link PlanRequest}. */
export interface PlanAnswers {
  readonly model: ResolvedModel;
  readonly trained: TrainedModel | undefined;
  readonly describe: readonly HostColumn[];
  readonly stage: string;
  readonly 'text-scores': string;
  readonly 'vector-dimensions': readonly [number, number, boolean, number] | undefined;
  readonly accepts: boolean;
}

/** A planning step: yields requests, resumes with their answers, returns `T`. */
export type Plan<T> = Generator<PlanRequest, T, unknown>;

/** What planning knows without asking: the script, the host's SQL dialect, the server's caps. */
export interface PlanEnv {
  /** The whole script the statement came from (spans index into it). */
  readonly scriptText: string;
  readonly dialect: SqlDialect;
  /** The host's name, for messages (`DuckDB`, `PostgreSQL`). */
  readonly hostName: string;
  /** The caps model options and ML calls are checked against (resource-caps.ts). */
  readonly caps: ResourceCaps;
  /**
   * Plans the statement's shape without running a model: each stage call becomes its
   * input query with typed NULL outputs (`describedRelation`). For Describe and plain EXPLAIN.
   */
  readonly describeOnly?: boolean;
}

/**
 * Yields one request and returns its answer, typed by kind.
 *
 * @example
 * const model = yield* ask({ kind: 'model', name });
 */
export function* ask<K extends PlanRequest['kind']>(request: Extract<PlanRequest, { kind: K }>): Plan<PlanAnswers[K]> {
  return (yield request) as PlanAnswers[K];
}
