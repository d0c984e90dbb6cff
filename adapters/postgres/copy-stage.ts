/**
 * Postgres's one-pass model stage (`Host.openStage`): the input query is read once with
 * `COPY (SELECT q.*, <features> FROM (<query>) q) TO STDOUT`, and each row's input fields
 * travel, as the raw COPY text, next to the model's features; the executor hands them back
 * with the predictions, and `input fields + output fields` lines go into one temporary
 * table with one `COPY ... FROM STDIN`. The result is a plain scan of that table: no
 * ordinal, no cursor, no join, no sort, no `count(*)`.
 *
 * - Text format (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2):
 *   COPY TO writes each value the way COPY FROM reads it back in the same session, so the
 *   input fields are never parsed; only the features are. A numeric feature on a column of
 *   type double precision, an integer type or numeric is read from the input field itself
 *   (its text is what `CAST(... AS double precision)` would parse); any other feature is
 *   an extra field after the input fields (cast to `double precision` for numeric
 *   features, else parsed by its type, as `pg` would).
 * - Binary format (copy-binary.ts), where {@link openCopyStage} can use it: the same, with
 *   each row's input fields carried as their binary COPY bytes, which COPY FROM reads back
 *   into columns of the same types; features decoded from their fields (or a `double
 *   precision` cast), predictions encoded. Faster than text: no number is formatted or
 *   parsed as text on either side.
 * - A COPY TO cannot be interleaved with other statements on one connection. In binary, the
 *   COPY TO is therefore taken whole first, unparsed, into a spool (memory up to about
 *   `memoryLimit` bytes, then a file under `os.tmpdir()`: copy-spool.ts); then its rows are
 *   parsed into batches, and the COPY FROM opens with the first batch of predictions and
 *   takes each batch as it comes (copy-in-feed.ts), so the server stores rows while Node
 *   parses and the model predicts the next ones. When every feature is a carried field, each
 *   COPY TO row ends with a placeholder per output (`CAST(0 AS <type>)`) that the prediction
 *   overwrites: the bytes read go back as they are, with no row copied.
 * - In text, the batches (carried fields and predictions) are kept, in memory up to about
 *   `memoryLimit` bytes, and copied in after the COPY TO has ended. In memory they stay
 *   unformatted: the output lines are built while COPY FROM streams, when Node would
 *   otherwise wait for the server (measured: 1,000,000 rows, ~150 ms moved off the COPY TO
 *   phase). Past the limit, every batch is formatted and written to a file instead.
 * - The table is created empty with `CREATE TEMPORARY TABLE ... AS ... WITH NO DATA`, so
 *   input columns keep their exact types (typmods, domains, enums) and nothing runs.
 * - Order: the COPY TO emits rows in the query's order (a projection over the query as a
 *   subquery keeps its ORDER BY, as `row_number() OVER ()` did); one COPY FROM into a
 *   fresh table appends them to new pages in that order; a sequential scan of a temporary
 *   table returns its pages in order from block 0 (temporary tables use local buffers, so
 *   neither synchronized scans nor parallel scans apply:
 *   https://www.postgresql.org/docs/current/parallel-safety.html). The relation is
 *   therefore `(SELECT <columns> FROM pg_temp.<table>)`, read in insertion order.
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { ModelSqlError } from '../../core/errors.js';
import type { HostColumn, HostStage, HostStageBatch, HostStageSpec, SqlDialect } from '../../core/host.js';
import { TimeSlice } from '../../core/runtime/time-slice.js';
import { BINARY_HEADER, BINARY_TRAILER, BinaryCopyReader, binaryNumberReader, binaryOutputBytes, writeBinaryOutput, writeOutputsInPlace, readFloat8, type BinaryNumberReader } from './copy-binary.js';
import { CopyInFeed } from './copy-in-feed.js';
import { CopySpool } from './copy-spool.js';
import { copyField, copyNumber, isIntegerType, unescapeCopy } from './copy-text.js';
import type { PgQueryResult } from './pg-connection.js';
import { textParser, type TextParser } from './pg-values.js';
import { planTargetWrite } from './stage-target.js';
import type { ColumnBatch, ColumnData } from '../../core/model-types.js';

/** Output bytes kept in memory before the rest goes to a temporary file (64 MiB). */
export const DEFAULT_STAGE_MEMORY_BYTES = 64 * 1024 * 1024;

