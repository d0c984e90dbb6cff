/**
 * The WITH options of CREATE MODEL: which keys exist, which provider they select, and
 * their validation. Keys are matched case-insensitively, may be prefixed by the provider's
 * name (`'openai.endpoint'`, `'ONNX.path'`, as in FLIP-437 and Flink's connectors) and use
 * `_` for `-` (`'openai.api_key'`); they are stored in one canonical form
 * ({@link canonicalOptions}): lower case, unprefixed, hyphenated (`endpoint`, `api-key`, `path`).
 */
import { InvalidOptionError, UnsupportedFeatureError, type SourcePosition } from '../errors.js';
import { REMOTE_PROVIDER_OPTIONS, REMOTE_PROVIDERS, validateRemoteOptionValues, type RemoteProvider } from '../runtime/providers/remote-options.js';
import { displayOptionValue, isSecretKey } from '../secrets.js';
import { TRAINING_OPTION_KEYS } from '../training/training-options.js';
import { TRITON_OPTIONS, validateTritonOptionValues } from '../runtime/providers/triton-options.js';

/** Tasks a model may declare (SPEC §1.3). */
export const TASKS = ['regression', 'classification', 'clustering', 'embedding', 'text_generation'] as const;

/** Options every model accepts, whatever its provider. */
const COMMON_OPTIONS = ['provider', 'type', 'format', 'task', 'description', 'batch-size', 'max-concurrent-operations'] as const;

/** Options by provider. */
const PROVIDER_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  /**
   * `sha256`: the hex SHA-256 the file or download at `path` must have. `pooling`,
   * `normalize`, `max-length`: local text models only (a model directory as `path`, core/runtime/text).
   */
  onnx: ['path', 'sha256', 'pooling', 'normalize', 'max-length'],
  /** Remote providers (core/runtime/providers/remote-options.ts). */
  ...REMOTE_PROVIDER_OPTIONS,
  /** Model servers speaking the Open Inference Protocol (core/runtime/providers/triton-options.ts). */
  triton: TRITON_OPTIONS,
  /** Models trained by `CREATE MODEL ... AS <query>` (core/training). */
  internal: TRAINING_OPTION_KEYS,
};

/** Providers that exist in the SQL surface but are not available in this build. */
const LATER_PROVIDERS: readonly string[] = [];


/** What the options of one model say, normalised. */
export interface ModelOptions {
  readonly provider: string;
  readonly task?: string;
  /** ONNX: the file path or URL (`path` / `onnx.path`). */
  readonly location?: string;
  /** ONNX: the SHA-256 the model's bytes must have (`sha256`), lower-case hex. */
  readonly sha256?: string;
  /** Rows per inference batch, when set. */
  readonly batchSize?: number;
  /** Batches in flight at once, when set. */
  readonly maxConcurrentOperations?: number;
}

/** Where each option key sits in the SQL text, for error positions. */
export type OptionPositions = ReadonlyMap<string, SourcePosition>;

type Options = readonly (readonly [string, string])[];

/** Options in canonical form, with the positions of their keys re-keyed to the canonical names. */
export interface CanonicalOptions {
  readonly options: Options;
  readonly positions: OptionPositions;
}

/**
 * The options in their one canonical form: each key in lower case, without the provider's
 * name as a prefix (`'OPENAI.ENDPOINT'` → `endpoint`, `'onnx.path'` → `path`), `_` read as
 * `-` where that names a known option (`'openai.api_key'` → `api-key`). An unknown key is
 * kept as written (validation names it). `provider` is the provider to assume when the
 * options do not say (ALTER MODEL ... SET of a few keys).
 *
 * @throws InvalidOptionError (22023) when two keys name one option (`'endpoint'` and
 *   `'openai.endpoint'`), naming both.
 */
export function canonicalOptions(options: Options, positions?: OptionPositions, provider?: string): CanonicalOptions {
  const prefix = providerName(options) ?? provider;
  const out: (readonly [string, string])[] = [];
  const at = new Map<string, SourcePosition>();
  const writtenAs = new Map<string, string>();
  for (const [key, value] of options) {
    const canonical = canonicalOptionKey(key, prefix);
    const position = positions?.get(key.toLowerCase());
    const first = writtenAs.get(canonical.toLowerCase());
    if (first !== undefined) {
      if (first.toLowerCase() === key.toLowerCase()) throw new InvalidOptionError(`option '${key}' is given twice (option names ignore case)`, position);
      throw new InvalidOptionError(`options '${first}' and '${key}' both set '${canonical}'; give one of them`, position);
    }
    writtenAs.set(canonical.toLowerCase(), key);
    out.push([canonical, value]);
    if (position) at.set(canonical.toLowerCase(), position);
  }
  return { options: out, positions: at };
}

/** The canonical name of one option key of a `provider`'s model (see {@link canonicalOptions}). */
export function canonicalOptionKey(key: string, provider: string | undefined): string {
  const known = [...COMMON_OPTIONS, ...(provider === undefined ? [] : (PROVIDER_OPTIONS[provider] ?? []))] as readonly string[];
  let k = key.toLowerCase();
  if (provider !== undefined && k.startsWith(`${provider}.`)) k = k.slice(provider.length + 1);
  if (known.includes(k)) return k;
  const hyphenated = k.replace(/_/g, '-');
  return known.includes(hyphenated) ? hyphenated : key;
}

