import { ModelSqlError } from '../errors.js';

/** Default of `SessionOptions.maxSpillBytes`: 256 MiB. */
export const DEFAULT_MAX_SPILL_BYTES = 256 * 1024 * 1024;

/**
 * A stream's batches, readable on from memory once the rest has been read ahead: what a
 * streaming statement does when another call comes to wait for the session (`spill`), so
 * that the call runs now and the stream loses nothing (model-session.ts).
 *
 * What it reads ahead is bounded: past `maxBytes` (as `size` counts a batch) it stops
 * reading, ends the source, and the stream fails with 54000 after the batches it holds,
 * rather than the process running out of memory.
 */
export class RowSpill<T> implements AsyncIterator<T> {
  private readonly buffered: T[] = [];
  private taken = 0;
  private ended = false;
  private failure: { readonly error: unknown } | undefined;
  /** The read in progress: reads of the source one after another. */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly source: AsyncIterator<T>,
    private readonly maxBytes: number,
    private readonly size: (batch: T) => number,
  ) {}

  /** Reads every batch left into memory, up to the limit; resolves when the source is done (a failure is kept for `next`). */
  spill(): Promise<void> {
    const read = this.busy.then(async () => {
      let bytes = 0;
      try {
        while (!this.ended) {
          const item = await this.source.next();
          if (item.done) {
            this.ended = true;
            break;
          }
          bytes += this.size(item.value);
          if (bytes > this.maxBytes) {
            this.ended = true;
            this.failure = { error: spillLimitError(this.maxBytes) };
            await this.source.return?.();
            break;
          }
          this.buffered.push(item.value);
        }
      } catch (error) {
        this.failure ??= { error };
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

function spillLimitError(maxBytes: number): ModelSqlError {
  return new ModelSqlError(
    '54000',
    `the stream's remaining rows exceed ${maxBytes} bytes (maxSpillBytes), the most a session reads into memory to run another statement while a stream is read: read the stream to its end first, or run the other statement on a second session`,
  );
}

/**
 * About the memory a batch's rows take, in bytes: 8 a number, boolean or null, the
 * length of a string twice, a byte array's length, plus 16 an array, object or bigint,
 * summed through arrays and objects. A bound's unit, not an exact count.
 */
export function approximateBytes(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return 16 + 2 * value.length;
    case 'bigint':
      return 16;
    case 'object': {
      if (value === null) return 8;
      if (ArrayBuffer.isView(value)) return 16 + value.byteLength;
      if (value instanceof Date) return 16;
      let bytes = 16;
      if (Array.isArray(value)) for (const item of value) bytes += approximateBytes(item);
      else for (const [key, item] of Object.entries(value)) bytes += 2 * key.length + approximateBytes(item);
      return bytes;
    }
    default:
      return 8;
  }
}