/** Column types whose COPY text `Number()` reads as `CAST(... AS double precision)` would. */
const NUMBER_TEXT_TYPE = /^(double precision|smallint|integer|bigint|numeric(\(.*\))?)$/;

/** The COPY format a stage uses: `binary` where it can (see {@link openCopyStage}), or always `text`. */
export type CopyFormat = 'binary' | 'text';

/** How a stage is run (see {@link openCopyStage}). */
export interface CopyStageOptions {
  /** Output bytes kept in memory before the rest goes to a temporary file (default {@link DEFAULT_STAGE_MEMORY_BYTES}). */
  readonly memoryLimit?: number;
  /** `binary` (default) where the stage can use it, or always `text`. */
  readonly format?: CopyFormat;
  /**
   * Column types (`format_type` spelling, as the input columns have them) known to have
   * binary send and receive functions; a column of a domain is described by its base type,
   * whose functions the domain's COPY uses. With every input column of one of them, the
   * stage does not ask the catalog.
   */
  readonly binaryIoTypes?: ReadonlySet<string>;
}

/** What the stage needs from the host: statements, and the two COPY directions. */
export interface CopyStageConnection {
  query(sql: string): Promise<PgQueryResult>;
  copyTo(sql: string): AsyncIterable<Uint8Array>;
  copyFrom(sql: string, data: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void>;
}

/**
 * Creates the stage's (empty) table and returns the stage; the COPY TO starts when
 * `batches()` is iterated.
 *
 * With `format` `binary` (the default), both COPYs are binary when every feature is read
 * as a number, every output is `double precision` or `real`, and every input column's type
 * has binary I/O (`typsend`, `typreceive`): the input fields are carried as their bytes,
 * the features decoded from them (or from a `double precision` cast), the predictions
 * encoded; else, and with `text`, both are text. Whether the input columns' types have
 * binary I/O is asked of the catalog (one query) unless every one is in `binaryIoTypes`.
 *
 * @example
 * const stage = await openCopyStage(db, dialect, spec);
 * try { ...executor... ; relation = await stage.finish() } finally { await stage.close() }
 */
export async function openCopyStage(db: CopyStageConnection, dialect: SqlDialect, spec: HostStageSpec, options: CopyStageOptions = {}): Promise<HostStage> {
  const { memoryLimit = DEFAULT_STAGE_MEMORY_BYTES, format = 'binary', binaryIoTypes } = options;
  const q = (name: string) => dialect.quoteIdentifier(name);
  const table = `pg_temp.${q(spec.table)}`;
  const outputs = spec.outputColumns.map((c) => `CAST(NULL AS ${c.type}) AS ${q(c.name)}`);
  await db.query(`CREATE TEMPORARY TABLE ${q(spec.table)} AS SELECT __modelsql_input.*, ${outputs.join(', ')} FROM ${stageSource(spec)} WITH NO DATA`);
  const columns = [...spec.inputColumns, ...spec.outputColumns].map((c) => q(c.name));
  const relation = `(SELECT ${columns.join(', ')} FROM ${table})`;
  const binary = format === 'binary' && binaryOutputs(spec) && (spec.inputColumns.every((c) => binaryIoTypes?.has(c.type)) || (await binaryIo(db, dialect, table)));

  // What the rows carry and write: every input column, then every output, into `table`;
  // a write into the statement's table (`into`) picks and orders them.
  let written: readonly number[] = [...spec.outputColumns.keys()];
  let read = await planRead(db, dialect, spec, [...spec.inputColumns.keys()], written, binary);
  let destination = `${table} (${columns.join(', ')})`;
  const binaryIn = binary ? new BinaryCopyIn(db, spec.outputColumns, memoryLimit) : undefined;
  const buffer = new OutputBuffer(memoryLimit, (carry, predictions, from, to) => Buffer.from(copyLines(carry, predictions, written, spec.outputColumns, read.layout.width > 0, from, to), 'utf8'));
  const copyIn = async (): Promise<number> => {
    if (binaryIn) return binaryIn.finish();
    if (buffer.rows > 0) await db.copyFrom(`COPY ${destination} FROM STDIN`, buffer.read());
    await buffer.close();
    return buffer.rows;
  };

  return {
    async *batches(): AsyncIterable<HostStageBatch> {
      if (binaryIn) {
        yield* binaryIn.batches(read, spec.batchSize, `COPY ${destination} FROM STDIN (FORMAT binary)`, written);
        return;
      }
      const { copyOut, layout } = read;
      const decoder = new StringDecoder('utf8');
      let batch = new BatchBuilder(layout, spec.batchSize);
      let rest = '';
      const slice = new TimeSlice();
      for await (const chunk of db.copyTo(copyOut)) {
        const text = rest + decoder.write(chunk as Buffer);
        let start = 0;
        // `rest` holds no newline: search after it (a row longer than a chunk is scanned once).
        for (let end = text.indexOf('\n', rest.length); end >= 0; end = text.indexOf('\n', start)) {
          batch.add(text, start, end);
          start = end + 1;
          if (batch.full) {
            yield batch.take();
            batch = new BatchBuilder(layout, spec.batchSize);
          }
          if ((batch.rows & 255) === 0 && slice.due) await slice.next();
        }
        rest = text.slice(start);
      }
      if (rest + decoder.end() !== '') throw new ModelSqlError('XX000', 'internal error: COPY TO output ended inside a row');
      if (batch.rows > 0) yield batch.take();
    },

    write: (carry, predictions) => (binaryIn ? binaryIn.write(carry as Carry, predictions) : buffer.push(carry as Carry, predictions)),

    async finish() {
      await copyIn();
      return relation;
    },

    close: async () => {
      await binaryIn?.close();
      await buffer.close();
    },

    async into(target) {
      const plan = await planTargetWrite(db, dialect, spec, { table, relation }, target);
      if (!plan) return undefined;
      written = plan.outputs;
      read = await planRead(db, dialect, spec, plan.inputs, written, binary);
      return {
        open: async () => {
          const into = await plan.open();
          if (into !== undefined) destination = into;
          return into !== undefined;
        },
        finish: copyIn,
      };
    },
  };
}

/** Whether every output is of a type the binary path writes (and every feature is read as a number). */
function binaryOutputs(spec: HostStageSpec): boolean {
  return spec.kinds.every((kind) => kind === 'number') && spec.outputColumns.every((c) => binaryOutputBytes(c.type) !== undefined);
}

/** Whether every column of the stage's table has a type with binary send and receive functions. */
async function binaryIo(db: CopyStageConnection, dialect: SqlDialect, table: string): Promise<boolean> {
  const result = await db.query(
    `SELECT pg_catalog.bool_and(t.typsend OPERATOR(pg_catalog.<>) CAST(0 AS pg_catalog.regproc) AND t.typreceive OPERATOR(pg_catalog.<>) CAST(0 AS pg_catalog.regproc)) ` +
      `FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid ` +
      `WHERE a.attrelid OPERATOR(pg_catalog.=) CAST(${dialect.quoteString(table)} AS pg_catalog.regclass) AND a.attnum OPERATOR(pg_catalog.>) CAST(0 AS smallint) AND NOT a.attisdropped`,
  );
  return (result.rows[0] as unknown[] | undefined)?.[0] === true;
}

/**
 * Binary COPY data: the header, `rows`, the trailer; the header joined to the first piece and
 * the trailer to the last, so that a small stage's data goes in one CopyData message (each
 * piece is a message and a socket write of its own).
 */
async function* framed(rows: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let held: Uint8Array = BINARY_HEADER;
  let first = true;
  for await (const piece of rows) {
    if (first) held = Buffer.concat([held, piece]);
    else {
      yield held;
      held = piece;
    }
    first = false;
  }
  yield Buffer.concat([held, BINARY_TRAILER]);
}

/** Bytes of rows waiting for the binary stage's COPY FROM before the stage waits for the server. */
const FEED_BYTES = 8 * 1024 * 1024;

/**
 * The binary stage's reads and writes. The COPY TO goes whole into a spool (memory up to the
 * stage's limit, then a file) with no row parsed; then its rows are parsed into batches, and
 * the COPY FROM opens with the first batch's predictions and takes each batch as it comes,
 * so the server stores rows while Node parses and the model predicts the next ones. Where
 * the COPY TO rows end with a placeholder per output (see {@link planRead}), the predictions
 * are written into the rows read and the same bytes go back; else each row is rebuilt from
 * its carried fields and its outputs.
 */
class BinaryCopyIn {
  private readonly feed = new CopyInFeed(FEED_BYTES);
  private spool: CopySpool | undefined;
  private copy: Promise<void> | undefined;
  /** The COPY FROM has ended (with an error, or after `finish`). */
  private settled = false;
  private failed = false;
  private rows = 0;
  private sql = '';
  private written: readonly number[] = [];
  private layout: RowLayout | undefined;

