/**
 * The data of a `COPY ... FROM STDIN` that runs while its rows are still being made: the
 * binary stage (copy-stage.ts) opens the COPY FROM at its first batch of predictions and
 * pushes each batch's rows as they are ready, so the server stores rows while the model
 * runs on the next ones. At most `highWater` bytes wait for the server: past that,
 * `push` waits (and with it the stage), so memory does not grow with the input.
 */

/** Where a waiting side is woken. */
type Wake = (() => void) | undefined;

/**
 * A bounded queue of byte chunks between a producer (`push`, `end`, `fail`) and the COPY
 * FROM reading `chunks()`.
 *
 * @example
 * const feed = new CopyInFeed(8 * 1024 * 1024);
 * const copy = db.copyFrom(sql, feed.chunks());
 * await feed.push(rows); feed.end(); await copy;
 */
export class CopyInFeed {
  private queue: Uint8Array[] = [];
  private head = 0;
  private bytes = 0;
  private ended = false;
  private error: Error | undefined;
  /** The reader stopped (the COPY FROM ended early, with an error): pushes are dropped. */
  private gone = false;
  private wakeReader: Wake;
  private wakeWriter: Wake;

  constructor(private readonly highWater: number) {}

  /** Queues `chunk`; resolves once the queue is back under the high-water mark. */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.gone || this.ended) return;
    this.queue.push(chunk);
    this.bytes += chunk.byteLength;
    this.wake('reader');
    while (this.bytes > this.highWater && !this.gone) await new Promise<void>((resolve) => (this.wakeWriter = resolve));
  }

  /** No more chunks: `chunks()` ends after the queued ones. */
  end(): void {
    this.ended = true;
    this.wake('reader');
  }

  /** `chunks()` throws `error` (the COPY FROM is abandoned: a client sends CopyFail). */
  fail(error: Error): void {
    this.error ??= error;
    this.ended = true;
    this.wake('reader');
  }

  /** The queued chunks, in order, until `end` (or `fail`, which throws). */
  async *chunks(): AsyncIterable<Uint8Array> {
    try {
      for (;;) {
        if (this.error) throw this.error;
        if (this.head < this.queue.length) {
          const chunk = this.queue[this.head]!;
          this.queue[this.head++] = undefined as unknown as Uint8Array;
          if (this.head > 1024 && this.head * 2 > this.queue.length) {
            this.queue = this.queue.slice(this.head);
            this.head = 0;
          }
          this.bytes -= chunk.byteLength;
          if (this.bytes <= this.highWater) this.wake('writer');
          yield chunk;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
      }
    } finally {
      this.gone = true;
      this.queue = [];
      this.bytes = 0;
      this.wake('writer');
    }
  }

  private wake(side: 'reader' | 'writer'): void {
    const wake = side === 'reader' ? this.wakeReader : this.wakeWriter;
    if (side === 'reader') this.wakeReader = undefined;
    else this.wakeWriter = undefined;
    wake?.();
  }
}
