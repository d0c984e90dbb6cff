/**
 * A loopback server speaking the Open Inference Protocol v2 over HTTP/REST, written from
 * its specification
 * (https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md):
 *
 * - `GET /v2/health/live`, `GET /v2/health/ready`: 200 when live;
 * - `GET /v2/models/{name}[/versions/{v}]`: `$metadata_model_response`;
 * - `POST /v2/models/{name}[/versions/{v}]/infer`: `$inference_request` in,
 *   `$inference_response` out, the request body possibly gzip-encoded;
 * - every failure an HTTP error status with `{"error": "<message>"}`: 400 for a body that is
 *   not JSON, an unknown input, a wrong datatype, or data that does not fill its shape; 404
 *   for an unknown model or version.
 *
 * The models compute simple functions so that answers can be checked; faults are injected
 * per request.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { listenOnLoopback } from './loopback-server.js';

/** A tensor as the protocol writes it. */
export interface Tensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  readonly data: readonly unknown[];
}

/** A model the server serves: its metadata and what it computes (inputs by name, batch already checked). */
export interface ServedModel {
  readonly name: string;
  readonly versions: readonly string[];
  readonly inputs: readonly { readonly name: string; readonly datatype: string; readonly shape: readonly number[] }[];
  readonly outputs: readonly { readonly name: string; readonly datatype: string; readonly shape: readonly number[] }[];
  compute(inputs: ReadonlyMap<string, Tensor>): Tensor[];
}

/** What to do to one inference request instead of answering it. */
export type TritonFault =
  | { readonly kind: 'status'; readonly status: number; readonly message?: string }
  | { readonly kind: 'reset' }
  /** 200 with a body that is not JSON. */
  | { readonly kind: 'malformed' }
  /** 200 with an output tensor whose data does not fill its shape. */
  | { readonly kind: 'short-data' }
  /** 200 with output tensors of one row too few. */
  | { readonly kind: 'wrong-batch' }
  /** The answer after `ms`. */
  | { readonly kind: 'slow'; readonly ms: number };

/** One inference request as the server saw it. */
export interface SeenInference {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: { inputs: Tensor[]; outputs?: { name: string }[]; parameters?: Record<string, unknown> };
  /** The request's rows (the first dimension of its first input). */
  readonly rows: number;
}

/** Options of the server. */
export interface TritonServerOptions {
  /** The `Authorization` header requests must carry (else 401 with `{"error"}`). */
  readonly authorization?: string;
  /** Fixed latency of every inference answer, in ms (from the request's arrival). */
  readonly latencyMs?: number;
  /** Whether to record requests (a benchmark turns it off). Default true. */
  readonly record?: boolean;
  /** The port to listen on (default 0: a free one). */
  readonly port?: number;
}

/** A running server. */
export interface TritonServer {
  readonly url: string;
  /** Inference requests, in arrival order. */
  readonly inferences: SeenInference[];
  /** Every request's method and path, in arrival order. */
  readonly paths: string[];
  /** Inference requests received since the last reset (counted even when not recorded). */
  served(): number;
  /**
   * With `latencyMs`: how late the answers were let go after their intended time (arrival +
   * latency), mean and greatest, in ms, since the last call (which starts a new count). A
   * busy or starved event loop here shows up as lateness, apart from the client's own time.
   */
  lateness(): { readonly meanMs: number; readonly maxMs: number; readonly answers: number };
  setFault(rule: ((request: SeenInference, index: number) => TritonFault | undefined) | undefined): void;
  /** Whether `/v2/health/live` answers 200. */
  setLive(live: boolean): void;
  reset(): void;
  close(): Promise<void>;
}

const size = (shape: readonly number[]): number => shape.reduce((n, d) => n * d, 1);

/** `linear`: x FP32[-1,2] → y FP32[-1,1] = 2·x0 + 3·x1 + 1. */
export const LINEAR: ServedModel = {
  name: 'linear',
  versions: ['1', '2'],
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
  compute(inputs) {
    const x = inputs.get('x')!;
    const n = x.shape[0]!;
    const data = Array.from({ length: n }, (_, r) => 2 * Number(x.data[2 * r]) + 3 * Number(x.data[2 * r + 1]) + 1);
    return [{ name: 'y', datatype: 'FP32', shape: [n, 1], data }];
  },
};

