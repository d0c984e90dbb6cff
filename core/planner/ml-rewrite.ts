/**
 * Rewrites a host statement holding ML_PREDICT / ML_EVALUATE calls into plain host SQL.
 *
 * Each call becomes a stage: its input relation is materialized in the host, the model
 * runs over it in batches, the predictions are appended to a second temporary table, and
 * the call's text is replaced by a relation that zips the two (input columns, then OUTPUT
 * columns). A host with a one-pass stage (`Host.openStage`, Postgres) instead reads the
 * input query once and carries its columns through to one result table. Calls nested in
 * a call's `TABLE (subquery)` run first. The host executes the rewritten statement; the
 * caller drops the temporary tables afterwards.
 */
import { randomUUID } from 'node:crypto';
import { ArgumentError, ModelSqlError, positionAt, withoutGeneratedSql } from '../errors.js';
import type { Host, HostColumn, HostStage, HostStageWrite } from '../host.js';
import type { DataType, MlArgValue, MlCall, Identifier, QueryStatement, Span } from '../sql/ast.js';
import { bindEvaluate, bindPredict, modelArgument, type CallConfig, type EvaluateBinding, type PredictBinding } from '../sql/ml-call.js';
import { isAssignable, parseDataType, typeCategory } from '../sql/types.js';
import type { ModelCatalog, ModelResolver, ResolvedModel } from '../catalog/model-catalog.js';
import type { RuntimeLoader } from '../runtime/runtime-loader.js';
import { runStage } from '../runtime/executor.js';
import { PredictionCache } from '../runtime/prediction-cache.js';
import { remoteStageShape } from '../runtime/remote-executor.js';
import type { StageCounters } from '../runtime/model-runtime.js';
import type { StageLimits } from '../runtime/inference-limits.js';
import { checkCallCaps, checkOptionCaps } from '../runtime/resource-caps.js';
import { evaluationRelation, textGenerationRelation, type EvaluationSpec, type EvaluationTask } from './evaluate-metrics.js';
import { callAlias, describedRelation, inputQuerySql, spliceCallsMapped, type SplicedText } from './splice.js';
import { directWriteShape, projectionSources, type DirectWriteShape } from './direct-write.js';
import { getOption } from '../catalog/model-options.js';
import { compileModel, compiledRelation } from '../training/compile-sql.js';
import { vectorSearchRelation } from './vector-search.js';
import { outputColumnNames } from './output-columns.js';
import type { TrainedModel } from '../training/trained-model.js';
import type { ModelColumn, ModelRunEvent, ProgressEvent, ProviderRequestEvent } from '../model-types.js';

export { outputColumnNames } from './output-columns.js';

/** Rows per batch when neither the call, the model nor the runtime says otherwise. */
const DEFAULT_BATCH_SIZE = 8192;
/** Batches in the model at once by default: one predicting while the next is read. */
const DEFAULT_CONCURRENCY = 2;

/** What a rewrite needs from the session. */
export interface RewriteContext {
  readonly host: Host;
  readonly catalog: ModelCatalog;
  /** Finds the models of the statement (one catalog look-up for all of them: `ModelCatalog.resolver`). */
  readonly models: ModelResolver;
  readonly loader: RuntimeLoader;
  /** The whole script the statement came from (spans index into it). */
  readonly scriptText: string;
  readonly signal?: AbortSignal;
  /** Names a new temporary table; the session drops them all when the statement ends. */
  readonly newTempTable: (role: 'in' | 'out') => string;
  readonly onProgress?: (event: ProgressEvent) => void;
  /** Called when a model stage has finished (logs and metrics of a server). */
  readonly onRun?: (event: ModelRunEvent) => void;
  /** Called after each request to a remote model's server. */
  readonly onRequest?: (event: ProviderRequestEvent) => void;
  /** Limits on model stages: rows per call, and what runs as each stage starts (admission, the statement timer); none when absent. */
  readonly limits?: Omit<StageLimits, 'position'>;
  /**
   * Plans the statement's shape without running a model: each call becomes its input
   * query with typed NULL outputs (`describedRelation`), no runtime is loaded and no stage
   * or temporary table is made. For Describe and plain EXPLAIN.
   */
  readonly describeOnly?: boolean;
}

/**
 * Rewrites `region` of the script, replacing each of `calls` (which lie inside it, in text
 * order) by the relation its stage produced.
 */
