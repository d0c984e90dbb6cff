/**
 * Binding of ML_PREDICT / ML_EVALUATE arguments (SPEC §1.2, §1.2.1, §1.3), used by the
 * planner once it has looked the model up (an unknown model is reported before any
 * argument problem: call {@link modelArgument} first, resolve the model, then bind).
 *
 * Shape problems (argument count, names, kinds, DESCRIPTOR arity) are SqlSyntaxError
 * 42601; CONFIG and TASK values are InvalidOptionError 22023. Every error carries the
 * position of the offending argument and, when given, the SQL text.
 */
import { InvalidOptionError, positionAt, SqlSyntaxError } from '../errors.js';
import type { ModelSqlError, SourcePosition } from '../errors.js';
import type { Identifier, MlArgValue, MlCall, ModelName, Span } from './ast.js';

/** One `'key', 'value'` pair of a `MAP[...]` argument. */
export type MapEntry = Extract<MlArgValue, { kind: 'map' }>['entries'][number];

/** The relation an ML call reads: `TABLE name` or `TABLE (query)`. */
export type InputArgument = Extract<MlArgValue, { kind: 'table' } | { kind: 'subquery' }>;

/** `'ORDERED'` (default: rows in input order) or `'ALLOW_UNORDERED'`. */
export type OutputMode = 'ORDERED' | 'ALLOW_UNORDERED';

/** What happens to a row whose inference failed (SPEC §2.3). */
export type ErrorHandlingStrategy = 'RETRY' | 'FAILOVER' | 'IGNORE';

/** Per-call CONFIG of ML_PREDICT / ML_EVALUATE; absent fields fall back to model options. */
export interface CallConfig {
  /** `async`: 'true' | 'false'. */
  readonly async?: boolean;
  /** `max-concurrent-operations`: a positive integer. */
  readonly maxConcurrentOperations?: number;
  /** `output-mode`: ORDERED | ALLOW_UNORDERED (case-insensitive). */
  readonly outputMode?: OutputMode;
  /** `timeout`, in milliseconds (see {@link parseDuration}); must be > 0. */
  readonly timeoutMs?: number;
  /** `batch-size`: a positive integer. */
  readonly batchSize?: number;
  /** `cache`: 'true' | 'false'. */
  readonly cache?: boolean;
  /** `error-handling-strategy`: RETRY | FAILOVER | IGNORE (case-insensitive). */
  readonly errorHandlingStrategy?: ErrorHandlingStrategy;
}

/** The CONFIG keys {@link parseCallConfig} knows, Flink's first. */
export const CALL_CONFIG_KEYS = Object.freeze([
  'async',
  'max-concurrent-operations',
  'output-mode',
  'timeout',
  'batch-size',
  'cache',
  'error-handling-strategy',
] as const);

/** ML_EVALUATE tasks (SPEC §1.3). */
export const EVALUATION_TASKS = Object.freeze(['regression', 'classification', 'clustering', 'embedding', 'text_generation'] as const);

/** One of {@link EVALUATION_TASKS}. */
export type EvaluationTask = (typeof EVALUATION_TASKS)[number];

/** The bound arguments of an ML_PREDICT call. */
export interface PredictBinding {
  readonly input: InputArgument;
  readonly model: ModelName;
  readonly modelSpan: Span;
  /** DESCRIPTOR columns, matched to the model's INPUT columns by position. */
  readonly columns: readonly Identifier[];
  readonly descriptorSpan: Span;
  readonly config: CallConfig;
  /** The CONFIG map as written (empty without one), for error positions. */
  readonly configEntries: readonly MapEntry[];
}

/** The bound arguments of an ML_EVALUATE call. */
export interface EvaluateBinding extends PredictBinding {
  /** The single column of the label DESCRIPTOR. */
  readonly label: Identifier;
  readonly labelSpan: Span;
  /** The task argument, lower-cased, when given. */
  readonly task?: { readonly value: EvaluationTask; readonly span: Span };
}

type Kind = MlArgValue['kind'];

/** One parameter of an ML call: its name for named arguments and the argument kinds it takes. */
export interface Slot {
  readonly name: string;
  readonly kinds: readonly Kind[];
  readonly optional?: boolean;
  readonly expected: string;
}

