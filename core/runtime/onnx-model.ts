/**
 * ONNX model inspection and binding (SPEC §2.1): what tensors a graph takes and gives,
 * and how a model's INPUT/OUTPUT columns feed and read them. Binding happens at CREATE
 * MODEL time, so that mismatches are reported then and not at query time.
 *
 * The bytes themselves come from {@link loadModelBytes} (re-exported here).
 */
import type * as Ort from 'onnxruntime-node';
import { ModelSqlError } from '../errors.js';
import { signatureOf } from './onnx-signature.js';
import type { ModelColumn } from '../model-types.js';

export { loadModelBytes, isModelUrl, isUrlAllowed } from './onnx-model-loader.js';
export type { LoadModelOptions } from './onnx-model-loader.js';

/**
 * Element type of a tensor, spelled as onnxruntime spells it (`float32` is ONNX `float`,
 * `float64` is ONNX `double`), or `non-tensor` for sequences and maps (e.g. a ZipMap).
 */
export type OnnxElementType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'string'
  | 'bool'
  | 'non-tensor'
  | (string & {});

/** One graph input or output. */
export interface OnnxValueInfo {
  readonly name: string;
  readonly elementType: OnnxElementType;
  /**
   * Dimensions: a number for a fixed size, a string for a symbolic one (`''` when the
   * dimension is unnamed). `null` when the rank is unknown (or for non-tensors).
   */
  readonly shape: readonly (number | string)[] | null;
}

/** The inputs and outputs of an ONNX graph. */
export interface OnnxSignature {
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
}

/** Element types a column can feed. */
export type OnnxFeedType = 'float32' | 'float64' | 'int32' | 'int64' | 'string' | 'bool';

/** One tensor fed with one INPUT column. */
export interface OnnxColumnFeed {
  /** Tensor name. */
  readonly tensor: string;
  readonly elementType: OnnxFeedType;
  /** 1 for `[N]`, 2 for `[N, 1]`. */
  readonly rank: 1 | 2;
}

/** How the INPUT columns feed the graph. */
export type OnnxInputBinding =
  /** One 2-D tensor `[N, k]`, row-major, column j of the batch in slot j. */
  | { readonly mode: 'matrix'; readonly tensor: string; readonly elementType: 'float32' | 'float64'; readonly width: number }
  /** One tensor per INPUT column, `feeds[j]` for column j. */
  | { readonly mode: 'columns'; readonly feeds: readonly OnnxColumnFeed[] };

/** How one OUTPUT column is read. */
export interface OnnxOutputBinding {
  /** The OUTPUT column. */
  readonly column: string;
  /** The tensor it reads. */
  readonly tensor: string;
  readonly elementType: OnnxElementType;
  /** `scalar`: one value per row (`[N]` / `[N,1]`); `array`: a `number[]` per row (`[N, C]`). */
  readonly shape: 'scalar' | 'array';
  /** `number` for numeric tensors, `string`, or `boolean`. */
  readonly valueKind: 'number' | 'string' | 'boolean';
}

/** The result of {@link bindOnnxSignature}: plain data, safe to serialize or post to a worker. */
export interface OnnxBinding {
  readonly input: OnnxInputBinding;
  /** One entry per OUTPUT column, in OUTPUT order. */
  readonly outputs: readonly OnnxOutputBinding[];
  /** How each INPUT column should be handed over (`number` typed arrays or `value` arrays). */
  readonly inputKinds: readonly ('number' | 'value')[];
}

/**
 * Reads the signature of an ONNX model by loading it in onnxruntime (which validates the
 * whole graph, so unsupported operators are caught here too).
 *
 * Corrupt or non-ONNX bytes reject with SQLSTATE 22P03 (invalid_binary_representation).
 *
 * @example
 * const sig = await inspectOnnx(bytes);
 * // { inputs: [{ name: 'x', elementType: 'float32', shape: ['N', 3] }], outputs: [...] }
 */
export async function inspectOnnx(bytes: Uint8Array): Promise<OnnxSignature> {
  if (bytes.byteLength === 0) throw new ModelSqlError('22P03', 'invalid ONNX model: the file is empty');
  let session: Ort.InferenceSession;
  try {
    // Loaded on first use: onnxruntime's native library is not needed by sessions that never inspect a model.
    const ort = await import('onnxruntime-node');
    session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1, interOpNumThreads: 1 });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ModelSqlError('22P03', `invalid ONNX model: ${reason}`, { cause: error });
  }
  try {
    return signatureOf(session);
  } finally {
    await session.release();
  }
}

