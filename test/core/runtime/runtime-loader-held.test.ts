import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelVersion } from '../../../core/model-types.js';
import { RuntimeLoader } from '../../../core/runtime/runtime-loader.js';
import { linearRegressorModel } from '../../support/onnx-models.js';
import { writeTextModel } from '../../support/text-models.js';

// Two text classifiers whose ONNX graphs are byte for byte the same (same weights, same
// number of classes) and whose config.json names the classes differently: the catalog holds
// each version's files, and a session must run each version with its own files.
let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'modelsql-held-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const reader = (dir: string) => async (name: string): Promise<Uint8Array | undefined> => {
  try {
    return readFileSync(join(dir, name === 'model.onnx' ? 'onnx/model.onnx' : name));
  } catch {
    return undefined;
  }
};

test('catalog-held text models with the same graph and other files load as two runtimes in one session', async () => {
  const first = writeTextModel(join(root, 'first'), { seed: 3, labels: ['negative', 'neutral', 'positive'] });
  const second = writeTextModel(join(root, 'second'), { seed: 3, labels: ['bad', 'so-so', 'good'] });
  const graph = readFileSync(join(first, 'onnx/model.onnx'));
  expect(readFileSync(join(second, 'onnx/model.onnx')).equals(graph)).toBe(true);
  const onnxSha256 = createHash('sha256').update(graph).digest('hex');
  // The path is gone: the runtime must come from the held files alone.
  const options = [['provider', 'onnx'], ['path', join(root, 'deleted')], ['task', 'classification']] as const;

  const loader = new RuntimeLoader({});
  try {
    const checked = await loader.check(options, undefined, undefined, reader(first));
    const version = (n: number): ModelVersion => ({ schema: 'main', name: 'clf', version: n, provider: 'onnx', input: checked.input, output: checked.output, options, createdAt: `2026-12-0${n}T00:00:00Z`, onnxSha256 });
    const labelsOf = async (n: number, dir: string): Promise<unknown[]> => {
      const runtime = await loader.load(version(n), reader(dir));
      const out = await runtime.predictBatch({ rowCount: 2, columns: [{ kind: 'value', values: ['the cat sat on the mat', 'not good'] }] });
      return [...out.columns[0]!.values];
    };
    const one = await labelsOf(1, first);
    const two = await labelsOf(2, second);
    expect(one.every((l) => ['negative', 'neutral', 'positive'].includes(l as string))).toBe(true);
    expect(two.every((l) => ['bad', 'so-so', 'good'].includes(l as string))).toBe(true);
    // Same weights: the same class, under each version's own name.
    expect(two).toEqual(one.map((l) => ({ negative: 'bad', neutral: 'so-so', positive: 'good' })[l as string]));
  } finally {
    await loader.close();
  }
});

test('catalog-held versions alike in name, version, timestamps and checksum load apart when their stored identity differs, and once when it does not', async () => {
  // Two graphs under one claimed checksum: what a catalog import or a direct write may store.
  const graphs = { first: linearRegressorModel([1, 1], 0), second: linearRegressorModel([0, 0], 5) };
  const claimed = createHash('sha256').update(graphs.first).digest('hex');
  const version = (storedId: string): ModelVersion => ({
    schema: 'alices',
    name: 'held',
    version: 1,
    provider: 'onnx',
    input: [{ name: 'a', type: 'DOUBLE' }, { name: 'b', type: 'DOUBLE' }],
    output: [{ name: 'y', type: 'DOUBLE' }],
    options: [['provider', 'onnx'], ['path', join(root, 'deleted.onnx')]],
    createdAt: '2026-01-02 03:04:05.123',
    onnxSha256: claimed,
    storedId,
  });
  const holding = (graph: Uint8Array) => async (name: string) => (name === 'model.onnx' ? graph : undefined);
  const loader = new RuntimeLoader({});
  try {
    const y = async (storedId: string, graph: Uint8Array) => {
      const runtime = await loader.load(version(storedId), holding(graph));
      const out = await runtime.predictBatch({ rowCount: 1, columns: [{ kind: 'number', values: new Float64Array([1]) }, { kind: 'number', values: new Float64Array([2]) }] });
      return { runtime, y: Number(out.columns[0]!.values[0]) };
    };
    const first = await y('["server A","db1","7","1234"]', graphs.first);
    const second = await y('["server A","db2","7","1234"]', graphs.second);
    expect(first.y).toBeCloseTo(3, 4);
    expect(second.y).toBeCloseTo(5, 4);
    // The same stored version again: the loaded runtime, its bytes not read again.
    const again = await y('["server A","db1","7","1234"]', graphs.second);
    expect(again.runtime).toBe(first.runtime);
    expect(again.y).toBeCloseTo(3, 4);
  } finally {
    await loader.close();
  }
});

test("catalog-held text model files are held to the session's maxModelJsonBytes, at CREATE (check) and at load", async () => {
  const dir = writeTextModel(join(root, 'json-cap'));
  const size = readFileSync(join(dir, 'tokenizer.json')).byteLength;
  const options = [['provider', 'onnx'], ['path', join(root, 'deleted')]] as const;
  const onnxSha256 = createHash('sha256').update(readFileSync(join(dir, 'onnx/model.onnx'))).digest('hex');
  const at = new RuntimeLoader({ maxModelJsonBytes: size });
  const past = new RuntimeLoader({ maxModelJsonBytes: size - 1 });
  try {
    const checked = await at.check(options, undefined, undefined, reader(dir));
    const version: ModelVersion = { schema: 'main', name: 'emb', version: 1, provider: 'onnx', input: checked.input, output: checked.output, options, createdAt: '2026-12-01T00:00:00Z', onnxSha256 };
    await at.load(version, reader(dir));
    const message = new RegExp(`^tokenizer\\.json of the model directory held in the catalog.* is ${size} bytes, over this server's limit of ${size - 1} bytes`);
    await expect(past.check(options, undefined, undefined, reader(dir))).rejects.toMatchObject({ sqlstate: '54000', message: expect.stringMatching(message) });
    await expect(past.load(version, reader(dir))).rejects.toMatchObject({ sqlstate: '54000', message: expect.stringMatching(message) });
  } finally {
    await at.close();
    await past.close();
  }
});
