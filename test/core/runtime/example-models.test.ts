import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { bindOnnxSignature, inspectOnnx } from '../../../core/runtime/onnx-model.js';
import { createOnnxRuntime } from '../../../core/runtime/onnx-runtime.js';
import { exampleModels, exampleModelsDir, HOUSE_PRICE } from '../../support/write-example-models.js';

describe('shipped example models', () => {
  for (const [name, bytes] of exampleModels()) {
    test(`examples/models/${name} is what write-example-models.ts generates`, async () => {
      const shipped = new Uint8Array(await readFile(path.join(exampleModelsDir(), name)));
      expect(Buffer.from(shipped).equals(Buffer.from(bytes))).toBe(true);
    });
  }

  test('house_price.onnx predicts the documented formula', async () => {
    const bytes = new Uint8Array(await readFile(path.join(exampleModelsDir(), 'house_price.onnx')));
    const inputs = ['sqft', 'bedrooms', 'age'].map((name) => ({ name, type: 'DOUBLE' }));
    const binding = bindOnnxSignature(await inspectOnnx(bytes), inputs, [{ name: 'price', type: 'DOUBLE' }]);
    const runtime = await createOnnxRuntime(bytes, binding);
    try {
      const out = await runtime.predictBatch({
        rowCount: 1,
        columns: [Float64Array.of(1500), Float64Array.of(3), Float64Array.of(10)].map((values) => ({ kind: 'number' as const, values })),
      });
      const [w0, w1, w2] = HOUSE_PRICE.weights;
      expect(out.columns[0]?.values[0]).toBeCloseTo(w0 * 1500 + w1 * 3 + w2 * 10 + HOUSE_PRICE.bias, 0);
      expect(out.columns[0]?.values[0]).toBeCloseTo(295000, 0);
    } finally {
      await runtime.close();
    }
  });

  test('iris_classifier.onnx classifies typical samples of each class', async () => {
    const bytes = new Uint8Array(await readFile(path.join(exampleModelsDir(), 'iris_classifier.onnx')));
    const inputs = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'].map((name) => ({ name, type: 'DOUBLE' }));
    const binding = bindOnnxSignature(await inspectOnnx(bytes), inputs, [
      { name: 'label', type: 'BIGINT' },
      { name: 'probabilities', type: 'ARRAY<FLOAT>' },
    ]);
    const runtime = await createOnnxRuntime(bytes, binding);
    try {
      const samples = [
        [5.1, 3.5, 1.4, 0.2],
        [6.0, 2.9, 4.5, 1.4],
        [6.7, 3.1, 5.8, 2.2],
      ];
      const out = await runtime.predictBatch({
        rowCount: 3,
        columns: [0, 1, 2, 3].map((j) => ({ kind: 'number' as const, values: Float64Array.from(samples, (s) => s[j] as number) })),
      });
      expect(Array.from(out.columns[0]?.values as Float64Array)).toEqual([0, 1, 2]);
    } finally {
      await runtime.close();
    }
  });
});