/** Formats a tensor as `x float32[N,3]` for messages. */
export function describeValue(v: OnnxValueInfo): string {
  if (v.elementType === 'non-tensor') return `${v.name} (non-tensor)`;
  const dims = v.shape === null ? '[?]' : `[${v.shape.map((d) => (d === '' ? '?' : String(d))).join(',')}]`;
  return `${v.name} ${v.elementType}${dims}`;
}

/** Formats a whole signature for messages. */
export function describeSignature(sig: OnnxSignature): string {
  return `inputs (${sig.inputs.map(describeValue).join(', ')}), outputs (${sig.outputs.map(describeValue).join(', ')})`;
}

/** What a Flink column type means to the binder. */
type ColumnClass =
  | { readonly kind: 'number' }
  | { readonly kind: 'string' }
  | { readonly kind: 'boolean' }
  | { readonly kind: 'array'; readonly element: 'number' | 'other' }
  | { readonly kind: 'other' };

const NUMERIC_TYPES = new Set(['TINYINT', 'SMALLINT', 'INT', 'INTEGER', 'BIGINT', 'FLOAT', 'REAL', 'DOUBLE', 'DOUBLE PRECISION', 'DECIMAL', 'NUMERIC', 'DEC']);
const STRING_TYPES = new Set(['STRING', 'VARCHAR', 'CHAR', 'TEXT', 'CHARACTER VARYING', 'CHARACTER']);

function classify(type: string): ColumnClass {
  const t = type
    .trim()
    .toUpperCase()
    .replace(/\s+NOT\s+NULL$/, '')
    .replace(/\s+/g, ' ');
  const array = /^ARRAY\s*<(.*)>$/.exec(t);
  if (array) {
    const inner = classify(array[1] ?? '');
    return { kind: 'array', element: inner.kind === 'number' ? 'number' : 'other' };
  }
  const base = t.replace(/\s*\(.*\)$/, '');
  if (NUMERIC_TYPES.has(base)) return { kind: 'number' };
  if (STRING_TYPES.has(base)) return { kind: 'string' };
  if (base === 'BOOLEAN' || base === 'BOOL') return { kind: 'boolean' };
  return { kind: 'other' };
}

