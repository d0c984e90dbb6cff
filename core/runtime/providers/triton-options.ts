/**
 * Options of `'provider' = 'triton'` models (SPEC §2.5): the names and defaults of Flink's
 * `flink-model-triton` (`TritonOptions`), plus the executor's own (`batch-size`,
 * `max-concurrent-operations`, `cache`, `error-handling-strategy`).
 *
 * Checked in two steps, as remote-options.ts: values alone, positioned, while CREATE MODEL
 * validates its options ({@link validateTritonOptionValues}); then against INPUT/OUTPUT
 * ({@link parseTritonModel}).
 */
import { InvalidOptionError, type SourcePosition } from '../../errors.js';
import { parseDuration } from '../../sql/ml-call.js';
import type { DataType } from '../../sql/ast.js';
import { parseDataType, typeCategory } from '../../sql/types.js';
import type { ExecutorConfig } from '../remote-executor.js';
import type { CircuitBreakerSettings } from './circuit-breaker.js';
import { isErrorColumn } from './remote-options.js';
import type { ModelColumn } from '../../model-types.js';

/** Option keys of a triton model (besides the common ones of model-options.ts). */
export const TRITON_OPTIONS: readonly string[] = [
  'endpoint', 'model-name', 'model-version', 'timeout', 'auth-token', 'custom-headers', 'compression',
  'flatten-batch-dim', 'priority', 'sequence-id', 'sequence-start', 'sequence-end',
  'health-check-enabled', 'health-check-interval',
  'circuit-breaker-enabled', 'circuit-breaker-failure-threshold', 'circuit-breaker-timeout', 'circuit-breaker-half-open-requests',
  'max-retries', 'retry-initial-backoff', 'retry-max-backoff', 'default-value',
  'error-handling-strategy', 'cache',
];

/** Defaults (Flink's for the keys Flink has). */
export const TRITON_DEFAULTS = Object.freeze({
  modelVersion: 'latest',
  timeoutMs: 30_000,
  healthCheckIntervalMs: 30_000,
  failureThreshold: 0.5,
  circuitOpenMs: 60_000,
  halfOpenRequests: 3,
  maxRetries: 0,
  retryInitialBackoffMs: 100,
  retryMaxBackoffMs: 30_000,
  /** Rows per request (one tensor batch): Flink sends one row per request; batching is the point here. */
  batchSize: 64,
  maxConcurrentOperations: 10,
});

/** One column of the model as the tensors see it. */
export interface TensorColumn {
  readonly name: string;
  readonly type: DataType;
  /** For an ARRAY column, its element type. */
  readonly element?: DataType;
}

/** Everything a triton runtime needs, validated (with the executor's settings, remote-executor.ts). */
export interface TritonConfig extends ExecutorConfig {
  readonly provider: 'triton';
  /** `{endpoint}` normalised to end in `/v2/models` (Flink's form), without a trailing slash. */
  readonly modelsUrl: string;
  readonly modelName: string;
  /** undefined for `latest` (the server's choice). */
  readonly modelVersion?: string;
  readonly timeoutMs: number;
  /** The `auth-token` option as written (`${env:NAME}`, `******` for a stored literal, or absent). */
  readonly authTokenOption?: string;
  readonly customHeaders: Readonly<Record<string, string>>;
  readonly compression?: 'gzip';
  readonly flattenBatchDim: boolean;
  readonly priority?: number;
  readonly sequence?: { readonly id: string; readonly start: boolean; readonly end: boolean };
  readonly healthCheckIntervalMs?: number;
  readonly circuitBreaker?: CircuitBreakerSettings;
  readonly inputs: readonly TensorColumn[];
  /** OUTPUT columns fed by tensors, with their index among OUTPUT. */
  readonly answers: readonly (TensorColumn & { readonly index: number })[];
  /** OUTPUT width and the error metadata columns' places. */
  readonly width: number;
  readonly errorString?: number;
  readonly httpStatus?: number;
  /** `default-value` parsed per answer column (an OUTPUT row), when set. */
  readonly fallback?: readonly unknown[];
}

