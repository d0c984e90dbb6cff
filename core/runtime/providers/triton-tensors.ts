/**
 * Rows to tensors and back, in the JSON of the Open Inference Protocol v2 (KServe v2, as
 * NVIDIA Triton, Seldon MLServer and OpenVINO Model Server speak it):
 * https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md
 *
 * Each INPUT column is one input tensor holding the request's rows along the first
 * (batch) dimension: a scalar column `[N, 1]` (or `[N]` when the model's metadata says
 * rank 1), an `ARRAY` column `[N, k]`. With `flatten-batch-dim` there is no batch
 * dimension: one row per request, a scalar `[1]`, an array `[k]`. Each answer column of
 * OUTPUT takes the output tensor of its name (else of its position); the data is
 * row-major, so row `r` of a `[N, d...]` tensor is the slice `r*size .. (r+1)*size`.
 */
import { ModelSqlError } from '../../errors.js';
import type { DataType } from '../../sql/ast.js';
import { typeCategory } from '../../sql/types.js';
import { MalformedReply, MismatchedReply } from './provider-client.js';
import type { TensorColumn, TritonConfig } from './triton-options.js';

/** A tensor as the model's metadata describes it (`GET /v2/models/{name}`). */
export interface TensorMetadata {
  readonly name: string;
  readonly datatype: string;
  /** Variable-size dimensions are -1. */
  readonly shape: readonly number[];
}

/** A model's metadata (`$metadata_model_response`). */
export interface ModelMetadata {
  readonly name: string;
  readonly versions?: readonly string[];
  readonly platform?: string;
  readonly inputs: readonly TensorMetadata[];
  readonly outputs: readonly TensorMetadata[];
}

/** An input tensor of a request (`$inference_request_input`). */
export interface RequestTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: string;
  readonly data: readonly unknown[];
}

/** The protocol's data types by family. */
const INTEGER_TYPES = ['INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64'];
const FLOAT_TYPES = ['FP16', 'FP32', 'FP64', 'BF16'];

/** The protocol data type of a column type (its element type for an ARRAY). */
export function datatypeOf(type: DataType): string {
  switch (type.name) {
    case 'BOOLEAN':
      return 'BOOL';
    case 'TINYINT':
      return 'INT8';
    case 'SMALLINT':
      return 'INT16';
    case 'INT':
    case 'INTEGER':
      return 'INT32';
    case 'BIGINT':
      return 'INT64';
    case 'FLOAT':
    case 'REAL':
      return 'FP32';
    default:
      return typeCategory(type) === 'string' ? 'BYTES' : 'FP64';
  }
}

/** Whether values of a column type may travel as (or come back from) a tensor of `datatype`. */
function compatible(type: DataType, datatype: string): boolean {
  const category = typeCategory(type);
  if (category === 'string') return datatype === 'BYTES';
  if (category === 'boolean') return datatype === 'BOOL';
  return INTEGER_TYPES.includes(datatype) || FLOAT_TYPES.includes(datatype);
}

const describe = (t: TensorMetadata): string => `${t.name} ${t.datatype}[${t.shape.join(',')}]`;
const columnText = (c: TensorColumn): string => `${c.name} ${c.type.name}${c.element ? `<${c.element.name}>` : ''}`;

/** The tensor of `tensors` a column maps to: by name (any case), else by position when the counts agree. */
function matchTensor<T extends { readonly name: string }>(column: TensorColumn, index: number, columns: readonly TensorColumn[], tensors: readonly T[]): T | undefined {
  return tensors.find((t) => t.name === column.name) ?? tensors.find((t) => t.name.toLowerCase() === column.name.toLowerCase()) ?? (tensors.length === columns.length ? tensors[index] : undefined);
}

/**
 * Checks INPUT/OUTPUT against the model's metadata: every input tensor fed by one INPUT
 * column of a compatible type and rank, every answer column fed by an output tensor.
 *
 * @throws ModelSqlError 42804 naming the columns and the model's tensors.
 */