export async function rewriteRegion(region: Span, calls: readonly MlCall[], ctx: RewriteContext): Promise<string> {
  return (await rewriteRegionMapped(region, calls, ctx)).text;
}

/** {@link rewriteRegion}, with the map from the rewritten text back to the script. */
async function rewriteRegionMapped(region: Span, calls: readonly MlCall[], ctx: RewriteContext): Promise<SplicedText> {
  const relations: string[] = [];
  for (const call of calls) relations.push(call.function === 'VECTOR_SEARCH' ? await vectorSearchRelation(call, ctx) : await runCall(call, ctx));
  return spliceCallsMapped(ctx.scriptText, region, calls, relations);
}

/**
 * How a statement with ML calls runs: its rewritten host SQL (with `scriptOffset`, the
 * offset in the script of an offset in `sql`, for the positions of host errors), or a
 * write straight into its table.
 */
export type StatementPlan =
  | { readonly sql: string; readonly scriptOffset?: (offset: number) => number; readonly write?: undefined }
  | { readonly sql?: undefined; readonly write: DirectWrite };

/**
 * A statement whose one ML_PREDICT writes its rows straight into the statement's table
 * (direct-write.ts, `HostStage.into`): the stage is open, nothing has run yet.
 */
export interface DirectWrite {
  readonly kind: DirectWriteShape['kind'];
  /**
   * Runs the stage into the table in one transaction (inside the caller's when one is open):
   * a failure leaves neither table nor rows. Returns the rows written, or undefined when the
   * statement had nothing to do (`CREATE TABLE IF NOT EXISTS` found the table). Once only.
   */
  run(): Promise<number | undefined>;
  /** Releases the stage, after `run` or instead of it; idempotent. */
  close(): Promise<void>;
}

/**
 * Plans a statement: the shapes of direct-write.ts, on a host whose one-pass stage can write
 * into the statement's table, become a `DirectWrite`; every other statement is rewritten
 * (its stages run now) into host SQL.
 */
export async function planStatement(statement: QueryStatement, ctx: RewriteContext): Promise<StatementPlan> {
  const shape = ctx.host.openStage && !ctx.describeOnly ? directWriteShape(statement, ctx.scriptText) : undefined;
  if (!shape) {
    const spliced = await rewriteRegionMapped(statement.span, statement.calls, ctx);
    return { sql: spliced.text, scriptOffset: (o) => spliced.originalOffset(o) };
  }
  const result = await runCall(shape.call, ctx, { shape, statement });
  if (typeof result !== 'string') return { write: result };
  const spliced = spliceCallsMapped(ctx.scriptText, statement.span, [shape.call], [result]);
  return { sql: spliced.text, scriptOffset: (o) => spliced.originalOffset(o) };
}

/** A call that may write straight into its statement's table. */
interface DirectRequest {
  readonly shape: DirectWriteShape;
  readonly statement: QueryStatement;
}