  constructor(
    private readonly db: CopyStageConnection,
    private readonly outputColumns: readonly HostColumn[],
    private readonly memoryLimit: number,
  ) {}

  /** Reads the COPY TO `read` into the spool, then yields its batches; `sql` is the COPY FROM the outputs `written` go to. */
  async *batches(read: ReadPlan, batchSize: number, sql: string, written: readonly number[]): AsyncIterable<HostStageBatch> {
    const { copyOut, layout } = read;
    this.sql = sql;
    this.written = written;
    this.layout = layout;
    const spool = (this.spool = new CopySpool(this.memoryLimit));
    for await (const chunk of this.db.copyTo(copyOut)) await spool.push(chunk);
    // A row came: the COPY FROM opens now, its round trip overlapping the first batch's parse and prediction.
    if (spool.bytes > BINARY_HEADER.length + BINARY_TRAILER.length) this.copy ??= this.open();
    const reader = new BinaryCopyReader(layout.total);
    let batch = new BatchBuilder(layout, batchSize);
    const slice = new TimeSlice();
    for await (const chunk of spool.read()) {
      for (let buf: Buffer | undefined = reader.feed(chunk); buf !== undefined; buf = reader.more()) {
        let pos = reader.start;
        for (let end = reader.row(buf, pos); end > 0; end = reader.row(buf, pos)) {
          batch.addBinary(buf, reader.view, pos, end, reader.fields);
          pos = end;
          if (batch.full) {
            // A failed COPY FROM ends the stage: finish() reports its error.
            if (this.failed) return;
            yield batch.take();
            batch = new BatchBuilder(layout, batchSize);
          }
          if ((batch.rows & 255) === 0 && slice.due) await slice.next();
        }
        reader.keep(buf, pos);
      }
    }
    reader.finish();
    if (batch.rows > 0 && !this.failed) yield batch.take();
  }

