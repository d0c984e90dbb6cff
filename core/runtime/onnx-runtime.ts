/**
 * The ONNX model runtime (SPEC §2.1): runs an onnxruntime session in worker threads so
 * that inference never blocks the event loop (onnxruntime-node's `session.run` blocks its
 * calling thread for the whole run; a proxy must keep serving other clients meanwhile).
 *
 * Worker strategy: a small pool (default one worker) of worker threads, each owning a
 * session built from the model bytes. Batches wait in one FIFO queue on this side and are
 * handed to the first idle worker, so a cancelled batch that has not started is dropped at
 * once. Input tensors are built here (one `Float32Array` for a `[N, k]` input, or one
 * typed array per column) and their buffers are transferred, not copied.
 *
 * The worker is a separate module (onnx-worker.ts). After `npm run build` it is the
 * sibling `onnx-worker.js` of this file; when this module runs from TypeScript sources
 * (ts-jest), `import.meta.url` points at the `.ts` file and the compiled worker is found
 * under `<repo>/dist/core/runtime/`. A file (not an eval'd string) keeps the worker
 * type-checked and lets it `import` onnxruntime-node through normal module resolution.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ModelRuntimeError, ModelSqlError, QueryCanceledError } from '../errors.js';
import type { ModelRuntime, PredictOptions } from './model-runtime.js';
import type { OnnxBinding, OnnxColumnFeed, OnnxOutputBinding, OnnxSignature } from './onnx-model.js';
import type { TextModelSource } from './text/text-model.js';
import type { FeedMessage, OnnxWorkerData, OutputMessage, WorkerRequest, WorkerResponse } from './onnx-worker.js';
import type { ColumnBatch, ColumnData } from '../model-types.js';

/**
 * Rows per batch. Measured with benchmarks/onnx-batch-size.ts (2 cores, 4-feature linear
 * model): 16384 → 93M rows/s, 32768 → 117M, 65536 → 131M, 131072 → 147M; 65536 keeps
 * batches small enough for the executor to pipeline and to cancel promptly.
 */
export const DEFAULT_ONNX_BATCH_SIZE = 65536;

/** Options of {@link createOnnxRuntime}. */
export interface OnnxRuntimeOptions {
  /** `preferredBatchSize` (default {@link DEFAULT_ONNX_BATCH_SIZE}). */
  readonly batchSize?: number;
  /**
   * Worker threads, each with its own session. Default: 2 when the machine has 2+ cores
   * and the model is at most 64 MiB (two loaded copies), else 1. Measured on 2 cores,
   * 4M rows × 4 features, batch 65536: 1 worker 113M rows/s, 2 workers 131M rows/s.
   */
  readonly workers?: number;
  /** onnxruntime intra-op threads per session (default: available cores ÷ workers, at least 1). */
  readonly intraOpThreads?: number;
  /** A local text model: the workers tokenize and pool (text/text-pipeline.ts). */
  readonly text?: TextModelSource;
}

const PROVIDER = 'onnx';
/** Models up to this size get a pool of two workers by default. */
const SMALL_MODEL_BYTES = 64 * 1024 * 1024;

