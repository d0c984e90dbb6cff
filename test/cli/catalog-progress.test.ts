/**
 * The progress bar of catalog imports (cli/catalog/catalog-progress.ts): drawn on a
 * terminal once the work has run for a second, never on a pipe, cleared at the end.
 */
import { CatalogProgress } from '../../cli/catalog/catalog-progress.js';

/** A stream that records what is written; a terminal when `tty`. */
function fakeStream(tty: boolean): NodeJS.WriteStream & { text: string } {
  const stream = {
    text: '',
    isTTY: tty,
    columns: 120,
    write(chunk: string) {
      stream.text += chunk;
      return true;
    },
    cursorTo: () => true,
    clearLine: () => true,
    moveCursor: () => true,
    clearScreenDown: () => true,
    on: () => stream,
    removeListener: () => stream,
  };
  return stream as unknown as NodeJS.WriteStream & { text: string };
}

describe('catalog progress bar', () => {
  it('appears on a terminal after a second, counts models, and is cleared at the end', () => {
    let now = 0;
    const stream = fakeStream(true);
    const progress = new CatalogProgress('models', { stream, now: () => now });
    progress.update(100, 1000);
    expect(progress.active).toBe(false);
    now = 1500;
    progress.update(200, 1000);
    expect(progress.active).toBe(true);
    expect(stream.text).toMatch(/20% \| 200\/1000 models/);
    progress.update(1000, 1000);
    progress.stop();
    expect(progress.active).toBe(false);
  });

  it('never draws on a pipe', () => {
    let now = 0;
    const stream = fakeStream(false);
    const progress = new CatalogProgress('models', { stream, now: () => now });
    now = 5000;
    progress.update(10, 1000);
    expect(progress.active).toBe(false);
    expect(stream.text).toBe('');
  });
});
