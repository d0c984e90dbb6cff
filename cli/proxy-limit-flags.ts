/**
 * The `modelsql proxy` flags that bound model work: the caps on resource options
 * (core/runtime/resource-caps.ts), one flag per cap named in {@link RESOURCE_CAPS}
 * (`--max-batch-size 1000`, `--max-timeout 2min`), and the bounds of model files
 * (`--max-model-bytes`, `--max-model-json-bytes`, `--model-connect-timeout`,
 * `--model-idle-timeout`). Counts and sizes
 * are positive integers; durations are written as in SQL (`'10s'`, `'500ms'`, `'2min'`; a
 * bare number is milliseconds).
 */
import type { Argv, Options } from 'yargs';
import { parseDuration } from '../core/sql/ml-call.js';
import { RESOURCE_CAPS, type ResourceCaps } from '../core/runtime/resource-caps.js';
import type { ModelFileLimits } from '../core/runtime/onnx-model-loader.js';

/** A flag of a positive count, size or duration, and where its value goes. */
interface LimitFlag {
  readonly flag: string;
  readonly unit: 'count' | 'duration' | 'bytes';
  readonly describe: string;
}

/** The model-file flags, keyed by the {@link ModelFileLimits} field they set. */
const MODEL_FILE_FLAGS: Readonly<Record<keyof ModelFileLimits, LimitFlag>> = {
  maxModelBytes: { flag: 'max-model-bytes', unit: 'bytes', describe: 'largest model file, downloaded or local, in bytes; larger: 54000 (default 2147483648, 2 GiB)' },
  maxModelJsonBytes: { flag: 'max-model-json-bytes', unit: 'bytes', describe: "largest JSON file of a local text model's directory (tokenizer.json, config.json, ...), in bytes; larger: 54000 (default 67108864, 64 MiB)" },
  connectTimeoutMs: { flag: 'model-connect-timeout', unit: 'duration', describe: "time to connect to a model URL's server (default 10s)" },
  idleTimeoutMs: { flag: 'model-idle-timeout', unit: 'duration', describe: "longest wait for a model URL's answer or its next bytes (default 30s)" },
};

/**
 * `y` with the cap and model-file flags added (string values, checked by
 * {@link capsFromArgs} and {@link modelFileLimitsFromArgs}); they are read from the
 * arguments by name.
 */
export function withLimitFlags<T>(y: Argv<T>): Argv<T> {
  const files = Object.values(MODEL_FILE_FLAGS).map((f) => [f.flag, { type: 'string', requiresArg: true, describe: f.describe } satisfies Options] as const);
  return y.options({ ...capOptions(), ...Object.fromEntries(files) }) as unknown as Argv<T>;
}

/** The yargs options of the cap flags, keyed by flag name. */
function capOptions(): Record<string, Options> {
  return Object.fromEntries(
    RESOURCE_CAPS.map((c) => [
      c.flag,
      {
        type: 'string',
        requiresArg: true,
        group: 'Caps on model options:',
        describe: `cap on ${c.otherOptions ? 'each option value no other cap names, and each CREATE MODEL COMMENT,' : c.options.map((o) => `'${o}'`).join(', ')}${c.unit === 'duration' ? ' (a duration: 10s, 2min)' : c.unit === 'bytes' ? ' in bytes' : ''} (default ${c.unit === 'duration' ? `${c.default / 1000}s` : c.default})`,
      } satisfies Options,
    ]),
  );
}

/**
 * The caps the parsed arguments set.
 *
 * @throws Error naming the flag when a value is not a positive integer or duration.
 */
export function capsFromArgs(args: Readonly<Record<string, unknown>>): Partial<ResourceCaps> {
  const caps: Record<string, number> = {};
  for (const c of RESOURCE_CAPS) {
    const value = flagValue(args, c);
    if (value !== undefined) caps[c.name] = value;
  }
  return caps as Partial<ResourceCaps>;
}

/**
 * The model-file limits the parsed arguments set.
 *
 * @throws Error naming the flag when a value is not a positive integer or duration.
 */
export function modelFileLimitsFromArgs(args: Readonly<Record<string, unknown>>): ModelFileLimits {
  const limits: Record<string, number> = {};
  for (const [name, f] of Object.entries(MODEL_FILE_FLAGS)) {
    const value = flagValue(args, f);
    if (value !== undefined) limits[name] = value;
  }
  return limits;
}

/** A flag's value in its unit, if given. */
function flagValue(args: Readonly<Record<string, unknown>>, f: Pick<LimitFlag, 'flag' | 'unit'>): number | undefined {
  const raw = args[f.flag];
  if (raw === undefined) return undefined;
  const text = String(raw).trim();
  let value: number;
  try {
    value = f.unit === 'duration' ? parseDuration(text, f.flag) : /^[1-9][0-9]*$/.test(text) ? Number(text) : Number.NaN;
  } catch {
    value = Number.NaN;
  }
  if (!(Number.isSafeInteger(value) && value > 0)) throw new Error(`--${f.flag} must be ${f.unit === 'duration' ? "a positive duration, e.g. '30s'" : 'a positive integer'}, not '${text}'`);
  return value;
}
