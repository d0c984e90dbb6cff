/**
 * Runs one model stage: reads the input rows a batch at a time from a materialized host
 * relation, keeps up to `concurrency` batches in the model at once, and appends the
 * predictions, in input order, to the output relation. Written once for every runtime.
 * Hosts with a one-pass stage (`Host.openStage`) are driven the same way through it.
 */
import { ModelSqlError, QueryCanceledError } from '../errors.js';
import type { Host, HostStage } from '../host.js';
import type { ModelRuntime, PredictStage } from './model-runtime.js';
import type { PredictionCache } from './prediction-cache.js';
import { checkStageRows, type StageLimits } from './inference-limits.js';
import type { ColumnBatch, ColumnData } from '../model-types.js';

/** What a stage reads, runs and writes. */
export interface StageSpec {
  readonly host: Host;
  readonly runtime: ModelRuntime;
  /** The materialized input table. */
  readonly inputTable: string;
  /** SQL expressions over the input table, one per model INPUT column. */
  readonly inputExpressions: readonly string[];
  readonly rowCount: number;
  /** The (empty) output table, one column per model OUTPUT column. */
  readonly outputTable: string;
  readonly batchSize: number;
  /** Batches in the model at once (at least 1). */
  readonly concurrency: number;
  readonly signal?: AbortSignal;
  /** Called after each appended batch with the rows done so far. */
  readonly onProgress?: (rowsDone: number) => void;
  /** The call's CONFIG and counters, handed to the runtime (remote providers use them). */
  readonly stage?: PredictStage;
  /**
   * The prediction cache, for runtimes with `cacheKeys`: rows with a stored answer skip the
   * runtime, new answers are written between batches and when the stage ends or fails.
   */
  readonly cache?: PredictionCache;
  /** Server limits: rows the call may send to the model, and admission of the stage (inference-limits.ts). */
  readonly limits?: StageLimits;
}

/**
 * A stage through a host's one-pass stage instead of tables: batches come from
 * `carry.batches()` and predictions go to `carry.write`; the caller opens, finishes and
 * closes it. The row count is not known in advance.
 */
export type CarryStageSpec = Omit<StageSpec, 'inputTable' | 'inputExpressions' | 'rowCount' | 'outputTable'> & { readonly carry: HostStage };

/**
 * Runs a stage to the end and returns the rows it predicted; rejects with
 * QueryCanceledError as soon as `signal` aborts.
 *
 * @example
 * await runStage({ host, runtime, inputTable: 'in_1', inputExpressions: ['"x"'], rowCount: 10, outputTable: 'out_1', batchSize: 4096, concurrency: 2 });
 */
export async function runStage(spec: StageSpec | CarryStageSpec): Promise<number> {
  if (!('carry' in spec)) checkStageRows(spec.rowCount, spec.limits);
  const leave = await spec.limits?.enter?.(spec.limits.position);
  try {
    return await runAdmittedStage(spec);
  } finally {
    leave?.();
  }
}

