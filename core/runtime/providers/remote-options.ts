/**
 * Options of remote models (SPEC §2.2): the names and defaults of Flink's
 * `flink-model-openai` (`OpenAIOptions`), used by every provider where they make sense,
 * plus modelsql's own (`prompt`, `timeout`, `cache`, `batch-size`, retry delays).
 *
 * Checked in two steps: values alone, positioned, while CREATE MODEL validates its options
 * ({@link validateRemoteOptionValues}); then against INPUT/OUTPUT and the environment
 * ({@link parseRemoteModel}), at CREATE and again before the first request.
 */
import { InvalidOptionError, type SourcePosition } from '../../errors.js';
import { resolveSecret, secretReference, SECRET_PLACEHOLDER } from '../../secrets.js';
import { parseDuration } from '../../sql/ml-call.js';
import { parseDataType, typeCategory } from '../../sql/types.js';
import { parsePromptTemplate, type PromptTemplate } from './prompt-template.js';
import { outputPlan, type OutputPlan } from './structured-output.js';
import type { ModelColumn } from '../../model-types.js';

/** The remote providers. */
export const REMOTE_PROVIDERS = ['openai', 'gemini', 'anthropic'] as const;

/** One of {@link REMOTE_PROVIDERS}. */
export type RemoteProvider = (typeof REMOTE_PROVIDERS)[number];

/** Whether `provider` is a remote one (`openai`, `gemini`, `anthropic`). */
export function isRemoteProvider(provider: string): provider is RemoteProvider {
  return (REMOTE_PROVIDERS as readonly string[]).includes(provider);
}

/** What a remote model does. */
export type RemoteTask = 'text_generation' | 'embedding';

/** Flink's `context-overflow-action` values. */
export const CONTEXT_OVERFLOW_ACTIONS = ['TRUNCATED_TAIL', 'TRUNCATED_TAIL_LOG', 'TRUNCATED_HEAD', 'TRUNCATED_HEAD_LOG', 'SKIPPED', 'SKIPPED_LOG'] as const;

/** Options every remote provider takes. */
const SHARED = [
  'endpoint', 'api-key', 'model', 'system-prompt', 'temperature', 'top-p', 'stop', 'max-tokens',
  'max-context-size', 'context-overflow-action', 'error-handling-strategy', 'retry-num', 'retry-fallback-strategy',
  'prompt', 'timeout', 'cache', 'retry-initial-delay', 'retry-max-delay',
] as const;

/** Option keys by remote provider (besides the common ones of model-options.ts). */
export const REMOTE_PROVIDER_OPTIONS: Readonly<Record<RemoteProvider, readonly string[]>> = {
  openai: [...SHARED, 'presence-penalty', 'frequency-penalty', 'n', 'seed', 'response-format', 'dimension'],
  gemini: [...SHARED, 'presence-penalty', 'frequency-penalty', 'n', 'seed', 'response-format', 'dimension'],
  anthropic: [...SHARED],
};

/** Defaults (Flink's for the keys Flink has). */
export const REMOTE_DEFAULTS = Object.freeze({
  systemPrompt: 'You are a helpful assistant.',
  contextOverflowAction: 'TRUNCATED_TAIL' as const,
  errorHandlingStrategy: 'RETRY' as const,
  retryNum: 100,
  retryFallbackStrategy: 'FAILOVER' as const,
  maxConcurrentOperations: 10,
  timeoutMs: 60_000,
  retryInitialDelayMs: 500,
  retryMaxDelayMs: 30_000,
  batchSize: 1,
  anthropicMaxTokens: 1024,
});

/** Default endpoints of the hosted services (openai has none: Flink requires `endpoint`). */
const DEFAULT_ENDPOINTS: Readonly<Partial<Record<RemoteProvider, string>>> = {
  gemini: 'https://generativelanguage.googleapis.com',
  anthropic: 'https://api.anthropic.com',
};

