/**
 * Rows in COPY binary format (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4):
 * a 19-byte header, then per row a 16-bit field count and, per field, a 32-bit length
 * (−1 for NULL) and the value in its type's binary send format, then a −1 trailer. Fields
 * read with `COPY ... TO STDOUT (FORMAT binary)` are written back, byte for byte, into a
 * column of the same type by `COPY ... FROM STDIN (FORMAT binary)`; only the features are
 * decoded, and only the predictions encoded.
 */
import { ModelSqlError } from '../../core/errors.js';
import type { ColumnData } from '../../core/model-types.js';

/** The header of binary COPY data: the signature, no flags, no header extension. */
export const BINARY_HEADER = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);

/** The trailer: a field count of −1. */
export const BINARY_TRAILER = Buffer.from([0xff, 0xff]);

const SIGNATURE_BYTES = 11;

/**
 * Reads a field's value as a number; `offset` is the first byte of the value, `length` its
 * bytes, `view` a DataView over the same bytes as `buf` (DataView reads are inlined by V8;
 * `Buffer#readDoubleBE` is not).
 */
export type BinaryNumberReader = (view: DataView, offset: number, length: number) => number;

/** Binary readers of the column types (`format_type` spelling) whose values a feature reads as numbers. */
export function binaryNumberReader(type: string): BinaryNumberReader | undefined {
  if (type === 'double precision') return readFloat8;
  if (type === 'real') return (view, offset) => view.getFloat32(offset);
  if (type === 'smallint') return (view, offset) => view.getInt16(offset);
  if (type === 'integer') return (view, offset) => view.getInt32(offset);
  if (type === 'bigint') return (view, offset) => Number(view.getBigInt64(offset));
  if (/^numeric(\(.*\))?$/.test(type)) return numericValue;
  return undefined;
}

/** The reader of `double precision` (a caller may test for it to read the value inline). */
export const readFloat8: BinaryNumberReader = (view, offset) => view.getFloat64(offset);

/**
 * A `numeric` in binary (ndigits, weight, sign, dscale, then base-10000 digits) as the
 * number `Number()` reads from its text: the digits are written out as a decimal and parsed,
 * so the value is rounded once, as from the text.
 */
function numericValue(view: DataView, offset: number): number {
  const ndigits = view.getInt16(offset);
  const weight = view.getInt16(offset + 2);
  const sign = view.getUint16(offset + 4);
  if (sign === 0xc000) return NaN;
  if (sign === 0xd000) return Infinity;
  if (sign === 0xf000) return -Infinity;
  if (ndigits === 0) return 0;
  let digits = '';
  for (let i = 0; i < ndigits; i++) digits += String(view.getInt16(offset + 8 + 2 * i)).padStart(4, '0');
  return Number(`${sign === 0x4000 ? '-' : ''}${digits}e${4 * (weight + 1 - ndigits)}`);
}

/** Bytes of an output value in binary, by the output column's type; undefined when the binary path does not write the type. */
export function binaryOutputBytes(type: string): number | undefined {
  return type === 'double precision' ? 8 : type === 'real' ? 4 : undefined;
}

/**
 * Writes an output value at `offset` (its length word, then the value) and returns the
 * offset after it: `double precision` or `real` (see {@link binaryOutputBytes}).
 */
export function writeBinaryOutput(buf: Buffer, offset: number, bytes: number, value: unknown): number {
  if (value === null || value === undefined) return buf.writeInt32BE(-1, offset);
  let number: number;
  if (typeof value === 'number') number = value;
  else if (typeof value === 'bigint' || typeof value === 'boolean') number = Number(value);
  else throw new ModelSqlError('22P02', `invalid input syntax for type ${bytes === 8 ? 'double precision' : 'real'}: "${String(value)}"`);
  offset = buf.writeInt32BE(bytes, offset);
  return bytes === 8 ? buf.writeDoubleBE(number, offset) : buf.writeFloatBE(number, offset);
}

/**
 * The length of the row (or the trailer) that starts in `rest` and goes on in `next`, or 0
 * when `rest` and `next` together do not hold its field lengths.
 */
