/**
 * Writes the test ONNX models into a fresh temporary directory and returns their paths.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { linearClassifierModel, linearRegressorModel, multiInputModel } from './onnx-models.js';

/** Linear regressor y = 2·a + 3·b − 1 over x [N, 2]. */
export const LINEAR = { weights: [2, 3], bias: -1 } as const;
/** Classifier over x [N, 2], classes 0/1/2. */
export const CLASSIFIER = {
  coefficients: [
    [1, 0],
    [0, 1],
    [-1, -1],
  ],
  intercepts: [0, 0.5, 1],
  labels: [0, 1, 2],
} as const;

/** Paths of the test models. */
export interface ModelFiles {
  readonly dir: string;
  readonly linear: string;
  readonly classifier: string;
  readonly multiInput: string;
  readonly corrupt: string;
}

/** Writes every test model to a new temporary directory. */
export function writeModelFiles(): ModelFiles {
  const dir = mkdtempSync(join(tmpdir(), 'modelsql-models-'));
  const files: ModelFiles = {
    dir,
    linear: join(dir, 'linear.onnx'),
    classifier: join(dir, 'classifier.onnx'),
    multiInput: join(dir, 'multi_input.onnx'),
    corrupt: join(dir, 'corrupt.onnx'),
  };
  writeFileSync(files.linear, linearRegressorModel(LINEAR.weights, LINEAR.bias));
  writeFileSync(files.classifier, linearClassifierModel(CLASSIFIER.coefficients, CLASSIFIER.intercepts, CLASSIFIER.labels));
  writeFileSync(files.multiInput, multiInputModel());
  writeFileSync(files.corrupt, Buffer.from('this is not an onnx model'));
  return files;
}

/** y for the LINEAR model, in float32 arithmetic as onnxruntime computes it (close enough for 1e-4 checks). */
export function linearExpected(a: number, b: number): number {
  return LINEAR.weights[0] * a + LINEAR.weights[1] * b + LINEAR.bias;
}

/** Softmax probabilities and arg-max label of the CLASSIFIER model. */
export function classifierExpected(a: number, b: number): { label: number; probabilities: number[] } {
  const scores = CLASSIFIER.coefficients.map((w, c) => w[0]! * a + w[1]! * b + CLASSIFIER.intercepts[c]!);
  const max = Math.max(...scores);
  const exp = scores.map((s) => Math.exp(s - max));
  const sum = exp.reduce((x, y) => x + y, 0);
  const probabilities = exp.map((e) => e / sum);
  return { label: CLASSIFIER.labels[probabilities.indexOf(Math.max(...probabilities))]!, probabilities };
}