/** The provider the options name, lower case (`'type' = 'import'` means onnx), if any. */
function providerName(options: Options): string | undefined {
  const provider = getOption(options, 'provider')?.toLowerCase();
  if (provider !== undefined) return provider;
  return getOption(options, 'type')?.toLowerCase() === 'import' ? 'onnx' : undefined;
}

/** Looks up an option case-insensitively. */
export function getOption(options: readonly (readonly [string, string])[], key: string): string | undefined {
  const k = key.toLowerCase();
  return options.find(([name]) => name.toLowerCase() === k)?.[1];
}

/**
 * Validates a model's options and works out its provider: `'provider' = 'onnx'`, or Flink's
 * `'type' = 'import', 'format' = 'ONNX'`.
 */
export function resolveModelOptions(written: Options, writtenPositions?: OptionPositions): ModelOptions {
  const { options, positions } = canonicalOptions(written, writtenPositions);
  const at = (key: string): SourcePosition | undefined => positions.get(key.toLowerCase());
  const provider = providerOf(options, at);
  const known = [...COMMON_OPTIONS, ...(PROVIDER_OPTIONS[provider] ?? [])];
  for (const [key] of options) {
    if (!known.includes(key.toLowerCase())) {
      throw new InvalidOptionError(`unknown option '${key}' for provider '${provider}'; known options: ${known.join(', ')}`, at(key));
    }
  }
  const task = getOption(options, 'task');
  if (task !== undefined && !(TASKS as readonly string[]).includes(task.toLowerCase())) {
    throw new InvalidOptionError(`invalid task '${task}'; expected one of ${TASKS.join(', ')}`, at('task'));
  }
  const location = getOption(options, 'path');
  if (provider === 'onnx' && (location === undefined || location === '')) {
    throw new InvalidOptionError(`an ONNX model needs 'path' (or 'onnx.path'): a file path or an http(s) URL`);
  }
  const sha256 = getOption(options, 'sha256')?.trim().toLowerCase();
  if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw new InvalidOptionError(`option 'sha256' must be 64 hexadecimal digits (a SHA-256), not '${getOption(options, 'sha256')}'`, at('sha256'));
  if ((REMOTE_PROVIDERS as readonly string[]).includes(provider)) validateRemoteOptionValues(provider as RemoteProvider, options, at);
  if (provider === 'triton') validateTritonOptionValues(options, at);
  return {
    provider,
    task: task?.toLowerCase(),
    location,
    sha256,
    batchSize: positiveInt(options, 'batch-size', at),
    maxConcurrentOperations: positiveInt(options, 'max-concurrent-operations', at),
  };
}

/** Whether `provider` (as a version stores it: lower case, `internal` for a trained model) is one this modelsql runs. */
export function isKnownProvider(provider: string): boolean {
  return Object.hasOwn(PROVIDER_OPTIONS, provider);
}

/** Secret keys and their display live in core/secrets.ts; re-exported for existing callers. */
export { displayOptionValue, isSecretKey };

function providerOf(options: readonly (readonly [string, string])[], at: (key: string) => SourcePosition | undefined): string {
  const provider = getOption(options, 'provider')?.toLowerCase();
  const type = getOption(options, 'type')?.toLowerCase();
  const format = getOption(options, 'format')?.toLowerCase();
  if (provider !== undefined) {
    if (LATER_PROVIDERS.includes(provider)) {
      throw new UnsupportedFeatureError(`provider '${provider}' is not available in this version of modelsql; available: onnx`, at('provider'));
    }
    if (!(provider in PROVIDER_OPTIONS)) {
      throw new InvalidOptionError(`unknown provider '${provider}'; known providers: onnx, ${REMOTE_PROVIDERS.join(', ')}, triton`, at('provider'));
    }
    return provider;
  }
  // A trained model's options name its algorithm and no provider.
  if (type === undefined && getOption(options, 'algorithm') !== undefined) return 'internal';
  if (type !== undefined) {
    if (type !== 'import') throw new InvalidOptionError(`unknown model type '${type}'; expected 'import' (with 'format' = 'ONNX')`, at('type'));
    if (format !== 'onnx') throw new InvalidOptionError(`'type' = 'import' needs 'format' = 'ONNX'`, at(format === undefined ? 'type' : 'format'));
    return 'onnx';
  }
  throw new InvalidOptionError(`the model's provider is missing: give 'provider' = 'onnx' (or Flink's 'type' = 'import', 'format' = 'ONNX')`);
}

function positiveInt(options: readonly (readonly [string, string])[], key: string, at: (key: string) => SourcePosition | undefined): number | undefined {
  const value = getOption(options, key);
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(value.trim())) throw new InvalidOptionError(`option '${key}' must be a positive integer, not '${value}'`, at(key));
  return Number(value);
}