const INPUT_SLOT: Slot = { name: 'INPUT', kinds: ['table', 'subquery'], expected: 'TABLE name or TABLE (query)' };
const MODEL_SLOT: Slot = { name: 'MODEL', kinds: ['model'], expected: 'MODEL name' };
const CONFIG_SLOT: Slot = { name: 'CONFIG', kinds: ['map'], optional: true, expected: "MAP['key', 'value', ...]" };
const PREDICT_SLOTS: readonly Slot[] = [INPUT_SLOT, MODEL_SLOT, { name: 'ARGS', kinds: ['descriptor'], expected: 'DESCRIPTOR(column, ...)' }, CONFIG_SLOT];
const EVALUATE_SLOTS: readonly Slot[] = [
  INPUT_SLOT,
  MODEL_SLOT,
  { name: 'LABEL', kinds: ['descriptor'], expected: 'DESCRIPTOR(label_column)' },
  { name: 'ARGS', kinds: ['descriptor'], expected: 'DESCRIPTOR(column, ...)' },
  { name: 'TASK', kinds: ['string'], optional: true, expected: "a task string such as 'regression'" },
  CONFIG_SLOT,
];

function located<E extends ModelSqlError>(error: E, sqlText: string | undefined): E {
  error.sqlText = sqlText;
  return error;
}

/** A 42601 error at `span` of `sqlText`. */
export function syntaxError(message: string, span: Span, sqlText: string | undefined): SqlSyntaxError {
  return new SqlSyntaxError(message, sqlText === undefined ? undefined : positionAt(sqlText, span.start), sqlText);
}

/** A 22023 error at `span` of `sqlText`. */
export function optionError(message: string, span: Span | undefined, sqlText: string | undefined): InvalidOptionError {
  const position = span && sqlText !== undefined ? positionAt(sqlText, span.start) : undefined;
  return located(new InvalidOptionError(message, position), sqlText);
}

function argText(value: MlArgValue, sqlText: string | undefined): string {
  return sqlText === undefined ? value.kind.toUpperCase() : sqlText.slice(value.span.start, value.span.end);
}

function signature(fn: MlCall['function']): string {
  if (fn === 'VECTOR_SEARCH') return 'VECTOR_SEARCH(TABLE, query vector, DESCRIPTOR(column), top_k [, MAP])';
  return fn === 'ML_PREDICT'
    ? 'ML_PREDICT(TABLE, MODEL, DESCRIPTOR [, MAP])'
    : "ML_EVALUATE(TABLE, MODEL, DESCRIPTOR(label), DESCRIPTOR(features) [, 'task'] [, MAP])";
}

/**
 * The MODEL argument of a call: named `MODEL => MODEL m`, or the second positional one.
 *
 * @throws SqlSyntaxError when it is missing or is not `MODEL name`.
 */
export function modelArgument(call: MlCall, sqlText?: string): { readonly name: ModelName; readonly span: Span } {
  const named = call.args[0]?.name !== undefined;
  const arg = named ? call.args.find((a) => a.name === 'MODEL') : call.args[1];
  if (arg === undefined) throw syntaxError(`${call.function} requires a MODEL argument: ${signature(call.function)}`, call.nameSpan, sqlText);
  if (arg.value.kind !== 'model') {
    const where = named ? 'argument MODEL' : 'argument 2';
    throw syntaxError(`${where} of ${call.function} must be MODEL name, found ${argText(arg.value, sqlText)}`, arg.value.span, sqlText);
  }
  return { name: arg.value.name, span: arg.value.span };
}

/**
 * Every `MODEL name` argument of `calls` and of the calls inside their `TABLE (subquery)`
 * inputs, in text order, unchecked (binding reports misplaced ones), so that a statement's
 * models can be looked up together before its calls run.
 */
export function namedModels(calls: readonly MlCall[]): ModelName[] {
  return calls.flatMap((call) =>
    call.args.flatMap((arg) => (arg.value.kind === 'model' ? [arg.value.name] : arg.value.kind === 'subquery' ? namedModels(arg.value.calls) : [])),
  );
}

/** Assigns a call's arguments to slots, checking count, names and kinds. */
export function assignSlots(call: MlCall, slots: readonly Slot[], sqlText: string | undefined): Map<string, MlArgValue> {
  const bound = new Map<string, MlArgValue>();
  const checkKind = (slot: Slot, value: MlArgValue, label: string): void => {
    if (!slot.kinds.includes(value.kind)) {
      throw syntaxError(`${label} of ${call.function} must be ${slot.expected}, found ${argText(value, sqlText)}`, value.span, sqlText);
    }
  };
  if (call.args[0]?.name !== undefined) {
    for (const arg of call.args) {
      const slot = slots.find((s) => s.name === arg.name);
      if (!slot) throw syntaxError(`unknown argument name ${arg.name} for ${call.function}; expected ${slots.map((s) => s.name).join(', ')}`, arg.span, sqlText);
      if (bound.has(slot.name)) throw syntaxError(`argument ${slot.name} of ${call.function} is given more than once`, arg.span, sqlText);
      checkKind(slot, arg.value, `argument ${slot.name}`);
      bound.set(slot.name, arg.value);
    }
  } else {
    let s = 0;
    call.args.forEach((arg, i) => {
      while (s < slots.length && slots[s]!.optional && !slots[s]!.kinds.includes(arg.value.kind)) s++;
      if (s >= slots.length) throw syntaxError(`too many arguments for ${call.function}: ${signature(call.function)}`, arg.span, sqlText);
      checkKind(slots[s]!, arg.value, `argument ${i + 1}`);
      bound.set(slots[s]!.name, arg.value);
      s++;
    });
  }
  const missing = slots.filter((slot) => !slot.optional && !bound.has(slot.name));
  if (missing.length > 0) {
    const what = call.args[0]?.name !== undefined ? `missing argument ${missing.map((m) => m.name).join(', ')}` : 'too few arguments';
    throw syntaxError(`${what} for ${call.function}: ${signature(call.function)}`, call.nameSpan, sqlText);
  }
  return bound;
}

