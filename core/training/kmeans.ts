/** k-means (placeholder until implemented). */
import { UnsupportedFeatureError } from '../errors.js';
import type { ModelParameters } from './trained-model.js';
import type { TrainingData } from './training-data.js';
import type { TrainingOptions } from './training-options.js';

/** Fits k-means. */
export async function fitKMeans(_data: TrainingData, _options: TrainingOptions): Promise<ModelParameters> {
  throw new UnsupportedFeatureError('kmeans is not available yet');
}

/** Inertia over some rows. */
export async function inertia(_data: TrainingData, _p: Extract<ModelParameters, { kind: 'kmeans' }>, _where: string): Promise<number> {
  return Number.NaN;
}
