/**
 * The CLI's progress bar for model stages (ML_PREDICT / ML_EVALUATE), drawn with
 * cli-progress on stderr from a session's `progress` events.
 *
 * A bar appears only when stderr is a terminal, and only for runs that are not small: a
 * stage gets a bar once it has run for {@link ProgressOptions.minMillis} (1 s) with at least
 * {@link ProgressOptions.minRows} (10,000) input rows (or an unknown total), or once it has
 * run for {@link ProgressOptions.slowMillis} (5 s) whatever its size (a slow remote model).
 * Bars are cleared when their stage finishes, so results print on a clean screen.
 */
import cliProgress from 'cli-progress';
import type { Session } from '../core/session/session.js';
import type { ProgressEvent } from '../core/model-types.js';

/** Thresholds of {@link ProgressReporter}. */
export interface ProgressOptions {
  /** Where bars are drawn; default `process.stderr`. Nothing is drawn unless it is a TTY. */
  readonly stream?: NodeJS.WriteStream;
  /** A stage with fewer input rows than this gets no bar before `slowMillis`; default 10,000. */
  readonly minRows?: number;
  /** No bar before a stage has run this long; default 1,000 ms. */
  readonly minMillis?: number;
  /** After this long a stage gets a bar whatever its size; default 5,000 ms. */
  readonly slowMillis?: number;
  /** The clock, for tests; default `Date.now`. */
  readonly now?: () => number;
}

interface Stage {
  readonly started: number;
  bar?: cliProgress.SingleBar;
}

/**
 * Shows a progress bar per running model stage of a session.
 *
 * @example
 * const progress = new ProgressReporter(session);
 * try { for await (const r of session.run(sql)) { progress.stop(); print(r); } }
 * finally { progress.dispose(); }
 */
export class ProgressReporter {
  private readonly stream: NodeJS.WriteStream;
  private readonly minRows: number;
  private readonly minMillis: number;
  private readonly slowMillis: number;
  private readonly now: () => number;
  private readonly stages = new Map<string, Stage>();
  private multibar?: cliProgress.MultiBar;
  private readonly listener = (event: ProgressEvent): void => this.onProgress(event);

  /** Starts listening to `session.events`. */
  constructor(
    private readonly session: Session,
    options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.minRows = options.minRows ?? 10_000;
    this.minMillis = options.minMillis ?? 1_000;
    this.slowMillis = options.slowMillis ?? 5_000;
    this.now = options.now ?? Date.now;
    session.events.on('progress', this.listener);
  }

  /** True when some bar is on screen. */
  get active(): boolean {
    return this.multibar !== undefined;
  }

  /** Handles one progress event (public for tests). */
  onProgress(event: ProgressEvent): void {
    let stage = this.stages.get(event.model);
    if (!stage) {
      if (event.finished) return;
      stage = { started: this.now() };
      this.stages.set(event.model, stage);
    }
    if (event.finished) {
      this.stages.delete(event.model);
      if (stage.bar) {
        stage.bar.update(event.rowsDone, payload(event));
        this.multibar?.remove(stage.bar);
      }
      if (![...this.stages.values()].some((s) => s.bar)) this.clearBars();
      return;
    }
    if (!stage.bar) {
      if (!this.stream.isTTY || !this.shouldShow(stage, event)) return;
      this.multibar ??= new cliProgress.MultiBar(
        {
          stream: this.stream,
          clearOnComplete: true,
          hideCursor: true,
          etaBuffer: 50,
          format: (options, params, data: Record<string, unknown>) => formatBar(options, params, data),
        },
        cliProgress.Presets.shades_classic,
      );
      stage.bar = this.multibar.create(event.rowsTotal ?? 0, event.rowsDone, payload(event));
      return;
    }
    if (event.rowsTotal !== undefined) stage.bar.setTotal(event.rowsTotal);
    stage.bar.update(event.rowsDone, payload(event));
  }

  /** Whether a stage's run is long enough for a bar. */
  private shouldShow(stage: Stage, event: ProgressEvent): boolean {
    const elapsed = this.now() - stage.started;
    if (elapsed >= this.slowMillis) return true;
    return elapsed >= this.minMillis && (event.rowsTotal === undefined || event.rowsTotal >= this.minRows);
  }

  /** Clears every bar and forgets the stages (call before printing, and after a statement). */
  stop(): void {
    this.clearBars();
    this.stages.clear();
  }

  /** Takes the bars off the screen; the stages keep their start times. */
  private clearBars(): void {
    for (const stage of this.stages.values()) stage.bar = undefined;
    const multibar = this.multibar;
    this.multibar = undefined;
    multibar?.stop();
  }

  /** Stops and stops listening to the session. */
  dispose(): void {
    this.stop();
    this.session.events.off('progress', this.listener);
  }
}

function payload(event: ProgressEvent): Record<string, unknown> {
  return { model: event.model, rate: event.rate, errors: event.errors, tokens: event.tokens, known: event.rowsTotal !== undefined };
}

/** `model [████░░░░] 42% | 4200/10000 rows | 1234 rows/s | 0 errors | 5120 tokens | ETA: 5s` (tokens only when reported) */
function formatBar(options: cliProgress.Options, params: cliProgress.Params, data: Record<string, unknown>): string {
  const model = String(data['model'] ?? '');
  const rate = Math.round(Number(data['rate'] ?? 0));
  const errors = Number(data['errors'] ?? 0);
  const tokens = Number(data['tokens'] ?? 0);
  const tail = `${rate} rows/s | ${errors} ${errors === 1 ? 'error' : 'errors'}${tokens > 0 ? ` | ${tokens} tokens` : ''}`;
  if (data['known'] !== true || params.total <= 0) return `${model} | ${params.value} rows | ${tail}`;
  const size = options.barsize ?? 30;
  const filled = Math.max(0, Math.min(size, Math.round(params.progress * size)));
  const bar = (options.barCompleteString ?? '').slice(0, filled) + (options.barIncompleteString ?? '').slice(0, size - filled);
  const pct = Math.floor(params.progress * 100);
  const eta = Number.isFinite(params.eta) && params.eta > 0 ? ` | ETA: ${params.eta}s` : '';
  return `${model} [${bar}] ${pct}% | ${params.value}/${params.total} rows | ${tail}${eta}`;
}
