/**
 * Generates the example models shipped in `examples/models/` (documented in
 * `examples/models/README.md`). `test/core/runtime/example-models.test.ts` checks that
 * the shipped files are byte-identical to what this module generates.
 *
 * Regenerate after a change: `npm run build && node dist/test/support/write-example-models.js`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { linearClassifierModel, linearRegressorModel } from './onnx-models.js';

/** House price model: `price = 150·sqft + 10000·bedrooms − 1000·age + 50000`. */
export const HOUSE_PRICE = { weights: [150, 10000, -1000] as const, bias: 50000 } as const;

/**
 * Iris-like classifier over `[sepal_length, sepal_width, petal_length, petal_width]`,
 * classes 0 (setosa), 1 (versicolor), 2 (virginica); softmax probabilities.
 */
export const IRIS_CLASSIFIER = {
  // A nearest-centroid classifier: class c scores mu_c·x − |mu_c|²/2 for the class means
  // mu_0 = (5.0, 3.4, 1.5, 0.2), mu_1 = (5.9, 2.8, 4.3, 1.3), mu_2 = (6.6, 3.0, 5.6, 2.0).
  coefficients: [
    [5.0, 3.4, 1.5, 0.2],
    [5.9, 2.8, 4.3, 1.3],
    [6.6, 3.0, 5.6, 2.0],
  ],
  intercepts: [-19.425, -31.415, -43.96],
  labels: [0, 1, 2],
} as const;

/** The example models, file name → bytes. */
export function exampleModels(): ReadonlyMap<string, Uint8Array> {
  return new Map([
    ['house_price.onnx', linearRegressorModel(HOUSE_PRICE.weights, HOUSE_PRICE.bias, { outputName: 'price' })],
    [
      'iris_classifier.onnx',
      linearClassifierModel(
        IRIS_CLASSIFIER.coefficients.map((r) => [...r]),
        [...IRIS_CLASSIFIER.intercepts],
        [...IRIS_CLASSIFIER.labels],
      ),
    ],
  ]);
}

/** Writes the example models into `dir` (default `<repo>/examples/models`). */
export async function writeExampleModels(dir: string): Promise<readonly string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, bytes] of exampleModels()) {
    const file = path.join(dir, name);
    await writeFile(file, bytes);
    written.push(file);
  }
  return written;
}

/** `<repo>/examples/models`, found from this file in the sources or in `dist/`. */
export function exampleModelsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const repo = here.includes(`${path.sep}dist${path.sep}`) ? path.resolve(here, '../../..') : path.resolve(here, '../..');
  return path.join(repo, 'examples', 'models');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  for (const file of await writeExampleModels(exampleModelsDir())) console.log(`wrote ${file}`);
}
