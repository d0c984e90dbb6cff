/**
 * The `triton` provider: NVIDIA Triton and every server speaking the Open Inference
 * Protocol v2 over HTTP/REST (KServe, Seldon MLServer, OpenVINO Model Server), with the
 * options of Flink's `flink-model-triton`.
 * https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md
 *
 * - `POST {endpoint}/{model-name}[/versions/{model-version}]/infer`: `batch-size` rows per
 *   request, as tensors (triton-tensors.ts); errors are `{"error": "..."}` with an HTTP status.
 * - `GET {endpoint}/{model-name}[/versions/{v}]`: the model's metadata, read at CREATE when
 *   the server answers (a mismatch with INPUT/OUTPUT is an error then), and once before the
 *   first request (tensor names, data types and ranks).
 * - `GET /v2/health/live` with `health-check-enabled`, at most every `health-check-interval`.
 * - The circuit breaker (circuit-breaker.ts) with `circuit-breaker-enabled`.
 *
 * No SDK: requests go through the access policy's checked fetch (providers/http-fetch.ts,
 * keep-alive). The executor (remote-executor.ts) does concurrency, retries, timeouts,
 * cancellation, the cache, progress and the error columns, as for every provider.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ModelSqlError } from '../../errors.js';
import { log } from '../../logging.js';
import { resolveSecret, SECRET_PLACEHOLDER } from '../../secrets.js';
import { AccessPolicy } from '../access-policy.js';
import { RemoteRuntime, valueAt, type RowCodec, type RowPayload } from '../remote-executor.js';
import { CircuitBreaker, CircuitOpenError } from './circuit-breaker.js';
import { classifyHttpError, MalformedReply, retryAfterFromHeaders, transportFailure, type FailureInfo, type ProviderClient, type ProviderReply, type ProviderRequest } from './provider-client.js';
import { parseTritonModel, type TritonConfig } from './triton-options.js';
import { checkMetadata, decodeOutputs, encodeInputs, type ModelMetadata } from './triton-tensors.js';
import type { ColumnBatch, ModelColumn } from '../../model-types.js';

type Options = readonly (readonly [string, string])[];

/** How long CREATE MODEL waits for the server's metadata before going on without it. */
const METADATA_WAIT_MS = 3_000;

/** An HTTP error answer of the server: its status and `{"error"}` message. */
class TritonHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The model's URL (metadata), `/infer` appended for inference. */
function modelUrl(config: TritonConfig): string {
  const version = config.modelVersion === undefined ? '' : `/versions/${encodeURIComponent(config.modelVersion)}`;
  return `${config.modelsUrl}/${encodeURIComponent(config.modelName)}${version}`;
}

/** Request headers: JSON, the auth token (`Bearer` unless it names its scheme), then `custom-headers`. */
function headersOf(config: TritonConfig, token: string | undefined): Record<string, string> {
  return {
    'content-type': 'application/json',
    accept: 'application/json',
    ...(token ? { authorization: /^\S+\s/.test(token) ? token : `Bearer ${token}` } : {}),
    ...config.customHeaders,
  };
}

/** The `{"error": "..."}` message of an error body, else its first characters. */
function errorText(status: number, text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed?.error === 'string') return `${status} ${parsed.error}`;
  } catch {
    // not JSON
  }
  return `${status} ${text.slice(0, 200)}`;
}

/** Reads a model's metadata; rejects with TritonHttpError or the transport's error. */
async function fetchMetadata(config: TritonConfig, fetchFn: typeof fetch, token: string | undefined, signal: AbortSignal): Promise<ModelMetadata> {
  const response = await fetchFn(modelUrl(config), { method: 'GET', headers: headersOf(config, token), signal });
  const text = await response.text();
  if (!response.ok) throw new TritonHttpError(response.status, errorText(response.status, text));
  const body = JSON.parse(text) as ModelMetadata;
  if (!Array.isArray(body?.inputs) || !Array.isArray(body?.outputs)) throw new MalformedReply(`the model metadata has no "inputs" and "outputs" lists`);
  return body;
}

/**
 * One model on a v2 server behind the {@link ProviderClient} interface.
 *
 * @example
 * const client = new TritonClient(config, token, policy.fetch);
 */