/** Runs a call's stage and returns its relation; with `direct`, may instead return the stage opened as a `DirectWrite`. */
async function runCall(call: MlCall, ctx: RewriteContext): Promise<string>;
async function runCall(call: MlCall, ctx: RewriteContext, direct: DirectRequest): Promise<string | DirectWrite>;
async function runCall(call: MlCall, ctx: RewriteContext, direct?: DirectRequest): Promise<string | DirectWrite> {
  const text = ctx.scriptText;
  // Unknown model is reported before any argument problem (SPEC §1.2.1).
  const model = await ctx.models(modelArgument(call, text).name);
  const bound = call.function === 'ML_PREDICT' ? bindPredict(call, text) : bindEvaluate(call, text);
  checkCaps(model, bound, ctx);
  const trained = await ctx.catalog.trainedModel(model.version);
  if (trained && getOption(model.version.options, 'runtime')?.trim().toLowerCase() !== 'onnx') return compiledCall(call, bound, model, trained, ctx);

  // Hosts with a one-pass stage (Host.openStage) read the query once, during the stage;
  // the others materialize it first and read it back by position.
  const query = await inputQuery(bound.input, ctx);
  if (ctx.describeOnly) return describedCall(call, bound, model, query, ctx);
  let inputTable = ctx.host.openStage ? undefined : ctx.newTempTable('in');
  let rowCount: number | undefined = inputTable === undefined ? undefined : await materializeInput(inputTable, query, bound.input, ctx);
  const inputColumns = await describeInput(query, bound.input, ctx);
  const features = matchDescriptor(bound.columns, inputColumns, model.version.input, text);
  const evaluation = call.function === 'ML_EVALUATE' ? evaluationTarget(call, bound as EvaluateBinding, model, inputColumns, text) : undefined;

  await ctx.limits?.beforeLoad?.();
  const runtime = await ctx.loader.load(model.version, (name) => ctx.catalog.artifact(model.version, name), ctx.signal);
  const outputTable = ctx.newTempTable('out');
  const outputNames = outputColumnNames(inputColumns.map((c) => c.name), model.version.output.map((c) => c.name));
  const outputColumns = model.version.output.map((c, i) => ({ name: outputNames[i]!, type: ctx.host.dialect.hostType(parseDataType(c.type)) }));
  const startedAt = new Date();
  // Remote runtimes: CONFIG goes to the executor inside the runtime (requests in flight, rows
  // per request, timeout, strategy); the stage only pipelines reads, cache and appends.
  const counters: StageCounters = { errors: 0, tokens: 0, cacheHits: 0, requests: 0 };
  const remote = remoteStageShape(runtime, bound.config);
  const progress = progressReporter(modelArgumentText(call, text), rowCount, ctx.onProgress, counters);
  // Local runtimes with cache keys (text models) use the cache when the call or the runtime asks for it.
  const caching = remote ? remote.cache : runtime.cacheKeys !== undefined && (bound.config.cache ?? runtime.cacheByDefault ?? false);
  const cache = caching ? new PredictionCache(ctx.host, runtime.provider, getOption(model.version.options, 'model') ?? resolvedPath(model) ?? '') : undefined;
  // The cache is the current database's (the one the query runs in); lineage goes to the model's (ModelCatalog.runLog).
  if (cache) await (await ctx.catalog.currentStore()).ensure();
  if (cache && inputTable === undefined) {
    // The cache reads and writes between batches: no one-pass read can stay open meanwhile.
    inputTable = ctx.newTempTable('in');
    rowCount = await materializeInput(inputTable, query, bound.input, ctx);
  }
  const featureExpressions = features.map((c) => ctx.host.dialect.quoteIdentifier(c.name));
  const common = {
    host: ctx.host,
    runtime,
    batchSize: remote?.rows ?? bound.config.batchSize ?? modelOption(model, 'batch-size') ?? (runtime.preferredBatchSize > 0 ? runtime.preferredBatchSize : DEFAULT_BATCH_SIZE),
    concurrency: remote?.batchesInFlight ?? bound.config.maxConcurrentOperations ?? modelOption(model, 'max-concurrent-operations') ?? DEFAULT_CONCURRENCY,
    signal: ctx.signal,
    onProgress: progress?.onBatch,
    stage: {
      config: bound.config,
      counters,
      onRows: progress?.onRows,
      maxPromptBytes: ctx.loader.caps.maxPromptBytes,
      ...(ctx.onRequest ? { onRequest: (seconds: number, failed: boolean) => ctx.onRequest!({ provider: runtime.provider, seconds, failed }) } : {}),
    },
    cache,
    limits: ctx.limits && { ...ctx.limits, position: positionAt(text, call.nameSpan.start) },
  };
  const finished = async (rows: number): Promise<void> => {
    progress?.finish(rows);
    const v = model.version;
    ctx.onRun?.({ model: `${v.schema}.${v.name}$${v.version}`, provider: runtime.provider, rows, errors: counters.errors, durationMs: Date.now() - startedAt.getTime(), ...(remote ? { tokens: counters.tokens } : {}) });
    await (await ctx.catalog.runLog(model.version)).recordRun({
      runId: randomUUID(),
      version: model.version,
      temporary: model.entry.temporary,
      inputRelation: bound.input.kind === 'table' ? bound.input.name.map((id) => id.value).join('.') : text.slice(bound.input.span.start, bound.input.span.end),
      rows,
      errors: counters.errors,
      startedAt,
      durationMs: Date.now() - startedAt.getTime(),
      ...(remote ? { tokens: counters.tokens } : {}),
      ...(cache ? { cacheHits: counters.cacheHits } : {}),
    });
  };
  let relation: string;
  if (inputTable === undefined) {
    const source = bound.input.kind === 'table' ? bound.input.name.map((id) => id.value) : undefined;
    const carry = await ctx.host.openStage!({ query, ...(source ? { source } : {}), inputColumns, featureColumns: features.map((c) => inputColumns.indexOf(c)), kinds: runtime.inputKinds, outputColumns, table: outputTable, batchSize: common.batchSize });
    let write: HostStageWrite | undefined;
    try {
      write = direct && !evaluation ? await openDirect(carry, direct, [...inputColumns.map((c) => c.name), ...outputNames], ctx) : undefined;
      if (write) return directWrite(direct!, carry, write, async () => runStage({ ...common, carry }), finished, ctx);
      const rows = await runStage({ ...common, carry });
      relation = await carry.finish();
      await finished(rows);
    } finally {
      if (!write) await carry.close();
    }
  } else {
    await ctx.host.createTempTable(outputTable, outputColumns);
    const rows = await runStage({ ...common, inputTable, inputExpressions: featureExpressions, rowCount: rowCount!, outputTable });
    relation = ctx.host.dialect.zipRelations({ table: inputTable, columns: inputColumns.map((c) => c.name) }, { table: outputTable, columns: outputNames });
    await finished(rows);
  }
  return evaluation ? evaluate(ctx, evaluation, relation, model, outputNames, features) : relation;
}