/** `text`: TEXT BYTES[-1,1], SCALE INT64[-1,1] → LABEL BYTES[-1,1] (upper case), SCORE FP64[-1,1] (length × scale), VEC FP32[-1,3]. */
export const TEXT: ServedModel = {
  name: 'text',
  versions: ['1'],
  inputs: [
    { name: 'TEXT', datatype: 'BYTES', shape: [-1, 1] },
    { name: 'SCALE', datatype: 'INT64', shape: [-1, 1] },
  ],
  outputs: [
    { name: 'LABEL', datatype: 'BYTES', shape: [-1, 1] },
    { name: 'SCORE', datatype: 'FP64', shape: [-1, 1] },
    { name: 'VEC', datatype: 'FP32', shape: [-1, 3] },
  ],
  compute(inputs) {
    const text = inputs.get('TEXT')!;
    const scale = inputs.get('SCALE')!;
    const n = text.shape[0]!;
    const t = (r: number) => String(text.data[r]);
    return [
      { name: 'LABEL', datatype: 'BYTES', shape: [n, 1], data: Array.from({ length: n }, (_, r) => t(r).toUpperCase()) },
      { name: 'SCORE', datatype: 'FP64', shape: [n, 1], data: Array.from({ length: n }, (_, r) => t(r).length * Number(scale.data[r])) },
      { name: 'VEC', datatype: 'FP32', shape: [n, 3], data: Array.from({ length: n }, (_, r) => [r % 2, t(r).length, 0.5]).flat() },
    ];
  },
};

/** `sum`: no batch dimension (max_batch_size 0): v FP64[4] → total FP64[1]. */
export const SUM: ServedModel = {
  name: 'sum',
  versions: ['1'],
  inputs: [{ name: 'v', datatype: 'FP64', shape: [4] }],
  outputs: [{ name: 'total', datatype: 'FP64', shape: [1] }],
  compute(inputs) {
    return [{ name: 'total', datatype: 'FP64', shape: [1], data: [inputs.get('v')!.data.reduce((a: number, b) => a + Number(b), 0)] }];
  },
};