type Options = readonly (readonly [string, string])[];
type At = (key: string) => SourcePosition | undefined;

const get = (options: Options, key: string): string | undefined => options.find(([k]) => k.toLowerCase() === key)?.[1];

function bool(options: Options, key: string, at: At): boolean | undefined {
  const value = get(options, key)?.trim().toLowerCase();
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw new InvalidOptionError(`invalid value for '${key}': '${get(options, key)}' (expected 'true' or 'false')`, at(key));
  return value === 'true';
}

function integer(options: Options, key: string, at: At, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const value = get(options, key)?.trim();
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new InvalidOptionError(`option '${key}' must be an integer from ${min} to ${max}, not '${value}'`, at(key));
  }
  return Number(value);
}

function duration(options: Options, key: string, at: At, positive: boolean): number | undefined {
  const value = get(options, key);
  if (value === undefined) return undefined;
  const ms = parseDuration(value, key, at(key));
  if (positive && ms <= 0) throw new InvalidOptionError(`invalid value for '${key}': '${value}' (must be greater than zero)`, at(key));
  return ms;
}

/**
 * `custom-headers`: a JSON object (`'{"X-Api-Key": "k"}'`, as Flink's docs write it) or
 * Flink's map form `'X-Custom-Header:value,X-Another:value2'`.
 */
export function parseCustomHeaders(value: string | undefined, at?: SourcePosition): Record<string, string> {
  if (value === undefined || value.trim() === '') return {};
  const bad = (why: string) => new InvalidOptionError(`invalid value for 'custom-headers': ${why} (expected '{"X-Name": "value"}' or 'X-Name:value,X-Other:value')`, at);
  let entries: [string, string][];
  if (value.trim().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw bad('not valid JSON');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw bad('not a JSON object');
    entries = Object.entries(parsed as Record<string, unknown>).map(([k, v]) => {
      if (typeof v !== 'string') throw bad(`the value of '${k}' is not a string`);
      return [k, v];
    });
  } else {
    entries = value.split(',').map((pair) => {
      const colon = pair.indexOf(':');
      if (colon <= 0) throw bad(`'${pair.trim()}' has no name:value`);
      return [pair.slice(0, colon).trim(), pair.slice(colon + 1).trim()];
    });
  }
  const out: Record<string, string> = {};
  for (const [name, v] of entries) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw bad(`'${name}' is not a header name`);
    if (/[\r\n]/.test(v)) throw bad(`the value of '${name}' holds a line break`);
    out[name] = v;
  }
  return out;
}

/**
 * Checks the values of a triton model's options that need no schema. Positioned at the
 * offending option.
 *
 * @throws InvalidOptionError (22023)
 */
export function validateTritonOptionValues(options: Options, at: At = () => undefined): void {
  valuesOf(options, at);
}