/**
 * Directs an opened stage into its statement's table (`HostStage.into`), when the host can
 * write there as the statement would; `names` are the call's result columns.
 */
async function openDirect(stage: HostStage, direct: DirectRequest, names: readonly string[], ctx: RewriteContext): Promise<HostStageWrite | undefined> {
  const { shape, statement } = direct;
  const sources = projectionSources(shape.projection, names);
  if (!stage.into || !sources) return undefined;
  if (shape.kind === 'insert') return stage.into({ kind: 'insert', table: shape.table, sources, ...(shape.columns ? { columns: shape.columns } : {}) });
  const text = ctx.scriptText;
  return stage.into({
    kind: 'create',
    table: shape.table,
    sources,
    before: text.slice(statement.span.start, shape.call.span.start),
    after: callAlias(shape.call, 0) + text.slice(shape.call.span.end, statement.span.end),
    temporary: shape.temporary,
    ifNotExists: shape.ifNotExists,
  });
}

/**
 * The `DirectWrite` of an opened stage: in one transaction, the write opens (creates the
 * table), the stage runs (`predict`) and the write copies the rows in. Host errors of the
 * statement's own part are reported at the statement, as the general path reports them.
 */
function directWrite(
  direct: DirectRequest,
  stage: HostStage,
  write: HostStageWrite,
  predict: () => Promise<number>,
  finished: (rows: number) => Promise<void>,
  ctx: RewriteContext,
): DirectWrite {
  const position = positionAt(ctx.scriptText, direct.statement.span.start);
  const statementPart = async <T>(step: () => Promise<T>): Promise<T> => {
    try {
      return await step();
    } catch (error) {
      throw withoutGeneratedSql(error, 'in the statement around the ML call', position);
    }
  };
  let ran = false;
  return {
    kind: direct.shape.kind,
    run: async () => {
      if (ran) throw new ModelSqlError('XX000', 'internal error: a direct write ran twice');
      ran = true;
      try {
        return await ctx.host.transaction(async () => {
          if (!(await statementPart(() => write.open()))) return undefined;
          const rows = await predict();
          const written = await statementPart(() => write.finish());
          await finished(rows);
          return written;
        });
      } finally {
        await stage.close();
      }
    },
    close: () => stage.close(),
  };
}

/**
 * ML_EVALUATE's relation over the predictions (`relation`, with the OUTPUT columns named
 * `outputNames`): host SQL, except text generation, which is scored as rows stream by.
 */
async function evaluate(
  ctx: RewriteContext,
  target: Pick<EvaluationSpec, 'task' | 'label' | 'position'>,
  relation: string,
  model: ResolvedModel,
  outputNames: readonly string[],
  features: EvaluationSpec['features'],
): Promise<string> {
  const spec: EvaluationSpec = {
    ...target,
    relation,
    prediction: { name: outputNames[0]!, type: model.version.output[0]!.type },
    probabilities: probabilitiesColumn(model.version.output, outputNames),
    features,
  };
  return spec.task === 'text_generation' ? textGenerationRelation(ctx.host, spec) : evaluationRelation(ctx.host.dialect, spec);
}

