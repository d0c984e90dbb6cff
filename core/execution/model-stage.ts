/**
 * Runs one model stage the planner asked for (`StagePlan`): the call's input is read from
 * the host, the model runs over it in batches, the predictions go to a temporary table, and
 * the answer is the relation that zips input and predictions (input columns, then OUTPUT
 * columns). A host with a one-pass stage (`Host.openStage`, Postgres) reads the input query
 * once and carries its columns through to one result table, and may write the rows straight
 * into the statement's table (a `DirectWrite`). Each finished stage is recorded as a run
 * (`prediction_runs`, the session's `run` event).
 */
import type { ResolvedModel } from '../model-types.js';
import { randomUUID } from 'node:crypto';
import { ModelSqlError, positionAt, withoutGeneratedSql } from '../errors.js';
import type { HostStage, HostStageWrite } from '../host.js';
import type { QueryStatement } from '../sql/ast.js';
import { modelArgument } from '../sql/ml-call.js';
import { getOption } from '../catalog/model-options.js';
import { projectionSources, type DirectWriteShape } from '../planner/direct-write.js';
import type { StagePlan } from '../planner/plan-requests.js';
import { callAlias } from '../planner/splice.js';
import { runStage } from '../runtime/executor.js';
import type { StageCounters } from '../runtime/model-runtime.js';
import { PredictionCache } from '../runtime/prediction-cache.js';
import { remoteStageShape } from '../runtime/remote-executor.js';
import type { DirectWrite, ExecutionContext } from './execution-context.js';
import { progressReporter } from './stage-progress.js';

/** Rows per batch when neither the call, the model nor the runtime says otherwise. */
const DEFAULT_BATCH_SIZE = 8192;
/** Batches in the model at once by default: one predicting while the next is read. */
const DEFAULT_CONCURRENCY = 2;

/** A call that may write straight into its statement's table. */
export interface DirectRequest {
  readonly shape: DirectWriteShape;
  readonly statement: QueryStatement;
}