/** A server with `models` (default: all of the above). */
export async function startTritonServer(options: TritonServerOptions = {}, models: readonly ServedModel[] = [LINEAR, TEXT, SUM]): Promise<TritonServer> {
  const inferences: SeenInference[] = [];
  const paths: string[] = [];
  const record = options.record ?? true;
  let rule: ((request: SeenInference, index: number) => TritonFault | undefined) | undefined;
  let live = true;
  let served = 0;
  let late = { sum: 0, max: 0, count: 0 };
  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(text);
  };
  const error = (res: ServerResponse, status: number, message: string) => send(res, status, { error: message });

  const route = async (req: IncomingMessage, res: ServerResponse, raw: Buffer, arrived: number): Promise<void> => {
    const path = (req.url ?? '').split('?')[0]!;
    if (record) paths.push(`${req.method} ${path}`);
    if (options.authorization !== undefined && req.headers.authorization !== options.authorization) return error(res, 401, 'unauthorized');
    if (req.method === 'GET' && (path === '/v2/health/live' || path === '/v2/health/ready')) return live ? send(res, 200, {}) : error(res, 503, 'server is not live');
    const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/infer)?$/.exec(path);
    if (!m) return error(res, 404, `no route ${req.method} ${path}`);
    const model = models.find((x) => x.name === decodeURIComponent(m[1]!));
    if (!model) return error(res, 404, `Request for unknown model: '${decodeURIComponent(m[1]!)}' is not found`);
    if (m[2] !== undefined && !model.versions.includes(decodeURIComponent(m[2]))) return error(res, 404, `Request for unknown model: '${model.name}' version ${m[2]} is not found`);
    if (req.method === 'GET' && !m[3]) return send(res, 200, { name: model.name, versions: model.versions, platform: 'onnxruntime_onnx', inputs: model.inputs, outputs: model.outputs });
    if (req.method !== 'POST' || !m[3]) return error(res, 405, `${req.method} not allowed on ${path}`);
    let body: SeenInference['body'];
    try {
      const bytes = /gzip/i.test(String(req.headers['content-encoding'] ?? '')) ? gunzipSync(raw) : raw;
      body = JSON.parse(bytes.toString('utf8')) as SeenInference['body'];
    } catch {
      return error(res, 400, 'failed to parse the request JSON buffer');
    }
    if (!Array.isArray(body?.inputs)) return error(res, 400, 'the request has no "inputs"');
    const batched = model.inputs[0]!.shape.length > 0 && model.inputs[0]!.shape[0] === -1;
    const seen: SeenInference = { path, headers: req.headers, body, rows: batched ? Number(body.inputs[0]?.shape?.[0] ?? 0) : 1 };
    const index = served++;
    if (record) inferences.push(seen);
    const fault = rule?.(seen, index);
    if (options.latencyMs) {
      await new Promise((r) => setTimeout(r, arrived + options.latencyMs! - performance.now()));
      const ms = Math.max(0, performance.now() - arrived - options.latencyMs);
      late = { sum: late.sum + ms, max: Math.max(late.max, ms), count: late.count + 1 };
    }
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (fault?.kind === 'status') return error(res, fault.status, fault.message ?? `injected ${fault.status}`);
    if (fault?.kind === 'malformed') return send(res, 200, '{"outputs": [ {"name": ');
    if (fault?.kind === 'slow') {
      await new Promise((r) => setTimeout(r, fault.ms));
      if (res.destroyed || req.socket.destroyed) return;
    }
    const inputs = new Map<string, Tensor>();
    for (const t of body.inputs) {
      const spec = model.inputs.find((i) => i.name === t.name);
      if (!spec) return error(res, 400, `unexpected inference input '${t.name}' for model '${model.name}'`);
      if (t.datatype !== spec.datatype) return error(res, 400, `inference input '${t.name}' data-type is '${t.datatype}', but model '${model.name}' expects '${spec.datatype}'`);
      if (!Array.isArray(t.shape) || t.shape.length !== spec.shape.length || t.shape.some((d, i) => spec.shape[i] !== -1 && spec.shape[i] !== d)) {
        return error(res, 400, `unexpected shape for input '${t.name}' for model '${model.name}'. Expected [${spec.shape.join(',')}], got [${t.shape?.join(',')}]`);
      }
      if (!Array.isArray(t.data) || t.data.length !== size(t.shape)) return error(res, 400, `unexpected number of elements for input '${t.name}': shape [${t.shape.join(',')}] but ${t.data?.length} values`);
      inputs.set(t.name, t);
    }
    for (const spec of model.inputs) if (!inputs.has(spec.name)) return error(res, 400, `expected ${model.inputs.length} inputs but got ${inputs.size} inputs for model '${model.name}'`);
    let outputs = model.compute(inputs);
    if (Array.isArray(body.outputs)) {
      const wanted = body.outputs.map((o) => o.name);
      const unknown = wanted.find((w) => !model.outputs.some((o) => o.name === w));
      if (unknown) return error(res, 400, `unexpected inference output '${unknown}' for model '${model.name}'`);
      outputs = outputs.filter((o) => wanted.includes(o.name));
    }
    if (fault?.kind === 'short-data') outputs = outputs.map((o) => ({ ...o, data: o.data.slice(1) }));
    if (fault?.kind === 'wrong-batch') outputs = outputs.map((o) => ({ ...o, shape: [o.shape[0]! - 1, ...o.shape.slice(1)], data: o.data.slice(size(o.shape.slice(1))) }));
    if (res.destroyed || req.socket.destroyed) return;
    send(res, 200, { model_name: model.name, model_version: m[2] ?? model.versions[model.versions.length - 1], outputs });
  };

  const server: Server = createServer((req, res) => {
    const arrived = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      route(req, res, Buffer.concat(chunks), arrived).catch((e: unknown) => error(res, 500, String(e)));
    });
  });
  const listening = await listenOnLoopback(server, options.port);
  return {
    url: listening.url,
    inferences,
    paths,
    served: () => served,
    lateness: () => {
      const { sum, max, count } = late;
      late = { sum: 0, max: 0, count: 0 };
      return { meanMs: count === 0 ? 0 : sum / count, maxMs: max, answers: count };
    },
    setFault: (r) => {
      rule = r;
    },
    setLive: (l) => {
      live = l;
    },
    reset: () => {
      rule = undefined;
      live = true;
      served = 0;
      inferences.length = 0;
      paths.length = 0;
    },
    close: listening.close,
  };
}