/** Where the compiled worker module lives (see the file comment). */
export function onnxWorkerUrl(): URL {
  const sibling = new URL('./onnx-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(sibling))) return sibling;
  const built = new URL('../../dist/core/runtime/onnx-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new ModelRuntimeError(PROVIDER, `the ONNX worker module was not found at ${fileURLToPath(sibling)} or ${fileURLToPath(built)}; run "npm run build"`);
}

interface Job {
  readonly id: number;
  readonly request: Extract<WorkerRequest, { type: 'run' }>;
  readonly transfer: ArrayBuffer[];
  readonly resolve: (outputs: readonly OutputMessage[]) => void;
  readonly reject: (error: unknown) => void;
  settled: boolean;
  cleanup?: () => void;
}

/** One worker thread and the job it is running. */
class WorkerSlot {
  readonly worker: Worker;
  /** The model's signature, once the worker has loaded it. */
  readonly ready: Promise<OnnxSignature>;
  current: Job | undefined;
  dead = false;
  /** True once the session is loaded (a worker that dies before that is not replaced). */
  loaded = false;

  constructor(url: URL, data: OnnxWorkerData, onMessage: (slot: WorkerSlot, m: WorkerResponse) => void, onDeath: (slot: WorkerSlot, error: Error) => void) {
    this.worker = new Worker(url, { workerData: data });
    this.ready = new Promise<OnnxSignature>((resolve, reject) => {
      const first = (m: WorkerResponse): void => {
        if (m.type === 'ready') resolve(m.signature);
        else if (m.type === 'init-error') reject(new ModelRuntimeError(PROVIDER, `could not load the ONNX model: ${m.message}`, { sqlstate: '22P03' }));
      };
      this.worker.once('message', first);
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new ModelRuntimeError(PROVIDER, `the ONNX worker exited with code ${code} while loading the model`)));
    });
    this.ready.then(
      () => {
        this.loaded = true;
        this.worker.on('message', (m: WorkerResponse) => onMessage(this, m));
      },
      () => undefined,
    );
    this.worker.on('error', (error) => onDeath(this, error));
    this.worker.on('exit', (code) => onDeath(this, new Error(`exit code ${code}`)));
  }
}

/** Copies one column into `out` at `offset + i * stride`, zero on NULL rows. */
function fillNumbers(out: Float32Array | Float64Array | Int32Array, column: ColumnData, rows: number, nulls: Uint8Array | undefined, offset: number, stride: number): void {
  if (column.kind === 'number') {
    const v = column.values;
    if (nulls === undefined) {
      for (let i = 0, o = offset; i < rows; i++, o += stride) out[o] = v[i] as number;
    } else {
      for (let i = 0, o = offset; i < rows; i++, o += stride) out[o] = nulls[i] === 1 ? 0 : (v[i] as number);
    }
  } else {
    const v = column.values;
    for (let i = 0, o = offset; i < rows; i++, o += stride) out[o] = nulls?.[i] === 1 ? 0 : toNumber(v[i]);
  }
}

/** The columns' values when every column is numbers in a Float64Array (the usual feature batch), else undefined. */
function float64Columns(batch: ColumnBatch): Float64Array[] | undefined {
  const out: Float64Array[] = [];
  for (const column of batch.columns) {
    if (column.kind !== 'number' || !(column.values instanceof Float64Array)) return undefined;
    out.push(column.values);
  }
  return out;
}

/** Rows per block of {@link fillMatrix}: a block of the matrix stays in cache while every column is written into it. */
const FILL_BLOCK_ROWS = 256;

/**
 * The `[rows, k]` row-major matrix of `k` double columns, as float32, without NULLs: one
 * monomorphic loop, block by block of rows.
 */
function fillMatrix(out: Float32Array, columns: readonly Float64Array[], rows: number): void {
  const k = columns.length;
  for (let start = 0; start < rows; start += FILL_BLOCK_ROWS) {
    const end = Math.min(rows, start + FILL_BLOCK_ROWS);
    for (let j = 0; j < k; j++) {
      const v = columns[j]!;
      for (let i = start, o = start * k + j; i < end; i++, o += k) out[o] = v[i]!;
    }
  }
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  return Number(v);
}

function isNullValue(v: unknown): boolean {
  return v === null || v === undefined;
}

/** Row i is NULL when any input is NULL there; `undefined` when no row is. */
function nullRows(batch: ColumnBatch): Uint8Array | undefined {
  if (batch.rowMajor) return batch.rowMajor.nulls;
  let mask: Uint8Array | undefined;
  const rows = batch.rowCount;
  for (const column of batch.columns) {
    if (column.kind === 'number') {
      const n = column.nulls;
      if (n === undefined) continue;
      for (let i = 0; i < rows; i++) {
        if (n[i] === 1) (mask ??= new Uint8Array(rows))[i] = 1;
      }
    } else {
      const v = column.values;
      for (let i = 0; i < rows; i++) {
        if (isNullValue(v[i])) (mask ??= new Uint8Array(rows))[i] = 1;
      }
    }
  }
  return mask;
}

