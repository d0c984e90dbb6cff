/**
 * The progress bar of `modelsql catalog import | migrate`: models (or statements) written
 * of the total, drawn with cli-progress on stderr, only when stderr is a terminal and only
 * once the work has run for a second (small catalogs finish before that and never show
 * one). Cleared when the work ends.
 */
import cliProgress from 'cli-progress';

/** Options of {@link CatalogProgress}; every field optional. */
export interface CatalogProgressOptions {
  /** Default `process.stderr`; nothing is drawn unless it is a TTY. */
  readonly stream?: NodeJS.WriteStream;
  /** No bar before this long; default 1,000 ms. */
  readonly minMillis?: number;
  /** The clock, for tests; default `Date.now`. */
  readonly now?: () => number;
}

/**
 * A progress bar fed with `update(done, total)`.
 *
 * @example
 * const progress = new CatalogProgress('models');
 * try { await importSnapshot(host, snapshot, { onProgress: progress.update }) } finally { progress.stop() }
 */
export class CatalogProgress {
  private readonly stream: NodeJS.WriteStream;
  private readonly minMillis: number;
  private readonly now: () => number;
  private readonly started: number;
  private bar?: cliProgress.SingleBar;

  constructor(
    private readonly unit: string,
    options: CatalogProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.minMillis = options.minMillis ?? 1_000;
    this.now = options.now ?? Date.now;
    this.started = this.now();
  }

  /** True while a bar is on screen. */
  get active(): boolean {
    return this.bar !== undefined;
  }

  /** Reports `done` of `total`. */
  readonly update = (done: number, total: number): void => {
    if (!this.bar) {
      if (!this.stream.isTTY || this.now() - this.started < this.minMillis || done >= total) return;
      this.bar = new cliProgress.SingleBar(
        { stream: this.stream, clearOnComplete: true, hideCursor: true, format: `{bar} {percentage}% | {value}/{total} ${this.unit} | ETA: {eta}s` },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, done);
      return;
    }
    this.bar.setTotal(total);
    this.bar.update(done);
  };

  /** Takes the bar off the screen. */
  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
