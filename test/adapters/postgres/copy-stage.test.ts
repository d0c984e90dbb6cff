/**
 * The one-pass COPY stage (adapters/postgres/copy-stage.ts) on a connection that hands the
 * whole COPY TO output over at once, as a proxy's upstream socket can: parsing and
 * formatting must still give the event loop turns (in the proxy, other clients are served
 * in between), and the rows must come out unchanged.
 */
import { openCopyStage, type CopyStageConnection } from '../../../adapters/postgres/copy-stage.js';
import { PostgresDialect } from '../../../adapters/postgres/postgres-dialect.js';
import type { ColumnBatch } from '../../../core/model-types.js';

const ROWS = 400_000;

/** Input rows `id \t a \t b`, all in one chunk. */
const input = Buffer.from(Array.from({ length: ROWS }, (_, i) => `${i}\t${i * 0.5}\t${i % 7}\n`).join(''));

/** A connection whose COPY TO yields `input` (text COPY) as one chunk and whose COPY FROM collects the data. */
function fakeConnection(): CopyStageConnection & { received: Buffer[] } {
  const received: Buffer[] = [];
  return {
    received,
    query: async () => ({ fields: [], rows: [], command: 'CREATE' }),
    async *copyTo() {
      yield input;
    },
    async copyFrom(_sql, data) {
      for await (const chunk of data as AsyncIterable<Uint8Array>) received.push(Buffer.from(chunk));
    },
  };
}

/** Counts event-loop turns (setImmediate callbacks) until stopped. */
function turnCounter(): { readonly turns: () => number; stop(): void } {
  let turns = 0;
  let running = true;
  const spin = (): void => {
    if (!running) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  return { turns: () => turns, stop: () => void (running = false) };
}

describe('the COPY stage gives the event loop turns', () => {
  it('while parsing one large COPY TO chunk and while formatting the COPY FROM data, with the rows unchanged', async () => {
    const db = fakeConnection();
    const stage = await openCopyStage(db, new PostgresDialect(), {
      query: 'SELECT id, a, b FROM t',
      inputColumns: [
        { name: 'id', type: 'integer' },
        { name: 'a', type: 'double precision' },
        { name: 'b', type: 'double precision' },
      ],
      featureColumns: [1, 2],
      kinds: ['number', 'number'],
      outputColumns: [{ name: 'y', type: 'double precision' }],
      table: 'stage_t',
      batchSize: ROWS,
    }, { format: 'text' });
    try {
      let counter = turnCounter();
      const batches = [];
      for await (const batch of stage.batches()) batches.push(batch);
      const parseTurns = counter.turns();
      counter.stop();
      expect(batches).toHaveLength(1);
      const features = batches[0]!.features;
      expect(features.rowCount).toBe(ROWS);
      const [a, b] = features.columns.map((c) => c.values as Float64Array);
      expect([a![ROWS - 1], b![ROWS - 1]]).toEqual([(ROWS - 1) * 0.5, (ROWS - 1) % 7]);
      // Without slicing, the single chunk is parsed in one go: no turn at all in between.
      expect(parseTurns).toBeGreaterThan(1);

      const y = new Float64Array(ROWS).map((_, i) => i);
      const predictions: ColumnBatch = { rowCount: ROWS, columns: [{ kind: 'number', values: y }] };
      await stage.write(batches[0]!.carry, predictions);
      counter = turnCounter();
      await stage.finish();
      const formatTurns = counter.turns();
      counter.stop();
      expect(formatTurns).toBeGreaterThan(1);
      const lines = Buffer.concat(db.received).toString().split('\n');
      expect(lines).toHaveLength(ROWS + 1);
      expect(lines[0]).toBe('0\t0\t0\t0');
      expect(lines[ROWS - 1]).toBe(`${ROWS - 1}\t${(ROWS - 1) * 0.5}\t${(ROWS - 1) % 7}\t${ROWS - 1}`);
    } finally {
      await stage.close();
    }
  });
});