/**
 * A call on a trained model compiled to SQL (SPEC §3): the call becomes a plain relation
 * over its input query, with the model's outputs as SQL expressions; no rows leave the host
 * and nothing is materialized.
 */
async function compiledCall(call: MlCall, bound: PredictBinding | EvaluateBinding, model: ResolvedModel, trained: TrainedModel, ctx: RewriteContext): Promise<string> {
  const text = ctx.scriptText;
  const d = ctx.host.dialect;
  const query = await inputQuery(bound.input, ctx);
  const inputColumns = await describeInput(query, bound.input, ctx);
  const features = matchDescriptor(bound.columns, inputColumns, model.version.input, text);
  const evaluation = call.function === 'ML_EVALUATE' ? evaluationTarget(call, bound as EvaluateBinding, model, inputColumns, text) : undefined;
  const outputNames = outputColumnNames(inputColumns.map((c) => c.name), model.version.output.map((c) => c.name));
  const compiled = compileModel(trained, d, features.map((c) => d.quoteIdentifier(c.name)), false);
  const relation = compiledRelation(d, compiled, query, inputColumns.map((c) => d.quoteIdentifier(c.name)), outputNames);
  return evaluation ? evaluate(ctx, evaluation, relation, model, outputNames, features) : relation;
}

/**
 * A call planned for its shape only (`RewriteContext.describeOnly`): the input query with
 * the model's OUTPUT columns as typed NULLs, after the same checks a run makes first
 * (descriptor, types, ML_EVALUATE's label and task). No model runs.
 */
async function describedCall(call: MlCall, bound: PredictBinding | EvaluateBinding, model: ResolvedModel, query: string, ctx: RewriteContext): Promise<string> {
  const text = ctx.scriptText;
  const inputColumns = await describeInput(query, bound.input, ctx);
  const features = matchDescriptor(bound.columns, inputColumns, model.version.input, text);
  const evaluation = call.function === 'ML_EVALUATE' ? evaluationTarget(call, bound as EvaluateBinding, model, inputColumns, text) : undefined;
  const outputNames = outputColumnNames(inputColumns.map((c) => c.name), model.version.output.map((c) => c.name));
  const outputColumns = model.version.output.map((c, i) => ({ name: outputNames[i]!, type: ctx.host.dialect.hostType(parseDataType(c.type)) }));
  const relation = describedRelation(ctx.host.dialect, query, outputColumns);
  if (!evaluation) return relation;
  // Text generation is scored as rows stream by: here over no rows, which reads nothing.
  const scored = evaluation.task === 'text_generation' ? `(SELECT * FROM ${relation} AS described LIMIT 0)` : relation;
  return evaluate(ctx, evaluation, scored, model, outputNames, features);
}

/**
 * Materializes a call's input. A host error here (an unknown table, say) is reported at
 * the input argument, without the generated SQL it came from.
 */
async function materializeInput(table: string, query: string, input: MlArgValue, ctx: RewriteContext): Promise<number> {
  try {
    return await ctx.host.materialize(table, query);
  } catch (error) {
    throw withoutGeneratedSql(error, 'in the input of the ML call', positionAt(ctx.scriptText, input.span.start));
  }
}

/** The columns of a call's input query, unread; host errors reported as `materializeInput` does. */
export async function describeInput(query: string, input: MlArgValue, ctx: RewriteContext): Promise<readonly HostColumn[]> {
  try {
    return await ctx.host.describe(query);
  } catch (error) {
    throw withoutGeneratedSql(error, 'in the input of the ML call', positionAt(ctx.scriptText, input.span.start));
  }
}

/** ML_EVALUATE's label column and task, checked before the model runs. */
function evaluationTarget(call: MlCall, bound: EvaluateBinding, model: ResolvedModel, inputColumns: readonly HostColumn[], text: string): Pick<EvaluationSpec, 'task' | 'label' | 'position'> {
  const [label] = matchColumns([bound.label], inputColumns, text);
  const task = (bound.task?.value ?? model.version.task) as EvaluationTask | undefined;
  if (!task) {
    throw new ArgumentError('22023', `ML_EVALUATE needs a task: pass one (e.g. 'regression') or set the model's 'task' option`, positionAt(text, call.nameSpan.start));
  }
  return { task, label: label!, position: positionAt(text, call.nameSpan.start) };
}