/** Runs a stage and returns its relation; with `direct`, may instead return the stage opened as a `DirectWrite`. */
export async function runModelStage(plan: StagePlan, ctx: ExecutionContext): Promise<string>;
export async function runModelStage(plan: StagePlan, ctx: ExecutionContext, direct: DirectRequest): Promise<string | DirectWrite>;
export async function runModelStage(plan: StagePlan, ctx: ExecutionContext, direct?: DirectRequest): Promise<string | DirectWrite> {
  const text = ctx.scriptText;
  const { call, bound, model, inputQuery: query, inputColumns, features, outputNames, outputColumns } = plan;
  // Hosts with a one-pass stage (Host.openStage) read the query once, during the stage;
  // the others materialize it first and read it back by position.
  let inputTable = ctx.host.openStage ? undefined : ctx.newTempTable('in');
  let rowCount: number | undefined = inputTable === undefined ? undefined : await materializeInput(inputTable, plan, ctx);

  await ctx.limits?.beforeLoad?.();
  const runtime = await ctx.loader.load(model.version, (name) => ctx.catalog.artifact(model.version, name), ctx.signal);
  const outputTable = ctx.newTempTable('out');
  const startedAt = new Date();
  // Remote runtimes: CONFIG goes to the executor inside the runtime (requests in flight, rows
  // per request, timeout, strategy); the stage only pipelines reads, cache and appends.
  const counters: StageCounters = { errors: 0, tokens: 0, cacheHits: 0, requests: 0 };
  const remote = remoteStageShape(runtime, bound.config);
  const progress = progressReporter(modelArgumentText(plan, text), rowCount, ctx.onProgress, counters);
  // Local runtimes with cache keys (text models) use the cache when the call or the runtime asks for it.
  const caching = remote ? remote.cache : runtime.cacheKeys !== undefined && (bound.config.cache ?? runtime.cacheByDefault ?? false);
  const cache = caching ? new PredictionCache(ctx.host, runtime.provider, getOption(model.version.options, 'model') ?? resolvedPath(model) ?? '') : undefined;
  // The cache is the current database's (the one the query runs in); lineage goes to the model's (ModelCatalog.runLog).
  if (cache) await (await ctx.catalog.currentStore()).ensure();
  if (cache && inputTable === undefined) {
    // The cache reads and writes between batches: no one-pass read can stay open meanwhile.
    inputTable = ctx.newTempTable('in');
    rowCount = await materializeInput(inputTable, plan, ctx);
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
      maxRetryDelayMs: ctx.loader.caps.maxRetryDelayMs,
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
  if (inputTable !== undefined) {
    await ctx.host.createTempTable(outputTable, outputColumns);
    const rows = await runStage({ ...common, inputTable, inputExpressions: featureExpressions, rowCount: rowCount!, outputTable });
    const relation = ctx.host.dialect.zipRelations({ table: inputTable, columns: inputColumns.map((c) => c.name) }, { table: outputTable, columns: outputNames });
    await finished(rows);
    return relation;
  }
  const source = bound.input.kind === 'table' ? bound.input.name.map((id) => id.value) : undefined;
  const carry = await ctx.host.openStage!({
    query,
    ...(source ? { source } : {}),
    inputColumns,
    featureColumns: features.map((c) => inputColumns.indexOf(c)),
    kinds: runtime.inputKinds,
    ...(runtime.rowMajorInput && runtime.inputKinds.every((kind) => kind === 'number') ? { rowMajor: true } : {}),
    outputColumns,
    table: outputTable,
    batchSize: common.batchSize,
    ...(bound.config.outputMode === 'ALLOW_UNORDERED' ? { unordered: true } : {}),
    ...(ctx.limits?.maxRows !== undefined ? { maxRows: ctx.limits.maxRows } : {}),
  });
  let write: HostStageWrite | undefined;
  try {
    write = direct && !plan.evaluates ? await openDirect(carry, direct, [...inputColumns.map((c) => c.name), ...outputNames], ctx) : undefined;
    if (write) return directWrite(direct!, carry, write, async () => runStage({ ...common, carry }), finished, ctx);
    const rows = await runStage({ ...common, carry });
    const relation = await carry.finish();
    await finished(rows);
    return relation;
  } finally {
    if (!write) await carry.close();
  }
}

/**
 * Materializes a call's input. A host error here (an unknown table, say) is reported at
 * the input argument, without the generated SQL it came from.
 */
async function materializeInput(table: string, plan: StagePlan, ctx: ExecutionContext): Promise<number> {
  try {
    return await ctx.host.materialize(table, plan.inputQuery);
  } catch (error) {
    throw withoutGeneratedSql(error, 'in the input of the ML call', positionAt(ctx.scriptText, plan.bound.input.span.start));
  }
}

/**
 * Directs an opened stage into its statement's table (`HostStage.into`), when the host can
 * write there as the statement would; `names` are the call's result columns.
 */
async function openDirect(stage: HostStage, direct: DirectRequest, names: readonly string[], ctx: ExecutionContext): Promise<HostStageWrite | undefined> {
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
  ctx: ExecutionContext,
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
          // A failed stage is closed before the transaction ends: its write may still hold the connection.
          const rows = await predict().catch(async (error: unknown) => {
            await stage.close();
            throw error;
          });
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

/** A positive-integer option of the model (validated at CREATE), if set. */
function modelOption(model: ResolvedModel, key: 'batch-size' | 'max-concurrent-operations'): number | undefined {
  const value = model.version.options.find(([k]) => k.toLowerCase() === key)?.[1];
  return value === undefined ? undefined : Number(value);
}

/** An ONNX model's `path` (or `onnx.path`), naming it in the prediction cache. */
function resolvedPath(model: ResolvedModel): string | undefined {
  return getOption(model.version.options, 'path') ?? getOption(model.version.options, 'onnx.path');
}

/** The model argument as written in the query (progress events name the model so). */
function modelArgumentText(plan: StagePlan, text: string): string {
  const span = modelArgument(plan.call, text).name.span;
  return text.slice(span.start, span.end);
}
