/**
 * How many token ids a text model's graph can look up: the rows of the embedding table that
 * `input_ids` index, read from the graph's initializers without loading it. A tokenizer whose
 * ids reach past it makes onnxruntime fail every run ("Gather ... out of bounds") after the
 * whole batch was tokenized; knowing the table's size, CREATE MODEL refuses it instead.
 *
 * The graph is walked in the protobuf wire format
 * (https://protobuf.dev/programming-guides/encoding/) over the fields of ONNX's `onnx.proto`
 * (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto) that say it: `ModelProto.graph`
 * (7), `GraphProto.node` (1), `.initializer` (5), `NodeProto.input` (1), `.output` (2),
 * `.op_type` (4), `.attribute` (5), `TensorProto.dims` (1), `.name` (8). Weights are skipped
 * by their length, not decoded (onnx-proto's generated decoder would build every tensor).
 *
 * Recognised: a `Gather` (axis 0) of an initializer, or of a `DequantizeLinear`/`Cast` of
 * one, indexed by `input_ids` (directly or through `Cast`, `Reshape`, `Unsqueeze`, ...), as
 * PyTorch and optimum export embeddings; and onnxruntime's fused `EmbedLayerNormalization`
 * (word embedding at input 2). Anything else: unknown, and nothing is refused.
 */

/** A node of the top-level graph, as far as this module reads it. */
interface GraphNode {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** The `axis` attribute, when given. */
  readonly axis?: number;
}

/** What {@link embeddingTable} found: the initializer and its first dimension. */
export interface EmbeddingTable {
  readonly name: string;
  readonly rows: number;
}

/** Ops that pass `input_ids`' values on unchanged (type or shape only). */
const PASS_IDS = new Set(['Cast', 'Identity', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten']);
/** Ops between a stored table and its Gather that keep its rows. */
const PASS_TABLE = new Set(['DequantizeLinear', 'Cast', 'Identity']);

/**
 * The embedding table `ids` (a graph input) index in `graph`, or undefined when the graph
 * does not say (no recognised lookup, a table computed at run time, an unreadable file).
 *
 * @example
 * embeddingTable(bytes); // { name: 'embeddings.word_embeddings.weight', rows: 30522 }
 */
export function embeddingTable(graph: Uint8Array, ids = 'input_ids'): EmbeddingTable | undefined {
  let parsed: { nodes: GraphNode[]; initializers: Map<string, number> } | undefined;
  try {
    parsed = readGraph(graph);
  } catch {
    return undefined;
  }
  if (parsed === undefined) return undefined;
  const { nodes, initializers } = parsed;
  const producer = new Map<string, GraphNode>();
  for (const n of nodes) for (const o of n.outputs) producer.set(o, n);
  // Names carrying the ids' values.
  const carriers = new Set([ids]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const n of nodes) {
      if (PASS_IDS.has(n.opType) && carriers.has(n.inputs[0] ?? '') && n.outputs[0] !== undefined && !carriers.has(n.outputs[0])) {
        carriers.add(n.outputs[0]);
        grew = true;
      }
    }
  }
  const stored = (name: string | undefined): EmbeddingTable | undefined => {
    for (let depth = 0; name !== undefined && depth < 4; depth++) {
      const rows = initializers.get(name);
      if (rows !== undefined) return { name, rows };
      const from = producer.get(name);
      name = from && PASS_TABLE.has(from.opType) ? from.inputs[0] : undefined;
    }
    return undefined;
  };
  let best: EmbeddingTable | undefined;
  for (const n of nodes) {
    let table: EmbeddingTable | undefined;
    if (n.opType === 'Gather' && (n.axis ?? 0) === 0 && carriers.has(n.inputs[1] ?? '')) table = stored(n.inputs[0]);
    else if (n.opType === 'EmbedLayerNormalization' && carriers.has(n.inputs[0] ?? '')) table = stored(n.inputs[2]);
    if (table !== undefined && (best === undefined || table.rows < best.rows)) best = table;
  }
  return best;
}

/** The nodes of the top-level graph and the first dimension of each initializer of rank ≥ 1. */
function readGraph(bytes: Uint8Array): { nodes: GraphNode[]; initializers: Map<string, number> } | undefined {
  let graph: Uint8Array | undefined;
  for (const f of fields(bytes)) if (f.number === 7 && f.bytes) graph = f.bytes;
  if (graph === undefined) return undefined;
  const nodes: GraphNode[] = [];
  const initializers = new Map<string, number>();
  for (const f of fields(graph)) {
    if (f.number === 1 && f.bytes) nodes.push(readNode(f.bytes));
    else if (f.number === 5 && f.bytes) {
      let name = '';
      const dims: number[] = [];
      for (const t of fields(f.bytes)) {
        if (t.number === 8 && t.bytes) name = text(t.bytes);
        else if (t.number === 1 && t.bytes) dims.push(...packedVarints(t.bytes));
        else if (t.number === 1 && t.value !== undefined) dims.push(t.value);
      }
      if (dims.length > 0 && name !== '') initializers.set(name, dims[0]!);
    }
  }
  return { nodes, initializers };
}

function readNode(bytes: Uint8Array): GraphNode {
  const inputs: string[] = [];
  const outputs: string[] = [];
  let opType = '';
  let axis: number | undefined;
  for (const f of fields(bytes)) {
    if (!f.bytes) continue;
    if (f.number === 1) inputs.push(text(f.bytes));
    else if (f.number === 2) outputs.push(text(f.bytes));
    else if (f.number === 4) opType = text(f.bytes);
    else if (f.number === 5) {
      // AttributeProto: name (1), i (3).
      let name = '';
      let i: number | undefined;
      for (const a of fields(f.bytes)) {
        if (a.number === 1 && a.bytes) name = text(a.bytes);
        else if (a.number === 3 && a.value !== undefined) i = a.value;
      }
      if (name === 'axis') axis = i;
    }
  }
  return { opType, inputs, outputs, ...(axis === undefined ? {} : { axis }) };
}

const decoder = new TextDecoder();
const text = (bytes: Uint8Array): string => decoder.decode(bytes);

/** One field of a message: a varint's value, or a length-delimited field's bytes (a view, not a copy). */
interface Field {
  readonly number: number;
  readonly value?: number;
  readonly bytes?: Uint8Array;
}

/** The fields of one message, in order. Throws on a truncated or malformed message. */
function* fields(bytes: Uint8Array): Generator<Field> {
  const at = { i: 0 };
  while (at.i < bytes.length) {
    const key = varint(bytes, at);
    const number = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) yield { number, value: varint(bytes, at) };
    else if (wire === 2) {
      const length = varint(bytes, at);
      const end = at.i + length;
      if (end > bytes.length) throw new RangeError('truncated field');
      yield { number, bytes: bytes.subarray(at.i, end) };
      at.i = end;
    } else if (wire === 1) at.i += 8;
    else if (wire === 5) at.i += 4;
    else throw new RangeError(`wire type ${wire}`);
  }
  if (at.i > bytes.length) throw new RangeError('truncated message');
}

/** A base-128 varint as a number (exact up to 2^53; larger, as int64 dims never are). */
function varint(bytes: Uint8Array, at: { i: number }): number {
  let value = 0;
  for (let shift = 0; shift < 70; shift += 7) {
    if (at.i >= bytes.length) throw new RangeError('truncated varint');
    const b = bytes[at.i++]!;
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return value;
  }
  throw new RangeError('varint too long');
}

function packedVarints(bytes: Uint8Array): number[] {
  const out: number[] = [];
  const at = { i: 0 };
  while (at.i < bytes.length) out.push(varint(bytes, at));
  return out;
}
