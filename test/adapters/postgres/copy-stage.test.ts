/**
 * The one-pass COPY stage (adapters/postgres/copy-stage.ts) on a connection that hands the
 * whole COPY TO output over at once, as a proxy's upstream socket can: parsing and
 * formatting must still give the event loop turns (in the proxy, other clients are served
 * in between), and the rows must come out unchanged.
 */
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { BINARY_HEADER } from '../../../adapters/postgres/copy-binary.js';
import { openCopyStage, type CopyStageConnection } from '../../../adapters/postgres/copy-stage.js';
import { PostgresDialect } from '../../../adapters/postgres/postgres-dialect.js';
import type { ColumnBatch } from '../../../core/model-types.js';

const ROWS = 400_000;

/** Input rows `id \t a \t b`, all in one chunk. */
const input = Buffer.from(Array.from({ length: ROWS }, (_, i) => `${i}\t${i * 0.5}\t${i % 7}\n`).join(''));

/** The stage of both suites: `(id, a, b)` in, features `a` and `b`, output `y`. */
const SPEC = {
  query: 'SELECT id, a, b FROM t',
  inputColumns: [
    { name: 'id', type: 'integer' },
    { name: 'a', type: 'double precision' },
    { name: 'b', type: 'double precision' },
  ],
  featureColumns: [1, 2],
  kinds: ['number', 'number'] as const,
  outputColumns: [{ name: 'y', type: 'double precision' }],
  table: 'stage_t',
};

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
    const stage = await openCopyStage(db, new PostgresDialect(), { ...SPEC, batchSize: ROWS }, { format: 'text' });
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

/** Binary COPY rows of `(id integer, a double precision, b double precision, <placeholder double precision>)`. */
function binaryInput(rows: number): Buffer {
  const row = 2 + (4 + 4) + 3 * (4 + 8);
  const buf = Buffer.alloc(BINARY_HEADER.length + rows * row + 2);
  let p = BINARY_HEADER.copy(buf, 0);
  for (let i = 0; i < rows; i++) {
    p = buf.writeInt16BE(4, p);
    p = buf.writeInt32BE(i, buf.writeInt32BE(4, p));
    p = buf.writeDoubleBE(i * 0.5, buf.writeInt32BE(8, p));
    p = buf.writeDoubleBE(i % 7, buf.writeInt32BE(8, p));
    p = buf.writeDoubleBE(0, buf.writeInt32BE(8, p));
  }
  buf.writeInt16BE(-1, p);
  return buf;
}

/** Reads binary COPY rows of int4 and float8 fields back (NULL as null). */
function readBinaryRows(data: Buffer): (number | null)[][] {
  expect(data.subarray(0, BINARY_HEADER.length).equals(BINARY_HEADER)).toBe(true);
  const rows: (number | null)[][] = [];
  let p = BINARY_HEADER.length;
  for (let count = data.readInt16BE(p); count !== -1; count = data.readInt16BE(p)) {
    p += 2;
    const row: (number | null)[] = [];
    for (let f = 0; f < count; f++) {
      const length = data.readInt32BE(p);
      p += 4;
      row.push(length < 0 ? null : length === 4 ? data.readInt32BE(p) : data.readDoubleBE(p));
      p += Math.max(0, length);
    }
    rows.push(row);
  }
  expect(p + 2).toBe(data.length);
  return rows;
}