/** Everything a remote runtime needs, validated. */
export interface RemoteModelConfig {
  readonly provider: RemoteProvider;
  readonly task: RemoteTask;
  /** The `endpoint` option as written (trimmed), or the provider's default. */
  readonly endpoint: string;
  /** The SDK's base URL (OpenAI: `.../v1`; Gemini and Anthropic: the host). */
  readonly baseUrl: string;
  /** Gemini only: the API version taken from the endpoint (`v1beta` by default). */
  readonly apiVersion?: string;
  /** The option value as written (`${env:NAME}` or `******`); resolved by {@link resolveApiKey}. */
  readonly apiKeyOption: string;
  readonly model: string;
  readonly systemPrompt: string;
  readonly temperature?: number;
  readonly topP?: number;
  readonly stop?: readonly string[];
  readonly maxTokens?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  readonly seed?: number;
  readonly responseFormat?: 'text' | 'json_object';
  readonly dimension?: number;
  readonly maxContextSize?: number;
  readonly contextOverflowAction: (typeof CONTEXT_OVERFLOW_ACTIONS)[number];
  readonly errorHandlingStrategy: 'RETRY' | 'FAILOVER' | 'IGNORE';
  readonly retryNum: number;
  readonly retryFallbackStrategy: 'FAILOVER' | 'IGNORE';
  readonly timeoutMs: number;
  readonly retryInitialDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly cache: boolean;
  /** Rows per request (row packing). */
  readonly batchSize: number;
  readonly maxConcurrentOperations: number;
  readonly template: PromptTemplate;
  readonly output: OutputPlan;
}

type Options = readonly (readonly [string, string])[];
type At = (key: string) => SourcePosition | undefined;

function get(options: Options, key: string): string | undefined {
  return options.find(([k]) => k.toLowerCase() === key)?.[1];
}

function number(options: Options, key: string, at: At, min: number, max: number): number | undefined {
  const value = get(options, key);
  if (value === undefined) return undefined;
  const n = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new InvalidOptionError(`option '${key}' must be a number between ${min} and ${max}, not '${value}'`, at(key));
  }
  return n;
}

function integer(options: Options, key: string, at: At, min: number): number | undefined {
  const value = get(options, key);
  if (value === undefined) return undefined;
  const n = Number(value.trim());
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new InvalidOptionError(`option '${key}' must be an integer of at least ${min}, not '${value}'`, at(key));
  }
  return n;
}

function choice<T extends string>(options: Options, key: string, at: At, choices: readonly T[]): T | undefined {
  const value = get(options, key);
  if (value === undefined) return undefined;
  const found = choices.find((c) => c.toLowerCase() === value.trim().toLowerCase());
  if (!found) throw new InvalidOptionError(`invalid value for '${key}': '${value}' (expected one of ${choices.join(', ')})`, at(key));
  return found;
}

function duration(options: Options, key: string, at: At): number | undefined {
  const value = get(options, key);
  return value === undefined ? undefined : parseDuration(value, key, at(key));
}

function bool(options: Options, key: string, at: At): boolean | undefined {
  const value = get(options, key)?.trim().toLowerCase();
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw new InvalidOptionError(`invalid value for '${key}': '${get(options, key)}' (expected 'true' or 'false')`, at(key));
  return value === 'true';
}

/**
 * Checks the values of a remote model's options that need no schema: numbers, choices,
 * durations. Positioned at the offending option.
 *
 * @throws InvalidOptionError (22023)
 */
export function validateRemoteOptionValues(provider: RemoteProvider, options: Options, at: At = () => undefined): void {
  valuesOf(provider, options, at);
}