function rowLength(rest: Buffer, next: Buffer): number {
  const total = rest.length + next.length;
  const byte = (p: number): number => (p < rest.length ? rest[p]! : next[p - rest.length]!);
  if (total < 2) return 0;
  const count = ((byte(0) << 8) | byte(1)) << 16 >> 16;
  if (count === -1) return 2;
  let at = 2;
  for (let f = 0; f < count; f++) {
    if (at + 4 > total) return 0;
    const bytes = (byte(at) << 24) | (byte(at + 1) << 16) | (byte(at + 2) << 8) | byte(at + 3);
    at += 4 + (bytes > 0 ? bytes : 0);
  }
  return at;
}

/**
 * Splits binary COPY TO output into rows as chunks arrive: a row cut by a chunk's end is
 * completed with the next chunk.
 *
 * @example
 * const reader = new BinaryCopyReader(fieldCount);
 * for await (const chunk of copyTo) for (let buf = reader.feed(chunk); buf; buf = reader.more()) {
 *   let pos = reader.start;
 *   for (let end; (end = reader.row(buf, pos)) > 0; pos = end) use(buf, pos, reader.fields);
 *   reader.keep(buf, pos) }
 * reader.finish();
 */
export class BinaryCopyReader {
  /** Offsets of the current row's fields (of each field's length word), set by {@link row}. */
  readonly fields: Int32Array;
  /** A DataView over the buffer `feed` last returned. */
  view: DataView = new DataView(new ArrayBuffer(0));
  /** Where rows start in the buffer `feed` returned (past the header in the first). */
  start = 0;
  private rest: Buffer | undefined;
  /** The chunk whose first row {@link feed} completed, and where its next row starts. */
  private pending: Buffer | undefined;
  private pendingStart = 0;
  private header = true;
  private ended = false;

  constructor(private readonly fieldCount: number) {
    this.fields = new Int32Array(fieldCount);
  }

  /**
   * The bytes to read next, rows from {@link start}: with nothing left of the previous chunk,
   * `chunk` itself; else that row completed, alone (the rest of `chunk` comes from
   * {@link more}), so that a chunk is never copied whole.
   */
  feed(chunk: Uint8Array): Buffer {
    const next = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const rest = this.rest;
    this.rest = undefined;
    if (rest && !this.header) {
      const length = rowLength(rest, next);
      if (length > 0 && length - rest.length < next.length) {
        this.pending = next;
        this.pendingStart = length - rest.length;
        return this.use(Buffer.concat([rest, next.subarray(0, length - rest.length)]), 0);
      }
    }
    const buf = rest ? Buffer.concat([rest, next]) : next;
    this.use(buf, 0);
    if (this.header) {
      if (buf.length < SIGNATURE_BYTES + 8 || buf.length < SIGNATURE_BYTES + 8 + buf.readInt32BE(SIGNATURE_BYTES + 4)) {
        this.start = buf.length;
        this.rest = buf;
        return buf;
      }
      if (!buf.subarray(0, SIGNATURE_BYTES).equals(BINARY_HEADER.subarray(0, SIGNATURE_BYTES))) throw new ModelSqlError('XX000', 'internal error: COPY TO output is not in binary format');
      this.start = SIGNATURE_BYTES + 8 + buf.readInt32BE(SIGNATURE_BYTES + 4);
      this.header = false;
    }
    return buf;
  }

  /** After {@link feed} returned a completed row and {@link keep}: the rest of the chunk, or undefined. */
  more(): Buffer | undefined {
    const next = this.pending;
    if (next === undefined) return undefined;
    this.pending = undefined;
    return this.use(next, this.pendingStart);
  }

  private use(buf: Buffer, start: number): Buffer {
    this.start = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    return buf;
  }

  /**
   * Scans the row at `pos`, filling {@link fields}; returns the offset after it, or 0 when
   * the row continues in the next chunk or the data has ended.
   */
  row(buf: Buffer, pos: number): number {
    const length = buf.length;
    if (this.ended || this.header || pos + 2 > length) return 0;
    const view = this.view;
    const count = view.getInt16(pos);
    if (count === -1) {
      this.ended = true;
      return 0;
    }
    if (count !== this.fieldCount) throw new ModelSqlError('XX000', `internal error: a COPY TO row has ${count} fields, not ${this.fieldCount}`);
    const fields = this.fields;
    let at = pos + 2;
    for (let f = 0; f < count; f++) {
      if (at + 4 > length) return 0;
      fields[f] = at;
      const bytes = view.getInt32(at);
      at += 4 + (bytes > 0 ? bytes : 0);
    }
    return at > length ? 0 : at;
  }

