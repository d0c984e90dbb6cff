/**
 * The runtime of a local text model (SPEC §2.6): an ONNX runtime whose workers tokenize,
 * run and pool (text-pipeline.ts), wrapped so that NULL and empty texts never reach the
 * model (their outputs are NULL) and answers can go to the prediction cache.
 */
import { createHash } from 'node:crypto';
import type { ModelRuntime, PredictOptions } from '../model-runtime.js';
import { inspectOnnx, type OnnxBinding, type OnnxSignature } from '../onnx-model.js';
import { createOnnxRuntime } from '../onnx-runtime.js';
import type { AccessOptions } from '../access-policy.js';
import type { ModelFileLimits } from '../onnx-model-loader.js';
import { readModelDirectory, type TextModelFiles } from './model-directory.js';
import { checkVocabulary, textModel, type TextModel } from './text-model.js';
import { embeddingTable } from './onnx-embedding-table.js';
import { TEXT_OUTPUTS } from './text-pipeline.js';
import type { ColumnBatch, ColumnData, ModelColumn } from '../../model-types.js';
import { LimitExceededError } from '../inference-limits.js';

type Options = readonly (readonly [string, string])[];

/**
 * Texts per batch: enough for both workers to fill many length buckets, small enough to
 * keep progress and cancellation prompt.
 */
export const TEXT_BATCH_SIZE = 2048;

/** The tensor name the texts travel under to the worker. */
const TEXT_FEED = 'text';

/**
 * Reads and checks a model directory: the files, its graph's signature, its options and the
 * declared columns (INPUT/OUTPUT filled in when omitted). Nothing runs.
 *
 * @example
 * const { model } = await checkTextModel('models/minilm', [['provider', 'onnx'], ['path', 'models/minilm']], {});
 */
export async function checkTextModel(location: string, options: Options, access: AccessOptions & ModelFileLimits, input?: readonly ModelColumn[], output?: readonly ModelColumn[]): Promise<{ files: TextModelFiles; model: TextModel }> {
  const files = await readModelDirectory(location, access);
  return { files, model: await checkTextFiles(files, options, input, output) };
}

/**
 * Checks a text model's files (from a directory or the catalog) as {@link checkTextModel} does:
 * first the tokenizer's ids against the graph's embedding table (before either is loaded),
 * then the graph's signature, the files, options and columns (text-model.ts).
 */
export async function checkTextFiles(files: TextModelFiles, options: Options, input?: readonly ModelColumn[], output?: readonly ModelColumn[]): Promise<TextModel> {
  checkVocabulary(files, embeddingTable(files.graph));
  return textModel(files, options, await inspectOnnx(files.graph), input, output);
}

/**
 * Starts the runtime of a text model from its directory's files (read by
 * {@link readModelDirectory}). The graph loads in the workers only.
 */
export async function createTextRuntime(
  files: TextModelFiles,
  options: Options,
  input: readonly ModelColumn[],
  output: readonly ModelColumn[],
  batchSize?: number,
  maxTextBytes?: number,
): Promise<ModelRuntime> {
  const { graph, ...meta } = files;
  checkVocabulary(meta, embeddingTable(graph));
  let model: TextModel | undefined;
  const bind = (signature: OnnxSignature): OnnxBinding => {
    model = textModel(meta, options, signature, input, output);
    return textBinding(model);
  };
  const inner = await createOnnxRuntime(graph, bind, { batchSize: batchSize ?? TEXT_BATCH_SIZE, text: { files: meta, options, input, output } });
  const fingerprint = createHash('sha256').update(graph).update(JSON.stringify([meta, model!.spec.maxLength, model!.spec.pooling, model!.spec.normalize, output])).digest('hex');
  return new TextModelRuntime(inner, fingerprint, output.length, maxTextBytes);
}

