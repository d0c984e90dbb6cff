/**
 * Server caps on the resource options a client controls (SPEC §5: "the proxy bounds every
 * resource a client controls"): how many requests a model call keeps in flight, rows per
 * batch, tokens asked for, retries, timeouts and delays, prompt sizes, embedding width and
 * training effort. A value over its cap is refused with 22023 naming the option and the cap:
 * at CREATE / ALTER MODEL, in an ML call's CONFIG, and when a stored model runs (a model
 * created before a cap was lowered, or imported). One table ({@link RESOURCE_CAPS}) names
 * each cap, its default, the options it bounds and the proxy flag that sets it.
 */
import { InvalidOptionError, type SourcePosition } from '../errors.js';
import type { CallConfig } from '../sql/ml-call.js';
import { parseDuration } from '../sql/ml-call.js';

/** How a cap measures an option's value. */
type CapUnit = 'count' | 'duration' | 'bytes';

/** One cap: its name in {@link ResourceCaps}, the proxy flag that sets it, its default and the options it bounds. */
export interface ResourceCapSpec {
  readonly name: keyof ResourceCaps;
  /** The `modelsql proxy` flag, without the leading `--`. */
  readonly flag: string;
  readonly unit: CapUnit;
  readonly default: number;
  /** The canonical option keys (model-options.ts) and CONFIG keys it bounds. */
  readonly options: readonly string[];
  /** Whether it bounds the value of every option no other cap bounds (then `options` is empty). */
  readonly otherOptions?: boolean;
}

/** The caps, each a positive number; durations in milliseconds, sizes in bytes. */
export interface ResourceCaps {
  /** `max-concurrent-operations`: requests (batches) one ML call keeps in flight. */
  readonly maxConcurrentOperations: number;
  /** `batch-size`: rows per batch or per request. */
  readonly maxBatchSize: number;
  /** `max-tokens`: tokens a remote model may be asked to answer with. */
  readonly maxTokens: number;
  /** `max-context-size` (remote models) and `max-length` (local text models), in tokens. */
  readonly maxContextSize: number;
  /** `retry-num` (remote models) and `max-retries` (model servers). */
  readonly maxRetries: number;
  /** `timeout` of a request, as a model option or in CONFIG. */
  readonly maxTimeoutMs: number;
  /** `retry-initial-delay`, `retry-max-delay`, `retry-initial-backoff`, `retry-max-backoff`. */
  readonly maxRetryDelayMs: number;
  /** `prompt` and `system-prompt` options, and the prompt of each row when it is sent (UTF-8 bytes). */
  readonly maxPromptBytes: number;
  /** `dimension` of an embedding model. */
  readonly maxDimension: number;
  /** `max-iterations` of training. */
  readonly maxIterations: number;
  /** `k` of k-means training. */
  readonly maxClusters: number;
  /** `max-categories` of training (one-hot columns per STRING feature). */
  readonly maxCategories: number;
  /** The value of every other option (`stop`, `custom-headers`, `response-format`, `endpoint`, ...) and each COMMENT of a model definition, in UTF-8 bytes. */
  readonly maxOptionBytes: number;
}

/** Every cap, with its default and proxy flag (docs/security.md, "Caps on model options"). */
export const RESOURCE_CAPS: readonly ResourceCapSpec[] = Object.freeze([
  { name: 'maxConcurrentOperations', flag: 'max-concurrent-operations', unit: 'count', default: 64, options: ['max-concurrent-operations'] },
  { name: 'maxBatchSize', flag: 'max-batch-size', unit: 'count', default: 65_536, options: ['batch-size'] },
  { name: 'maxTokens', flag: 'max-tokens', unit: 'count', default: 131_072, options: ['max-tokens'] },
  { name: 'maxContextSize', flag: 'max-context-size', unit: 'count', default: 1_048_576, options: ['max-context-size', 'max-length'] },
  { name: 'maxRetries', flag: 'max-retries', unit: 'count', default: 100, options: ['retry-num', 'max-retries'] },
  { name: 'maxTimeoutMs', flag: 'max-timeout', unit: 'duration', default: 600_000, options: ['timeout'] },
  { name: 'maxRetryDelayMs', flag: 'max-retry-delay', unit: 'duration', default: 300_000, options: ['retry-initial-delay', 'retry-max-delay', 'retry-initial-backoff', 'retry-max-backoff'] },
  { name: 'maxPromptBytes', flag: 'max-prompt-bytes', unit: 'bytes', default: 1_048_576, options: ['prompt', 'system-prompt'] },
  { name: 'maxDimension', flag: 'max-dimension', unit: 'count', default: 65_536, options: ['dimension'] },
  { name: 'maxIterations', flag: 'max-iterations', unit: 'count', default: 10_000, options: ['max-iterations'] },
  { name: 'maxClusters', flag: 'max-clusters', unit: 'count', default: 10_000, options: ['k'] },
  { name: 'maxCategories', flag: 'max-categories', unit: 'count', default: 10_000, options: ['max-categories'] },
  { name: 'maxOptionBytes', flag: 'max-option-bytes', unit: 'bytes', default: 65_536, options: [], otherOptions: true },
] as const);

