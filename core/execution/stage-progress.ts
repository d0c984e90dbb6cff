/** Progress events of one model stage, as a session reports them (`ProgressEvent`). */
import type { ProgressEvent } from '../model-types.js';
import type { StageCounters } from '../runtime/model-runtime.js';

/** The callbacks a stage calls as it advances. */
export interface StageProgress {
  /** After each appended batch, with the rows done so far. */
  readonly onBatch: (rowsDone: number) => void;
  /** Remote models: as rows are answered inside a batch. */
  readonly onRows: (rows: number) => void;
  /** Once, at the end; a one-pass stage learns its total only here. */
  readonly finish: (rows?: number) => void;
}

/**
 * Progress events of a stage: after each appended batch (`onBatch`), and, for remote
 * models, as rows are answered inside a batch (`onRows`); with the stage's errors and tokens.
 * A one-pass stage does not know its total until the end (`finish(rows)`). Undefined when
 * nobody listens.
 */
export function progressReporter(model: string, rowsTotal: number | undefined, emit: ((event: ProgressEvent) => void) | undefined, counters: StageCounters): StageProgress | undefined {
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
