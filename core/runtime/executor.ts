/**
 * Runs one model stage: reads the input rows a batch at a time from a materialized host
 * relation, keeps up to `concurrency` batches in the model at once, and appends the
 * predictions, in input order, to the output relation. Written once for every runtime.
 */
import { ModelSqlError, QueryCanceledError } from '../errors.js';
import type { Host } from '../host.js';
import type { ColumnBatch, ModelRuntime } from './model-runtime.js';

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
}

/**
 * Runs a stage to the end; rejects with QueryCanceledError as soon as `signal` aborts.
 *
 * @example
 * await runStage({ host, runtime, inputTable: 'in_1', inputExpressions: ['"x"'], rowCount: 10, outputTable: 'out_1', batchSize: 4096, concurrency: 2 });
 */
export async function runStage(spec: StageSpec): Promise<void> {
  const { host, runtime, signal } = spec;
  const appender = await host.openAppender(spec.outputTable);
  const inFlight: Promise<ColumnBatch>[] = [];
  let rowsDone = 0;
  const appendOldest = async (): Promise<void> => {
    const predictions = await inFlight.shift()!;
    throwIfAborted(signal);
    await appender.append(predictions);
    rowsDone += predictions.rowCount;
    spec.onProgress?.(rowsDone);
  };
  try {
    for await (const batch of host.readBatches(spec.inputTable, spec.inputExpressions, runtime.inputKinds, spec.batchSize)) {
      throwIfAborted(signal);
      const prediction = runtime.predictBatch(batch, { signal });
      prediction.catch(() => undefined); // awaited in order by appendOldest
      inFlight.push(prediction);
      if (inFlight.length >= Math.max(1, spec.concurrency)) await appendOldest();
    }
    while (inFlight.length > 0) await appendOldest();
    if (rowsDone !== spec.rowCount) {
      throw new ModelSqlError('XX000', `internal error: the model stage read ${rowsDone} of ${spec.rowCount} input rows`);
    }
  } finally {
    await appender.close().catch(() => undefined);
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new QueryCanceledError();
}