function valuesOf(options: Options, at: At) {
  const compression = get(options, 'compression')?.trim().toLowerCase();
  if (compression !== undefined && compression !== 'gzip') throw new InvalidOptionError(`invalid value for 'compression': '${get(options, 'compression')}' (only 'gzip' is supported)`, at('compression'));
  const sequenceId = get(options, 'sequence-id');
  const threshold = get(options, 'circuit-breaker-failure-threshold');
  const failureThreshold = threshold === undefined ? TRITON_DEFAULTS.failureThreshold : Number(threshold.trim());
  if (!(failureThreshold > 0 && failureThreshold <= 1) || threshold?.trim() === '') {
    throw new InvalidOptionError(`option 'circuit-breaker-failure-threshold' must be a number above 0 and at most 1, not '${threshold}'`, at('circuit-breaker-failure-threshold'));
  }
  const retryInitialDelayMs = duration(options, 'retry-initial-backoff', at, true) ?? TRITON_DEFAULTS.retryInitialBackoffMs;
  const retryMaxDelayMs = duration(options, 'retry-max-backoff', at, true) ?? TRITON_DEFAULTS.retryMaxBackoffMs;
  if (retryMaxDelayMs < retryInitialDelayMs) throw new InvalidOptionError(`'retry-max-backoff' must be at least 'retry-initial-backoff'`, at('retry-max-backoff'));
  const strategy = get(options, 'error-handling-strategy')?.trim().toUpperCase();
  if (strategy !== undefined && !['RETRY', 'FAILOVER', 'IGNORE'].includes(strategy)) {
    throw new InvalidOptionError(`invalid value for 'error-handling-strategy': '${get(options, 'error-handling-strategy')}' (expected one of RETRY, FAILOVER, IGNORE)`, at('error-handling-strategy'));
  }
  const breaker = bool(options, 'circuit-breaker-enabled', at) ?? false;
  const health = bool(options, 'health-check-enabled', at) ?? false;
  return {
    timeoutMs: duration(options, 'timeout', at, true) ?? TRITON_DEFAULTS.timeoutMs,
    customHeaders: parseCustomHeaders(get(options, 'custom-headers'), at('custom-headers')),
    compression: compression as 'gzip' | undefined,
    flattenBatchDim: bool(options, 'flatten-batch-dim', at) ?? false,
    priority: integer(options, 'priority', at, 0, 255),
    sequence: sequenceId === undefined ? undefined : { id: sequenceId, start: bool(options, 'sequence-start', at) ?? false, end: bool(options, 'sequence-end', at) ?? false },
    healthCheckIntervalMs: health ? (duration(options, 'health-check-interval', at, true) ?? TRITON_DEFAULTS.healthCheckIntervalMs) : undefined,
    circuitBreaker: breaker
      ? {
          failureThreshold,
          openMs: duration(options, 'circuit-breaker-timeout', at, true) ?? TRITON_DEFAULTS.circuitOpenMs,
          halfOpenRequests: integer(options, 'circuit-breaker-half-open-requests', at, 1) ?? TRITON_DEFAULTS.halfOpenRequests,
        }
      : undefined,
    retryNum: integer(options, 'max-retries', at, 0) ?? TRITON_DEFAULTS.maxRetries,
    retryInitialDelayMs,
    retryMaxDelayMs,
    strategy: (strategy ?? 'RETRY') as 'RETRY' | 'FAILOVER' | 'IGNORE',
    cache: bool(options, 'cache', at) ?? true,
    batchSize: integer(options, 'batch-size', at, 1) ?? TRITON_DEFAULTS.batchSize,
    maxConcurrentOperations: integer(options, 'max-concurrent-operations', at, 1) ?? TRITON_DEFAULTS.maxConcurrentOperations,
  };
}

/** Tensor types the INPUT/OUTPUT columns may have: numbers, BOOLEAN, STRING, and 1-D arrays of numbers. */
function tensorColumn(c: ModelColumn, role: 'INPUT' | 'OUTPUT'): TensorColumn {
  const type = parseDataType(c.type);
  const category = typeCategory(type);
  if (category === 'array') {
    const element = type.elements![0]!;
    const inner = typeCategory(element);
    if (inner === 'float' || inner === 'integer' || inner === 'decimal' || inner === 'boolean' || inner === 'string') return { name: c.name, type, element };
  } else if (['float', 'integer', 'decimal', 'boolean', 'string'].includes(category)) {
    return { name: c.name, type };
  }
  throw new InvalidOptionError(`${role} column ${c.name} ${c.type} has no tensor type: a triton model takes numbers, BOOLEAN, STRING and ARRAY<number> columns (nested arrays, maps and rows are not tensors)`);
}

/** A `default-value` for one OUTPUT column: 'null' is NULL, arrays are JSON arrays. */
function fallbackValue(text: string, column: TensorColumn): unknown {
  const bad = () => new InvalidOptionError(`'default-value' '${text}' does not fit OUTPUT column ${column.name} ${column.type.name}`);
  if (text.trim() === 'null') return null;
  const category = typeCategory(column.type);
  if (category === 'string') return text;
  if (category === 'boolean') {
    if (!/^(true|false)$/i.test(text.trim())) throw bad();
    return text.trim().toLowerCase() === 'true';
  }
  if (category === 'array') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw bad();
    }
    if (!Array.isArray(parsed)) throw bad();
    return parsed;
  }
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(n)) throw bad();
  return n;
}

