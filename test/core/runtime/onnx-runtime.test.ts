import { ModelRuntimeError, QueryCanceledError } from '../../../core/errors.js';
import type { ModelRuntime } from '../../../core/runtime/model-runtime.js';
import { bindOnnxSignature, defaultSignatureFor, inspectOnnx } from '../../../core/runtime/onnx-model.js';
import { createOnnxRuntime, OnnxModelRuntime } from '../../../core/runtime/onnx-runtime.js';
import {
  denseStackModel,
  fixedBatchModel,
  linearClassifierModel,
  linearRegressorModel,
  multiInputModel,
  treeEnsembleExpected,
  treeEnsembleRegressorModel,
  typedColumnsModel,
} from '../../support/onnx-models.js';
import type { ColumnBatch, ColumnData, ModelColumn } from '../../../core/model-types.js';

const cols = (spec: string): ModelColumn[] =>
  spec.split(',').map((s) => {
    const [name, ...type] = s.trim().split(' ');
    return { name: name as string, type: type.join(' ') };
  });

const num = (values: readonly number[], nulls?: readonly number[]): ColumnData =>
  nulls === undefined ? { kind: 'number', values: Float64Array.from(values) } : { kind: 'number', values: Float64Array.from(values), nulls: Uint8Array.from(nulls) };

async function runtimeFor(bytes: Uint8Array, inputs: string, outputs: string, options?: Parameters<typeof createOnnxRuntime>[2]): Promise<ModelRuntime> {
  return createOnnxRuntime(bytes, bindOnnxSignature(await inspectOnnx(bytes), cols(inputs), cols(outputs)), options);
}

const open: ModelRuntime[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});
async function track(r: Promise<ModelRuntime>): Promise<ModelRuntime> {
  const runtime = await r;
  open.push(runtime);
  return runtime;
}