async function runAdmittedStage(spec: StageSpec | CarryStageSpec): Promise<number> {
  const { runtime, signal } = spec;
  const tables = 'carry' in spec ? undefined : await tableStage(spec);
  const io = 'carry' in spec ? spec.carry : tables!;
  const expectedRows = 'carry' in spec ? undefined : spec.rowCount;
  const inFlight: { readonly prediction: Promise<ColumnBatch>; readonly carry: unknown }[] = [];
  let rowsDone = 0;
  let rowsRead = 0;
  const appendOldest = async (): Promise<void> => {
    const { prediction, carry } = inFlight.shift()!;
    const predictions = await prediction;
    throwIfAborted(signal);
    await io.write(carry, predictions);
    rowsDone += predictions.rowCount;
    spec.onProgress?.(rowsDone);
  };
  const cache = spec.cache && runtime.cacheKeys ? spec.cache : undefined;
  const stage: PredictStage | undefined = cache && spec.stage ? { ...spec.stage, remember: (key, values) => cache.remember(key, values) } : spec.stage;
  try {
    for await (const { features: batch, carry } of io.batches()) {
      throwIfAborted(signal);
      checkStageRows((rowsRead += batch.rowCount), spec.limits);
      const prediction = cache ? (await predictCached(runtime, batch, cache, stage, signal)).prediction : runtime.predictBatch(batch, { signal, stage });
      prediction.catch(() => undefined); // awaited in order by appendOldest
      inFlight.push({ prediction, carry });
      if (inFlight.length >= Math.max(1, spec.concurrency)) {
        await appendOldest();
        await cache?.flush();
      }
    }
    while (inFlight.length > 0) {
      await appendOldest();
      await cache?.flush();
    }
    if (expectedRows !== undefined && rowsDone !== expectedRows) {
      throw new ModelSqlError('XX000', `internal error: the model stage read ${rowsDone} of ${expectedRows} input rows`);
    }
    return rowsDone;
  } finally {
    if (cache) {
      // A failed or cancelled stage keeps what it was answered: a rerun asks only for the rest.
      await Promise.allSettled(inFlight.map((f) => f.prediction));
      await cache.flush().catch(() => undefined);
    }
    await tables?.close().catch(() => undefined);
  }
}

/** The table path as a stage: positional reads of the materialized input, appends to the output table. */
async function tableStage(spec: StageSpec): Promise<Pick<HostStage, 'batches' | 'write' | 'close'>> {
  const { host } = spec;
  const appender = await host.openAppender(spec.outputTable);
  return {
    async *batches() {
      for await (const features of host.readBatches(spec.inputTable, spec.inputExpressions, spec.runtime.inputKinds, spec.batchSize)) yield { features, carry: undefined };
    },
    write: (_carry, outputs) => appender.append(outputs),
    close: () => appender.close(),
  };
}

/**
 * Predicts a batch through the cache: rows with a stored answer take it, the others go to
 * the runtime (as one smaller batch), and the two are merged back in row order.
 */
async function predictCached(runtime: ModelRuntime, batch: ColumnBatch, cache: PredictionCache, stage: PredictStage | undefined, signal: AbortSignal | undefined): Promise<{ prediction: Promise<ColumnBatch> }> {
  const keys = runtime.cacheKeys!(batch);
  const hits = await cache.lookup(keys.filter((k): k is string => k !== null));
  const missing: number[] = [];
  keys.forEach((key, row) => {
    if (key === null || !hits.has(key)) missing.push(row);
  });
  if (stage) stage.counters.cacheHits += batch.rowCount - missing.length;
  if (missing.length < batch.rowCount) stage?.onRows?.(batch.rowCount - missing.length);
  if (missing.length === batch.rowCount) return { prediction: runtime.predictBatch(batch, { signal, stage }) };
  const answered = missing.length === 0 ? undefined : runtime.predictBatch(selectRows(batch, missing), { signal, stage });
  const prediction = (async () => {
    const predicted = answered ? await answered : undefined;
    const width = predicted?.columns.length ?? hits.values().next().value!.length;
    const columns: unknown[][] = Array.from({ length: width }, () => new Array<unknown>(batch.rowCount).fill(null));
    keys.forEach((key, row) => {
      const values = key === null ? undefined : hits.get(key);
      if (values) values.forEach((v, c) => (columns[c]![row] = v));
    });
    missing.forEach((row, i) => predicted!.columns.forEach((column, c) => (columns[c]![row] = valueAt(column, i))));
    return { rowCount: batch.rowCount, columns: columns.map((values): ColumnData => ({ kind: 'value', values })) };
  })();
  return { prediction };
}

/** The given rows of a batch, in order. */
function selectRows(batch: ColumnBatch, rows: readonly number[]): ColumnBatch {
  return {
    rowCount: rows.length,
    columns: batch.columns.map((c): ColumnData => ({ kind: 'value', values: rows.map((r) => valueAt(c, r)) })),
  };
}

function valueAt(column: ColumnData, row: number): unknown {
  if (column.kind === 'number') return column.nulls?.[row] ? null : column.values[row];
  return column.values[row] ?? null;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new QueryCanceledError();
}
