/**
 * A stream's batches, readable on from memory once the rest has been read ahead: what a
 * streaming statement does when another call comes to wait for the session (`spill`), so
 * that the call runs now and the stream loses nothing (model-session.ts).
 */
export class RowSpill<T> implements AsyncIterator<T> {
  private readonly buffered: T[] = [];
  private taken = 0;
  private ended = false;
  private failure: { readonly error: unknown } | undefined;
  /** The read in progress: reads of the source one after another. */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(private readonly source: AsyncIterator<T>) {}

  /** Reads every batch left into memory; resolves when the source is done (a failure is kept for `next`). */
  spill(): Promise<void> {
    const read = this.busy.then(async () => {
      try {
        while (!this.ended) {
          const item = await this.source.next();
          if (item.done) this.ended = true;
          else this.buffered.push(item.value);
        }
      } catch (error) {
        this.failure = { error };
        this.ended = true;
      }
    });
    this.busy = read;
    return read;
  }

  next(): Promise<IteratorResult<T>> {
    const read = this.busy.then(async (): Promise<IteratorResult<T>> => {
      if (this.taken < this.buffered.length) {
        const value = this.buffered[this.taken]!;
        this.buffered[this.taken++] = undefined as T;
        return { value, done: false };
      }
      if (this.failure) throw this.failure.error;
      if (this.ended) return { value: undefined, done: true };
      const item = await this.source.next();
      if (item.done) this.ended = true;
      return item;
    });
    this.busy = read.catch(() => undefined);
    return read;
  }

  /** Ends the source early (a loop that stopped reading). */
  async return(): Promise<IteratorResult<T>> {
    await this.busy;
    if (!this.ended) {
      this.ended = true;
      await this.source.return?.();
    }
    return { value: undefined, done: true };
  }
}
