/**
 * The worker thread that owns one onnxruntime session (see onnx-runtime.ts for why:
 * `session.run` in onnxruntime-node blocks its thread for the whole run).
 *
 * Protocol (plain structured-clone messages; typed-array buffers are transferred):
 * - `workerData`: {@link OnnxWorkerData}; the worker answers `ready` (with the model's
 *   signature) or `init-error`.
 * - `run` → `result` | `error`, matched by `id`. One run at a time: the parent queues.
 *
 * Numeric outputs come back as Float32Array / Float64Array / Int32Array; other integer
 * tensors (int64 labels, uint8 …) are converted here to Float64Array (exact up to 2^53);
 * bool tensors as Uint8Array; string tensors as string[].
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { OnnxSignature } from './onnx-model.js';
import { signatureOf } from './onnx-signature.js';
import type { TextModelSource } from './text/text-model.js';
import type { TextPipeline } from './text/text-pipeline.js';

/** Data the worker starts with. */
export interface OnnxWorkerData {
  readonly bytes: Uint8Array;
  /** onnxruntime intra-op threads for this session. */
  readonly intraOpThreads: number;
  /** A local text model: runs take texts and answer through its pipeline (text/text-pipeline.ts). */
  readonly text?: TextModelSource;
}

/** Typed data of one tensor travelling between threads. */
export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | readonly string[];

/** One input tensor. */
export interface FeedMessage {
  readonly name: string;
  readonly type: 'float32' | 'float64' | 'int32' | 'int64' | 'string' | 'bool';
  readonly data: TensorData;
  readonly dims: readonly number[];
}

/** One output tensor. */
export interface OutputMessage {
  readonly name: string;
  /** The tensor's own element type. */
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: Float32Array | Float64Array | Int32Array | Uint8Array | readonly string[];
}

/** Parent → worker. `crash` exits the worker (tests use it to prove crash handling). */
export type WorkerRequest =
  | { readonly type: 'run'; readonly id: number; readonly feeds: readonly FeedMessage[]; readonly outputs: readonly string[] }
  | { readonly type: 'crash' }
  /** Finish the current run, release the session and exit (terminating a worker mid-run aborts the process). */
  | { readonly type: 'close' };

/** Worker → parent. */
export type WorkerResponse =
  /** The session is loaded; its signature comes along (the parent binds the model's columns to it). */
  | { readonly type: 'ready'; readonly signature: OnnxSignature }
  | { readonly type: 'init-error'; readonly message: string }
  | { readonly type: 'result'; readonly id: number; readonly outputs: readonly OutputMessage[] }
  | { readonly type: 'error'; readonly id: number; readonly message: string };

function transferable(data: OutputMessage['data']): ArrayBuffer[] {
  return Array.isArray(data) ? [] : [(data as Uint8Array).buffer as ArrayBuffer];
}

/** Copies a typed array into a buffer of its own (onnxruntime may hand out views of external memory). */
function own<T extends Float32Array | Float64Array | Int32Array | Uint8Array>(data: T): T {
  return data.slice() as T;
}

function convertOutput(name: string, tensor: ort.Tensor): OutputMessage {
  const dims = [...tensor.dims];
  const data = tensor.data;
  switch (tensor.type) {
    case 'float32':
    case 'float64':
    case 'int32':
    case 'bool':
      return { name, type: tensor.type, dims, data: own(data as Float32Array | Float64Array | Int32Array | Uint8Array) };
    case 'string':
      return { name, type: tensor.type, dims, data: data as string[] };
    default: {
      if (ArrayBuffer.isView(data)) {
        const src = data as unknown as ArrayLike<number | bigint>;
        const out = new Float64Array(src.length);
        for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
        return { name, type: tensor.type, dims, data: out };
      }
      throw new Error(`output ${name} has the unsupported element type ${tensor.type}`);
    }
  }
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) return;
  const init = workerData as OnnxWorkerData;
  let session: ort.InferenceSession;
  let pipeline: TextPipeline | undefined;
  try {
    session = await ort.InferenceSession.create(init.bytes, {
      intraOpNumThreads: init.intraOpThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    if (init.text) {
      // Loaded only by text models' workers (the tokenizer library and the spec's checks).
      const [{ textModel }, { TextPipeline }] = await Promise.all([import('./text/text-model.js'), import('./text/text-pipeline.js')]);
      const { files, options, input, output } = init.text;
      pipeline = new TextPipeline(textModel(files, options, signatureOf(session), input, output).spec, session, ort.Tensor);
    }
  } catch (error) {
    port.postMessage({ type: 'init-error', message: error instanceof Error ? error.message : String(error) } satisfies WorkerResponse);
    return;
  }
  // Runs are chained so that `close` waits for the one in progress.
  let last: Promise<unknown> = Promise.resolve();
  port.on('message', (request: WorkerRequest) => {
    if (request.type === 'crash') process.exit(70);
    if (request.type === 'close') {
      void last.then(async () => {
        await session.release();
        port.close();
      });
      return;
    }
    last = last.then(() =>
      (pipeline ? pipeline.run(request.feeds[0]?.data as readonly string[]) : run(session, request)).then(
        (outputs) => port.postMessage({ type: 'result', id: request.id, outputs } satisfies WorkerResponse, outputs.flatMap((o) => transferable(o.data))),
        (error: unknown) => port.postMessage({ type: 'error', id: request.id, message: error instanceof Error ? error.message : String(error) } satisfies WorkerResponse),
      ),
    );
  });
  port.postMessage({ type: 'ready', signature: signatureOf(session) } satisfies WorkerResponse);
}

async function run(session: ort.InferenceSession, request: Extract<WorkerRequest, { type: 'run' }>): Promise<OutputMessage[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const f of request.feeds) {
    feeds[f.name] = new ort.Tensor(f.type, f.data as never, [...f.dims]);
  }
  const results = await session.run(feeds, [...request.outputs]);
  return request.outputs.map((name) => {
    const tensor = results[name];
    if (tensor === undefined) throw new Error(`the model produced no output ${name}`);
    return convertOutput(name, tensor as ort.Tensor);
  });
}

void main();
