/**
 * Builders for small ONNX test models, written with `onnx-proto` (the ONNX protobuf schema
 * compiled for protobufjs). Every builder returns the serialized `ModelProto` bytes.
 *
 * Models use opset 17 of the default domain (`ai.onnx`) and opset 3 of `ai.onnx.ml`,
 * IR version 8, and a symbolic batch dimension `N`. Encoding is deterministic: the same
 * arguments give the same bytes (the example models rely on this).
 *
 * Operator reference: https://onnx.ai/onnx/operators/ (ai.onnx) and
 * https://onnx.ai/onnx/operators/index_ml.html (ai.onnx.ml).
 */
import onnxp from 'onnx-proto';

const { onnx } = onnxp;

type ElemName = 'float' | 'double' | 'int32' | 'int64' | 'string' | 'bool';
type Dim = number | string;
type AttrValue = number | string | readonly number[] | readonly string[] | { readonly floats: readonly number[] } | { readonly ints: readonly number[] };

const ELEM: Readonly<Record<ElemName, number>> = {
  float: onnx.TensorProto.DataType.FLOAT,
  double: onnx.TensorProto.DataType.DOUBLE,
  int32: onnx.TensorProto.DataType.INT32,
  int64: onnx.TensorProto.DataType.INT64,
  string: onnx.TensorProto.DataType.STRING,
  bool: onnx.TensorProto.DataType.BOOL,
};

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A graph input or output declaration. */
export function valueInfo(name: string, elem: ElemName, dims: readonly Dim[]): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: ELEM[elem],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

/** A float32 initializer. */
export function floatTensor(name: string, dims: readonly number[], values: readonly number[]): InstanceType<typeof onnx.TensorProto> {
  return onnx.TensorProto.create({ name, dims: [...dims], dataType: ELEM.float, floatData: [...values] });
}

/** An int64 initializer. */
export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): InstanceType<typeof onnx.TensorProto> {
  return onnx.TensorProto.create({ name, dims: [...dims], dataType: ELEM.int64, int64Data: [...values] });
}

/**
 * An attribute. Numbers are INT when integral unless `floatAttrs` names them; arrays of
 * numbers are INTS unless wrapped as `{ floats }`.
 */
function attribute(name: string, value: AttrValue, floatAttr: boolean): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: utf8(value) });
  if (typeof value === 'number') {
    return floatAttr
      ? onnx.AttributeProto.create({ name, type: T.FLOAT, f: value })
      : onnx.AttributeProto.create({ name, type: T.INT, i: value });
  }
  if ('floats' in value) return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: [...value.floats] });
  if ('ints' in value) return onnx.AttributeProto.create({ name, type: T.INTS, ints: [...value.ints] });
  const arr = value as readonly (number | string)[];
  if (arr.length > 0 && typeof arr[0] === 'string') {
    return onnx.AttributeProto.create({ name, type: T.STRINGS, strings: (arr as readonly string[]).map(utf8) });
  }
  return onnx.AttributeProto.create({ name, type: T.INTS, ints: [...(arr as readonly number[])] });
}

/** A node; `attrs` values follow {@link attribute}; names in `floatAttrs` are FLOAT scalars. */
export function node(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs: Readonly<Record<string, AttrValue>> = {},
  domain = '',
  floatAttrs: readonly string[] = [],
): InstanceType<typeof onnx.NodeProto> {
  return onnx.NodeProto.create({
    opType,
    domain,
    input: [...inputs],
    output: [...outputs],
    name: `${opType}_${outputs[0] ?? ''}`,
    attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v, floatAttrs.includes(k))),
  });
}

export interface GraphParts {
  readonly nodes: readonly InstanceType<typeof onnx.NodeProto>[];
  readonly inputs: readonly InstanceType<typeof onnx.ValueInfoProto>[];
  readonly outputs: readonly InstanceType<typeof onnx.ValueInfoProto>[];
  readonly initializers?: readonly InstanceType<typeof onnx.TensorProto>[];
  readonly ml?: boolean;
  readonly name: string;
}