/** The default caps (see {@link RESOURCE_CAPS}). */
export const DEFAULT_RESOURCE_CAPS: ResourceCaps = Object.freeze(Object.fromEntries(RESOURCE_CAPS.map((c) => [c.name, c.default])) as unknown as ResourceCaps);

/**
 * The caps with `overrides` applied over the defaults.
 *
 * @throws RangeError when an override is not a positive integer.
 */
export function resourceCaps(overrides: Partial<ResourceCaps> = {}): ResourceCaps {
  for (const [name, value] of Object.entries(overrides)) {
    if (!RESOURCE_CAPS.some((c) => c.name === name)) throw new RangeError(`unknown resource cap '${name}'`);
    if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) throw new RangeError(`resource cap ${name} must be a positive integer, not ${String(value)}`);
  }
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return Object.freeze({ ...DEFAULT_RESOURCE_CAPS, ...defined });
}

/**
 * Checks a model's options (canonical keys, values already validated) against the caps;
 * `hint` ends the message (what to do about a stored model).
 *
 * @throws InvalidOptionError (22023) naming the option, its value and the cap.
 */
export function checkOptionCaps(options: readonly (readonly [string, string])[], caps: ResourceCaps, at: (key: string) => SourcePosition | undefined = () => undefined, hint = ''): void {
  for (const [key, value] of options) {
    const spec = specOf(key) ?? OTHER_OPTIONS;
    checkValue(spec, key, measure(spec, key, value, at(key)), caps, at(key), hint);
  }
}

/**
 * Checks a text a model definition holds besides its options (`COMMENT` on the model or a
 * column, named by `what`) against the cap on option values (`maxOptionBytes`).
 *
 * @throws InvalidOptionError (22023) naming the text, its size and the cap.
 */
export function checkTextCap(what: string, text: string | undefined, caps: ResourceCaps, at?: SourcePosition): void {
  if (text === undefined || text.length * 3 <= caps.maxOptionBytes) return;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > caps.maxOptionBytes) throw new InvalidOptionError(`${what} is ${bytes} bytes, over this server's cap of ${caps.maxOptionBytes} bytes (--${OTHER_OPTIONS.flag})`, at);
}

/**
 * Checks an ML call's CONFIG against the caps; `at` positions an error at the CONFIG key.
 *
 * @throws InvalidOptionError (22023)
 */
export function checkCallCaps(config: CallConfig, caps: ResourceCaps, at: (key: string) => SourcePosition | undefined = () => undefined): void {
  const values: readonly (readonly [string, number | undefined])[] = [
    ['max-concurrent-operations', config.maxConcurrentOperations],
    ['batch-size', config.batchSize],
    ['timeout', config.timeoutMs],
  ];
  for (const [key, value] of values) {
    if (value !== undefined) checkValue(specOf(key)!, key, value, caps, at(key));
  }
}

/** The cap on the values of options no other cap bounds. */
const OTHER_OPTIONS = RESOURCE_CAPS.find((c) => c.otherOptions)!;

/** The spec bounding option `key`, if any. */
function specOf(key: string): ResourceCapSpec | undefined {
  const k = key.toLowerCase();
  return RESOURCE_CAPS.find((c) => c.options.includes(k));
}

/** An option's value in the cap's unit (NaN when it does not read as one: its own validation reports that). */
function measure(spec: ResourceCapSpec, key: string, value: string, at: SourcePosition | undefined): number {
  if (spec.unit === 'bytes') return Buffer.byteLength(value, 'utf8');
  if (spec.unit === 'duration') return parseDuration(value, key, at);
  return value.trim() === '' ? Number.NaN : Number(value.trim());
}

function checkValue(spec: ResourceCapSpec, key: string, value: number, caps: ResourceCaps, at: SourcePosition | undefined, hint = ''): void {
  const cap = caps[spec.name];
  if (!(value > cap)) return;
  throw new InvalidOptionError(`option '${key}' is ${shown(spec.unit, value)}, over this server's cap of ${shown(spec.unit, cap)} (--${spec.flag})${hint}`, at);
}

/** A value for a message, in the cap's unit. */
function shown(unit: CapUnit, value: number): string {
  if (unit === 'duration') return `${value} ms`;
  if (unit === 'bytes') return `${value} bytes`;
  return String(value);
}
