/**
 * Writes a trained model as an ONNX graph (SPEC §3: every trained model is stored as an
 * ONNX artifact that onnxruntime loads on its own). Computation is in double precision so
 * that the graph agrees with the compiled SQL; ONNX-ML operators where they fit
 * (`OneHotEncoder`, `TreeEnsembleRegressor`), plain ai.onnx operators elsewhere.
 *
 * Graph inputs: one tensor `[N, 1]` per INPUT column, named after it: `double` for numbers
 * (NaN is imputed with the training mean), `bool` for booleans, `string` for categories (a
 * value that is not a category encodes as all zeros). Outputs: one per OUTPUT column,
 * named after it: `[N, 1]` scalars, `[N, C]` probabilities.
 *
 * Operators: https://onnx.ai/onnx/operators/ and https://onnx.ai/onnx/operators/index_ml.html
 */
import { createRequire } from 'node:module';
import type onnxProto from 'onnx-proto';
import type { ClassValue, FeatureEncoding, TrainedModel, TreeNode } from './trained-model.js';

type Onnx = typeof onnxProto.onnx;
let loaded: Onnx | undefined;
/** onnx-proto's message classes, loaded on first use: a large module that only training needs. */
function onnx(): Onnx {
  loaded ??= (createRequire(import.meta.url)('onnx-proto') as typeof onnxProto).onnx;
  return loaded;
}

type NodeProto = InstanceType<Onnx['NodeProto']>;
type TensorProto = InstanceType<Onnx['TensorProto']>;
type ValueInfoProto = InstanceType<Onnx['ValueInfoProto']>;
type Attr = number | string | readonly number[] | readonly string[] | { readonly floats: readonly number[] } | { readonly f: number };