const NUMERIC_ELEMENTS = new Set(['float32', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);
const FEEDABLE = new Set<string>(['float32', 'float64', 'int32', 'int64', 'string', 'bool']);

const elementKind = (e: OnnxElementType): 'number' | 'string' | 'boolean' | 'other' =>
  NUMERIC_ELEMENTS.has(e) ? 'number' : e === 'string' ? 'string' : e === 'bool' ? 'boolean' : 'other';

function mismatch(message: string, sig: OnnxSignature): ModelSqlError {
  return new ModelSqlError('42804', `${message}; the model has ${describeSignature(sig)}`);
}

const columnList = (cols: readonly ModelColumn[]): string => cols.map((c) => `${c.name} ${c.type}`).join(', ');

/** Finds a tensor by exact name, else by a unique case-insensitive match. */
function byName<T extends { readonly name: string }>(items: readonly T[], name: string): T | undefined {
  const exact = items.find((i) => i.name === name);
  if (exact) return exact;
  const folded = items.filter((i) => i.name.toLowerCase() === name.toLowerCase());
  return folded.length === 1 ? folded[0] : undefined;
}

/**
 * Decides how a model's INPUT columns feed the graph and how its OUTPUT columns read it,
 * or throws a ModelSqlError 42804 (datatype_mismatch) that names the model's actual
 * inputs and outputs.
 *
 * Inputs: one 2-D float/double tensor `[N, k]` with k = number of INPUT columns (fed in
 * column order), or else one tensor per INPUT column, matched by name (`[N]` or `[N,1]`;
 * float, double, int32, int64, string or bool).
 *
 * Outputs: by name when every OUTPUT column names a model output (other outputs are
 * ignored), else by position (trailing model outputs are ignored). `[N]` / `[N,1]` maps to
 * a scalar column, `[N, C]` to `ARRAY<FLOAT>` / `ARRAY<DOUBLE>`.
 *
 * @example
 * bindOnnxSignature(sig, [{ name: 'sqft', type: 'DOUBLE' }, ...], [{ name: 'price', type: 'DOUBLE' }]);
 */
export function bindOnnxSignature(signature: OnnxSignature, inputs: readonly ModelColumn[], outputs: readonly ModelColumn[]): OnnxBinding {
  if (signature.inputs.length === 0) throw mismatch('the ONNX model has no inputs', signature);
  if (inputs.length === 0) throw mismatch('the model declares no INPUT columns', signature);
  if (outputs.length === 0) throw mismatch('the model declares no OUTPUT columns', signature);
  const input = bindInputs(signature, inputs);
  const inputKinds = input.mode === 'matrix' ? inputs.map(() => 'number' as const) : input.feeds.map((f) => (f.elementType === 'string' || f.elementType === 'bool' ? ('value' as const) : ('number' as const)));
  return { input, outputs: bindOutputs(signature, outputs), inputKinds };
}

function bindInputs(sig: OnnxSignature, inputs: readonly ModelColumn[]): OnnxInputBinding {
  const only = sig.inputs.length === 1 ? sig.inputs[0] : undefined;
  if (only !== undefined && (only.elementType === 'float32' || only.elementType === 'float64')) {
    const shape = only.shape;
    const isMatrix = shape === null || shape.length === 2;
    const width = shape?.[1];
    const singleByName = inputs.length === 1 && byName(sig.inputs, inputs[0]?.name ?? '') !== undefined;
    if (isMatrix && !(singleByName && (width === 1 || shape === null))) {
      if (typeof width === 'number' && width !== inputs.length) {
        throw mismatch(`the model input ${describeValue(only)} takes ${width} features per row but ${inputs.length} INPUT columns are declared (${columnList(inputs)})`, sig);
      }
      const bad = inputs.find((c) => classify(c.type).kind !== 'number');
      if (bad) {
        throw mismatch(`INPUT column ${bad.name} ${bad.type} cannot feed the numeric model input ${describeValue(only)}; all INPUT columns must be numeric`, sig);
      }
      return { mode: 'matrix', tensor: only.name, elementType: only.elementType as 'float32' | 'float64', width: inputs.length };
    }
  }
  // One tensor per column, by name.
  const feeds: OnnxColumnFeed[] = [];
  const used = new Set<string>();
  for (const column of inputs) {
    const tensor = byName(sig.inputs, column.name);
    if (tensor === undefined) {
      throw mismatch(
        sig.inputs.length === 1
          ? `INPUT column ${column.name} matches no model input, and the single model input cannot take ${inputs.length} columns (${columnList(inputs)})`
          : `INPUT column ${column.name} matches no model input by name`,
        sig,
      );
    }
    if (used.has(tensor.name)) throw mismatch(`two INPUT columns match the model input ${tensor.name}`, sig);
    used.add(tensor.name);
    if (!FEEDABLE.has(tensor.elementType)) {
      throw mismatch(`the model input ${describeValue(tensor)} has an element type modelsql cannot feed (float, double, int32, int64, string, bool)`, sig);
    }
    const shape = tensor.shape;
    if (shape !== null && !(shape.length === 1 || (shape.length === 2 && (shape[1] === 1 || typeof shape[1] === 'string')))) {
      throw mismatch(`the model input ${describeValue(tensor)} is not one value per row ([N] or [N,1]), so INPUT column ${column.name} cannot feed it`, sig);
    }
    const want = elementKind(tensor.elementType);
    const have = classify(column.type).kind;
    if (want !== have) {
      throw mismatch(`INPUT column ${column.name} ${column.type} cannot feed the ${tensor.elementType} model input ${describeValue(tensor)}`, sig);
    }
    feeds.push({ tensor: tensor.name, elementType: tensor.elementType as OnnxFeedType, rank: shape !== null && shape.length === 2 ? 2 : 1 });
  }
  const unfed = sig.inputs.filter((i) => !used.has(i.name));
  if (unfed.length > 0) {
    throw mismatch(`the model inputs ${unfed.map((u) => u.name).join(', ')} are fed by no INPUT column (INPUT is ${columnList(inputs)})`, sig);
  }
  return { mode: 'columns', feeds };
}

function bindOutputs(sig: OnnxSignature, outputs: readonly ModelColumn[]): readonly OnnxOutputBinding[] {
  const named = outputs.map((c) => byName(sig.outputs, c.name));
  const allByName = named.every((t) => t !== undefined) && new Set(named.map((t) => t?.name)).size === outputs.length;
  let tensors: readonly OnnxValueInfo[];
  if (allByName) {
    tensors = named as OnnxValueInfo[];
  } else {
    if (sig.outputs.length < outputs.length) {
      throw mismatch(`${outputs.length} OUTPUT columns are declared (${columnList(outputs)}) but the model has only ${sig.outputs.length} outputs, and not every OUTPUT column names one`, sig);
    }
    tensors = sig.outputs.slice(0, outputs.length);
    outputs.forEach((c, i) => {
      const other = named[i];
      if (other !== undefined && other.name !== tensors[i]?.name) {
        throw mismatch(`OUTPUT column ${c.name} names the model output ${other.name} but sits at the position of ${tensors[i]?.name}; name every OUTPUT column after a model output, or none`, sig);
      }
    });
  }
  return outputs.map((column, i) => bindOutput(sig, column, tensors[i] as OnnxValueInfo));
}

function bindOutput(sig: OnnxSignature, column: ModelColumn, tensor: OnnxValueInfo): OnnxOutputBinding {
  const what = `OUTPUT column ${column.name} ${column.type}`;
  if (tensor.elementType === 'non-tensor') {
    throw mismatch(`${what} maps to the model output ${tensor.name}, which is not a tensor (a ZipMap? export classifiers with zipmap=False)`, sig);
  }
  const kind = elementKind(tensor.elementType);
  if (kind === 'other') throw mismatch(`${what} maps to the model output ${describeValue(tensor)}, whose element type is not supported`, sig);
  const cls = classify(column.type);
  const shape = tensor.shape;
  const rank = shape?.length;
  if (rank !== undefined && (rank === 0 || rank > 2)) {
    throw mismatch(`${what} maps to the model output ${describeValue(tensor)}, which is neither [N], [N,1] nor [N,C]`, sig);
  }
  const width = shape?.[1];
  if (cls.kind === 'array') {
    if (rank === 1) throw mismatch(`${what} maps to the model output ${describeValue(tensor)}, which has one value per row, not an array`, sig);
    if (cls.element !== 'number' || kind !== 'number') {
      throw mismatch(`${what} maps to the ${tensor.elementType} model output ${describeValue(tensor)}; only numeric arrays (ARRAY<FLOAT>, ARRAY<DOUBLE>) are supported`, sig);
    }
    return { column: column.name, tensor: tensor.name, elementType: tensor.elementType, shape: 'array', valueKind: 'number' };
  }
  if (typeof width === 'number' && width !== 1) {
    throw mismatch(`${what} maps to the model output ${describeValue(tensor)}, which has ${width} values per row; declare it ARRAY<FLOAT>`, sig);
  }
  if (cls.kind !== kind) {
    throw mismatch(`${what} cannot hold the ${tensor.elementType} model output ${describeValue(tensor)}`, sig);
  }
  return { column: column.name, tensor: tensor.name, elementType: tensor.elementType, shape: 'scalar', valueKind: kind };
}

const FLINK_TYPES: Readonly<Record<string, string>> = {
  float32: 'FLOAT',
  float64: 'DOUBLE',
  int8: 'TINYINT',
  uint8: 'SMALLINT',
  int16: 'SMALLINT',
  uint16: 'INT',
  int32: 'INT',
  uint32: 'BIGINT',
  int64: 'BIGINT',
  uint64: 'BIGINT',
  string: 'STRING',
  bool: 'BOOLEAN',
};

/**
 * INPUT and OUTPUT columns derived from the graph, for a CREATE MODEL with provider onnx
 * and no INPUT/OUTPUT clauses. One `[N, k]` float input gives columns `x0 … x{k-1}`
 * DOUBLE; otherwise one column per input tensor, named after it. Outputs are named after
 * their tensors: `[N]`/`[N,1]` as the scalar type, `[N, C]` as `ARRAY<FLOAT>` /
 * `ARRAY<DOUBLE>`. Non-tensor outputs (ZipMap) are skipped. The result always binds with
 * {@link bindOnnxSignature}, or the function throws 42804 saying why no default exists.
 */
export function defaultSignatureFor(signature: OnnxSignature): { readonly inputs: readonly ModelColumn[]; readonly outputs: readonly ModelColumn[] } {
  const only = signature.inputs.length === 1 ? signature.inputs[0] : undefined;
  let inputs: ModelColumn[];
  const width = only?.shape?.[1];
  if (only && (only.elementType === 'float32' || only.elementType === 'float64') && only.shape?.length === 2 && typeof width === 'number' && width > 1) {
    inputs = Array.from({ length: width }, (_, i) => ({ name: `x${i}`, type: 'DOUBLE' }));
  } else {
    inputs = signature.inputs.map((t) => ({ name: t.name, type: FLINK_TYPES[t.elementType] ?? 'DOUBLE' }));
  }
  const outputs: ModelColumn[] = [];
  for (const t of signature.outputs) {
    const base = FLINK_TYPES[t.elementType];
    if (t.elementType === 'non-tensor' || base === undefined) continue;
    const w = t.shape?.[1];
    const isArray = t.shape?.length === 2 && w !== 1;
    if (isArray && elementKind(t.elementType) !== 'number') continue;
    outputs.push({ name: t.name, type: isArray ? (t.elementType === 'float64' ? 'ARRAY<DOUBLE>' : 'ARRAY<FLOAT>') : base });
  }
  if (outputs.length === 0) throw mismatch('cannot derive OUTPUT columns: the model has no tensor outputs', signature);
  bindOnnxSignature(signature, inputs, outputs);
  return { inputs, outputs };
}