  /** Sends one batch's rows to the COPY FROM (opened by the first), {@link FORMAT_ROWS} rows at a time. */
  async write(carry: Carry, predictions: ColumnBatch): Promise<void> {
    if (carry.rows !== predictions.rowCount) throw new ModelSqlError('XX000', `internal error: a batch of ${carry.rows} rows got ${predictions.rowCount} predictions`);
    const { layout, written, outputColumns } = this;
    this.copy ??= this.open();
    this.rows += predictions.rowCount;
    const outputs = written.map((c) => predictions.columns[c]!);
    const rows = { buffers: carry.texts as Buffer[], buffer: carry.text, start: carry.start, end: carry.end };
    const pieces: Buffer[] = [];
    const slice = new TimeSlice();
    for (let from = 0; from < predictions.rowCount; from += FORMAT_ROWS) {
      const to = Math.min(predictions.rowCount, from + FORMAT_ROWS);
      if (layout!.slots) writeOutputsInPlace(rows, outputs, layout!.slots, from, to, (piece) => pieces.push(piece));
      else pieces.push(binaryRows(carry, predictions, written, outputColumns, layout!.width, from, to));
      for (const piece of pieces) await this.feed.push(piece);
      pieces.length = 0;
      if (slice.due) await slice.next();
    }
  }