function valueOf<K extends Kind>(bound: Map<string, MlArgValue>, name: string, kind: K): Extract<MlArgValue, { kind: K }> | undefined {
  const value = bound.get(name);
  return value?.kind === kind ? (value as Extract<MlArgValue, { kind: K }>) : undefined;
}

function bindCommon(bound: Map<string, MlArgValue>, sqlText: string | undefined): PredictBinding {
  const model = valueOf(bound, 'MODEL', 'model')!;
  const descriptor = valueOf(bound, 'ARGS', 'descriptor')!;
  const configEntries = valueOf(bound, 'CONFIG', 'map')?.entries ?? [];
  return Object.freeze({
    input: bound.get('INPUT') as InputArgument,
    model: model.name,
    modelSpan: model.span,
    columns: descriptor.columns,
    descriptorSpan: descriptor.span,
    config: parseCallConfig(configEntries, sqlText),
    configEntries,
  });
}

/**
 * Binds `ML_PREDICT(TABLE, MODEL, DESCRIPTOR [, MAP])`, positional or named
 * (`INPUT`, `MODEL`, `ARGS`, `CONFIG`, any order).
 *
 * @throws SqlSyntaxError for a wrong count, name or kind of argument; InvalidOptionError for CONFIG.
 */
export function bindPredict(call: MlCall, sqlText: string): PredictBinding {
  return bindCommon(assignSlots(call, PREDICT_SLOTS, sqlText), sqlText);
}

/**
 * Binds `ML_EVALUATE(TABLE, MODEL, DESCRIPTOR(label), DESCRIPTOR(features) [, 'task'] [, MAP])`,
 * positional or named (`INPUT`, `MODEL`, `LABEL`, `ARGS`, `TASK`, `CONFIG`).
 *
 * @throws SqlSyntaxError for argument shape problems or a label DESCRIPTOR without exactly
 *   one column; InvalidOptionError for an unknown task or a bad CONFIG.
 */
export function bindEvaluate(call: MlCall, sqlText: string): EvaluateBinding {
  const bound = assignSlots(call, EVALUATE_SLOTS, sqlText);
  const label = valueOf(bound, 'LABEL', 'descriptor')!;
  if (label.columns.length !== 1) {
    throw syntaxError(`the label DESCRIPTOR of ML_EVALUATE must name exactly one column, found ${label.columns.length}`, label.span, sqlText);
  }
  const taskArg = valueOf(bound, 'TASK', 'string');
  let task: EvaluateBinding['task'];
  if (taskArg) {
    const value = taskArg.value.toLowerCase();
    if (!(EVALUATION_TASKS as readonly string[]).includes(value)) {
      throw optionError(`invalid ML_EVALUATE task '${taskArg.value}'; expected one of ${EVALUATION_TASKS.join(', ')}`, taskArg.span, sqlText);
    }
    task = { value: value as EvaluationTask, span: taskArg.span };
  }
  return Object.freeze({ ...bindCommon(bound, sqlText), label: label.columns[0]!, labelSpan: label.span, ...(task ? { task } : {}) });
}

/**
 * Parses `'true'` / `'false'` (case-insensitive) as Flink does.
 *
 * @throws InvalidOptionError (22023) naming `key` otherwise.
 */
export function parseBooleanOption(value: string, key = 'value', position?: SourcePosition): boolean {
  const lower = value.trim().toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw new InvalidOptionError(`invalid value for '${key}': '${value}' (expected 'true' or 'false')`, position);
}

/**
 * Parses a positive integer (`'8'`; no sign, fraction or exponent).
 *
 * @throws InvalidOptionError (22023) naming `key` otherwise.
 */
export function parsePositiveInt(value: string, key = 'value', position?: SourcePosition): number {
  const text = value.trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidOptionError(`invalid value for '${key}': '${value}' (expected a positive integer)`, position);
  }
  return n;
}

