/**
 * `decision_tree` and `gradient_boosted_trees` (histogram split search with GROUP BY).
 * Not implemented yet: the options are validated and reserved, the `trees` parameters are
 * understood by the SQL compiler and the ONNX writer, and training fails with 0A000.
 */
import { UnsupportedFeatureError } from '../errors.js';
import type { ModelParameters } from './trained-model.js';
import type { TrainingData } from './training-data.js';
import type { TrainingOptions } from './training-options.js';

/** Fits a tree model; for now, always 0A000 (before anything is stored). */
export async function fitTrees(_data: TrainingData, options: TrainingOptions): Promise<ModelParameters> {
  throw new UnsupportedFeatureError(`algorithm '${options.algorithm}' is not available in this version of modelsql; available: linear_regression, logistic_regression, kmeans`);
}