function buildColumnFeed(feed: OnnxColumnFeed, column: ColumnData, rows: number, nulls: Uint8Array | undefined): FeedMessage {
  const dims = feed.rank === 2 ? [rows, 1] : [rows];
  switch (feed.elementType) {
    case 'float32':
    case 'float64':
    case 'int32': {
      const out = feed.elementType === 'float32' ? new Float32Array(rows) : feed.elementType === 'float64' ? new Float64Array(rows) : new Int32Array(rows);
      fillNumbers(out, column, rows, nulls, 0, 1);
      return { name: feed.tensor, type: feed.elementType, data: out, dims };
    }
    case 'int64': {
      const out = new BigInt64Array(rows);
      for (let i = 0; i < rows; i++) {
        if (nulls?.[i] === 1) continue;
        const v = column.kind === 'number' ? (column.values[i] as number) : column.values[i];
        if (typeof v === 'bigint') {
          out[i] = v;
          continue;
        }
        const n = toNumber(v);
        if (!Number.isFinite(n)) {
          throw new ModelRuntimeError(PROVIDER, `cannot feed the value ${String(v)} to the int64 model input ${feed.tensor}`, { sqlstate: '22003' });
        }
        out[i] = BigInt(Math.trunc(n));
      }
      return { name: feed.tensor, type: 'int64', data: out, dims };
    }
    case 'bool': {
      const out = new Uint8Array(rows);
      for (let i = 0; i < rows; i++) {
        if (nulls?.[i] === 1) continue;
        const v = column.kind === 'number' ? column.values[i] : column.values[i];
        out[i] = v === true || (typeof v === 'number' && v !== 0) || v === 't' || v === 'true' ? 1 : 0;
      }
      return { name: feed.tensor, type: 'bool', data: out, dims };
    }
    case 'string': {
      const out = new Array<string>(rows);
      for (let i = 0; i < rows; i++) {
        const v = column.kind === 'number' ? column.values[i] : column.values[i];
        out[i] = nulls?.[i] === 1 || isNullValue(v) ? '' : String(v);
      }
      return { name: feed.tensor, type: 'string', data: out, dims };
    }
  }
}

/** Builds the input tensors of one batch. */
export function buildFeeds(binding: OnnxBinding, batch: ColumnBatch, nulls: Uint8Array | undefined): FeedMessage[] {
  const rows = batch.rowCount;
  const input = binding.input;
  const width = batch.rowMajor?.width ?? batch.columns.length;
  if (width !== binding.inputKinds.length) {
    throw new ModelRuntimeError(PROVIDER, `the batch has ${width} input columns but the model takes ${binding.inputKinds.length}`);
  }
  if (input.mode === 'matrix') {
    const k = input.width;
    const out = input.elementType === 'float32' ? new Float32Array(rows * k) : new Float64Array(rows * k);
    // Read row by row by the host: one converting copy (a NULL row's features are all 0, as below).
    if (batch.rowMajor) {
      out.set(batch.rowMajor.values.subarray(0, rows * k));
      return [{ name: input.tensor, type: input.elementType, data: out, dims: [rows, k] }];
    }
    const doubles = nulls === undefined && out instanceof Float32Array ? float64Columns(batch) : undefined;
    if (doubles) fillMatrix(out as Float32Array, doubles, rows);
    else batch.columns.forEach((column, j) => fillNumbers(out, column, rows, nulls, j, k));
    return [{ name: input.tensor, type: input.elementType, data: out, dims: [rows, k] }];
  }
  return input.feeds.map((feed, j) => buildColumnFeed(feed, batch.columns[j] as ColumnData, rows, nulls));
}

function shapeText(dims: readonly number[]): string {
  return `[${dims.join(',')}]`;
}

/**
 * Re-wraps a typed array that arrived from the worker in this realm's constructor (no
 * copy), so `instanceof Float64Array` holds even when this module runs in a vm context
 * (as under jest).
 */
