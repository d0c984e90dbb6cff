/**
 * Plans the ML calls of a statement region (SPEC §1.2, §1.3): each call becomes a host
 * relation, spliced where the call was written. A call on a trained model compiles to SQL
 * over its input; any other runs as a model stage (asked of the executor) whose relation is
 * its input columns then its OUTPUT columns; ML_EVALUATE scores that relation. Calls nested
 * in a call's `TABLE (subquery)` are planned first. Pure: facts come from {@link ask}.
 */
import { ArgumentError, positionAt } from '../errors.js';
import type { MlArgValue, MlCall, Span } from '../sql/ast.js';
import { modelArgument, type EvaluateBinding } from '../sql/ml-call.js';
import { parseDataType } from '../sql/types.js';
import { getOption } from '../catalog/model-options.js';
import { compileModel, compiledRelation } from '../training/compile-sql.js';
import type { ModelColumn, ResolvedModel } from '../model-types.js';
import { bindCall, evaluationTarget, matchDescriptor, type EvaluationTarget } from './call-binding.js';
import { evaluationRelation, type EvaluationSpec } from './evaluate-metrics.js';
import { outputColumnNames } from './output-columns.js';
import { ask, type Plan, type PlanEnv, type StagePlan } from './plan-requests.js';
import { describedRelation, inputQuerySql, spliceCallsMapped, type SplicedText } from './splice.js';
import { planVectorSearch } from './vector-search.js';

/**
 * The text of `region` with each of `calls` (inside it, in text order) replaced by its
 * relation, with the map back to the script for the positions of host errors.
 *
 * @example
 * const spliced = yield* planRegion(statement.span, statement.calls, env);
 */
export function* planRegion(region: Span, calls: readonly MlCall[], env: PlanEnv): Plan<SplicedText> {
  const relations: string[] = [];
  for (const call of calls) relations.push(call.function === 'VECTOR_SEARCH' ? yield* planVectorSearch(call, env) : yield* planCall(call, env));
  return spliceCallsMapped(env.scriptText, region, calls, relations);
}

/**
 * The relation of one ML_PREDICT / ML_EVALUATE call. Errors come in the order SPEC §1.2.1
 * gives: unknown model, then arguments, then the input, then DESCRIPTOR columns and types.
 */
export function* planCall(call: MlCall, env: PlanEnv): Plan<string> {
  const text = env.scriptText;
  const d = env.dialect;
  const model = yield* ask({ kind: 'model', name: modelArgument(call, text).name });
  const bound = bindCall(call, model, text, env.caps);
  const trained = yield* ask({ kind: 'trained', version: model.version });
  const compiled = trained && getOption(model.version.options, 'runtime')?.trim().toLowerCase() !== 'onnx' ? trained : undefined;
  const inputQuery = yield* planInput(bound.input, env);
  const inputColumns = yield* ask({ kind: 'describe', query: inputQuery, input: bound.input });
  const features = matchDescriptor(bound.columns, inputColumns, model.version.input, text);
  const evaluation = call.function === 'ML_EVALUATE' ? evaluationTarget(call, bound as EvaluateBinding, model, inputColumns, text) : undefined;
  const outputNames = outputColumnNames(inputColumns.map((c) => c.name), model.version.output.map((c) => c.name));
  // ML_EVALUATE scores the relation; ML_PREDICT is the relation.
  const score = function* (relation: string): Plan<string> {
    return evaluation ? yield* evaluate(evaluation, relation, model, outputNames, features, env) : relation;
  };
  if (compiled) {
    // A trained model compiled to SQL (SPEC §3): no rows leave the host, nothing is materialized.
    const expressions = compileModel(compiled, d, features.map((c) => d.quoteIdentifier(c.name)), false);
    return yield* score(compiledRelation(d, expressions, inputQuery, inputColumns.map((c) => d.quoteIdentifier(c.name)), outputNames));
  }
  const outputColumns = model.version.output.map((c, i) => ({ name: outputNames[i]!, type: d.hostType(parseDataType(c.type)) }));
  if (env.describeOnly) {
    const relation = describedRelation(d, inputQuery, outputColumns);
    // Text generation is scored as rows stream by: here over no rows, which reads nothing.
    return yield* score(evaluation?.task === 'text_generation' ? `(SELECT * FROM ${relation} AS described LIMIT 0)` : relation);
  }
  const stage: StagePlan = { call, bound, model, inputQuery, inputColumns, features, outputNames, outputColumns, evaluates: evaluation !== undefined };
  return yield* score(yield* ask({ kind: 'stage', stage }));
}

/** The SQL of a call's input, with the calls of a `TABLE (subquery)` planned first. */
export function* planInput(input: MlArgValue, env: PlanEnv): Plan<string> {
  if (input.kind !== 'table' && input.kind !== 'subquery') {
    throw new ArgumentError('42804', 'ML_PREDICT input must be TABLE name or TABLE (subquery)', positionAt(env.scriptText, input.span.start));
  }
  const subquery = input.kind === 'subquery' ? (yield* planRegion(input.span, input.calls, env)).text : undefined;
  return inputQuerySql(input, env.scriptText, env.dialect, subquery);
}

/**
 * ML_EVALUATE's relation over the predictions (`relation`, with the OUTPUT columns named
 * `outputNames`): host SQL, except text generation, which is scored as rows stream by.
 */
function* evaluate(
  target: EvaluationTarget,
  relation: string,
  model: ResolvedModel,
  outputNames: readonly string[],
  features: EvaluationSpec['features'],
  env: PlanEnv,
): Plan<string> {
  const spec: EvaluationSpec = {
    ...target,
    relation,
    prediction: { name: outputNames[0]!, type: model.version.output[0]!.type },
    probabilities: probabilitiesColumn(model.version.output, outputNames),
    features,
  };
  return spec.task === 'text_generation' ? yield* ask({ kind: 'text-scores', spec }) : evaluationRelation(env.dialect, spec);
}

function probabilitiesColumn(output: readonly ModelColumn[], names: readonly string[]): string | undefined {
  const i = output.findIndex((c, index) => index > 0 && c.type.startsWith('ARRAY<'));
  return i < 0 ? undefined : names[i];
}