/** How the model's columns read the pipeline's answers. */
function textBinding(model: TextModel): OnnxBinding {
  const outputs = model.output.map((c, i) => {
    const label = model.spec.task === 'classification' && i === 0;
    const tensor = model.spec.task === 'embedding' ? TEXT_OUTPUTS.embedding : label ? TEXT_OUTPUTS.label : TEXT_OUTPUTS.probabilities;
    return { column: c.name, tensor, elementType: label ? 'string' : 'float32', shape: label ? 'scalar' : 'array', valueKind: label ? 'string' : 'number' } as const;
  });
  return { input: { mode: 'columns', feeds: [{ tensor: TEXT_FEED, elementType: 'string', rank: 1 }] }, outputs, inputKinds: ['value'] };
}

/** A text model's runtime; see {@link createTextRuntime}. */
class TextModelRuntime implements ModelRuntime {
  readonly provider = 'onnx';
  readonly inputKinds = ['value'] as const;
  readonly preferredBatchSize: number;
  /** Local inference is cheap: the cache is used when a call asks for it (`'cache' = 'true'`). */
  readonly cacheByDefault = false;

  constructor(
    private readonly inner: ModelRuntime,
    private readonly fingerprint: string,
    private readonly width: number,
    /** The longest row text tokenized, in UTF-8 bytes (the prompt cap); longer: 54000. */
    private readonly maxTextBytes: number | undefined,
  ) {
    this.preferredBatchSize = inner.preferredBatchSize;
  }

  cacheKeys(batch: ColumnBatch): readonly (string | null)[] {
    return textsOf(batch).map((t) => (t === undefined ? null : createHash('sha256').update(this.fingerprint).update('\u0000').update(t).digest('hex')));
  }

  async predictBatch(batch: ColumnBatch, options: PredictOptions = {}): Promise<ColumnBatch> {
    const texts = textsOf(batch);
    // A text is cut to the model's maximum length only after the whole of it is tokenized
    // (about 0.8 s and 75 MB per MB of text): its size is bounded by the prompt cap first.
    const over = textOverCap(texts, this.maxTextBytes);
    if (over) throw over;
    const rows: number[] = [];
    texts.forEach((t, i) => {
      if (t !== undefined) rows.push(i);
    });
    const answered = rows.length === 0 ? undefined : await this.inner.predictBatch({ rowCount: rows.length, columns: [{ kind: 'value', values: rows.map((r) => texts[r]) }] }, options);
    const columns: unknown[][] = Array.from({ length: this.width }, () => new Array<unknown>(batch.rowCount).fill(null));
    answered?.columns.forEach((column, c) => rows.forEach((row, i) => (columns[c]![row] = column.values[i])));
    const stage = options.stage;
    if (stage?.remember && answered) {
      const keys = this.cacheKeys(batch);
      rows.forEach((row) => stage.remember!(keys[row]!, columns.map((c) => c[row])));
    }
    return { rowCount: batch.rowCount, columns: columns.map((values): ColumnData => ({ kind: 'value', values })) };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The error for the first text longer than `max` UTF-8 bytes, if any (54000: the data is over a server limit). */
function textOverCap(texts: readonly (string | undefined)[], max: number | undefined): LimitExceededError | undefined {
  if (max === undefined) return undefined;
  for (const t of texts) {
    // One UTF-16 unit is at most 3 UTF-8 bytes: a string of at most max / 3 units cannot be over.
    if (t === undefined || t.length * 3 <= max) continue;
    const bytes = Buffer.byteLength(t, 'utf8');
    if (bytes > max) return new LimitExceededError('54000', `a row's text is ${bytes} bytes, over this server's cap of ${max} bytes (--max-prompt-bytes)`);
  }
  return undefined;
}

/** Each row's text, undefined for NULL and empty strings (which give NULL outputs). */
function textsOf(batch: ColumnBatch): (string | undefined)[] {
  const column = batch.columns[0]!;
  const out = new Array<string | undefined>(batch.rowCount);
  for (let i = 0; i < batch.rowCount; i++) {
    const v = column.kind === 'number' ? (column.nulls?.[i] ? null : column.values[i]) : column.values[i];
    out[i] = v === null || v === undefined || v === '' ? undefined : String(v);
  }
  return out;
}
