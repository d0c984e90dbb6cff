/**
 * What a stream reads ahead when it gives way (core/session/row-spill.ts): every batch, in
 * order, up to its byte limit; past it the stream fails with 54000 after what it holds, and
 * its source is ended.
 */
import { RowSpill, approximateBytes } from '../../../core/session/row-spill.js';
import { expectSqlError } from '../../support/expect-error.js';

/** A source of `count` batches of `width` numbers that records whether it was ended. */
function source(count: number, width: number) {
  const state = { read: 0, ended: false };
  const iterator: AsyncIterator<number[]> = {
    async next() {
      if (state.ended || state.read === count) return { value: undefined, done: true };
      const value = Array.from({ length: width }, () => state.read);
      state.read++;
      return { value, done: false };
    },
    async return() {
      state.ended = true;
      return { value: undefined, done: true };
    },
  };
  return { iterator, state };
}

async function drain(spill: RowSpill<number[]>): Promise<number[][]> {
  const out: number[][] = [];
  for (;;) {
    const item = await spill.next();
    if (item.done) return out;
    out.push(item.value);
  }
}

describe('RowSpill', () => {
  const batchBytes = approximateBytes([1, 2, 3]);

  it('counts a batch of three numbers as 40 bytes', () => {
    expect(batchBytes).toBe(16 + 3 * 8);
    expect(approximateBytes(['ab', null, 5n, new Uint8Array(10), { k: true }, new Date(0)])).toBe(16 + (16 + 4) + 8 + 16 + (16 + 10) + (16 + 2 + 8) + 16);
  });

  it('reads every batch left at the limit exactly, and the stream goes on from memory in order', async () => {
    const { iterator, state } = source(10, 3);
    const spill = new RowSpill(iterator, 8 * batchBytes, (b) => approximateBytes(b));
    expect((await spill.next()).value).toEqual([0, 0, 0]);
    expect((await spill.next()).value).toEqual([1, 1, 1]);
    await spill.spill();
    expect(state.read).toBe(10);
    expect((await drain(spill)).map((b) => b[0])).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('one byte under: the batches it holds, then 54000, and the source is ended', async () => {
    const { iterator, state } = source(10, 3);
    const spill = new RowSpill(iterator, 8 * batchBytes - 1, (b) => approximateBytes(b));
    await spill.next();
    await spill.next();
    await spill.spill();
    expect(state.ended).toBe(true);
    const held: number[] = [];
    const failed = (async () => {
      for (;;) {
        const item = await spill.next();
        if (item.done) return;
        held.push(item.value[0]!);
      }
    })();
    await expectSqlError(failed, '54000');
    expect(held).toEqual([2, 3, 4, 5, 6, 7, 8]);
  });
});