/** Serializes a model: IR 8, ai.onnx opset 17 (+ ai.onnx.ml opset 3 when `ml`). */
export function model(parts: GraphParts): Uint8Array {
  const opsetImport = [{ domain: '', version: 17 }];
  if (parts.ml) opsetImport.push({ domain: 'ai.onnx.ml', version: 3 });
  const proto = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'modelsql-test',
    opsetImport,
    graph: {
      name: parts.name,
      node: [...parts.nodes],
      input: [...parts.inputs],
      output: [...parts.outputs],
      initializer: [...(parts.initializers ?? [])],
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}

/** Options of {@link linearRegressorModel}. */
export interface LinearRegressorOptions {
  /** Output shape: `[N,1]` (default) or `[N]` (via Flatten + Squeeze). */
  readonly outputShape?: 'N1' | 'N';
  /** Input tensor name (default `x`). */
  readonly inputName?: string;
  /** Output tensor name (default `y`). */
  readonly outputName?: string;
}

/**
 * `y = x · weights + bias` as MatMul + Add over input `x` float `[N, k]`
 * (k = weights.length), output `y` float `[N, 1]` (or `[N]`).
 *
 * @example linearRegressorModel([2, 3], 1) // y = 2*x0 + 3*x1 + 1
 */
export function linearRegressorModel(weights: readonly number[], bias: number, options: LinearRegressorOptions = {}): Uint8Array {
  const k = weights.length;
  const x = options.inputName ?? 'x';
  const y = options.outputName ?? 'y';
  const flat = options.outputShape === 'N';
  const nodes = [node('MatMul', [x, 'W'], ['xw']), node('Add', ['xw', 'B'], [flat ? 'y2d' : y])];
  const initializers = [floatTensor('W', [k, 1], weights), floatTensor('B', [1], [bias])];
  if (flat) {
    nodes.push(node('Squeeze', ['y2d', 'axes'], [y]));
    initializers.push(int64Tensor('axes', [1], [1]));
  }
  return model({
    name: 'linear_regressor',
    nodes,
    inputs: [valueInfo(x, 'float', ['N', k])],
    outputs: [valueInfo(y, 'float', flat ? ['N'] : ['N', 1])],
    initializers,
  });
}

/**
 * ONNX-ML `LinearClassifier` (post_transform SOFTMAX, no ZipMap) over input `x` float
 * `[N, k]` with outputs `label` `[N]` (int64, or string when `classLabels` are strings)
 * and `probabilities` float `[N, C]`. `coefficients[c]` are the k weights of class c.
 *
 * https://onnx.ai/onnx/operators/onnx_aionnxml_LinearClassifier.html
 */
export function linearClassifierModel(
  coefficients: readonly (readonly number[])[],
  intercepts: readonly number[],
  classLabels: readonly number[] | readonly string[],
): Uint8Array {
  const k = coefficients[0]?.length ?? 0;
  const c = coefficients.length;
  const stringLabels = typeof classLabels[0] === 'string';
  const attrs: Record<string, AttrValue> = {
    coefficients: { floats: coefficients.flat() },
    intercepts: { floats: intercepts },
    post_transform: 'SOFTMAX',
    multi_class: 0,
  };
  if (stringLabels) attrs.classlabels_strings = classLabels as readonly string[];
  else attrs.classlabels_ints = { ints: classLabels as readonly number[] };
  return model({
    name: 'linear_classifier',
    ml: true,
    nodes: [node('LinearClassifier', ['x'], ['label', 'probabilities'], attrs, 'ai.onnx.ml')],
    inputs: [valueInfo('x', 'float', ['N', k])],
    outputs: [valueInfo('label', stringLabels ? 'string' : 'int64', ['N']), valueInfo('probabilities', 'float', ['N', c])],
  });
}

/**
 * One tensor per column: inputs `a` and `b`, float `[N, 1]`; output `y = 2a + b`
 * float `[N, 1]`.
 */
export function multiInputModel(): Uint8Array {
  return model({
    name: 'multi_input',
    nodes: [node('Mul', ['a', 'two'], ['a2']), node('Add', ['a2', 'b'], ['y'])],
    inputs: [valueInfo('a', 'float', ['N', 1]), valueInfo('b', 'float', ['N', 1])],
    outputs: [valueInfo('y', 'float', ['N', 1])],
    initializers: [floatTensor('two', [1], [2])],
  });
}

/**
 * Per-column tensors of every supported element type, shape `[N]`:
 * inputs `d` double, `i` int64, `j` int32, `s` string, `flag` bool; outputs
 * `d2 = 2d` double, `i1 = i + 1` int64, `j1 = j + 1` int32, `s_out = s` string,
 * `not_flag = !flag` bool.
 */
export function typedColumnsModel(): Uint8Array {
  return model({
    name: 'typed_columns',
    nodes: [
      node('Add', ['d', 'd'], ['d2']),
      node('Add', ['i', 'one64'], ['i1']),
      node('Add', ['j', 'one32'], ['j1']),
      node('Identity', ['s'], ['s_out']),
      node('Not', ['flag'], ['not_flag']),
    ],
    inputs: [
      valueInfo('d', 'double', ['N']),
      valueInfo('i', 'int64', ['N']),
      valueInfo('j', 'int32', ['N']),
      valueInfo('s', 'string', ['N']),
      valueInfo('flag', 'bool', ['N']),
    ],
    outputs: [
      valueInfo('d2', 'double', ['N']),
      valueInfo('i1', 'int64', ['N']),
      valueInfo('j1', 'int32', ['N']),
      valueInfo('s_out', 'string', ['N']),
      valueInfo('not_flag', 'bool', ['N']),
    ],
    initializers: [
      int64Tensor('one64', [1], [1]),
      onnx.TensorProto.create({ name: 'one32', dims: [1], dataType: ELEM.int32, int32Data: [1] }),
    ],
  });
}

/**
 * ONNX-ML `TreeEnsembleRegressor`, two trees over input `x` float `[N, 2]`, output `y`
 * float `[N, 1]`, aggregate SUM, base value 0.5:
 *
 * - tree 0: `x0 <= 1 ? 10 : (x1 <= 5 ? 20 : 30)`
 * - tree 1: `x1 <= 2 ? 1 : 2`
 *
 * So `y = 0.5 + tree0 + tree1`, see {@link treeEnsembleExpected}.
 *
 * https://onnx.ai/onnx/operators/onnx_aionnxml_TreeEnsembleRegressor.html
 */
export function treeEnsembleRegressorModel(): Uint8Array {
  // tree 0 nodes: 0 = x0<=1 (T→1, F→2), 1 = leaf 10, 2 = x1<=5 (T→3, F→4), 3 = leaf 20, 4 = leaf 30
  // tree 1 nodes: 0 = x1<=2 (T→1, F→2), 1 = leaf 1, 2 = leaf 2
  const attrs: Record<string, AttrValue> = {
    nodes_treeids: { ints: [0, 0, 0, 0, 0, 1, 1, 1] },
    nodes_nodeids: { ints: [0, 1, 2, 3, 4, 0, 1, 2] },
    nodes_featureids: { ints: [0, 0, 1, 0, 0, 1, 0, 0] },
    nodes_values: { floats: [1, 0, 5, 0, 0, 2, 0, 0] },
    nodes_modes: ['BRANCH_LEQ', 'LEAF', 'BRANCH_LEQ', 'LEAF', 'LEAF', 'BRANCH_LEQ', 'LEAF', 'LEAF'],
    nodes_truenodeids: { ints: [1, 0, 3, 0, 0, 1, 0, 0] },
    nodes_falsenodeids: { ints: [2, 0, 4, 0, 0, 2, 0, 0] },
    target_treeids: { ints: [0, 0, 0, 1, 1] },
    target_nodeids: { ints: [1, 3, 4, 1, 2] },
    target_ids: { ints: [0, 0, 0, 0, 0] },
    target_weights: { floats: [10, 20, 30, 1, 2] },
    base_values: { floats: [0.5] },
    n_targets: 1,
    aggregate_function: 'SUM',
    post_transform: 'NONE',
  };
  return model({
    name: 'tree_ensemble',
    ml: true,
    nodes: [node('TreeEnsembleRegressor', ['x'], ['y'], attrs, 'ai.onnx.ml')],
    inputs: [valueInfo('x', 'float', ['N', 2])],
    outputs: [valueInfo('y', 'float', ['N', 1])],
  });
}

/** The value {@link treeEnsembleRegressorModel} computes, in plain JS. */
export function treeEnsembleExpected(x0: number, x1: number): number {
  const t0 = x0 <= 1 ? 10 : x1 <= 5 ? 20 : 30;
  const t1 = x1 <= 2 ? 1 : 2;
  return 0.5 + t0 + t1;
}

/**
 * A deliberately heavy model: `layers` chained `width × width` MatMuls (all weights
 * `1/width`) over `x` float `[N, width]` to `y` float `[N, width]`, or, with `sum`, to
 * `y` float `[N, 1]` = the row sum of the last layer (ReduceSum). With an input of all
 * ones every element of every layer is 1. Used to check that inference does not block
 * the event loop.
 */
export function denseStackModel(width: number, layers: number, options: { readonly sum?: boolean } = {}): Uint8Array {
  const nodes = [];
  let prev = 'x';
  for (let l = 0; l < layers; l++) {
    const out = l === layers - 1 && !options.sum ? 'y' : `h${l}`;
    nodes.push(node('MatMul', [prev, 'W'], [out]));
    prev = out;
  }
  const initializers = [floatTensor('W', [width, width], new Array<number>(width * width).fill(1 / width))];
  if (options.sum) {
    nodes.push(node('ReduceSum', [prev, 'axes'], ['y'], { keepdims: 1 }));
    initializers.push(int64Tensor('axes', [1], [1]));
  }
  return model({
    name: 'dense_stack',
    nodes,
    inputs: [valueInfo('x', 'float', ['N', width])],
    outputs: [valueInfo('y', 'float', ['N', options.sum ? 1 : width])],
    initializers,
  });
}

/**
 * A model whose input has a fixed batch dimension of 2 (`x` float `[2, 1]` → `y` `[2, 1]`),
 * so feeding any other row count fails inside onnxruntime at run time.
 */
export function fixedBatchModel(): Uint8Array {
  return model({
    name: 'fixed_batch',
    nodes: [node('Identity', ['x'], ['y'])],
    inputs: [valueInfo('x', 'float', [2, 1])],
    outputs: [valueInfo('y', 'float', [2, 1])],
  });
}