/** ONNX's TensorProto.DataType codes (https://onnx.ai/onnx/api/mapping.html). */
const T = { INT64: 7, STRING: 8, BOOL: 9, DOUBLE: 11 } as const;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Accumulates nodes and initializers with unique names. */
class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private counter = 0;

  name(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** Adds a node; returns its first output. */
  node(opType: string, inputs: readonly string[], attrs: Readonly<Record<string, Attr>> = {}, options: { domain?: string; outputs?: readonly string[] } = {}): string {
    const outputs = options.outputs ?? [this.name(opType.toLowerCase())];
    this.nodes.push(
      onnx().NodeProto.create({
        opType,
        domain: options.domain ?? '',
        input: [...inputs],
        output: [...outputs],
        name: this.name(`n_${opType}`),
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return outputs[0]!;
  }

  doubles(dims: readonly number[], values: readonly number[]): string {
    const name = this.name('c');
    this.initializers.push(onnx().TensorProto.create({ name, dims: [...dims], dataType: T.DOUBLE, doubleData: [...values] }));
    return name;
  }

  int64s(dims: readonly number[], values: readonly number[]): string {
    const name = this.name('i');
    this.initializers.push(onnx().TensorProto.create({ name, dims: [...dims], dataType: T.INT64, int64Data: [...values] }));
    return name;
  }

  classes(values: readonly ClassValue[], type: string): { readonly name: string; readonly elem: number } {
    const name = this.name('classes');
    const dims = [values.length];
    let tensor: TensorProto;
    let elem: number;
    if (typeof values[0] === 'string') {
      elem = T.STRING;
      tensor = onnx().TensorProto.create({ name, dims, dataType: elem, stringData: values.map((v) => utf8(String(v))) });
    } else if (typeof values[0] === 'boolean') {
      elem = T.BOOL;
      tensor = onnx().TensorProto.create({ name, dims, dataType: elem, int32Data: values.map((v) => (v ? 1 : 0)) });
    } else if (isIntegerType(type)) {
      elem = T.INT64;
      tensor = onnx().TensorProto.create({ name, dims, dataType: elem, int64Data: values.map(Number) });
    } else {
      elem = T.DOUBLE;
      tensor = onnx().TensorProto.create({ name, dims, dataType: elem, doubleData: values.map(Number) });
    }
    this.initializers.push(tensor);
    return { name, elem };
  }
}

function attribute(name: string, value: Attr): InstanceType<Onnx['AttributeProto']> {
  const A = onnx().AttributeProto.AttributeType;
  if (typeof value === 'string') return onnx().AttributeProto.create({ name, type: A.STRING, s: utf8(value) });
  if (typeof value === 'number') return onnx().AttributeProto.create({ name, type: A.INT, i: value });
  if ('floats' in value) return onnx().AttributeProto.create({ name, type: A.FLOATS, floats: [...value.floats] });
  if ('f' in value) return onnx().AttributeProto.create({ name, type: A.FLOAT, f: value.f });
  const list = value as readonly (number | string)[];
  if (list.length > 0 && typeof list[0] === 'string') return onnx().AttributeProto.create({ name, type: A.STRINGS, strings: (list as readonly string[]).map(utf8) });
  return onnx().AttributeProto.create({ name, type: A.INTS, ints: [...(list as readonly number[])] });
}

function valueInfo(name: string, elem: number, dims: readonly (number | string)[]): ValueInfoProto {
  return onnx().ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: elem, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
}

function isIntegerType(type: string): boolean {
  return ['TINYINT', 'SMALLINT', 'INT', 'INTEGER', 'BIGINT'].includes(type.toUpperCase().replace(/ NOT NULL$/, ''));
}

/** Encodes one feature from its input tensor to a `[N, width]` double tensor. */
function encode(g: GraphBuilder, f: FeatureEncoding, input: string): string {
  if (f.kind === 'categorical') {
    const hot = g.node('OneHotEncoder', [input], { cats_strings: f.categories, zeros: 1 }, { domain: 'ai.onnx.ml' });
    const flat = g.node('Reshape', [hot, g.int64s([2], [-1, f.categories.length])]);
    return g.node('Cast', [flat], { to: T.DOUBLE });
  }
  let value: string;
  if (f.boolean) {
    value = g.node('Cast', [input], { to: T.DOUBLE });
  } else {
    const mean = g.doubles([1], [f.mean]);
    value = g.node('Where', [g.node('IsNaN', [input]), mean, input]);
  }
  const centered = g.node('Sub', [value, g.doubles([1], [f.mean])]);
  return g.node('Div', [centered, g.doubles([1], [f.std])]);
}

/** Flattens trees into TreeEnsembleRegressor attributes (BRANCH_LEQ: `x <= threshold` goes to the true branch). */
function treeEnsemble(g: GraphBuilder, x: string, groups: readonly (readonly TreeNode[])[], base: readonly number[]): string {
  const a = {
    nodes_treeids: [] as number[],
    nodes_nodeids: [] as number[],
    nodes_featureids: [] as number[],
    nodes_modes: [] as string[],
    nodes_values: [] as number[],
    nodes_truenodeids: [] as number[],
    nodes_falsenodeids: [] as number[],
    target_treeids: [] as number[],
    target_nodeids: [] as number[],
    target_ids: [] as number[],
    target_weights: [] as number[],
  };
  let treeId = 0;
  groups.forEach((trees, target) => {
    for (const tree of trees) {
      let next = 0;
      const visit = (node: TreeNode): number => {
        const id = next++;
        const at = a.nodes_nodeids.length;
        a.nodes_treeids.push(treeId);
        a.nodes_nodeids.push(id);
        if (node.leaf) {
          a.nodes_featureids.push(0);
          a.nodes_modes.push('LEAF');
          a.nodes_values.push(0);
          a.nodes_truenodeids.push(0);
          a.nodes_falsenodeids.push(0);
          a.target_treeids.push(treeId);
          a.target_nodeids.push(id);
          a.target_ids.push(target);
          a.target_weights.push(node.value);
        } else {
          a.nodes_featureids.push(node.feature);
          a.nodes_modes.push('BRANCH_LEQ');
          a.nodes_values.push(node.threshold);
          a.nodes_truenodeids.push(0);
          a.nodes_falsenodeids.push(0);
          a.nodes_truenodeids[at] = visit(node.left);
          a.nodes_falsenodeids[at] = visit(node.right);
        }
        return id;
      };
      visit(tree);
      treeId++;
    }
  });
  const thresholds = g.name('thresholds');
  const weights = g.name('weights');
  g.initializers.push(onnx().TensorProto.create({ name: thresholds, dims: [a.nodes_values.length], dataType: T.DOUBLE, doubleData: a.nodes_values }));
  g.initializers.push(onnx().TensorProto.create({ name: weights, dims: [a.target_weights.length], dataType: T.DOUBLE, doubleData: a.target_weights }));
  const { nodes_values: _values, target_weights: _weights, ...rest } = a;
  const out = g.node(
    'TreeEnsembleRegressor',
    [x],
    { ...rest, n_targets: groups.length, aggregate_function: 'SUM', post_transform: 'NONE' },
    { domain: 'ai.onnx.ml' },
  );
  // nodes_values_as_tensor / target_weights_as_tensor hold the doubles (attributes must be tensors, added below).
  const node = g.nodes[g.nodes.length - 1]!;
  node.attribute.push(
    onnx().AttributeProto.create({ name: 'nodes_values_as_tensor', type: onnx().AttributeProto.AttributeType.TENSOR, t: g.initializers.find((i) => i.name === thresholds)! }),
    onnx().AttributeProto.create({ name: 'target_weights_as_tensor', type: onnx().AttributeProto.AttributeType.TENSOR, t: g.initializers.find((i) => i.name === weights)! }),
  );
  g.initializers.splice(g.initializers.findIndex((i) => i.name === thresholds), 1);
  g.initializers.splice(g.initializers.findIndex((i) => i.name === weights), 1);
  return g.node('Add', [g.node('Cast', [out], { to: T.DOUBLE }), g.doubles([base.length], [...base])]);
}

/**
 * The ONNX bytes of a trained model (IR 8, ai.onnx opset 17, ai.onnx.ml opset 3).
 *
 * @example
 * const bytes = exportOnnx(spec); // load with ort.InferenceSession.create(bytes)
 */
export function exportOnnx(spec: TrainedModel): Uint8Array {
  const g = new GraphBuilder();
  const inputs: ValueInfoProto[] = [];
  const encoded = spec.features.map((f) => {
    const elem = f.kind === 'categorical' ? T.STRING : f.boolean ? T.BOOL : T.DOUBLE;
    inputs.push(valueInfo(f.name, elem, ['N', 1]));
    return encode(g, f, f.name);
  });
  const x = encoded.length === 1 ? encoded[0]! : g.node('Concat', encoded, { axis: 1 });
  const outputs: ValueInfoProto[] = [];
  const [first, second] = spec.output;
  const p = spec.parameters;
  const classify = (logitsOrProbs: string, classes: readonly ClassValue[], isProbabilities: boolean) => {
    const probs = isProbabilities ? g.node('Identity', [logitsOrProbs], {}, { outputs: [second!.name] }) : g.node('Softmax', [logitsOrProbs], { axis: 1 }, { outputs: [second!.name] });
    const index = g.node('ArgMax', [probs], { axis: 1, keepdims: 1 });
    const table = g.classes(classes, spec.label!.type);
    g.node('Gather', [table.name, index], { axis: 0 }, { outputs: [first!.name] });
    outputs.push(valueInfo(first!.name, table.elem, ['N', 1]), valueInfo(second!.name, T.DOUBLE, ['N', classes.length]));
  };
  /** Binary logits `[N, 1]` → `[N, 2]` as `[0, z]`, so that softmax gives `[1 - σ(z), σ(z)]`. */
  const binaryLogits = (z: string) => g.node('Concat', [g.node('Sub', [z, z]), z], { axis: 1 });
  switch (p.kind) {
    case 'linear': {
      const xw = g.node('MatMul', [x, g.doubles([p.weights.length, 1], p.weights)]);
      g.node('Add', [xw, g.doubles([1], [p.intercept])], {}, { outputs: [first!.name] });
      outputs.push(valueInfo(first!.name, T.DOUBLE, ['N', 1]));
      break;
    }
    case 'logistic': {
      const width = p.weights[0]!.length;
      const transposed = Array.from({ length: width }, (_, j) => p.weights.map((w) => w[j]!)).flat();
      const z = g.node('Add', [g.node('MatMul', [x, g.doubles([width, p.weights.length], transposed)]), g.doubles([p.intercepts.length], p.intercepts)]);
      classify(p.weights.length === 1 ? binaryLogits(z) : z, p.classes, false);
      break;
    }
    case 'kmeans': {
      const k = p.centroids.length;
      const width = p.centroids[0]!.length;
      const expanded = g.node('Unsqueeze', [x, g.int64s([1], [1])]);
      const diff = g.node('Sub', [expanded, g.doubles([k, width], p.centroids.flat())]);
      const distances = g.node('ReduceSum', [g.node('Mul', [diff, diff]), g.int64s([1], [2])], { keepdims: 0 });
      g.node('ArgMin', [distances], { axis: 1, keepdims: 1 }, { outputs: [first!.name] });
      outputs.push(valueInfo(first!.name, T.INT64, ['N', 1]));
      break;
    }
    case 'trees': {
      const scores = treeEnsemble(g, x, p.trees, p.base);
      if (spec.task === 'regression') {
        g.node('Identity', [scores], {}, { outputs: [first!.name] });
        outputs.push(valueInfo(first!.name, T.DOUBLE, ['N', 1]));
      } else {
        classify(p.trees.length === 1 && !p.probabilityLeaves ? binaryLogits(scores) : scores, p.classes!, p.probabilityLeaves);
      }
      break;
    }
  }
  const proto = onnx().ModelProto.create({
    irVersion: 8,
    producerName: 'modelsql',
    opsetImport: [
      { domain: '', version: 17 },
      { domain: 'ai.onnx.ml', version: 3 },
    ],
    graph: { name: `${spec.algorithm}`, node: g.nodes, input: inputs, output: outputs, initializer: g.initializers },
  });
  return onnx().ModelProto.encode(proto).finish();
}