function valuesOf(provider: RemoteProvider, options: Options, at: At) {
  const n = integer(options, 'n', at, 1);
  if (n !== undefined && n !== 1) {
    throw new InvalidOptionError(`option 'n' must be 1: ML_PREDICT returns one row per input row`, at('n'));
  }
  return {
    temperature: number(options, 'temperature', at, 0, 2),
    topP: number(options, 'top-p', at, 0, 1),
    maxTokens: integer(options, 'max-tokens', at, 1),
    presencePenalty: number(options, 'presence-penalty', at, -2, 2),
    frequencyPenalty: number(options, 'frequency-penalty', at, -2, 2),
    seed: integer(options, 'seed', at, Number.MIN_SAFE_INTEGER),
    responseFormat: choice(options, 'response-format', at, ['text', 'json_object'] as const),
    dimension: integer(options, 'dimension', at, 1),
    maxContextSize: integer(options, 'max-context-size', at, 1),
    contextOverflowAction: choice(options, 'context-overflow-action', at, CONTEXT_OVERFLOW_ACTIONS) ?? REMOTE_DEFAULTS.contextOverflowAction,
    errorHandlingStrategy: choice(options, 'error-handling-strategy', at, ['RETRY', 'FAILOVER', 'IGNORE'] as const) ?? REMOTE_DEFAULTS.errorHandlingStrategy,
    retryNum: integer(options, 'retry-num', at, 0) ?? REMOTE_DEFAULTS.retryNum,
    retryFallbackStrategy: choice(options, 'retry-fallback-strategy', at, ['FAILOVER', 'IGNORE'] as const) ?? REMOTE_DEFAULTS.retryFallbackStrategy,
    timeoutMs: positiveDuration(options, 'timeout', at) ?? REMOTE_DEFAULTS.timeoutMs,
    retryInitialDelayMs: duration(options, 'retry-initial-delay', at) ?? REMOTE_DEFAULTS.retryInitialDelayMs,
    retryMaxDelayMs: duration(options, 'retry-max-delay', at) ?? REMOTE_DEFAULTS.retryMaxDelayMs,
    cache: bool(options, 'cache', at) ?? true,
    batchSize: integer(options, 'batch-size', at, 1) ?? REMOTE_DEFAULTS.batchSize,
    maxConcurrentOperations: integer(options, 'max-concurrent-operations', at, 1) ?? REMOTE_DEFAULTS.maxConcurrentOperations,
    stop: get(options, 'stop')?.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    provider,
  };
}

function positiveDuration(options: Options, key: string, at: At): number | undefined {
  const ms = duration(options, key, at);
  if (ms !== undefined && ms <= 0) throw new InvalidOptionError(`invalid value for '${key}': '${get(options, key)}' (must be greater than zero)`, at(key));
  return ms;
}

/**
 * Validates a remote model against its INPUT/OUTPUT and works out its task, endpoint and
 * output plan. `${env:...}` references are resolved when the model runs
 * ({@link resolveApiKey}), not here. Given `notices` (CREATE / ALTER), what the model needs
 * only to run (its `model` option, the variables its references name) is reported there
 * instead of failing: a definition may be written where it will not run (Flink resolves
 * nothing at CREATE), as FLIP-437's own example leaves out `model`.
 *
 * @throws InvalidOptionError (22023) for a missing endpoint or api-key, a missing model
 *   (without `notices`), an OUTPUT the task cannot produce, or a prompt naming an unknown column.
 */
export function parseRemoteModel(
  provider: RemoteProvider,
  options: Options,
  input: readonly ModelColumn[] | undefined,
  output: readonly ModelColumn[] | undefined,
  notices?: string[],
): RemoteModelConfig {
  const values = valuesOf(provider, options, () => undefined);
  if (!input || !output || input.length === 0 || output.length === 0) {
    throw new InvalidOptionError(`a remote model ('provider' = '${provider}') needs INPUT and OUTPUT columns, e.g. INPUT (text STRING) OUTPUT (answer STRING)`);
  }
  const endpointOption = get(options, 'endpoint') ?? DEFAULT_ENDPOINTS[provider];
  if (endpointOption === undefined || endpointOption.trim() === '') {
    throw new InvalidOptionError(`provider '${provider}' needs 'endpoint', e.g. 'https://api.openai.com/v1/chat/completions' or an OpenAI-compatible server's URL`);
  }
  if (!/^https?:\/\/[^\s/]+/i.test(endpointOption.trim())) {
    throw new InvalidOptionError(`option 'endpoint' must be an http(s) URL, not '${endpointOption}'`);
  }
  const model = get(options, 'model');
  if (model === undefined || model.trim() === '') {
    const missing = `provider '${provider}' needs 'model', e.g. 'gpt-4o-mini'`;
    if (!notices) throw new InvalidOptionError(missing);
    notices.push(`${missing}; the model cannot run until ALTER MODEL ... SET ('model' = '...')`);
  }
  const apiKeyOption = get(options, 'api-key');
  if (apiKeyOption === undefined || apiKeyOption === '') {
    throw new InvalidOptionError(`provider '${provider}' needs 'api-key': give '\${env:NAME}' (recommended) or the key itself`);
  }
  const variable = secretReference(apiKeyOption);
  if (notices && variable !== undefined && !process.env[variable]) {
    notices.push(`option 'api-key' refers to environment variable ${variable}, which is not set here; the model runs only where it is set`);
  }
  const { baseUrl, apiVersion, suffixTask } = parseEndpoint(provider, endpointOption.trim());
  const task = taskOf(provider, suffixTask, get(options, 'task'), output);
  const template = parsePromptTemplate(get(options, 'prompt'), input);
  const plan = outputPlan(task, output);
  if (task === 'embedding' && provider === 'anthropic') {
    throw new InvalidOptionError(`provider 'anthropic' has no embeddings API; use 'openai' or 'gemini' for an ARRAY<FLOAT> output`);
  }
  return {
    ...values,
    provider,
    task,
    endpoint: endpointOption.trim(),
    baseUrl,
    apiVersion,
    apiKeyOption,
    model: model?.trim() ?? '',
    systemPrompt: get(options, 'system-prompt') ?? REMOTE_DEFAULTS.systemPrompt,
    template,
    output: plan,
  };
}