/**
 * Validates a triton model against its INPUT/OUTPUT and works out its URLs, tensors and
 * executor settings. The `auth-token` is resolved when the model runs.
 *
 * @throws InvalidOptionError (22023) for a missing or bad endpoint or model-name, columns
 *   without a tensor type, or a `default-value` that does not fit OUTPUT.
 */
export function parseTritonModel(options: Options, input: readonly ModelColumn[] | undefined, output: readonly ModelColumn[] | undefined): TritonConfig {
  const values = valuesOf(options, () => undefined);
  if (!input || !output || input.length === 0 || output.length === 0) {
    throw new InvalidOptionError(`a triton model needs INPUT and OUTPUT columns, matching the model's input and output tensors, e.g. INPUT (x ARRAY<FLOAT>) OUTPUT (y FLOAT)`);
  }
  const endpoint = get(options, 'endpoint')?.trim();
  if (endpoint === undefined || endpoint === '') throw new InvalidOptionError(`provider 'triton' needs 'endpoint', e.g. 'http://localhost:8000/v2/models'`);
  if (!/^https?:\/\/[^\s/]+/i.test(endpoint)) throw new InvalidOptionError(`option 'endpoint' must be an http(s) URL, not '${endpoint}'`);
  const modelName = get(options, 'model-name')?.trim();
  if (modelName === undefined || modelName === '') throw new InvalidOptionError(`provider 'triton' needs 'model-name': the model's name on the server`);
  const version = get(options, 'model-version')?.trim();
  const answers = output.map((c, index) => ({ c, index })).filter(({ c }) => !isErrorColumn(c.name)).map(({ c, index }) => ({ ...tensorColumn(c, 'OUTPUT'), index }));
  if (answers.length === 0) throw new InvalidOptionError(`a triton model needs an OUTPUT column besides the error columns`);
  const errorString = output.findIndex((c) => /^error[-_]string$/i.test(c.name));
  const httpStatus = output.findIndex((c) => /^http[-_]status[-_]code$/i.test(c.name));
  const defaultText = get(options, 'default-value');
  let fallback: unknown[] | undefined;
  if (defaultText !== undefined) {
    fallback = new Array<unknown>(output.length).fill(null);
    for (const a of answers) fallback[a.index] = fallbackValue(defaultText, a);
  }
  return {
    provider: 'triton',
    modelsUrl: modelsUrl(endpoint),
    modelName,
    modelVersion: version === undefined || version === '' || version.toLowerCase() === TRITON_DEFAULTS.modelVersion ? undefined : version,
    timeoutMs: values.timeoutMs,
    authTokenOption: get(options, 'auth-token'),
    customHeaders: values.customHeaders,
    compression: values.compression,
    flattenBatchDim: values.flattenBatchDim,
    priority: values.priority,
    sequence: values.sequence,
    healthCheckIntervalMs: values.healthCheckIntervalMs,
    circuitBreaker: values.circuitBreaker,
    inputs: input.map((c) => tensorColumn(c, 'INPUT')),
    answers,
    width: output.length,
    ...(errorString >= 0 ? { errorString } : {}),
    ...(httpStatus >= 0 ? { httpStatus } : {}),
    ...(fallback ? { fallback } : {}),
    // A model without a batch dimension takes one row per request.
    batchSize: values.flattenBatchDim ? 1 : values.batchSize,
    maxConcurrentOperations: values.maxConcurrentOperations,
    errorHandlingStrategy: values.strategy,
    retryNum: values.retryNum,
    retryFallbackStrategy: fallback ? 'DEFAULT' : 'FAILOVER',
    retryInitialDelayMs: values.retryInitialDelayMs,
    retryMaxDelayMs: values.retryMaxDelayMs,
    cache: values.cache,
  };
}

/** `http://h:8000/v2/models` as Flink writes it; a server root (`http://h:8000`) or `.../v2` gets the rest. */
function modelsUrl(endpoint: string): string {
  const url = endpoint.replace(/\/+$/, '');
  if (/\/v2\/models$/i.test(url)) return url;
  if (/\/v2$/i.test(url)) return `${url}/models`;
  return `${url}/v2/models`;
}
