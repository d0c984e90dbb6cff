/**
 * How a remote model's answer becomes its OUTPUT columns (SPEC §2.2):
 * - text: one STRING column holds the answer text;
 * - json (structured output): several typed columns, or one non-STRING column, are
 *   requested as a JSON schema (an object with one property per column) and parsed into
 *   those columns, like BigQuery's `AI.GENERATE(... output_schema)`;
 * - embedding: one `ARRAY<FLOAT>` column.
 * The error metadata columns (`error-string STRING`, `http-status-code INT`) are filled by
 * the executor, never by the model. An answer that does not fit is an {@link AnswerError}:
 * a per-row error under the model's error-handling strategy.
 */
import { InvalidOptionError } from '../../errors.js';
import type { DataType } from '../../sql/ast.js';
import { parseDataType, typeCategory, formatType } from '../../sql/types.js';
import type { ModelColumn } from '../../model-types.js';

/** An OUTPUT column the model answers. */
export interface AnswerColumn {
  /** Position in OUTPUT. */
  readonly index: number;
  readonly name: string;
  readonly type: DataType;
}

/** How answers map to OUTPUT columns. */
export interface OutputPlan {
  readonly mode: 'text' | 'json' | 'embedding';
  readonly answers: readonly AnswerColumn[];
  /** Position of `error-string` in OUTPUT, if declared. */
  readonly errorString?: number;
  /** Position of `http-status-code` in OUTPUT, if declared. */
  readonly httpStatus?: number;
  /** Number of OUTPUT columns. */
  readonly width: number;
}

/** An answer that does not fit the OUTPUT columns (or the packed request's shape). */
export class AnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AnswerError';
  }
}

/**
 * Works out the output plan of a model, checking that the task can produce its OUTPUT.
 *
 * @throws InvalidOptionError (22023) otherwise.
 */
export function outputPlan(task: 'text_generation' | 'embedding', output: readonly ModelColumn[]): OutputPlan {
  let errorString: number | undefined;
  let httpStatus: number | undefined;
  const answers: AnswerColumn[] = [];
  output.forEach((column, index) => {
    const type = parseDataType(column.type);
    if (/^error[-_]string$/i.test(column.name)) {
      if (typeCategory(type) !== 'string') throw new InvalidOptionError(`OUTPUT column ${column.name} holds the error message and must be STRING, not ${column.type}`);
      errorString = index;
    } else if (/^http[-_]status[-_]code$/i.test(column.name)) {
      if (typeCategory(type) !== 'integer') throw new InvalidOptionError(`OUTPUT column ${column.name} holds the HTTP status and must be INT, not ${column.type}`);
      httpStatus = index;
    } else {
      answers.push({ index, name: column.name, type });
    }
  });
  if (answers.length === 0) throw new InvalidOptionError('OUTPUT needs at least one column for the answer besides the error columns');
  if (task === 'embedding') {
    const only = answers[0]!;
    const element = only.type.elements?.[0];
    if (answers.length !== 1 || typeCategory(only.type) !== 'array' || !element || !['float', 'decimal'].includes(typeCategory(element))) {
      throw new InvalidOptionError(`an embedding model has one OUTPUT column of type ARRAY<FLOAT> (plus optional error columns), not ${answers.map((a) => `${a.name} ${formatType(a.type)}`).join(', ')}`);
    }
    return { mode: 'embedding', answers, errorString, httpStatus, width: output.length };
  }
  if (answers.length === 1 && typeCategory(answers[0]!.type) === 'string') return { mode: 'text', answers, errorString, httpStatus, width: output.length };
  for (const a of answers) jsonSchemaOf(a.type, a.name);
  return { mode: 'json', answers, errorString, httpStatus, width: output.length };
}

