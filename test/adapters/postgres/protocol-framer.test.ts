/**
 * The proxy's framer with a CopyData sink (adapters/postgres/proxy/framer.ts): CopyData
 * payloads go to the sink in order, every other message comes back as a frame, whatever
 * the chunk boundaries. And the relay's fast-path test of whole messages, which must agree
 * with the framer on every prefix of a stream.
 */
import { jest } from '@jest/globals';
import { ChunkSummary } from '../../../adapters/postgres/proxy/chunk-summary.js';
import { Framer, type Frame } from '../../../adapters/postgres/proxy/framer.js';
import { MessageTooLong } from '../../../adapters/postgres/proxy/protocol-errors.js';

/** A backend message (https://www.postgresql.org/docs/current/protocol-message-formats.html). */
function message(type: string, body: string): Buffer {
  const payload = Buffer.from(body);
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(payload.length + 4, 1);
  return Buffer.concat([head, payload]);
}

const ROWS = ['1\ta\n', '', '22\tbb\n', 'ünï\t✓\n'];
const STREAM = Buffer.concat([message('H', '\0\0\0'), ...ROWS.map((r) => message('d', r)), message('c', ''), message('C', 'COPY 4\0'), message('Z', 'I')]);

describe('Framer with a CopyData sink', () => {
  it('hands CopyData payloads to the sink and returns the other messages, for every split of the stream', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const framer = new Framer();
      const copied: Buffer[] = [];
      const sink = (bytes: Buffer, start: number, end: number): void => void copied.push(Buffer.from(bytes.subarray(start, end)));
      const frames: Frame[] = [...framer.push(STREAM.subarray(0, cut), Infinity, sink), ...framer.push(STREAM.subarray(cut), Infinity, sink)];
      expect(Buffer.concat(copied).toString()).toBe(ROWS.join(''));
      expect(frames.map((f) => f.type)).toEqual(['H', 'c', 'C', 'Z']);
      expect(framer.pending).toBe(0);
    }
  });

  it('returns CopyData as frames without a sink', () => {
    const frames = new Framer().push(STREAM);
    expect(frames.filter((f) => f.type === 'd').map((f) => f.payload.toString())).toEqual(ROWS);
  });
});

describe('ChunkSummary (the relay fast path\'s one walk over a chunk)', () => {
  it('says whole exactly for the prefixes the framer completes without a rest, for every prefix of a stream', () => {
    const summary = new ChunkSummary();
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const prefix = STREAM.subarray(0, cut);
      const framer = new Framer();
      framer.push(prefix);
      expect(summary.scan(prefix)).toBe(framer.pending === 0);
    }
  });

  it('counts what the relay keeps account of, in the order it matters', () => {
    const summary = new ChunkSummary();
    expect(summary.scan(STREAM)).toBe(true);
    expect([summary.readyForQuery, String.fromCharCode(summary.status), summary.commands, summary.errors]).toEqual([1, 'I', 1, 0]);
    const afterReady = Buffer.concat([message('C', 'SELECT 1\0'), message('Z', 'T'), message('E', 'SERROR\0\0'), message('G', '\0\0\0'), message('S', 'a\0b\0')]);
    expect(summary.scan(afterReady)).toBe(true);
    expect(summary).toMatchObject({ readyForQuery: 1, commands: 1, errors: 1, errorAfterReady: true, copyInAfterReady: true, parameterStatus: 1 });
    expect(String.fromCharCode(summary.status)).toBe('T');
    expect(summary.scan(Buffer.concat([message('E', 'SERROR\0\0'), message('Z', 'E')]))).toBe(true);
    expect(summary).toMatchObject({ readyForQuery: 1, errors: 1, errorAfterReady: false, copyInAfterReady: false });
  });

  it('refuses a length the framer refuses, leaving the error to it', () => {
    const bad = Buffer.concat([message('Z', 'I'), Buffer.from([0x51, 0, 0, 0, 2])]);
    expect(new ChunkSummary().scan(bad)).toBe(false);
    expect(() => new Framer().push(bad)).toThrow(/invalid message length 2/);
    expect(new ChunkSummary().scan(message('Q', 'SELECT 1\0'), 8)).toBe(false);
  });
});

describe('Framer with large messages', () => {
  /** A Query message of `size` bytes in all. */
  const bigQuery = (size: number): Buffer => {
    const m = Buffer.alloc(size, 0x20);
    m.write('Q', 0);
    m.writeInt32BE(size - 1, 1);
    m[size - 1] = 0;
    return m;
  };

  it('joins a message split over many reads once, when it is complete', () => {
    const message = bigQuery(8 * 1024 * 1024);
    const framer = new Framer();
    const concat = jest.spyOn(Buffer, 'concat');
    try {
      let frames: Frame[] = [];
      for (let at = 0; at < message.length; at += 65536) frames = frames.concat(framer.push(Buffer.from(message.subarray(at, at + 65536))));
      expect(frames).toHaveLength(1);
      expect(frames[0]!.raw.equals(message)).toBe(true);
      expect(concat).toHaveBeenCalledTimes(1);
    } finally {
      concat.mockRestore();
    }
    expect(framer.pending).toBe(0);
  });

  it('reads a header split byte by byte', () => {
    const stream = Buffer.concat([message('Q', 'SELECT 1\0'), message('Q', 'SELECT 2\0')]);
    const framer = new Framer();
    const frames: Frame[] = [];
    for (let i = 0; i < stream.length; i++) frames.push(...framer.push(stream.subarray(i, i + 1)));
    expect(frames.map((f) => f.payload.toString())).toEqual(['SELECT 1\0', 'SELECT 2\0']);
  });

  it('refuses a message over the limit with 54000 as soon as its header arrives', () => {
    const framer = new Framer({ maxLength: 1024 });
    expect(framer.push(Buffer.from([0x51, 0, 0]))).toEqual([]);
    let error: unknown;
    try {
      framer.push(Buffer.from([0x10, 0, 0x53]));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MessageTooLong);
    expect((error as MessageTooLong).sqlstate).toBe('54000');
    expect(new Framer({ maxLength: 1024 }).push(bigQuery(1025)).length).toBe(1);
    expect(() => new Framer({ maxLength: 1023 }).push(bigQuery(1025))).toThrow(/too long: 1024 bytes/);
  });
});