function ownRealm(a: Float32Array | Float64Array | Int32Array): Float32Array | Float64Array | Int32Array {
  const buffer = a.buffer as ArrayBuffer;
  switch (Object.prototype.toString.call(a)) {
    case '[object Float32Array]':
      return a instanceof Float32Array ? a : new Float32Array(buffer, a.byteOffset, a.length);
    case '[object Float64Array]':
      return a instanceof Float64Array ? a : new Float64Array(buffer, a.byteOffset, a.length);
    default:
      return a instanceof Int32Array ? a : new Int32Array(buffer, a.byteOffset, a.length);
  }
}

/** Turns one output tensor into an OUTPUT column. */
function readOutput(out: OnnxOutputBinding, tensor: OutputMessage, rows: number, nulls: Uint8Array | undefined): ColumnData {
  const data = tensor.data;
  if (out.shape === 'scalar') {
    if (data.length !== rows) {
      throw new ModelRuntimeError(PROVIDER, `the model output ${out.tensor} has shape ${shapeText(tensor.dims)}, not one value per row for ${rows} rows (OUTPUT column ${out.column})`);
    }
    if (tensor.type === 'string' || tensor.type === 'bool') {
      const values = new Array<unknown>(rows);
      for (let i = 0; i < rows; i++) {
        values[i] = nulls?.[i] === 1 ? null : tensor.type === 'bool' ? (data[i] as number) !== 0 : data[i];
      }
      return { kind: 'value', values };
    }
    const values = ownRealm(data as Float32Array | Float64Array | Int32Array);
    return nulls === undefined ? { kind: 'number', values } : { kind: 'number', values, nulls: nulls.slice() };
  }
  const width = rows === 0 ? 0 : data.length / rows;
  if (!Number.isInteger(width) || tensor.dims.length !== 2) {
    throw new ModelRuntimeError(PROVIDER, `the model output ${out.tensor} has shape ${shapeText(tensor.dims)}, not [${rows}, C] (OUTPUT column ${out.column})`);
  }
  const numbers = data as Float32Array | Float64Array | Int32Array;
  const values = new Array<number[] | null>(rows);
  for (let i = 0; i < rows; i++) {
    if (nulls?.[i] === 1) {
      values[i] = null;
      continue;
    }
    const row = new Array<number>(width);
    for (let c = 0, o = i * width; c < width; c++, o++) row[c] = numbers[o] as number;
    values[i] = row;
  }
  return { kind: 'value', values };
}

/** The ONNX {@link ModelRuntime}; create it with {@link createOnnxRuntime}. */
export class OnnxModelRuntime implements ModelRuntime {
  /** Always `onnx`. */
  readonly provider = PROVIDER;
  /** Rows per batch this runtime handles best. */
  readonly preferredBatchSize: number;
  /** `number` for numeric inputs, `value` for string and boolean inputs. */
  inputKinds: readonly ('number' | 'value')[] = [];
  /** Whether the model takes every input as one `[N, k]` matrix. */
  rowMajorInput = false;
  #binding: OnnxBinding | undefined;
  readonly #slots: WorkerSlot[] = [];
  readonly #queue: Job[] = [];
  readonly #workerUrl: URL;
  readonly #workerData: OnnxWorkerData;
  #nextId = 1;
  #closed = false;

  /** @internal use {@link createOnnxRuntime}, which binds the runtime before handing it out. */
  constructor(bytes: Uint8Array, options: OnnxRuntimeOptions = {}) {
    this.preferredBatchSize = Math.max(1, Math.floor(options.batchSize ?? DEFAULT_ONNX_BATCH_SIZE));
    const workers = Math.max(1, Math.floor(options.workers ?? (availableParallelism() >= 2 && bytes.byteLength <= SMALL_MODEL_BYTES ? 2 : 1)));
    const intraOpThreads = Math.max(1, Math.floor(options.intraOpThreads ?? Math.max(1, Math.floor(availableParallelism() / workers))));
    this.#workerUrl = onnxWorkerUrl();
    this.#workerData = { bytes: bytes.slice(), intraOpThreads, ...(options.text ? { text: options.text } : {}) };
    for (let i = 0; i < workers; i++) this.#slots.push(this.#spawn());
  }