export class TritonClient implements ProviderClient {
  readonly provider = 'triton';
  /** The breaker, when `circuit-breaker-enabled`. */
  readonly breaker?: CircuitBreaker;
  private metadata?: Promise<ModelMetadata | undefined>;
  private lastLiveCheck = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly config: TritonConfig,
    private readonly token: string | undefined,
    /** Every request goes through it: the access policy's checked fetch (core/runtime/access-policy.ts). */
    private readonly fetchFn: typeof fetch,
    private readonly now: () => number = Date.now,
  ) {
    if (config.circuitBreaker) this.breaker = new CircuitBreaker('triton', config.circuitBreaker, now);
  }

  /** The model's metadata, read once (undefined when the server does not give it: names then come from the columns). */
  modelMetadata(signal: AbortSignal): Promise<ModelMetadata | undefined> {
    this.metadata ??= fetchMetadata(this.config, this.fetchFn, this.token, signal).then(
      (m) => {
        checkMetadata(this.config, m);
        return m;
      },
      (error: unknown) => {
        if (error instanceof ModelSqlError) throw error;
        this.metadata = undefined;
        log('info', 'triton', `model metadata not read (${error instanceof Error ? error.message : String(error)}); tensors are named after the columns`);
        return undefined;
      },
    );
    return this.metadata;
  }

  async send(request: ProviderRequest, signal: AbortSignal): Promise<ProviderReply> {
    this.breaker?.allow();
    try {
      const reply = await this.infer(request, signal);
      this.breaker?.record(true);
      return reply;
    } catch (error) {
      // The server failing (5xx, no answer, a broken body) counts; a refused request (4xx) or a cancel does not.
      if (this.breaker && !signal.aborted && !(error instanceof ModelSqlError)) {
        const status = error instanceof TritonHttpError ? error.status : undefined;
        if (status === undefined || status >= 500) this.breaker.record(false);
        else this.breaker.record(true);
      }
      throw error;
    }
  }

  timedOut(): void {
    this.breaker?.record(false);
  }

  private async infer(request: ProviderRequest, signal: AbortSignal): Promise<ProviderReply> {
    const c = this.config;
    if (c.healthCheckIntervalMs !== undefined && this.now() - this.lastLiveCheck >= c.healthCheckIntervalMs) {
      const root = c.modelsUrl.replace(/\/models$/i, '');
      const live = await this.fetchFn(`${root}/health/live`, { method: 'GET', headers: headersOf(c, this.token), signal });
      await live.arrayBuffer();
      if (!live.ok) throw new TritonHttpError(live.status >= 500 ? live.status : 503, `${live.status} the server is not live (GET ${root}/health/live)`);
      this.lastLiveCheck = this.now();
    }
    const metadata = await this.modelMetadata(signal);
    const parameters = {
      ...(c.priority !== undefined ? { priority: c.priority } : {}),
      ...(c.sequence ? { sequence_id: c.sequence.id, sequence_start: c.sequence.start, sequence_end: c.sequence.end } : {}),
    };
    const body = JSON.stringify({
      inputs: encodeInputs(c, request.rows ?? [], metadata),
      ...(metadata ? { outputs: c.answers.map((a, i) => ({ name: (metadata.outputs.find((o) => o.name.toLowerCase() === a.name.toLowerCase()) ?? metadata.outputs[i])!.name })) } : {}),
      ...(Object.keys(parameters).length > 0 ? { parameters } : {}),
    });
    const headers = headersOf(c, this.token);
    const payload = c.compression === 'gzip' ? gzipSync(body) : body;
    if (c.compression === 'gzip') headers['content-encoding'] = 'gzip';
    const response = await this.fetchFn(`${modelUrl(c)}/infer`, { method: 'POST', headers, body: payload, signal });
    const text = await response.text();
    if (!response.ok) throw new TritonHttpError(response.status, errorText(response.status, text), retryAfterFromHeaders(response.headers));
    return { body: JSON.parse(text) as unknown, tokens: 0 };
  }

  describeError(error: unknown): FailureInfo {
    // An open circuit, or metadata that does not fit INPUT/OUTPUT: asking again does not help.
    if (error instanceof CircuitOpenError || error instanceof ModelSqlError) return { message: error.message, retryable: false, contextOverflow: false };
    if (error instanceof TritonHttpError) return { message: error.message, ...classifyHttpError(error.status, error.message), retryAfterMs: error.retryAfterMs };
    return transportFailure(error);
  }
}

/** A row with a NULL input: not sent (its OUTPUT is NULL). */
const NOT_SENT: RowPayload = Object.freeze({ skipped: false });

/**
 * The {@link RowCodec} of a triton model: a row goes when none of its inputs is NULL; its
 * values are its cache identity.
 */
class TensorCodec implements RowCodec {
  readonly fingerprint: string;
  readonly width: number;
  readonly errorString?: number;
  readonly httpStatus?: number;
  readonly fallback?: readonly unknown[];

  constructor(private readonly config: TritonConfig) {
    // A cached answer is a whole OUTPUT row: each answer column's place and type (an ARRAY's
    // element type too), and the row's width, are part of it.
    this.fingerprint = JSON.stringify([
      'triton', config.modelsUrl, config.modelName, config.modelVersion ?? null, config.inputs.map((c) => [c.type.name, c.element?.name ?? null]),
      config.width, config.answers.map((a) => [a.index, a.name, a.type.name, a.element?.name ?? null]),
    ]);
    this.width = config.width;
    this.errorString = config.errorString;
    this.httpStatus = config.httpStatus;
    this.fallback = config.fallback;
  }

