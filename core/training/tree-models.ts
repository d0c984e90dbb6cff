/** Trees (placeholder until implemented). */
import { UnsupportedFeatureError } from '../errors.js';
import type { ModelParameters } from './trained-model.js';
import type { TrainingData } from './training-data.js';
import type { TrainingOptions } from './training-options.js';

/** Fits trees. */
export async function fitTrees(_data: TrainingData, _options: TrainingOptions): Promise<ModelParameters> {
  throw new UnsupportedFeatureError('trees are not available yet');
}