/** Resolves the model's api-key (a `${env:...}` reference, or the literal from the secrets). */
export function resolveApiKey(config: RemoteModelConfig, literal: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (config.apiKeyOption === SECRET_PLACEHOLDER) {
    if (literal === undefined) throw new InvalidOptionError(`the api-key of this model is missing from the catalog; set it again with ALTER MODEL ... SET ('api-key' = ...)`);
    return resolveSecret('api-key', literal, env);
  }
  return resolveSecret('api-key', config.apiKeyOption, env);
}

function parseEndpoint(provider: RemoteProvider, endpoint: string): { baseUrl: string; apiVersion?: string; suffixTask?: RemoteTask } {
  const url = endpoint.replace(/\/+$/, '');
  if (provider === 'openai') {
    if (/\/chat\/completions$/i.test(url)) return { baseUrl: url.replace(/\/chat\/completions$/i, ''), suffixTask: 'text_generation' };
    if (/\/embeddings$/i.test(url)) return { baseUrl: url.replace(/\/embeddings$/i, ''), suffixTask: 'embedding' };
    return { baseUrl: url };
  }
  if (provider === 'gemini') {
    const m = /^(.*?)\/(v1|v1beta|v1alpha)(\/.*)?$/.exec(url);
    return m ? { baseUrl: m[1]!, apiVersion: m[2]! } : { baseUrl: url };
  }
  return { baseUrl: url.replace(/\/v1(\/messages)?$/i, '') };
}

function taskOf(provider: RemoteProvider, fromEndpoint: RemoteTask | undefined, option: string | undefined, output: readonly ModelColumn[]): RemoteTask {
  const fromOption = option?.toLowerCase();
  if (fromOption !== undefined && fromOption !== 'text_generation' && fromOption !== 'embedding' && fromOption !== 'classification') {
    throw new InvalidOptionError(`task '${option}' is not one a remote model performs; use text_generation, classification or embedding`);
  }
  const wanted = fromOption === 'classification' ? 'text_generation' : (fromOption as RemoteTask | undefined);
  if (fromEndpoint && wanted && fromEndpoint !== wanted) {
    throw new InvalidOptionError(`the endpoint is for ${fromEndpoint === 'embedding' ? 'embeddings' : 'chat completions'} but 'task' is '${option}'`);
  }
  if (fromEndpoint ?? wanted) return (fromEndpoint ?? wanted)!;
  const answers = output.filter((c) => !isErrorColumn(c.name));
  const only = answers.length === 1 ? parseDataType(answers[0]!.type) : undefined;
  if (only && typeCategory(only) === 'array' && only.elements && ['float', 'decimal'].includes(typeCategory(only.elements[0]!))) return 'embedding';
  void provider;
  return 'text_generation';
}

/** Whether an OUTPUT column is one of the error metadata columns (`error-string`, `http-status-code`). */
export function isErrorColumn(name: string): boolean {
  return /^(error[-_]string|http[-_]status[-_]code)$/i.test(name);
}