export function checkMetadata(config: TritonConfig, metadata: ModelMetadata): void {
  const signature = `the model has inputs (${metadata.inputs.map(describe).join(', ')}), outputs (${metadata.outputs.map(describe).join(', ')})`;
  const fail = (what: string) => new ModelSqlError('42804', `${what}; ${signature}`);
  if (metadata.inputs.length !== config.inputs.length) {
    throw fail(`${config.inputs.length} INPUT column${config.inputs.length === 1 ? '' : 's'} (${config.inputs.map(columnText).join(', ')}) for ${metadata.inputs.length} input tensor${metadata.inputs.length === 1 ? '' : 's'}`);
  }
  config.inputs.forEach((c, i) => {
    const t = matchTensor(c, i, config.inputs, metadata.inputs);
    if (!t) throw fail(`INPUT column ${columnText(c)} matches no input tensor by name`);
    checkTensor(c, t, 'INPUT', config.flattenBatchDim, fail);
  });
  config.answers.forEach((c, i) => {
    const t = matchTensor(c, i, config.answers, metadata.outputs);
    if (!t) throw fail(`OUTPUT column ${columnText(c)} matches no output tensor by name`);
    checkTensor(c, t, 'OUTPUT', config.flattenBatchDim, fail);
  });
}

function checkTensor(c: TensorColumn, t: TensorMetadata, role: string, flatten: boolean, fail: (what: string) => Error): void {
  if (!compatible(c.element ?? c.type, t.datatype)) throw fail(`${role} column ${columnText(c)} cannot travel as ${describe(t)}`);
  const dims = flatten ? t.shape : t.shape.slice(1);
  const perRow = dims.reduce((n, d) => (d < 0 || n < 0 ? -1 : n * d), 1);
  if (!c.element && perRow !== 1 && !(perRow === -1 && dims.length <= 1)) throw fail(`${role} column ${columnText(c)} holds one value per row, but ${describe(t)} holds ${perRow < 0 ? 'a variable number' : perRow} per row (declare an ARRAY column)`);
  if (c.element && dims.length > 1 && !dims.slice(0, -1).every((d) => d === 1)) throw fail(`${role} column ${columnText(c)} is 1-D, but ${describe(t)} is not`);
}

/** One number, boolean or string as JSON tensor data (a BIGINT read as bigint becomes a number). */
function scalar(value: unknown): unknown {
  return typeof value === 'bigint' ? Number(value) : value;
}

/**
 * The input tensors of a request over `rows` (each row's INPUT values, none NULL).
 *
 * @throws MismatchedReply when ARRAY values of one column differ in length within the request.
 */
export function encodeInputs(config: TritonConfig, rows: readonly (readonly unknown[])[], metadata?: ModelMetadata): RequestTensor[] {
  return config.inputs.map((c, i) => {
    const t = metadata ? matchTensor(c, i, config.inputs, metadata.inputs) : undefined;
    const datatype = t?.datatype ?? datatypeOf(c.element ?? c.type);
    const n = rows.length;
    if (c.element) {
      const arrays = rows.map((r) => r[i] as readonly unknown[]);
      const k = arrays[0]!.length;
      if (arrays.some((a) => a.length !== k)) throw new MismatchedReply(`INPUT column ${c.name} has arrays of different lengths in one request (${[...new Set(arrays.map((a) => a.length))].join(', ')}); a tensor needs one length (give 'batch-size' = '1' for ragged arrays)`);
      // Row-major, in one preallocated list (a flatMap of maps allocates twice per row).
      const data = new Array<unknown>(n * k);
      for (let r = 0; r < n; r++) {
        const a = arrays[r]!;
        for (let j = 0; j < k; j++) data[r * k + j] = scalar(a[j]);
      }
      return { name: t?.name ?? c.name, datatype, shape: config.flattenBatchDim ? [k] : [n, k], data };
    }
    const data = rows.map((r) => scalar(r[i]));
    const rankOne = t !== undefined && t.shape.length === (config.flattenBatchDim ? 0 : 1);
    return { name: t?.name ?? c.name, datatype, shape: config.flattenBatchDim ? [1] : rankOne ? [n] : [n, 1], data };
  });
}

/** A response output tensor (`$response_output`). */
interface ResponseTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: string;
  readonly data: readonly unknown[];
}