describe('the binary COPY stage', () => {
  const spec = { ...SPEC, batchSize: 1000 };

  /** A connection speaking binary COPY: its COPY TO yields `input` in chunks of 777 bytes; it logs what happens when. */
  function binaryConnection(input: Buffer): CopyStageConnection & { received: Buffer[]; events: string[]; sql: string[] } {
    const received: Buffer[] = [];
    const events: string[] = [];
    const sql: string[] = [];
    return {
      received,
      events,
      sql,
      query: async (text) => {
        sql.push(text);
        return { fields: [], rows: text.includes('bool_and') ? [[true]] : [], command: 'SELECT' };
      },
      async *copyTo(text) {
        sql.push(text);
        for (let p = 0; p < input.length; p += 777) yield input.subarray(p, p + 777);
        events.push('copy to ended');
      },
      async copyFrom(text, data) {
        sql.push(text);
        events.push('copy from started');
        let bytes = 0;
        for await (const chunk of data as AsyncIterable<Uint8Array>) {
          if (bytes <= BINARY_HEADER.length && (bytes += chunk.byteLength) > BINARY_HEADER.length) events.push('first rows received');
          received.push(Buffer.from(chunk));
        }
      },
    };
  }

  it('reads the whole COPY TO first, opens the COPY FROM, then writes each batch while the next is read, predictions in place of the placeholders; a NULL output rewrites its row', async () => {
    const ROWS_IN = 2500;
    const db = binaryConnection(binaryInput(ROWS_IN));
    const stage = await openCopyStage(db, new PostgresDialect(), spec);
    try {
      let yielded = 0;
      for await (const batch of stage.batches()) {
        db.events.push(`batch ${yielded++}`);
        const { rowCount, columns } = batch.features;
        const [a, b] = columns.map((c) => c.values as Float64Array);
        const y = new Float64Array(rowCount).map((_, i) => a![i]! + b![i]!);
        const nulls = new Uint8Array(rowCount).map((_, i) => (i === 5 ? 1 : 0));
        await stage.write(batch.carry, { rowCount, columns: [{ kind: 'number', values: y, nulls }] });
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(await stage.finish()).toContain('stage_t');
      expect(db.sql.find((s) => s.startsWith('COPY ('))).toMatch(/^COPY \(SELECT __modelsql_input.\*, CAST\(0 AS double precision\) AS "__modelsql_output_0" FROM .* TO STDOUT \(FORMAT binary\)$/s);
      expect(db.sql.find((s) => s.includes('FROM STDIN'))).toBe('COPY pg_temp."stage_t" ("id", "a", "b", "y") FROM STDIN (FORMAT binary)');
      // The COPY FROM opens as soon as the COPY TO has ended, before the first batch.
      expect(db.events.slice(0, 4)).toEqual(['copy to ended', 'copy from started', 'batch 0', 'first rows received']);
      expect(db.events.indexOf('first rows received')).toBeLessThan(db.events.indexOf('batch 2'));
      const rows = readBinaryRows(Buffer.concat(db.received));
      expect(rows).toHaveLength(ROWS_IN);
      rows.forEach((row, i) => expect(row).toEqual([i, i * 0.5, i % 7, i % 1000 === 5 ? null : i * 0.5 + (i % 7)]));
    } finally {
      await stage.close();
    }
  });

  it('past the memory limit keeps the COPY TO in a file, with no name on disk, with the same rows', async () => {
    const ROWS_IN = 5000;
    const db = binaryConnection(binaryInput(ROWS_IN));
    const before = readdirSync(tmpdir()).filter((f) => f.startsWith('modelsql-stage-'));
    const stage = await openCopyStage(db, new PostgresDialect(), spec, { memoryLimit: 10_000 });
    try {
      for await (const batch of stage.batches()) {
        // The spool's file is unlinked as soon as it is made (copy-spool.test.ts).
        expect(readdirSync(tmpdir()).filter((f) => f.startsWith('modelsql-stage-'))).toEqual(before);
        const [a] = batch.features.columns.map((c) => c.values as Float64Array);
        await stage.write(batch.carry, { rowCount: batch.features.rowCount, columns: [{ kind: 'number', values: a!.map((v) => -v) }] });
      }
      await stage.finish();
      const rows = readBinaryRows(Buffer.concat(db.received));
      expect(rows.map((r) => r[3])).toEqual(Array.from({ length: ROWS_IN }, (_, i) => -i * 0.5));
    } finally {
      await stage.close();
    }
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('modelsql-stage-'))).toEqual(before);
  });

  it('past the memory limit keeps a text stage\'s output rows in a file with no name on disk, with the same rows', async () => {
    const db = fakeConnection();
    const stageDirs = () => readdirSync(tmpdir()).filter((f) => f.startsWith('modelsql-stage-'));
    const before = stageDirs();
    const stage = await openCopyStage(db, new PostgresDialect(), { ...SPEC, batchSize: 50_000 }, { format: 'text', memoryLimit: 10_000 });
    try {
      for await (const batch of stage.batches()) {
        const [a] = batch.features.columns.map((c) => c.values as Float64Array);
        await stage.write(batch.carry, { rowCount: batch.features.rowCount, columns: [{ kind: 'number', values: a!.map((v) => -v) }] });
        // The rows (the input's fields among them) are in a file no other process finds by
        // name, and a crash of this one leaves nothing on disk.
        expect(stageDirs()).toEqual(before);
      }
      await stage.finish();
      const lines = Buffer.concat(db.received).toString('utf8').split('\n').filter((l) => l !== '');
      expect(lines).toHaveLength(ROWS);
      expect(lines[ROWS - 1]).toBe(`${ROWS - 1}\t${(ROWS - 1) * 0.5}\t${(ROWS - 1) % 7}\t${-(ROWS - 1) * 0.5}`);
    } finally {
      await stage.close();
    }
    expect(stageDirs()).toEqual(before);
  });

  it('closed before its last batch: the COPY FROM is abandoned (its data fails), not ended', async () => {
    const db = binaryConnection(binaryInput(2500));
    const stage = await openCopyStage(db, new PostgresDialect(), spec);
    let copyError: unknown;
    const copyFrom = db.copyFrom.bind(db);
    db.copyFrom = (text, data) => copyFrom(text, data).catch((error: unknown) => void (copyError = error));
    for await (const batch of stage.batches()) {
      const [a] = batch.features.columns.map((c) => c.values as Float64Array);
      await stage.write(batch.carry, { rowCount: batch.features.rowCount, columns: [{ kind: 'number', values: a! }] });
      break;
    }
    await stage.close();
    expect(copyError).toMatchObject({ sqlstate: '57014' });
  });
});