/** The SQL of a call's input, with the calls of a `TABLE (subquery)` run first. */
export async function inputQuery(input: MlArgValue, ctx: RewriteContext): Promise<string> {
  if (input.kind !== 'table' && input.kind !== 'subquery') {
    throw new ArgumentError('42804', 'ML_PREDICT input must be TABLE name or TABLE (subquery)', positionAt(ctx.scriptText, input.span.start));
  }
  const subquery = input.kind === 'subquery' ? await rewriteRegion(input.span, input.calls, ctx) : undefined;
  return inputQuerySql(input, ctx.scriptText, ctx.host.dialect, subquery);
}

/**
 * Finds the descriptor's columns in the input (unknown column first), then checks count and
 * types against the model's INPUT (SPEC §1.2.1).
 */
function matchDescriptor(columns: readonly Identifier[], input: readonly HostColumn[], modelInput: readonly ModelColumn[], text: string): HostColumn[] {
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

function probabilitiesColumn(output: readonly ModelColumn[], names: readonly string[]): string | undefined {
  const i = output.findIndex((c, index) => index > 0 && c.type.startsWith('ARRAY<'));
  return i < 0 ? undefined : names[i];
}

/** A positive-integer option of the model (validated at CREATE), if set. */
function modelOption(model: ResolvedModel, key: 'batch-size' | 'max-concurrent-operations'): number | undefined {
  const value = model.version.options.find(([k]) => k.toLowerCase() === key)?.[1];
  return value === undefined ? undefined : Number(value);
}

/**
 * Checks a call's CONFIG and its model's stored options against the server's caps
 * (resource-caps.ts): a model stored before a cap was lowered, or imported, does not run
 * over it. Errors point at the CONFIG value, or at the model argument.
 */
function checkCaps(model: ResolvedModel, bound: PredictBinding, ctx: RewriteContext): void {
  const text = ctx.scriptText;
  checkCallCaps(bound.config, ctx.loader.caps, (key) => {
    const entry = bound.configEntries.find((e) => e.key.toLowerCase() === key);
    return entry && positionAt(text, entry.valueSpan.start);
  });
  checkOptionCaps(model.version.options, ctx.loader.caps, () => positionAt(text, bound.modelSpan.start), '; lower it with ALTER MODEL ... SET');
}

/** An ONNX model's `path` (or `onnx.path`), naming it in the prediction cache. */
function resolvedPath(model: ResolvedModel): string | undefined {
  return getOption(model.version.options, 'path') ?? getOption(model.version.options, 'onnx.path');
}

function modelArgumentText(call: MlCall, text: string): string {
  const span = modelArgument(call, text).name.span;
  return text.slice(span.start, span.end);
}

/**
 * Progress events of a stage: after each appended batch (`onBatch`), and, for remote
 * models, as rows are answered inside a batch (`onRows`); with the stage's errors and tokens.
 * A one-pass stage does not know its total until the end (`finish(rows)`).
 */
function progressReporter(
  model: string,
  rowsTotal: number | undefined,
  emit: RewriteContext['onProgress'],
  counters: StageCounters,
): { onBatch: (rowsDone: number) => void; onRows: (rows: number) => void; finish: (rows?: number) => void } | undefined {
  if (!emit) return undefined;
  const started = performance.now();
  let answered = 0;
  let done = 0;
  let finished = false;
  let total = rowsTotal;
  const send = (rowsDone: number, last: boolean): void => {
    if (finished || (rowsDone <= done && !last)) return;
    done = Math.max(done, rowsDone);
    finished = last;
    const seconds = (performance.now() - started) / 1000;
    emit({ model, rowsDone: done, ...(total === undefined ? {} : { rowsTotal: total }), rate: seconds > 0 ? done / seconds : 0, errors: counters.errors, tokens: counters.tokens, finished: last });
  };
  return {
    onBatch: (rowsDone) => send(rowsDone, total !== undefined && rowsDone >= total),
    onRows: (rows) => {
      answered += rows;
      send(total === undefined ? answered : Math.min(answered, total - 1), false);
    },
    finish: (rows) => {
      total ??= rows;
      send(total ?? done, true);
    },
  };
}

export type { CallConfig };
