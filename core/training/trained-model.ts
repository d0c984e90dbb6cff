/**
 * A trained model as plain data: its preprocessing and its parameters. Stored as the
 * `model.json` artifact next to `model.onnx`; the SQL compiler (compile-sql.ts) and the
 * ONNX writer (onnx-export.ts) both read it, so the two always describe the same function.
 */
import type { Algorithm, TrainingTask } from './training-options.js';
import type { ModelColumn } from '../model-types.js';

/** Name of the artifact holding the {@link TrainedModel} JSON. */
export const SPEC_ARTIFACT = 'model.json';
/** Name of the artifact holding the ONNX graph. */
export const ONNX_ARTIFACT = 'model.onnx';
/** Value of {@link TrainedModel.format}. */
export const SPEC_FORMAT = 'modelsql-trained-model/1';

/** One stored artifact of a trained model (`model.json`, `model.onnx`). */
export interface Artifact {
  readonly name: string;
  readonly content: Uint8Array;
  readonly sha256: string;
}

/** What training produced: the model, its artifacts and its metrics, for the catalog to store. */
export interface TrainingResult {
  readonly model: TrainedModel;
  readonly artifacts: readonly Artifact[];
  /** Metric name → value: held-out metrics under their names, training-set ones prefixed `train_`. */
  readonly metrics: readonly (readonly [string, number])[];
}

/** A class label as stored: strings, numbers and booleans keep their JS type. */
export type ClassValue = string | number | boolean;

/**
 * One feature column and how it is encoded.
 *
 * - `numeric`: `(coalesce(x, mean) - mean) / std`: one encoded column; NULL → mean → 0.
 *   Booleans are numeric (true = 1).
 * - `categorical`: one 0/1 column per category; NULL → the mode; a value that is not a
 *   category → all zeros.
 */
export type FeatureEncoding =
  | { readonly kind: 'numeric'; readonly name: string; readonly type: string; readonly boolean: boolean; readonly mean: number; readonly std: number }
  | { readonly kind: 'categorical'; readonly name: string; readonly type: string; readonly categories: readonly string[]; readonly mode: string };

/** The fitted function, over the encoded feature vector `x` (in feature order, one-hot blocks expanded). */
export type ModelParameters =
  /** `y = intercept + weights · x` */
  | { readonly kind: 'linear'; readonly intercept: number; readonly weights: readonly number[] }
  /**
   * Logits `z_k = intercepts[k] + weights[k] · x`. Binary: one logit row, P(classes[1]) =
   * sigmoid(z_0). Multinomial: one row per class, probabilities = softmax(z).
   */
  | { readonly kind: 'logistic'; readonly classes: readonly ClassValue[]; readonly intercepts: readonly number[]; readonly weights: readonly (readonly number[])[] }
  /** Nearest centroid (squared Euclidean distance in the encoded space); ties go to the lower id. */
  | {
      readonly kind: 'kmeans';
      readonly centroids: readonly (readonly number[])[];
      /** The k-means++ seeds Lloyd's iterations started from (for reproducing the run). */
      readonly seeds: readonly (readonly number[])[];
      /** Lloyd iterations run. */
      readonly iterations: number;
    }
  /**
   * A sum of regression trees: `score_k = base[k] + Σ trees of class k`. Regression: one
   * score is the prediction. Classification: scores are logits (sigmoid for two classes
   * with one score; softmax otherwise), or for a single decision tree leaf values are the
   * class probabilities directly (`probabilityLeaves`).
   */
  | {
      readonly kind: 'trees';
      readonly classes?: readonly ClassValue[];
      readonly base: readonly number[];
      /** `trees[k]` are the trees adding to score k. */
      readonly trees: readonly (readonly TreeNode[])[];
      readonly probabilityLeaves: boolean;
    };

/** A binary tree over encoded features: `x[feature] <= threshold` goes left. */
export type TreeNode =
  | { readonly leaf: true; readonly value: number }
  | { readonly leaf: false; readonly feature: number; readonly threshold: number; readonly left: TreeNode; readonly right: TreeNode };

/** Everything needed to predict with a trained model. */
export interface TrainedModel {
  readonly format: typeof SPEC_FORMAT;
  readonly algorithm: Algorithm;
  readonly task: TrainingTask;
  /** The label column (absent for clustering) with its type (Flink spelling). */
  readonly label?: ModelColumn;
  readonly features: readonly FeatureEncoding[];
  readonly parameters: ModelParameters;
  /** The model's INPUT (the features) and OUTPUT columns. */
  readonly input: readonly ModelColumn[];
  readonly output: readonly ModelColumn[];
}

/** Width of the encoded feature vector. */
export function encodedWidth(features: readonly FeatureEncoding[]): number {
  return features.reduce((n, f) => n + (f.kind === 'numeric' ? 1 : f.categories.length), 0);
}

/** Names of the encoded columns, for messages and docs: `sqft`, `city=Paris`. */
export function encodedNames(features: readonly FeatureEncoding[]): string[] {
  return features.flatMap((f) => (f.kind === 'numeric' ? [f.name] : f.categories.map((c) => `${f.name}=${c}`)));
}

/**
 * OUTPUT columns of a trained model (BigQuery ML's naming): `predicted_<label>` (the label's
 * type for classification, DOUBLE for regression), `predicted_<label>_probs ARRAY<DOUBLE>`
 * for classifiers (in class order), `cluster_id BIGINT` for k-means.
 */
export function outputColumns(task: TrainingTask, label: ModelColumn | undefined): ModelColumn[] {
  if (task === 'clustering') return [{ name: 'cluster_id', type: 'BIGINT' }];
  const name = `predicted_${label!.name}`;
  if (task === 'regression') return [{ name, type: 'DOUBLE' }];
  return [
    { name, type: label!.type },
    { name: `${name}_probs`, type: 'ARRAY<DOUBLE>' },
  ];
}

/** Reads and checks a stored spec. */
export function parseTrainedModel(bytes: Uint8Array): TrainedModel {
  const spec = JSON.parse(new TextDecoder().decode(bytes)) as TrainedModel;
  if (spec.format !== SPEC_FORMAT) throw new Error(`unknown trained-model format '${String(spec.format)}'`);
  return spec;
}

/** Serializes a spec for the catalog. */
export function serializeTrainedModel(spec: TrainedModel): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(spec));
}