  /** Keeps the unread bytes from `pos` for the next chunk. */
  keep(buf: Buffer, pos: number): void {
    if (this.header) return;
    if (this.ended) {
      if (pos + 2 < buf.length) throw new ModelSqlError('XX000', 'internal error: COPY TO output goes on after its trailer');
      return;
    }
    this.rest = pos < buf.length ? buf.subarray(pos) : undefined;
  }

  /** Checks the data ended with its trailer, after whole rows. */
  finish(): void {
    if (!this.ended) throw new ModelSqlError('XX000', 'internal error: COPY TO output ended inside a row');
  }
}

/**
 * Rows of binary COPY data held in the buffers they were read into: row `i` is
 * `buffers[buffer[i]]` from `start[i]` to `end[i]`.
 */
export interface BinaryRowRefs {
  readonly buffers: readonly Buffer[];
  readonly buffer: Uint32Array;
  readonly start: Uint32Array;
  readonly end: Uint32Array;
}

/** One output value of row `i`: null, or what {@link writeBinaryOutput} writes. */
function outputValue(column: ColumnData, i: number): unknown {
  return column.kind === 'number' ? (column.nulls?.[i] ? null : column.values[i]) : column.values[i];
}

/**
 * Writes the outputs of rows `[from, to)` into the rows themselves and hands the bytes on,
 * in order, to `emit`: each row (its field count, every field, from `start` to `end`)
 * already ends with one placeholder field per output, a value of the output's type (`bytes`
 * long, as read with `CAST(0 AS <type>)`), which is overwritten with the prediction.
 * Consecutive rows of one buffer go out as one slice of it. A NULL output does not fit its
 * placeholder: that row is copied, with the length word -1 in place of the field.
 */
export function writeOutputsInPlace(rows: BinaryRowRefs, outputs: readonly ColumnData[], bytes: readonly number[], from: number, to: number, emit: (bytes: Buffer) => void): void {
  const { buffers, buffer: which, start, end } = rows;
  // Where each output's value starts, counted back from the row's end.
  const back: number[] = [];
  let tail = 0;
  for (let c = bytes.length - 1; c >= 0; c--) {
    back[c] = tail + bytes[c]!;
    tail += 4 + bytes[c]!;
  }
  let run: Buffer | undefined;
  let runStart = 0;
  let runEnd = 0;
  const flush = (): void => {
    if (run && runEnd > runStart) emit(run.subarray(runStart, runEnd));
    run = undefined;
  };
  let viewOf: Buffer | undefined;
  let view: DataView | undefined;
  for (let i = from; i < to; i++) {
    const buf = buffers[which[i]!]!;
    const rowEnd = end[i]!;
    if (buf !== viewOf) {
      viewOf = buf;
      view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    let hasNull = false;
    for (let c = 0; c < outputs.length; c++) {
      const column = outputs[c]!;
      if (column.kind === 'number') {
        if (column.nulls?.[i]) hasNull = true;
        else if (bytes[c] === 8) view!.setFloat64(rowEnd - back[c]!, column.values[i]!);
        else view!.setFloat32(rowEnd - back[c]!, column.values[i]!);
        continue;
      }
      const value = column.values[i];
      if (value === null || value === undefined) hasNull = true;
      // Through writeBinaryOutput for its checks; the length word it writes is the placeholder's own.
      else writeBinaryOutput(buf, rowEnd - back[c]! - 4, bytes[c]!, value);
    }
    if (hasNull) {
      flush();
      const copy = Buffer.allocUnsafe(rowEnd - start[i]!);
      let p = buf.copy(copy, 0, start[i], rowEnd - tail);
      for (let c = 0; c < outputs.length; c++) p = writeBinaryOutput(copy, p, bytes[c]!, outputValue(outputs[c]!, i));
      emit(copy.subarray(0, p));
      continue;
    }
    if (run === buf && runEnd === start[i]) runEnd = rowEnd;
    else {
      flush();
      run = buf;
      runStart = start[i]!;
      runEnd = rowEnd;
    }
  }
  flush();
}