  /** Ends the COPY FROM and returns the rows written (none, and no COPY, for an empty input). */
  async finish(): Promise<number> {
    if (!this.copy) return 0;
    this.feed.end();
    await this.copy;
    return this.rows;
  }

  /** Abandons a COPY FROM still open (the client sends CopyFail) and frees the spool. */
  async close(): Promise<void> {
    if (this.copy && !this.settled) {
      this.feed.fail(new ModelSqlError('57014', 'the model stage stopped before its last row'));
      await this.copy.catch(() => undefined);
    }
    await this.spool?.close();
  }

  private open(): Promise<void> {
    const copy = this.db.copyFrom(this.sql, framed(this.feed.chunks()));
    copy.then(
      () => (this.settled = true),
      () => (this.settled = this.failed = true),
    );
    return copy;
  }
}

/** The stage's input query as a subquery named `__modelsql_input`. */
function stageSource(spec: HostStageSpec): string {
  return `(${spec.query}\n) AS __modelsql_input`;
}

/** The COPY TO of a stage and where things are in its rows. */
interface ReadPlan {
  readonly copyOut: string;
  readonly layout: RowLayout;
}

/**
 * The COPY TO that carries the input columns at positions `carried` (in that order, as raw
 * text) and reads the features: each from its carried field when it can, else from an
 * extra field after them. In binary, when every feature is read from a carried field, each
 * row also ends with a placeholder per `written` output (`CAST(0 AS <type>)`): the row as
 * read is then the row to write, once the predictions are written over the placeholders.
 */
async function planRead(db: CopyStageConnection, dialect: SqlDialect, spec: HostStageSpec, carried: readonly number[], written: readonly number[], binary: boolean): Promise<ReadPlan> {
  const q = (name: string) => dialect.quoteIdentifier(name);
  const source = stageSource(spec);
  const column = (position: number) => `${q('__modelsql_input')}.${q(spec.inputColumns[position]!.name)}`;
  const width = carried.length;
  const extra: string[] = [];
  const readers: BinaryNumberReader[] = [];
  const fields = spec.featureColumns.map((position, i) => {
    const carriedAt = carried.indexOf(position);
    const type = spec.inputColumns[position]!.type;
    const reader = binary ? binaryNumberReader(type) : undefined;
    if (reader && carriedAt >= 0) {
      readers.push(reader);
      return carriedAt;
    }
    if (!binary && spec.kinds[i] === 'number' && carriedAt >= 0 && NUMBER_TEXT_TYPE.test(type)) return carriedAt;
    if (binary) readers.push(binaryNumberReader('double precision')!);
    extra.push(spec.kinds[i] === 'number' ? `CAST(${column(position)} AS double precision)` : column(position));
    return width + extra.length - 1;
  });
  // Features handed over as JS values are parsed by their type, as `pg` would.
  const parsers = new Map<number, TextParser>();
  if (spec.kinds.includes('value')) {
    const described = await db.query(`SELECT ${extra.join(', ')} FROM ${source} LIMIT 0`);
    spec.kinds.forEach((kind, i) => kind === 'value' && parsers.set(i, textParser(described.fields[fields[i]! - width]!.dataTypeID)));
  }
  const all = width === spec.inputColumns.length && carried.every((position, i) => position === i);
  const outputs = written.map((c) => spec.outputColumns[c]!);
  const slots = binary && extra.length === 0 ? outputs.map((c) => binaryOutputBytes(c.type)!) : undefined;
  const placeholders = slots ? outputs.map((c, i) => `CAST(0 AS ${c.type}) AS ${q(`__modelsql_output_${i}`)}`) : [];
  const select = [...(all ? ['__modelsql_input.*'] : carried.map(column)), ...extra, ...placeholders];
  return {
    // One row past the call's limit tells the executor it is over: no more is read (nor spooled).
    copyOut: `COPY (SELECT ${select.join(', ')} FROM ${source}${spec.maxRows === undefined ? '' : ` LIMIT ${spec.maxRows + 1}`}) TO STDOUT${binary ? ' (FORMAT binary)' : ''}`,
    layout: { width, total: width + extra.length + placeholders.length, fields, kinds: spec.kinds, parsers, readers, ...(slots ? { slots } : {}) },
  };
}

/**
 * What a batch carries: each row's input fields as COPY text (or binary COPY bytes), kept as
 * offsets into the decoded chunks (row `i` is `texts[text[i]].slice(start[i], end[i])`): a
 * million small strings alive until the COPY FROM would cost more in garbage collection
 * than the rest of the parsing.
 */
interface Carry {
  readonly rows: number;
  readonly texts: readonly (string | Buffer)[];
  readonly text: Uint32Array;
  readonly start: Uint32Array;
  readonly end: Uint32Array;
  /** Bytes (UTF-16 units) of the fields. */
  readonly bytes: number;
}

/** Where things are in a COPY TO row. */
interface RowLayout {
  /** Input fields (the carried part). */
  readonly width: number;
  /** All fields: input fields, then extra feature fields. */
  readonly total: number;
  /** For each feature, its field. */
  readonly fields: readonly number[];
  readonly kinds: readonly ('number' | 'value')[];
  /** Parsers of `value` features, by feature. */
  readonly parsers: ReadonlyMap<number, TextParser>;
  /** Binary readers of the features, by feature (binary format only). */
  readonly readers: readonly BinaryNumberReader[];
  /**
   * Binary format, when each row ends with a placeholder per written output: their sizes in
   * bytes. A row's carry is then the whole row, placeholders included.
   */
  readonly slots?: readonly number[];
}

/** Collects rows of COPY TO text into one batch: raw input fields, parsed features. */
class BatchBuilder {
  rows = 0;
  private bytes = 0;
  private readonly texts: (string | Buffer)[] = [];
  private readonly text: Uint32Array;
  private readonly start: Uint32Array;
  private readonly end: Uint32Array;
  private readonly ends: Int32Array;
  private readonly columns: { readonly numbers?: Float64Array; readonly nulls?: Uint8Array; readonly values?: unknown[] }[];