function isTensor(t: unknown): t is ResponseTensor {
  const o = t as ResponseTensor;
  return o !== null && typeof o === 'object' && typeof o.name === 'string' && typeof o.datatype === 'string' && Array.isArray(o.shape) && o.shape.every((d) => Number.isInteger(d) && d >= 0) && Array.isArray(o.data);
}

/** Flattens nested data (the protocol allows row-major nesting) into one row-major list. */
function flatData(data: readonly unknown[]): readonly unknown[] {
  return data.some(Array.isArray) ? (data as unknown[]).flat(Infinity) : data;
}

/**
 * The OUTPUT rows of an inference response for `count` rows.
 *
 * @throws MalformedReply for a body that is not a v2 response or tensors whose data does
 *   not fill their shape (retryable); MismatchedReply for tensors that do not fit OUTPUT
 *   (a missing name, another batch size, several values for a scalar column, a type that
 *   does not convert).
 */
export function decodeOutputs(config: TritonConfig, body: unknown, count: number): unknown[][] {
  const outputs = (body as { outputs?: unknown } | null)?.outputs;
  if (!Array.isArray(outputs)) throw new MalformedReply(`the inference response has no "outputs" list`);
  const tensors: ResponseTensor[] = [];
  for (const t of outputs) {
    if (!isTensor(t)) throw new MalformedReply(`an output tensor of the inference response is not {name, datatype, shape, data}: ${JSON.stringify(t)?.slice(0, 120)}`);
    const data = flatData(t.data);
    const size = t.shape.reduce((n, d) => n * d, 1);
    if (data.length !== size) throw new MalformedReply(`output tensor ${t.name} has shape [${t.shape.join(',')}] (${size} values) but ${data.length} values of data`);
    tensors.push({ ...t, data });
  }
  const rows = Array.from({ length: count }, () => new Array<unknown>(config.width).fill(null));
  config.answers.forEach((c, i) => {
    const t = matchTensor(c, i, config.answers, tensors);
    if (!t) throw new MismatchedReply(`the server answered output tensors (${tensors.map((x) => `${x.name} ${x.datatype}[${x.shape.join(',')}]`).join(', ')}), none for OUTPUT column ${columnText(c)}`);
    if (!compatible(c.element ?? c.type, t.datatype)) throw new MismatchedReply(`output tensor ${t.name} ${t.datatype} does not fit OUTPUT column ${columnText(c)}`);
    const batch = config.flattenBatchDim ? 1 : t.shape[0];
    if (batch !== count) throw new MismatchedReply(`output tensor ${t.name} has shape [${t.shape.join(',')}]: ${batch} rows for the ${count} rows sent`);
    const size = count === 0 ? 0 : t.data.length / count;
    if (!c.element && size !== 1) throw new MismatchedReply(`output tensor ${t.name} has shape [${t.shape.join(',')}]: ${size} values per row, but OUTPUT column ${columnText(c)} holds one (declare an ARRAY column)`);
    const category = typeCategory(c.element ?? c.type);
    for (let r = 0; r < count; r++) {
      if (c.element) {
        const values = new Array<unknown>(size);
        for (let j = 0; j < size; j++) values[j] = convert(t.data[r * size + j], category, c.element, t);
        rows[r]![c.index] = values;
      } else rows[r]![c.index] = convert(t.data[r], category, c.type, t);
    }
  });
  return rows;
}

/** One output value for a column of `type` (whose `typeCategory` is `category`). */
function convert(value: unknown, category: ReturnType<typeof typeCategory>, type: DataType, t: ResponseTensor): unknown {
  if (value === null) return null;
  if (category === 'string') return typeof value === 'string' ? value : String(value);
  if (category === 'boolean') {
    if (typeof value !== 'boolean') throw new MalformedReply(`output tensor ${t.name} is BOOL but holds ${JSON.stringify(value)}`);
    return value;
  }
  if (typeof value !== 'number') throw new MalformedReply(`output tensor ${t.name} is ${t.datatype} but holds ${JSON.stringify(value)}`);
  if (category === 'integer' && !Number.isInteger(value)) throw new MismatchedReply(`output tensor ${t.name} holds ${value}, not an integer for a ${type.name} column`);
  return value;
}
