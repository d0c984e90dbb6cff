/**
 * The `modelsql proxy` flags that set the caps on resource options (core/runtime/resource-caps.ts):
 * one flag per cap, named in {@link RESOURCE_CAPS} (`--max-batch-size 1000`,
 * `--max-timeout 2min`). Counts and sizes are positive integers; durations are written as in
 * SQL (`'10s'`, `'500ms'`, `'2min'`; a bare number is milliseconds).
 */
import type { Argv, Options } from 'yargs';
import { parseDuration } from '../core/sql/ml-call.js';
import { RESOURCE_CAPS, type ResourceCaps } from '../core/runtime/resource-caps.js';

/** `y` with the cap flags added (string values, checked by {@link capsFromArgs}); the flags are read from the arguments by name. */
export function withCapOptions<T>(y: Argv<T>): Argv<T> {
  return y.options(capOptions()) as unknown as Argv<T>;
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
        describe: `cap on ${c.options.map((o) => `'${o}'`).join(', ')}${c.unit === 'duration' ? ' (a duration: 10s, 2min)' : c.unit === 'bytes' ? ' in bytes' : ''} (default ${c.unit === 'duration' ? `${c.default / 1000}s` : c.default})`,
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
    const raw = args[c.flag];
    if (raw === undefined) continue;
    const text = String(raw).trim();
    let value: number;
    try {
      value = c.unit === 'duration' ? parseDuration(text, c.flag) : /^[1-9][0-9]*$/.test(text) ? Number(text) : Number.NaN;
    } catch {
      value = Number.NaN;
    }
    if (!(Number.isSafeInteger(value) && value > 0)) throw new Error(`--${c.flag} must be ${c.unit === 'duration' ? "a positive duration, e.g. '30s'" : 'a positive integer'}, not '${text}'`);
    caps[c.name] = value;
  }
  return caps as Partial<ResourceCaps>;
}