  payloads(batch: ColumnBatch): RowPayload[] {
    const out: RowPayload[] = new Array(batch.rowCount);
    const columns = batch.columns;
    for (let row = 0; row < batch.rowCount; row++) {
      const values = new Array<unknown>(columns.length);
      let sent = true;
      for (let c = 0; c < columns.length; c++) {
        const v = valueAt(columns[c]!, row);
        if (v === null || v === undefined) sent = false;
        values[c] = v;
      }
      out[row] = sent ? { skipped: false, values } : NOT_SENT;
    }
    return out;
  }

  /** The row's values as JSON (only when the cache asks: sending needs no text). */
  cacheKey(payload: RowPayload): string | null {
    if (payload.values === undefined) return null;
    const text = JSON.stringify(payload.values, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    return createHash('sha256').update(this.fingerprint).update('\u0000').update(text).digest('hex');
  }

  request(rows: readonly RowPayload[]): ProviderRequest {
    return { rows: rows.map((r) => r.values!) };
  }

  answers(reply: ProviderReply, count: number): unknown[][] {
    return decodeOutputs(this.config, reply.body, count);
  }
}

/** The `auth-token` of a model: a `${env:...}` reference resolved now, or the stored literal. */
function authToken(config: TritonConfig, secrets: readonly (readonly [string, string])[] | undefined): string | undefined {
  const option = config.authTokenOption;
  if (option === undefined) return undefined;
  const literal = option === SECRET_PLACEHOLDER ? secrets?.find(([k]) => k.toLowerCase() === 'auth-token')?.[1] : option;
  if (literal === undefined) throw new ModelSqlError('22023', `the auth-token of this model is missing from the catalog; set it again with ALTER MODEL ... SET ('auth-token' = ...)`);
  return resolveSecret('auth-token', literal);
}

/**
 * Checks a triton model at CREATE / ALTER: options against INPUT/OUTPUT, the endpoint
 * against the access policy, and, when the server answers within a few seconds, the model's
 * metadata against INPUT/OUTPUT. A server that does not answer is a notice, not an error.
 *
 * @throws InvalidOptionError (22023), AccessDeniedError (42501), ModelSqlError 42804 (tensors
 *   that do not match), 42704 (the server does not know the model)
 */
export async function checkTritonModel(
  options: Options,
  input: readonly ModelColumn[] | undefined,
  output: readonly ModelColumn[] | undefined,
  secrets: readonly (readonly [string, string])[] | undefined,
  policy: AccessPolicy = new AccessPolicy(),
): Promise<{ input: readonly ModelColumn[]; output: readonly ModelColumn[]; notices: readonly string[] }> {
  const config = parseTritonModel(options, input, output);
  policy.checkUrl(config.modelsUrl, 'endpoint');
  const notices: string[] = [];
  let token: string | undefined;
  try {
    // ALTER MODEL of a model whose literal token is stored apart: the metadata is read without it.
    token = config.authTokenOption === SECRET_PLACEHOLDER && !secrets ? undefined : authToken(config, secrets);
  } catch (error) {
    notices.push(error instanceof Error ? error.message : String(error));
  }
  const url = modelUrl(config);
  try {
    const metadata = await fetchMetadata(config, policy.fetch, token, AbortSignal.timeout(Math.min(METADATA_WAIT_MS, config.timeoutMs)));
    checkMetadata(config, metadata);
  } catch (error) {
    if (error instanceof ModelSqlError) throw error;
    if (error instanceof TritonHttpError && error.status === 404) throw new ModelSqlError('42704', `the server at ${config.modelsUrl} has no model '${config.modelName}'${config.modelVersion ? ` version ${config.modelVersion}` : ''}: ${error.message}`);
    const why = error instanceof Error ? error.message : String(error);
    notices.push(`the model's metadata could not be read from ${url} (${why}); its tensors are checked at the first call`);
  }
  return { input: input!, output: output!, notices };
}

/**
 * The runtime of a triton model version: the executor around a {@link TritonClient}. The
 * endpoint is checked against `policy` and the auth-token resolved here, before any request.
 */
export function createTritonRuntime(
  options: Options,
  input: readonly ModelColumn[],
  output: readonly ModelColumn[],
  secrets: readonly (readonly [string, string])[] | undefined,
  policy: AccessPolicy = new AccessPolicy(),
): RemoteRuntime {
  const config = parseTritonModel(options, input, output);
  policy.checkUrl(config.modelsUrl, 'endpoint');
  return new RemoteRuntime(config, new TritonClient(config, authToken(config, secrets), policy.fetch), input.length, new TensorCodec(config));
}