  constructor(
    private readonly layout: RowLayout,
    private readonly size: number,
  ) {
    this.text = new Uint32Array(size);
    this.start = new Uint32Array(size);
    this.end = new Uint32Array(size);
    this.ends = new Int32Array(layout.total);
    this.columns = layout.kinds.map((kind) => (kind === 'number' ? { numbers: new Float64Array(size), nulls: new Uint8Array(size) } : { values: new Array<unknown>(size) }));
  }

  get full(): boolean {
    return this.rows === this.size;
  }

  /** Adds the row `text[start, end)`. */
  add(text: string, start: number, end: number): void {
    const { width, total, fields, parsers } = this.layout;
    const ends = this.ends;
    const row = this.rows++;
    let pos = start;
    for (let k = 0; k < total - 1; k++) {
      const tab = text.indexOf('\t', pos);
      if (tab < 0 || tab > end) throw new ModelSqlError('XX000', 'internal error: a COPY TO row has fewer fields than its query');
      ends[k] = tab;
      pos = tab + 1;
    }
    ends[total - 1] = end;
    if (this.texts[this.texts.length - 1] !== text) this.texts.push(text);
    const carriedEnd = width === 0 ? start : ends[width - 1]!;
    this.text[row] = this.texts.length - 1;
    this.start[row] = start;
    this.end[row] = carriedEnd;
    this.bytes += carriedEnd - start + 1;
    for (let f = 0; f < fields.length; f++) {
      const k = fields[f]!;
      const field = text.slice(k === 0 ? start : ends[k - 1]! + 1, ends[k]);
      const column = this.columns[f]!;
      if (column.numbers) {
        if (field === '\\N') column.nulls![row] = 1;
        else column.numbers[row] = Number(field);
      } else {
        column.values![row] = field === '\\N' ? null : parsers.get(f)!(unescapeCopy(field));
      }
    }
  }

