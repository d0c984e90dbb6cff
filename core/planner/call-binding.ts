/**
 * The checks of one ML_PREDICT / ML_EVALUATE call against the facts the planner was given
 * (SPEC §1.2.1): its arguments and CONFIG against the server's caps, its DESCRIPTOR against
 * the input's columns and the model's INPUT, ML_EVALUATE's label and task. Pure: every
 * fact comes in as an argument, nothing is read from a host or a catalog.
 */
import { ArgumentError, positionAt } from '../errors.js';
import type { HostColumn } from '../host.js';
import type { ModelColumn, ResolvedModel } from '../model-types.js';
import type { ResourceCaps } from '../runtime/resource-caps.js';
import { checkCallCaps, checkOptionCaps } from '../runtime/resource-caps.js';
import type { DataType, Identifier, MlCall } from '../sql/ast.js';
import { bindEvaluate, bindPredict, type EvaluateBinding, type PredictBinding } from '../sql/ml-call.js';
import { isAssignable, parseDataType, typeCategory } from '../sql/types.js';
import type { EvaluationSpec, EvaluationTask } from './evaluate-metrics.js';

/** ML_EVALUATE's label column, task and where errors about it point. */
export type EvaluationTarget = Pick<EvaluationSpec, 'task' | 'label' | 'position'>;

/**
 * Binds a call's arguments (after its model was found: an unknown model is reported before
 * any argument problem) and checks its CONFIG and its model's stored options against the
 * server's caps (resource-caps.ts): a model stored before a cap was lowered, or imported,
 * does not run over it. Errors point at the CONFIG value, or at the model argument.
 *
 * @example
 * const bound = bindCall(call, model, scriptText, loader.caps);
 */
export function bindCall(call: MlCall, model: ResolvedModel, text: string, caps: ResourceCaps): PredictBinding | EvaluateBinding {
  const bound = call.function === 'ML_PREDICT' ? bindPredict(call, text) : bindEvaluate(call, text);
  checkCallCaps(bound.config, caps, (key) => {
    const entry = bound.configEntries.find((e) => e.key.toLowerCase() === key);
    return entry && positionAt(text, entry.valueSpan.start);
  });
  checkOptionCaps(model.version.options, caps, () => positionAt(text, bound.modelSpan.start), '; lower it with ALTER MODEL ... SET');
  return bound;
}

/**
 * Finds the descriptor's columns in the input (unknown column first), then checks count and
 * types against the model's INPUT (SPEC §1.2.1).
 */
export function matchDescriptor(columns: readonly Identifier[], input: readonly HostColumn[], modelInput: readonly ModelColumn[], text: string): HostColumn[] {
  const found = matchColumns(columns, input, text);
  if (found.length !== modelInput.length) {
    const start = columns[0]?.span.start ?? 0;
    throw new ArgumentError(
      '42804',
      `DESCRIPTOR has ${found.length} column${found.length === 1 ? '' : 's'} but the model takes ${modelInput.length} input${modelInput.length === 1 ? '' : 's'} (${modelInput.map((c) => `${c.name} ${c.type}`).join(', ')})`,
      positionAt(text, start),
    );
  }
  found.forEach((column, i) => {
    const target = modelInput[i]!;
    if (!feeds(parseDataType(column.type), parseDataType(target.type))) {
      throw new ArgumentError(
        '42804',
        `column "${column.name}" has type ${column.type}, which cannot feed model input ${target.name} ${target.type}`,
        positionAt(text, columns[i]!.span.start),
      );
    }
  });
  return found;
}

/**
 * Whether a host column can feed a model input (SPEC §1.2.1, `isAssignable`), with two
 * allowances for what hosts do not report: nullability (a NULL feature gives NULL outputs)
 * and string lengths (DuckDB's VARCHAR has none).
 */
function feeds(column: DataType, input: DataType): boolean {
  const target = { ...input, notNull: false };
  if (typeCategory(column) === 'string' && typeCategory(target) === 'string') return true;
  return isAssignable(column, target);
}

/** Resolves identifiers to input columns: quoted ones exactly, plain ones case-insensitively. */
function matchColumns(columns: readonly Identifier[], input: readonly HostColumn[], text: string): HostColumn[] {
  return columns.map((id) => {
    const column = id.quoted ? input.find((c) => c.name === id.value) : input.find((c) => c.name.toLowerCase() === id.value.toLowerCase());
    if (!column) {
      throw new ArgumentError('42703', `column "${id.value}" does not exist in the input; columns: ${input.map((c) => c.name).join(', ')}`, positionAt(text, id.span.start));
    }
    return column;
  });
}

/** ML_EVALUATE's label column and task, checked before the model runs. */
export function evaluationTarget(call: MlCall, bound: EvaluateBinding, model: ResolvedModel, inputColumns: readonly HostColumn[], text: string): EvaluationTarget {
  const [label] = matchColumns([bound.label], inputColumns, text);
  const task = (bound.task?.value ?? model.version.task) as EvaluationTask | undefined;
  if (!task) {
    throw new ArgumentError('22023', `ML_EVALUATE needs a task: pass one (e.g. 'regression') or set the model's 'task' option`, positionAt(text, call.nameSpan.start));
  }
  return { task, label: label!, position: positionAt(text, call.nameSpan.start) };
}