/** The JSON schema of one value of `type`. */
function jsonSchemaOf(type: DataType, column: string): Record<string, unknown> {
  switch (typeCategory(type)) {
    case 'string':
      return { type: 'string' };
    case 'integer':
      return { type: 'integer' };
    case 'float':
    case 'decimal':
      return { type: 'number' };
    case 'boolean':
      return { type: 'boolean' };
    case 'temporal':
      return { type: 'string', description: type.name === 'DATE' ? 'a date, YYYY-MM-DD' : 'a timestamp, YYYY-MM-DD HH:MM:SS' };
    case 'array':
      return { type: 'array', items: jsonSchemaOf(type.elements![0]!, column) };
    default:
      throw new InvalidOptionError(`OUTPUT column ${column} has type ${formatType(type)}, which a remote model cannot produce; use STRING, numbers, BOOLEAN, DATE, TIMESTAMP or ARRAY of those`);
  }
}

/** The JSON schema of one row's answer (json mode): an object with a property per column. */
export function rowSchema(plan: OutputPlan): Record<string, unknown> {
  if (plan.mode !== 'json') return { type: 'string' };
  return {
    type: 'object',
    properties: Object.fromEntries(plan.answers.map((a) => [a.name, jsonSchemaOf(a.type, a.name)])),
    required: plan.answers.map((a) => a.name),
    additionalProperties: false,
  };
}

/** The JSON schema of a packed answer: `{"answers": [one item per row, in order]}`. */
export function packedSchema(plan: OutputPlan, rows: number): Record<string, unknown> {
  return {
    type: 'object',
    properties: { answers: { type: 'array', items: rowSchema(plan), minItems: rows, maxItems: rows } },
    required: ['answers'],
    additionalProperties: false,
  };
}

/** Parses model text as JSON, tolerating a Markdown code fence around it. */
export function parseJsonText(text: string): unknown {
  const trimmed = text.trim().replace(/^```(?:json)?\s*/i, '').replace(/\s*```$/, '');
  try {
    return JSON.parse(trimmed);
  } catch {
    throw new AnswerError(`the answer is not valid JSON: ${preview(text)}`);
  }
}

/**
 * The values of the answer columns for one row, from a text answer (text mode), a parsed
 * JSON value (json mode) or a vector (embedding mode).
 *
 * @throws AnswerError when it does not fit.
 */
export function answerValues(plan: OutputPlan, answer: unknown): unknown[] {
  if (plan.mode === 'text') {
    if (typeof answer !== 'string') throw new AnswerError(`expected a text answer, got ${preview(JSON.stringify(answer))}`);
    return [answer];
  }
  if (plan.mode === 'embedding') return [coerce(answer, plan.answers[0]!.type, plan.answers[0]!.name)];
  const object = typeof answer === 'string' ? parseJsonText(answer) : answer;
  if (object === null || typeof object !== 'object' || Array.isArray(object)) {
    throw new AnswerError(`expected a JSON object with ${plan.answers.map((a) => a.name).join(', ')}, got ${preview(JSON.stringify(object))}`);
  }
  const record = object as Record<string, unknown>;
  return plan.answers.map((a) => {
    const key = Object.keys(record).find((k) => k === a.name) ?? Object.keys(record).find((k) => k.toLowerCase() === a.name.toLowerCase());
    if (key === undefined) throw new AnswerError(`the answer has no '${a.name}': ${preview(JSON.stringify(record))}`);
    return coerce(record[key], a.type, a.name);
  });
}

/** A JSON value as a value of an OUTPUT column type. */
function coerce(value: unknown, type: DataType, column: string): unknown {
  if (value === null || value === undefined) return null;
  const fail = (): never => {
    throw new AnswerError(`the answer for OUTPUT column ${column} ${formatType(type)} does not fit: ${preview(JSON.stringify(value))}`);
  };
  switch (typeCategory(type)) {
    case 'string':
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      return fail();
    case 'integer': {
      const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
      return typeof n === 'number' && Number.isSafeInteger(n) ? n : fail();
    }
    case 'float':
    case 'decimal': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      return typeof n === 'number' && Number.isFinite(n) ? n : fail();
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      return fail();
    case 'temporal':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? value : fail();
    case 'array':
      return Array.isArray(value) ? value.map((v) => coerce(v, type.elements![0]!, column)) : fail();
    default:
      return fail();
  }
}

/** The start of a long text, for error messages. */
export function preview(text: string | undefined, max = 120): string {
  const t = String(text);
  return t.length <= max ? t : `${t.slice(0, max)}…`;
}