  /** Adds the binary row `buf[pos, end)` (`view` over `buf`) whose fields start at `fields` (their length words). */
  addBinary(buf: Buffer, view: DataView, pos: number, end: number, fields: Int32Array): void {
    const { width, total, readers, slots } = this.layout;
    const row = this.rows++;
    if (this.texts[this.texts.length - 1] !== buf) this.texts.push(buf);
    // The carried fields (after the field count), or with placeholders the whole row.
    const carriedEnd = slots || width === total ? end : width === 0 ? pos + 2 : fields[width]!;
    this.text[row] = this.texts.length - 1;
    this.start[row] = slots ? pos : pos + 2;
    this.end[row] = carriedEnd;
    this.bytes += carriedEnd - pos;
    const featureFields = this.layout.fields;
    for (let f = 0; f < featureFields.length; f++) {
      const at = fields[featureFields[f]!]!;
      const length = view.getInt32(at);
      const column = this.columns[f]!;
      if (length < 0) column.nulls![row] = 1;
      else {
        const reader = readers[f]!;
        column.numbers![row] = reader === readFloat8 ? view.getFloat64(at + 4) : reader(view, at + 4, length);
      }
    }
  }

  /** The batch so far (the builder is not used after). */
  take(): HostStageBatch {
    const n = this.rows;
    const columns = this.columns.map((c): ColumnData =>
      c.numbers ? { kind: 'number', values: c.numbers.subarray(0, n), nulls: c.nulls!.subarray(0, n) } : { kind: 'value', values: n === this.size ? c.values! : c.values!.slice(0, n) },
    );
    const carry: Carry = { rows: n, texts: this.texts, text: this.text, start: this.start, end: this.end, bytes: this.bytes };
    return { features: { rowCount: n, columns }, carry };
  }
}

/** COPY text lines of rows `[from, to)`: each row's carried input fields, then the predictions of the `written` outputs. */
function copyLines(carry: Carry, predictions: ColumnBatch, written: readonly number[], outputColumns: readonly HostColumn[], carries: boolean, from: number, to: number): string {
  const { rowCount } = predictions;
  if (carry.rows !== rowCount) throw new ModelSqlError('XX000', `internal error: a batch of ${carry.rows} rows got ${rowCount} predictions`);
  const columns = written.map((c) => predictions.columns[c]!);
  const integer = written.map((c) => isIntegerType(outputColumns[c]!.type));
  const { texts, text: which, start, end } = carry;
  // With no input field carried, the first prediction starts the line.
  const first = carries ? '\t' : '';
  let text = '';
  for (let i = from; i < to; i++) {
    let line = (texts[which[i]!] as string).slice(start[i], end[i]);
    for (let c = 0; c < columns.length; c++) {
      const column = columns[c]!;
      const tab = c === 0 ? first : '\t';
      if (column.kind === 'number') line += column.nulls?.[i] ? tab + '\\N' : tab + copyNumber(column.values[i]!, integer[c] === true);
      else line += tab + copyField(column.values[i], integer[c] === true);
    }
    text += line + '\n';
  }
  return text;
}

/** Binary COPY rows `[from, to)` (no header): each row's carried input fields (`width` of them), then the `written` outputs. */
function binaryRows(carry: Carry, predictions: ColumnBatch, written: readonly number[], outputColumns: readonly HostColumn[], width: number, from: number, to: number): Buffer {
  if (carry.rows !== predictions.rowCount) throw new ModelSqlError('XX000', `internal error: a batch of ${carry.rows} rows got ${predictions.rowCount} predictions`);
  const columns = written.map((c) => predictions.columns[c]!);
  const bytes = written.map((c) => binaryOutputBytes(outputColumns[c]!.type)!);
  const { texts, text: which, start, end } = carry;
  let size = (to - from) * 2;
  for (let i = from; i < to; i++) size += end[i]! - start[i]!;
  for (const b of bytes) size += (to - from) * (4 + b);
  const buf = Buffer.allocUnsafe(size);
  let p = 0;
  for (let i = from; i < to; i++) {
    p = buf.writeInt16BE(width + columns.length, p);
    p += (texts[which[i]!] as Buffer).copy(buf, p, start[i], end[i]);
    for (let c = 0; c < columns.length; c++) {
      const column = columns[c]!;
      const value = column.kind === 'number' ? (column.nulls?.[i] ? null : column.values[i]) : column.values[i];
      p = writeBinaryOutput(buf, p, bytes[c]!, value);
    }
  }
  return buf.subarray(0, p);
}

/** Rows formatted at a time: a slice of a few ms, so that the event loop can run between them. */
const FORMAT_ROWS = 4096;

/**
 * The stage's output, in batch order: unformatted batches in memory while their estimated
 * size stays under a limit, else formatted COPY text in a file under `os.tmpdir()`
 * (removed on close). Batches are formatted {@link FORMAT_ROWS} rows at a time, yielding
 * to the event loop between pieces when the time slice is used up.
 */
class OutputBuffer {
  rows = 0;
  private bytes = 0;
  private pending: ({ readonly carry: Carry; readonly predictions: ColumnBatch } | undefined)[] = [];
  private file: { readonly handle: FileHandle } | undefined;
  private closed = false;

