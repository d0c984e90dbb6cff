/**
 * Secrets in model options (SPEC §5): `'api-key' = '${env:OPENAI_API_KEY}'` references,
 * resolved at run time, and literal keys, which are stored apart from the readable options
 * and never printed. Everything modelsql prints (SHOW CREATE MODEL, DESCRIBE, error
 * messages, the CLI, progress) goes through {@link maskSecrets} or shows the readable
 * options, which hold {@link SECRET_PLACEHOLDER} in place of a literal key.
 */
import { InvalidOptionError, type SourcePosition } from './errors.js';
import { scan } from './sql/lexer.js';

/** What a literal secret is shown as, and what the readable options store in its place. */
export const SECRET_PLACEHOLDER = '******';

/** Option keys that hold secrets (matched case-insensitively, also as a `.key` / `-key` suffix). */
const SECRET_KEYS = ['api-key', 'api_key', 'apikey', 'password', 'secret', 'token'];

const REFERENCE = /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$/;

/** Literal secrets seen by this process, longest first when masking. */
const known = new Set<string>();

/** Whether option `key` holds a secret. */
export function isSecretKey(key: string): boolean {
  const k = key.toLowerCase();
  return SECRET_KEYS.some((s) => k === s || k.endsWith(`.${s}`) || k.endsWith(`-${s}`));
}

/** The variable name of a `${env:NAME}` reference, or undefined for any other value. */
export function secretReference(value: string): string | undefined {
  return REFERENCE.exec(value.trim())?.[1];
}

/**
 * Remembers a secret value so that {@link maskSecrets} hides it from any text printed
 * later. Values shorter than 4 characters are not remembered (masking them would mangle
 * ordinary text).
 */
export function registerSecret(value: string): void {
  if (value.length >= 4 && value !== SECRET_PLACEHOLDER) known.add(value);
}

/**
 * Replaces every secret seen by this process with `******`.
 *
 * @example maskSecrets('401: Incorrect API key provided: sk-live-123') // '401: Incorrect API key provided: ******'
 */
export function maskSecrets(text: string): string {
  if (known.size === 0) return text;
  let out = text;
  for (const secret of [...known].sort((a, b) => b.length - a.length)) {
    if (out.includes(secret)) out = out.split(secret).join(SECRET_PLACEHOLDER);
  }
  return out;
}

/** An error with every known secret masked in its message and stack (in place); other values as they are. */
export function maskError<T>(error: T): T {
  if (error instanceof Error) {
    error.message = maskSecrets(error.message);
    if (error.stack !== undefined) error.stack = maskSecrets(error.stack);
  }
  return error;
}

/**
 * Resolves an option value that may be a `${env:NAME}` reference.
 *
 * @throws InvalidOptionError (22023) naming the variable (never a value) when it is unset or empty.
 */
export function resolveSecret(key: string, value: string, env: NodeJS.ProcessEnv = process.env, position?: SourcePosition): string {
  const name = secretReference(value);
  if (name === undefined) {
    registerSecret(value);
    return value;
  }
  const resolved = env[name];
  if (resolved === undefined || resolved === '') {
    throw new InvalidOptionError(`option '${key}' refers to environment variable ${name}, which is not set`, position);
  }
  registerSecret(resolved);
  return resolved;
}

/** Readable options and the literal secrets taken out of them. */
export interface SplitOptions {
  /** The options with each literal secret replaced by {@link SECRET_PLACEHOLDER}. */
  readonly options: readonly (readonly [string, string])[];
  /** Literal secrets by option key as written. */
  readonly secrets: readonly (readonly [string, string])[];
}

/**
 * Takes literal secrets out of a model's options. An option already holding the
 * placeholder keeps the secret it had in `previous` (ALTER MODEL ... SET of other keys);
 * `${env:...}` references stay readable.
 */
export function splitSecrets(options: readonly (readonly [string, string])[], previous: readonly (readonly [string, string])[] = []): SplitOptions {
  const readable: (readonly [string, string])[] = [];
  const secrets: (readonly [string, string])[] = [];
  for (const [key, value] of options) {
    if (!isSecretKey(key) || secretReference(value) !== undefined) {
      readable.push([key, value]);
      continue;
    }
    if (value === SECRET_PLACEHOLDER) {
      const kept = previous.find(([k]) => k.toLowerCase() === key.toLowerCase());
      if (kept) secrets.push([key, kept[1]]);
    } else {
      registerSecret(value);
      secrets.push([key, value]);
    }
    readable.push([key, SECRET_PLACEHOLDER]);
  }
  return { options: readable, secrets };
}

/**
 * Whether a version's readable options say literal secrets were stored apart for it: every
 * stored secret left {@link SECRET_PLACEHOLDER} under its key (`splitSecrets`), so options
 * without one need no read of the secrets at all.
 */
export function hasStoredSecrets(options: readonly (readonly [string, string])[]): boolean {
  return options.some(([key, value]) => value === SECRET_PLACEHOLDER && isSecretKey(key));
}

/** The value to print for an option: secrets become `******` unless they are `${env:NAME}` references. */
export function displayOptionValue(key: string, value: string): string {
  return isSecretKey(key) && secretReference(value) === undefined ? SECRET_PLACEHOLDER : value;
}

/**
 * SQL text with the string literal after each secret option key (`'api-key' = '...'`)
 * replaced by `'******'`, plus a map from offsets in the original text to offsets in the
 * masked one (so an error caret still points at the right token). Uses the lexer, so
 * comments and quoting cannot fool it.
 */
export function redactSql(text: string): { readonly text: string; readonly mapOffset: (offset: number) => number } {
  const tokens = scan(text).tokens;
  const cuts: { start: number; end: number }[] = [];
  for (let i = 0; i + 2 < tokens.length; i++) {
    const key = tokens[i]!;
    const eq = tokens[i + 1]!;
    const value = tokens[i + 2]!;
    if (key.kind === 'string' && isSecretKey(key.value) && eq.text === '=' && value.kind === 'string' && secretReference(value.value) === undefined) {
      cuts.push({ start: value.span.start, end: value.span.end });
    }
  }
  let masked = maskSecrets(text);
  if (cuts.length === 0 && masked === text) return { text, mapOffset: (o) => o };
  if (cuts.length === 0) return { text: masked, mapOffset: (o) => o };
  let out = '';
  let last = 0;
  for (const cut of cuts) {
    out += text.slice(last, cut.start) + `'${SECRET_PLACEHOLDER}'`;
    last = cut.end;
  }
  out += text.slice(last);
  masked = maskSecrets(out);
  const mapOffset = (offset: number): number => {
    let delta = 0;
    for (const cut of cuts) {
      if (offset >= cut.end) delta += SECRET_PLACEHOLDER.length + 2 - (cut.end - cut.start);
      else if (offset > cut.start) return cut.start + delta;
    }
    return offset + delta;
  };
  return { text: masked, mapOffset };
}