/** Milliseconds per duration unit; the names are those of Flink's TimeUtils.parseDuration. */
const DURATION_UNITS: Readonly<Record<string, number>> = {
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  ms: 1, milli: 1, millis: 1, millisecond: 1, milliseconds: 1,
  us: 0.001, µs: 0.001, micro: 0.001, micros: 0.001, microsecond: 0.001, microseconds: 0.001,
  ns: 0.000001, nano: 0.000001, nanos: 0.000001, nanosecond: 0.000001, nanoseconds: 0.000001,
};

/**
 * Parses a duration into milliseconds, following Flink's `TimeUtils.parseDuration`: a
 * non-negative integer, optional spaces, then a unit (`d`, `h`, `min`/`m`, `s`, `ms`, `us`,
 * `ns`, or their long names, case-insensitive). A plain number is milliseconds, as in Flink.
 *
 * @example parseDuration('10s') // 10000
 * @example parseDuration('2min') // 120000
 * @example parseDuration('500') // 500
 * @throws InvalidOptionError (22023) naming `key` otherwise.
 */
export function parseDuration(value: string, key = 'value', position?: SourcePosition): number {
  const match = /^\s*(\d+)\s*([a-zµ]*)\s*$/i.exec(value);
  const unit = match?.[2]?.toLowerCase() ?? '';
  const factor = unit === '' ? 1 : DURATION_UNITS[unit];
  if (!match || factor === undefined) {
    throw new InvalidOptionError(`invalid duration for '${key}': '${value}' (expected a number and a unit, e.g. '10s', '500ms', '2min', '1h')`, position);
  }
  return Number(match[1]) * factor;
}

function parseChoice<T extends string>(value: string, key: string, choices: readonly T[], position?: SourcePosition): T {
  const upper = value.trim().toUpperCase();
  const found = choices.find((c) => c === upper);
  if (found === undefined) throw new InvalidOptionError(`invalid value for '${key}': '${value}' (expected one of ${choices.join(', ')})`, position);
  return found;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Validates a CONFIG map (SPEC §1.2): keys are matched case-insensitively against
 * {@link CALL_CONFIG_KEYS}; values must be string literals.
 *
 * @throws InvalidOptionError (22023) for an unknown or repeated key, a value that is not
 *   a string literal, or an invalid value; positioned when `sqlText` is given.
 */
export function parseCallConfig(entries: readonly MapEntry[], sqlText?: string): CallConfig {
  const config: Mutable<CallConfig> = {};
  const seen = new Set<string>();
  for (const entry of entries) {
    const key = entry.key.toLowerCase();
    const at = sqlText === undefined ? undefined : positionAt(sqlText, entry.valueSpan.start);
    if (!(CALL_CONFIG_KEYS as readonly string[]).includes(key)) {
      throw optionError(`unknown CONFIG key '${entry.key}'; known keys are ${CALL_CONFIG_KEYS.join(', ')}`, entry.keySpan, sqlText);
    }
    if (seen.has(key)) throw optionError(`CONFIG key '${entry.key}' is given more than once`, entry.keySpan, sqlText);
    seen.add(key);
    if (!entry.literal) {
      throw optionError(`CONFIG value for '${key}' must be a string literal, e.g. '${entry.value}', found ${entry.value}`, entry.valueSpan, sqlText);
    }
    try {
      applyConfigEntry(config, key, entry.value, at);
    } catch (error) {
      throw located(error as InvalidOptionError, sqlText);
    }
  }
  return Object.freeze(config);
}

function applyConfigEntry(config: Mutable<CallConfig>, key: string, value: string, at: SourcePosition | undefined): void {
  switch (key) {
    case 'async':
      config.async = parseBooleanOption(value, key, at);
      break;
    case 'max-concurrent-operations':
      config.maxConcurrentOperations = parsePositiveInt(value, key, at);
      break;
    case 'output-mode':
      config.outputMode = parseChoice(value, key, ['ORDERED', 'ALLOW_UNORDERED'] as const, at);
      break;
    case 'timeout': {
      const ms = parseDuration(value, key, at);
      if (ms <= 0) throw new InvalidOptionError(`invalid value for 'timeout': '${value}' (must be greater than zero)`, at);
      config.timeoutMs = ms;
      break;
    }
    case 'batch-size':
      config.batchSize = parsePositiveInt(value, key, at);
      break;
    case 'cache':
      config.cache = parseBooleanOption(value, key, at);
      break;
    case 'error-handling-strategy':
      config.errorHandlingStrategy = parseChoice(value, key, ['RETRY', 'FAILOVER', 'IGNORE'] as const, at);
      break;
  }
}