  /** Resolves with the model's signature when every worker has loaded it; rejects with the load error. */
  async ready(): Promise<OnnxSignature> {
    const [signature] = await Promise.all(this.#slots.map((s) => s.ready));
    return signature!;
  }

  /** @internal Sets how the model's columns feed and read the graph (createOnnxRuntime). */
  bind(binding: OnnxBinding): void {
    this.#binding = binding;
    this.inputKinds = binding.inputKinds;
    this.rowMajorInput = binding.input.mode === 'matrix';
  }

  #spawn(): WorkerSlot {
    const slot = new WorkerSlot(
      this.#workerUrl,
      this.#workerData,
      (s, m) => this.#onMessage(s, m),
      (s, e) => this.#onDeath(s, e),
    );
    slot.ready.then(
      () => this.#dispatch(),
      () => undefined,
    );
    return slot;
  }

  #onMessage(slot: WorkerSlot, message: WorkerResponse): void {
    const job = slot.current;
    if (job === undefined || (message.type !== 'result' && message.type !== 'error') || message.id !== job.id) return;
    slot.current = undefined;
    if (message.type === 'result') job.resolve(message.outputs);
    else job.reject(new ModelRuntimeError(PROVIDER, `ONNX inference failed: ${message.message}`));
    this.#dispatch();
  }

  #onDeath(slot: WorkerSlot, error: Error): void {
    if (slot.dead) return;
    slot.dead = true;
    const index = this.#slots.indexOf(slot);
    if (index >= 0) this.#slots.splice(index, 1);
    if (this.#closed) return;
    const failure = new ModelRuntimeError(PROVIDER, `the ONNX worker crashed (${error.message})`, { retryable: true, cause: error });
    // A crash fails the batch it was running and everything queued behind it.
    slot.current?.reject(failure);
    slot.current = undefined;
    for (const job of this.#queue.splice(0)) job.reject(failure);
    void slot.worker.terminate();
    // Later batches get a fresh worker (not when the model never loaded: that would loop).
    if (slot.loaded) this.#slots.push(this.#spawn());
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) break;
      if (slot.current !== undefined || slot.dead) continue;
      const job = this.#queue.shift() as Job;
      slot.current = job;
      slot.worker.postMessage(job.request, job.transfer);
    }
    const busy = this.#queue.length > 0 || this.#slots.some((s) => s.current !== undefined);
    // Keep the process alive while work is pending or a model is loading; an idle
    // runtime that was never closed must not hold the process open.
    for (const slot of this.#slots) {
      if (busy || !slot.loaded) slot.worker.ref();
      else slot.worker.unref();
    }
  }

  /** Predicts one batch in a worker thread. NULL input rows give NULL in every output. */
  async predictBatch(batch: ColumnBatch, options: PredictOptions = {}): Promise<ColumnBatch> {
    if (this.#closed) throw new ModelRuntimeError(PROVIDER, 'the ONNX model runtime is closed');
    const signal = options.signal;
    if (signal?.aborted) throw new QueryCanceledError();
    const rows = batch.rowCount;
    const binding = this.#binding!;
    const nulls = nullRows(batch);
    if (rows === 0) {
      return {
        rowCount: 0,
        columns: binding.outputs.map((o) => (o.shape === 'scalar' && o.valueKind === 'number' ? { kind: 'number', values: new Float64Array(0) } : { kind: 'value', values: [] })),
      };
    }
    const feeds = buildFeeds(binding, batch, nulls);
    const transfer = feeds.flatMap((f) => (Array.isArray(f.data) ? [] : [(f.data as Uint8Array).buffer as ArrayBuffer]));
    const outputs = await this.#enqueue({ type: 'run', id: this.#nextId++, feeds, outputs: [...new Set(binding.outputs.map((o) => o.tensor))] }, transfer, signal);
    const byName = new Map(outputs.map((o) => [o.name, o]));
    return {
      rowCount: rows,
      columns: binding.outputs.map((o) => readOutput(o, byName.get(o.tensor) as OutputMessage, rows, nulls)),
    };
  }

  #enqueue(request: Extract<WorkerRequest, { type: 'run' }>, transfer: ArrayBuffer[], signal: AbortSignal | undefined): Promise<readonly OutputMessage[]> {
    return new Promise<readonly OutputMessage[]>((resolve, reject) => {
      const job: Job = {
        id: request.id,
        request,
        transfer,
        settled: false,
        resolve: (outputs) => {
          if (job.settled) return;
          job.settled = true;
          job.cleanup?.();
          resolve(outputs);
        },
        reject: (error) => {
          if (job.settled) return;
          job.settled = true;
          job.cleanup?.();
          reject(error);
        },
      };
      if (signal !== undefined) {
        const onAbort = (): void => {
          // Queued: drop it. Running: answer now; the worker's late result is ignored.
          const at = this.#queue.indexOf(job);
          if (at >= 0) this.#queue.splice(at, 1);
          job.reject(new QueryCanceledError());
          this.#dispatch();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        job.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      this.#queue.push(job);
      this.#dispatch();
    });
  }

  /**
   * @internal Makes one worker exit abruptly, to test crash handling.
   */
  simulateWorkerCrash(): void {
    this.#slots[0]?.worker.postMessage({ type: 'crash' } satisfies WorkerRequest);
  }

  /**
   * Stops the workers; pending batches reject at once. A worker in the middle of a run
   * finishes it first (its result is dropped): terminating a thread inside
   * onnxruntime's `run` aborts the whole process.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const failure = new ModelRuntimeError(PROVIDER, 'the ONNX model runtime was closed');
    for (const job of this.#queue.splice(0)) job.reject(failure);
    const slots = this.#slots.splice(0);
    for (const slot of slots) slot.current?.reject(failure);
    await Promise.all(slots.map((slot) => this.#stop(slot)));
  }

  async #stop(slot: WorkerSlot): Promise<void> {
    if (slot.dead) return;
    const exited = new Promise<void>((resolve) => slot.worker.once('exit', () => resolve()));
    slot.worker.ref();
    if (slot.loaded) {
      slot.worker.postMessage({ type: 'close' } satisfies WorkerRequest);
    } else {
      // Still loading: wait for the load to settle before stopping the thread.
      await slot.ready.catch(() => undefined);
      if (slot.dead) return;
      if (slot.loaded) slot.worker.postMessage({ type: 'close' } satisfies WorkerRequest);
      else await slot.worker.terminate();
    }
    await exited;
  }
}

/**
 * Starts an ONNX runtime for `bytes`, bound by `binding` (from `bindOnnxSignature`), or by
 * what `binding` makes of the signature the model's worker reports once it has loaded it:
 * so the model is loaded in the workers only, never on the calling thread (a large model
 * takes a while, during which a proxy's event loop keeps serving). Resolves once the model
 * is loaded in its worker(s); a model onnxruntime cannot load rejects with a
 * ModelRuntimeError (22P03), a binding that fails with its error.
 *
 * @example
 * const runtime = await createOnnxRuntime(bytes, (signature) => bindOnnxSignature(signature, inputs, outputs));
 * const out = await runtime.predictBatch({ rowCount: 2, columns: [{ kind: 'number', values: Float64Array.of(1, 2) }] });
 * await runtime.close();
 */
export async function createOnnxRuntime(bytes: Uint8Array, binding: OnnxBinding | ((signature: OnnxSignature) => OnnxBinding), options: OnnxRuntimeOptions = {}): Promise<ModelRuntime> {
  const runtime = new OnnxModelRuntime(bytes, options);
  try {
    const signature = await runtime.ready();
    runtime.bind(typeof binding === 'function' ? binding(signature) : binding);
  } catch (error) {
    await runtime.close();
    throw error instanceof ModelSqlError ? error : new ModelRuntimeError(PROVIDER, `could not start the ONNX worker: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return runtime;
}