function softmax(scores: readonly number[]): number[] {
  const max = Math.max(...scores);
  const e = scores.map((s) => Math.exp(s - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

describe('ONNX runtime', () => {
  test('linear regressor over an [N,k] input matches plain arithmetic', async () => {
    const weights = [0.5, -2, 3.25];
    const bias = 1.5;
    const runtime = await track(runtimeFor(linearRegressorModel(weights, bias), 'a DOUBLE, b DOUBLE, c DOUBLE', 'y DOUBLE'));
    expect(runtime.provider).toBe('onnx');
    expect(runtime.inputKinds).toEqual(['number', 'number', 'number']);
    expect(runtime.preferredBatchSize).toBeGreaterThanOrEqual(16384);
    const a = [1, 2, 3, -4];
    const b = [0.5, 0, 10, 2];
    const c = [2, 4, -1, 0.25];
    const out = await runtime.predictBatch({ rowCount: 4, columns: [num(a), num(b), num(c)] });
    expect(out.rowCount).toBe(4);
    const y = out.columns[0] as Extract<ColumnData, { kind: 'number' }>;
    expect(y.kind).toBe('number');
    expect(y.nulls).toBeUndefined();
    a.forEach((_, i) => expect(y.values[i]).toBeCloseTo(weights[0]! * a[i]! + weights[1]! * b[i]! + weights[2]! * c[i]! + bias, 4));
  });

  test('an [N] output (Squeeze) and Int32Array / Float32Array inputs', async () => {
    const runtime = await track(runtimeFor(linearRegressorModel([2, 3], 1, { outputShape: 'N' }), 'a INT, b FLOAT', 'y FLOAT'));
    const out = await runtime.predictBatch({
      rowCount: 3,
      columns: [
        { kind: 'number', values: Int32Array.of(1, 2, 3) },
        { kind: 'number', values: Float32Array.of(0.5, 1.5, -1) },
      ],
    });
    expect(Array.from(out.columns[0]?.values as Float32Array)).toEqual([2 + 1.5 + 1, 4 + 4.5 + 1, 6 - 3 + 1]);
  });

  test('one tensor per column, fed by name whatever the column order', async () => {
    const runtime = await track(runtimeFor(multiInputModel(), 'b DOUBLE, a DOUBLE', 'y DOUBLE'));
    const out = await runtime.predictBatch({ rowCount: 3, columns: [num([1, 2, 3]), num([10, 20, 30])] });
    expect(Array.from(out.columns[0]?.values as Float32Array)).toEqual([2 * 10 + 1, 2 * 20 + 2, 2 * 30 + 3]);
  });

  test('typed per-column tensors: double, int64, int32, string, bool in and out', async () => {
    const runtime = await track(
      runtimeFor(typedColumnsModel(), 'd DOUBLE, i BIGINT, j INT, s STRING, flag BOOLEAN', 'd2 DOUBLE, i1 BIGINT, j1 INT, s_out STRING, not_flag BOOLEAN'),
    );
    expect(runtime.inputKinds).toEqual(['number', 'number', 'number', 'value', 'value']);
    const out = await runtime.predictBatch({
      rowCount: 3,
      columns: [num([1.25, -2, 0.1]), num([41, 2 ** 40, -7]), num([1, 2, 3]), { kind: 'value', values: ['héllo', '', 'x'] }, { kind: 'value', values: [true, false, true] }],
    });
    const [d2, i1, j1, s, b] = out.columns as ColumnData[];
    expect(Array.from(d2!.values as Float64Array)).toEqual([2.5, -4, 0.2]);
    expect(d2!.values).toBeInstanceOf(Float64Array);
    expect(Array.from(i1!.values as Float64Array)).toEqual([42, 2 ** 40 + 1, -6]);
    expect(Array.from(j1!.values as Int32Array)).toEqual([2, 3, 4]);
    expect(j1!.values).toBeInstanceOf(Int32Array);
    expect(s).toEqual({ kind: 'value', values: ['héllo', '', 'x'] });
    expect(b).toEqual({ kind: 'value', values: [false, true, false] });
  });

  test('LinearClassifier: labels and softmax probabilities', async () => {
    const coefficients = [
      [1, -1],
      [0.5, 2],
      [-1, 0.25],
    ];
    const intercepts = [0.1, -0.2, 0.3];
    const runtime = await track(runtimeFor(linearClassifierModel(coefficients, intercepts, [10, 20, 30]), 'f1 DOUBLE, f2 DOUBLE', 'label BIGINT, probabilities ARRAY<FLOAT>'));
    const rows = [
      [3, 0],
      [0, 3],
      [-3, 0.5],
      [1, 1],
    ];
    const out = await runtime.predictBatch({ rowCount: rows.length, columns: [num(rows.map((r) => r[0]!)), num(rows.map((r) => r[1]!))] });
    const labels = out.columns[0] as Extract<ColumnData, { kind: 'number' }>;
    const probabilities = out.columns[1] as Extract<ColumnData, { kind: 'value' }>;
    rows.forEach(([x1, x2], i) => {
      const scores = coefficients.map((w, c) => w[0]! * x1! + w[1]! * x2! + intercepts[c]!);
      const p = softmax(scores);
      const best = p.indexOf(Math.max(...p));
      expect(labels.values[i]).toBe([10, 20, 30][best]);
      const got = probabilities.values[i] as number[];
      expect(got).toHaveLength(3);
      got.forEach((v, c) => expect(v).toBeCloseTo(p[c]!, 5));
    });
  });

  test('string class labels come back as strings', async () => {
    const runtime = await track(runtimeFor(linearClassifierModel([[1, 0], [0, 1]], [0, 0], ['cat', 'dog']), 'a DOUBLE, b DOUBLE', 'label STRING'));
    const out = await runtime.predictBatch({ rowCount: 2, columns: [num([5, 0]), num([0, 5])] });
    expect(out.columns[0]).toEqual({ kind: 'value', values: ['cat', 'dog'] });
  });

  test('ONNX-ML TreeEnsembleRegressor', async () => {
    const runtime = await track(runtimeFor(treeEnsembleRegressorModel(), 'x0 DOUBLE, x1 DOUBLE', 'y DOUBLE'));
    const x0 = [0, 1, 1.5, 2, 5, -3];
    const x1 = [0, 3, 5, 6, 2, 10];
    const out = await runtime.predictBatch({ rowCount: x0.length, columns: [num(x0), num(x1)] });
    expect(Array.from(out.columns[0]?.values as Float32Array)).toEqual(x0.map((v, i) => treeEnsembleExpected(v, x1[i]!)));
  });

  test('rows with a NULL input give NULL in every output', async () => {
    const runtime = await track(runtimeFor(linearClassifierModel([[1, 0], [0, 1]], [0, 0], [0, 1]), 'a DOUBLE, b DOUBLE', 'label BIGINT, probabilities ARRAY<FLOAT>'));
    const out = await runtime.predictBatch({ rowCount: 4, columns: [num([5, 1e9, 0, 2], [0, 1, 0, 0]), num([0, 0, 5, 0], [0, 0, 0, 1])] });
    const label = out.columns[0] as Extract<ColumnData, { kind: 'number' }>;
    expect(Array.from(label.nulls ?? [])).toEqual([0, 1, 0, 1]);
    expect(label.values[0]).toBe(0);
    expect(label.values[2]).toBe(1);
    const probs = out.columns[1] as Extract<ColumnData, { kind: 'value' }>;
    expect(probs.values[1]).toBeNull();
    expect(probs.values[3]).toBeNull();
    expect(probs.values[0]).toHaveLength(2);

    const typed = await track(runtimeFor(typedColumnsModel(), 'd DOUBLE, i BIGINT, j INT, s STRING, flag BOOLEAN', 's_out STRING, d2 DOUBLE, not_flag BOOLEAN'));
    const t = await typed.predictBatch({
      rowCount: 3,
      columns: [num([1, 2, 3]), num([1, 2, 3]), num([1, 2, 3]), { kind: 'value', values: ['a', null, 'c'] }, { kind: 'value', values: [true, true, undefined] }],
    });
    expect(t.columns[0]).toEqual({ kind: 'value', values: ['a', null, null] });
    expect(Array.from((t.columns[1] as Extract<ColumnData, { kind: 'number' }>).nulls ?? [])).toEqual([0, 1, 1]);
    expect(t.columns[2]).toEqual({ kind: 'value', values: [false, null, null] });
  });

  test('an empty batch gives empty columns', async () => {
    const runtime = await track(runtimeFor(linearRegressorModel([1], 0), 'a DOUBLE', 'y DOUBLE'));
    const out = await runtime.predictBatch({ rowCount: 0, columns: [num([])] });
    expect(out.rowCount).toBe(0);
    expect(out.columns[0]?.values).toHaveLength(0);
  });

  test('a batch of 100k rows', async () => {
    const weights = [1.5, -0.25, 2, 0.125];
    const runtime = await track(runtimeFor(linearRegressorModel(weights, -3), 'a DOUBLE, b DOUBLE, c DOUBLE, d DOUBLE', 'y DOUBLE'));
    const n = 100_000;
    const columns = weights.map((_, j) => Float64Array.from({ length: n }, (_, i) => ((i * (j + 3)) % 1000) / 8));
    const out = await runtime.predictBatch({ rowCount: n, columns: columns.map((values) => ({ kind: 'number' as const, values })) });
    const y = out.columns[0]?.values as Float32Array;
    expect(y).toHaveLength(n);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const expected = weights.reduce((acc, w, j) => acc + w * columns[j]![i]!, -3);
      worst = Math.max(worst, Math.abs(y[i]! - expected) / Math.max(1, Math.abs(expected)));
    }
    expect(worst).toBeLessThan(1e-5);
    // the caller's arrays were not transferred away
    expect(columns[0]!.length).toBe(n);
  });

  test('concurrent batches each get their own answer', async () => {
    const runtime = await track(runtimeFor(linearRegressorModel([1, 1], 0), 'a DOUBLE, b DOUBLE', 'y DOUBLE'));
    const batches: ColumnBatch[] = Array.from({ length: 6 }, (_, k) => {
      const n = 1000 + k * 777;
      return { rowCount: n, columns: [num(Array.from({ length: n }, (_, i) => i)), num(Array.from({ length: n }, () => k * 1000))] };
    });
    const results = await Promise.all(batches.map((b) => runtime.predictBatch(b)));
    results.forEach((r, k) => {
      expect(r.rowCount).toBe(batches[k]!.rowCount);
      const y = r.columns[0]?.values as Float32Array;
      expect(y[0]).toBe(k * 1000);
      expect(y[r.rowCount - 1]).toBe(r.rowCount - 1 + k * 1000);
    });
  });

  test('a pool of two workers gives the same answers', async () => {
    const runtime = await track(runtimeFor(linearRegressorModel([3], 1), 'a DOUBLE', 'y DOUBLE', { workers: 2 }));
    const results = await Promise.all([1, 2, 3, 4].map((k) => runtime.predictBatch({ rowCount: 2, columns: [num([k, -k])] })));
    expect(results.map((r) => Array.from(r.columns[0]?.values as Float32Array))).toEqual([1, 2, 3, 4].map((k) => [3 * k + 1, -3 * k + 1]));
  });

  test('inference does not block the event loop', async () => {
    const width = 64;
    const runtime = await track(runtimeFor(denseStackModel(width, 8, { sum: true }), Array.from({ length: width }, (_, j) => `c${j} DOUBLE`).join(', '), 'y DOUBLE'));
    const n = 1_000_000;
    const column = new Float64Array(n).fill(1);
    const batch: ColumnBatch = { rowCount: n, columns: Array.from({ length: width }, () => ({ kind: 'number' as const, values: column })) };
    // predictBatch builds the input tensor synchronously before it returns its promise;
    // from then on the run happens in the worker and this thread must stay free: the event
    // loop keeps turning until the answer comes. (Counted in turns, not against a clock: a
    // busy machine slows both threads alike. Run on this thread, the batch would be done
    // before the first turn.)
    const pending = runtime.predictBatch(batch);
    let settled = false;
    const done = pending.finally(() => (settled = true));
    let turns = 0;
    while (!settled) {
      await new Promise((resolve) => setImmediate(resolve));
      if (!settled) turns++;
    }
    const out = await done;
    const y = out.columns[0]?.values as Float32Array;
    expect(y).toHaveLength(n);
    expect(y[0]).toBeCloseTo(width, 2);
    expect(y[n - 1]).toBeCloseTo(width, 2);
    expect(turns).toBeGreaterThanOrEqual(3);
  });

  test('an aborted signal cancels queued work promptly', async () => {
    const width = 64;
    const runtime = await track(runtimeFor(denseStackModel(width, 4), Array.from({ length: width }, (_, j) => `c${j} DOUBLE`).join(', '), 'y ARRAY<FLOAT>'));
    const n = 200_000;
    const column = new Float64Array(n).fill(1);
    const heavy: ColumnBatch = { rowCount: n, columns: Array.from({ length: width }, () => ({ kind: 'number' as const, values: column })) };
    const controller = new AbortController();
    const first = runtime.predictBatch(heavy, { signal: controller.signal });
    const second = runtime.predictBatch(heavy, { signal: controller.signal });
    controller.abort();
    // Both answer before the event loop's next turn: neither waits for the worker (the running
    // one's late result is dropped), whatever the machine's speed.
    const nextTurn = new Promise((resolve) => setImmediate(() => resolve('the next turn came first')));
    const outcome = (p: Promise<unknown>) => Promise.race([p.then(() => 'resolved', (e: unknown) => e), nextTurn]);
    expect(await outcome(first)).toBeInstanceOf(QueryCanceledError);
    expect(await outcome(second)).toBeInstanceOf(QueryCanceledError);
    await expect(runtime.predictBatch(heavy, { signal: controller.signal })).rejects.toMatchObject({ sqlstate: '57014' });
    // the runtime still works afterwards
    const small: ColumnBatch = { rowCount: 1, columns: Array.from({ length: width }, () => num([2])) };
    const out = await runtime.predictBatch(small);
    expect(((out.columns[0] as Extract<ColumnData, { kind: 'value' }>).values[0] as number[])[0]).toBeCloseTo(2, 4);
  });

  test('inference errors come back as ModelRuntimeError', async () => {
    const runtime = await track(runtimeFor(fixedBatchModel(), 'x DOUBLE', 'y DOUBLE'));
    const ok = await runtime.predictBatch({ rowCount: 2, columns: [num([1, 2])] });
    expect(Array.from(ok.columns[0]?.values as Float32Array)).toEqual([1, 2]);
    const failed = runtime.predictBatch({ rowCount: 3, columns: [num([1, 2, 3])] });
    await expect(failed).rejects.toBeInstanceOf(ModelRuntimeError);
    await expect(failed).rejects.toMatchObject({ provider: 'onnx', sqlstate: '38000', message: expect.stringMatching(/ONNX inference failed/) });
    // the worker survives
    expect((await runtime.predictBatch({ rowCount: 2, columns: [num([3, 4])] })).columns[0]?.values[1]).toBe(4);
  });

  test('a worker crash rejects every pending batch; later batches get a new worker', async () => {
    const width = 64;
    const runtime = await track(runtimeFor(denseStackModel(width, 2), Array.from({ length: width }, (_, j) => `c${j} DOUBLE`).join(', '), 'y ARRAY<FLOAT>', { workers: 1 }));
    expect(runtime).toBeInstanceOf(OnnxModelRuntime);
    const small: ColumnBatch = { rowCount: 1, columns: Array.from({ length: width }, () => num([1])) };
    (runtime as OnnxModelRuntime).simulateWorkerCrash();
    const pending = [runtime.predictBatch(small), runtime.predictBatch(small), runtime.predictBatch(small)];
    const settled = await Promise.allSettled(pending);
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    for (const s of settled) {
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(ModelRuntimeError);
      expect(((s as PromiseRejectedResult).reason as Error).message).toMatch(/ONNX worker crashed/);
    }
    const out = await runtime.predictBatch(small);
    expect(((out.columns[0] as Extract<ColumnData, { kind: 'value' }>).values[0] as number[])[0]).toBeCloseTo(1, 4);
  });

  test('close() during a run rejects it at once and waits for the worker to finish safely', async () => {
    const width = 64;
    const runtime = await runtimeFor(denseStackModel(width, 8, { sum: true }), Array.from({ length: width }, (_, j) => `c${j} DOUBLE`).join(', '), 'y DOUBLE');
    const column = new Float64Array(300_000).fill(1);
    const running = runtime.predictBatch({ rowCount: column.length, columns: Array.from({ length: width }, () => ({ kind: 'number' as const, values: column })) });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closing = runtime.close();
    await expect(running).rejects.toThrow(/closed/);
    await closing;
  });

  test('close() rejects later batches', async () => {
    const runtime = await runtimeFor(linearRegressorModel([1], 0), 'a DOUBLE', 'y DOUBLE');
    await runtime.close();
    await expect(runtime.predictBatch({ rowCount: 1, columns: [num([1])] })).rejects.toBeInstanceOf(ModelRuntimeError);
  });

  test('bound from the signature its worker reports: the model is loaded off this thread', async () => {
    // Counts the sessions onnxruntime creates on this thread (a worker thread has its own copy
    // of the module, so its loads are not counted): inspectOnnx loads here, the runtime must not.
    const ort = await import('onnxruntime-node');
    const create = ort.InferenceSession.create;
    let loadsOnThisThread = 0;
    ort.InferenceSession.create = ((...args: Parameters<typeof create>) => {
      loadsOnThisThread += 1;
      return create.apply(ort.InferenceSession, args);
    }) as typeof create;
    try {
      const bytes = denseStackModel(64, 1);
      const inspected = await inspectOnnx(bytes);
      expect(loadsOnThisThread).toBe(1);
      let reported: unknown;
      const runtime = await track(
        createOnnxRuntime(bytes, (signature) => {
          reported = signature;
          const columns = defaultSignatureFor(signature);
          return bindOnnxSignature(signature, columns.inputs, columns.outputs);
        }),
      );
      expect(loadsOnThisThread).toBe(1);
      expect(reported).toEqual(inspected);
      const out = await runtime.predictBatch({ rowCount: 1, columns: Array.from({ length: 64 }, () => num([1])) });
      const y = out.columns[0]!.values[0] as readonly number[];
      expect([y.length, y[0], y[63]]).toEqual([64, expect.closeTo(1, 3), expect.closeTo(1, 3)]);
      expect(loadsOnThisThread).toBe(1);
    } finally {
      ort.InferenceSession.create = create;
    }
  }, 30_000);

  test('a binding that does not fit the reported signature fails createOnnxRuntime with its own error', async () => {
    const bytes = linearRegressorModel([1, 2], 0);
    await expect(createOnnxRuntime(bytes, (signature) => bindOnnxSignature(signature, cols('a DOUBLE'), cols('y DOUBLE')))).rejects.toMatchObject({ sqlstate: '42804' });
  });

  test('a model onnxruntime cannot load fails createOnnxRuntime', async () => {
    const binding = bindOnnxSignature(await inspectOnnx(linearRegressorModel([1], 0)), cols('a DOUBLE'), cols('y DOUBLE'));
    await expect(createOnnxRuntime(new TextEncoder().encode('garbage'), binding)).rejects.toBeInstanceOf(ModelRuntimeError);
    await expect(createOnnxRuntime(new TextEncoder().encode('garbage'), () => binding)).rejects.toMatchObject({ sqlstate: '22P03' });
  });
});
