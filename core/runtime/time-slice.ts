/**
 * Cooperative time slicing for long loops on the event-loop thread. A model stage parses
 * and formats millions of rows on the main thread; run as one stretch, that starves every
 * other socket of the process (in the proxy: every other client). Loops that can run long
 * check `due` every few hundred items and, when the slice is used up, `await` `next()`,
 * which lets the event loop poll for I/O before the loop goes on.
 *
 * `setImmediate` rather than a resolved promise: promise callbacks run before the event
 * loop polls for I/O, so only a macrotask lets other sockets' reads and writes in
 * (https://nodejs.org/en/learn/asynchronous-work/event-loop-timers-and-nexttick).
 */

/** Default length of a slice: short enough for a p99 of a few ms for other work, long enough that the extra event-loop turns cost under 1 %. */
export const DEFAULT_SLICE_MS = 4;

/**
 * A running time slice.
 *
 * @example
 * const slice = new TimeSlice();
 * for (let i = 0; i < rows.length; i++) {
 *   work(rows[i]);
 *   if ((i & 255) === 255 && slice.due) await slice.next();
 * }
 */
export class TimeSlice {
  private start = performance.now();

  constructor(private readonly budgetMs = DEFAULT_SLICE_MS) {}

  /** True once the slice has run for its budget (reads the clock: call it every few hundred items, not per item). */
  get due(): boolean {
    return performance.now() - this.start >= this.budgetMs;
  }

  /** Yields to the event loop (pending I/O runs first), then starts a new slice. */
  async next(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.start = performance.now();
  }
}