  constructor(
    private readonly memoryLimit: number,
    private readonly format: (carry: Carry, predictions: ColumnBatch, from: number, to: number) => Buffer,
  ) {}

  /** A batch's COPY text, piece by piece. */
  private async *pieces(carry: Carry, predictions: ColumnBatch, slice: TimeSlice): AsyncIterable<Buffer> {
    for (let from = 0; from < predictions.rowCount; from += FORMAT_ROWS) {
      yield this.format(carry, predictions, from, Math.min(predictions.rowCount, from + FORMAT_ROWS));
      if (slice.due) await slice.next();
    }
  }

  private async writeFile(handle: FileHandle, carry: Carry, predictions: ColumnBatch): Promise<void> {
    for await (const piece of this.pieces(carry, predictions, new TimeSlice())) await handle.write(piece);
  }

  async push(carry: Carry, predictions: ColumnBatch): Promise<void> {
    if (this.closed) throw new ModelSqlError('XX000', 'internal error: write to a closed model stage');
    this.rows += predictions.rowCount;
    // Estimated output text: the carried fields, and up to 24 characters per prediction.
    this.bytes += carry.bytes + predictions.rowCount * predictions.columns.length * 24;
    if (!this.file && this.bytes > this.memoryLimit) {
      // As the spool's (copy-spool.ts): made O_EXCL, mode 0600, in a directory only this user
      // may enter, and unlinked at once, read back through its descriptor: a crash of this
      // process leaves none of the rows on disk.
      const dir = await mkdtemp(join(tmpdir(), 'modelsql-stage-'));
      try {
        this.file = { handle: await open(join(dir, 'rows.copy'), 'wx+', 0o600) };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      for (const batch of this.pending) await this.writeFile(this.file.handle, batch!.carry, batch!.predictions);
      this.pending = [];
    }
    if (this.file) await this.writeFile(this.file.handle, carry, predictions);
    else this.pending.push({ carry, predictions });
  }

  /** Everything pushed, in order, as COPY text; batches in memory are formatted (and let go) as they are read. */
  async *read(): AsyncIterable<Uint8Array> {
    if (this.file) {
      for await (const chunk of this.file.handle.createReadStream({ start: 0, highWaterMark: 1024 * 1024, autoClose: false })) yield chunk as Buffer;
      return;
    }
    const slice = new TimeSlice();
    for (let i = 0; i < this.pending.length; i++) {
      const batch = this.pending[i]!;
      this.pending[i] = undefined;
      yield* this.pieces(batch.carry, batch.predictions, slice);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    await this.file?.handle.close().catch(() => undefined);
  }
}
