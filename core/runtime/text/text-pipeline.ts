/**
 * Runs a local text model inside an ONNX worker thread (onnx-worker.ts): tokenizes a batch
 * of texts, groups them into length buckets (texts sorted by token count, each bucket
 * padded only to its own longest text), runs the graph once per bucket and pools the
 * token vectors (embedding) or turns logits into a label and probabilities
 * (classification). Tokenizing here keeps that work off the event loop too, and spreads it
 * over the worker pool.
 *
 * Outputs, as tensors the runtime binds to OUTPUT columns: `embedding` float32 `[N, H]`;
 * or `label` string `[N]` plus `probabilities` float32 `[N, C]`.
 */
import type * as ort from 'onnxruntime-node';
import type { OutputMessage } from '../onnx-worker.js';
import type { TextModelSpec } from './text-model.js';
import { TextTokenizer } from './text-tokenizer.js';

/** Tensor names the pipeline answers with. */
export const TEXT_OUTPUTS = { embedding: 'embedding', label: 'label', probabilities: 'probabilities' } as const;

/**
 * Padded tokens per graph run at most (rows × bucket length), and rows per run at most.
 * Measured with benchmarks/text-embedding.ts (2 cores, BERT-shaped graph, 6–20 token
 * texts): 4096 tokens / 64 rows was within noise of the best setting.
 */
const TOKENS_PER_RUN = 4096;
const ROWS_PER_RUN = 64;

/** The Tensor constructor of the worker's onnxruntime (passed in, so that this module imports no runtime). */
type TensorClass = typeof ort.Tensor;

/**
 * One model's pipeline, built once per worker.
 *
 * @example
 * const pipeline = new TextPipeline(spec, session, ort.Tensor);
 * const outputs = await pipeline.run(['first text', 'second text']);
 */
export class TextPipeline {
  readonly #tokenizer: TextTokenizer;

  constructor(
    private readonly spec: TextModelSpec,
    private readonly session: ort.InferenceSession,
    private readonly Tensor: TensorClass,
  ) {
    this.#tokenizer = new TextTokenizer(spec.tokenizer, spec.tokenizerConfig, spec.maxLength);
  }

  /** Runs the model over `texts` (none empty), answering in their order. */
  async run(texts: readonly string[]): Promise<OutputMessage[]> {
    const n = texts.length;
    const encoded = texts.map((t) => this.#tokenizer.encode(t));
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => encoded[a]!.ids.length - encoded[b]!.ids.length || a - b);
    let width = 0;
    let out = new Float32Array(0);
    for (let start = 0; start < n; ) {
      let end = start + 1;
      while (end < n && end - start < ROWS_PER_RUN && (end - start + 1) * encoded[order[end]!]!.ids.length <= TOKENS_PER_RUN) end++;
      const rows = order.slice(start, end);
      const length = encoded[rows[rows.length - 1]!]!.ids.length;
      const tensor = await this.#runBucket(rows.map((r) => encoded[r]!), length);
      const values = this.#rowsOf(tensor, rows.map((r) => encoded[r]!.ids.length), length);
      if (width === 0) {
        width = values.length / rows.length;
        out = new Float32Array(n * width);
      }
      rows.forEach((row, i) => out.set(values.subarray(i * width, (i + 1) * width), row * width));
      start = end;
    }
    return this.spec.task === 'embedding' ? [{ name: TEXT_OUTPUTS.embedding, type: 'float32', dims: [n, width], data: out }] : this.#classes(out, n, width);
  }

  async #runBucket(rows: readonly { ids: readonly number[]; typeIds: readonly number[] }[], length: number): Promise<ort.Tensor> {
    const b = rows.length;
    const size = b * length;
    const wide = this.spec.idType === 'int64';
    const make = (): BigInt64Array | Int32Array => (wide ? new BigInt64Array(size) : new Int32Array(size));
    const ids = make();
    const mask = make();
    const types = make();
    const pad = wide ? BigInt(this.spec.padId) : this.spec.padId;
    ids.fill(pad as never);
    rows.forEach((r, i) => {
      const o = i * length;
      for (let t = 0; t < r.ids.length; t++) {
        ids[o + t] = (wide ? BigInt(r.ids[t]!) : r.ids[t]!) as never;
        mask[o + t] = (wide ? 1n : 1) as never;
        types[o + t] = (wide ? BigInt(r.typeIds[t]!) : r.typeIds[t]!) as never;
      }
    });
    const data = { input_ids: ids, attention_mask: mask, token_type_ids: types };
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of this.spec.inputs) feeds[name] = new this.Tensor(this.spec.idType, data[name], [b, length]);
    const result = await this.session.run(feeds, [this.spec.output]);
    return result[this.spec.output] as ort.Tensor;
  }

  /** One vector per row: pooled token vectors (mean over real tokens, or the first), normalized if asked. */
  #rowsOf(tensor: ort.Tensor, lengths: readonly number[], padded: number): Float32Array {
    const data = tensor.data as Float32Array;
    const b = lengths.length;
    if (this.spec.pooled) return this.#normalized(data.slice(), b);
    const hidden = tensor.dims[2]!;
    const out = new Float32Array(b * hidden);
    const sum = new Float64Array(hidden);
    for (let i = 0; i < b; i++) {
      const base = i * padded * hidden;
      if (this.spec.pooling === 'cls') {
        out.set(data.subarray(base, base + hidden), i * hidden);
        continue;
      }
      sum.fill(0);
      const len = lengths[i]!;
      for (let t = 0; t < len; t++) {
        const o = base + t * hidden;
        for (let h = 0; h < hidden; h++) sum[h]! += data[o + h]!;
      }
      for (let h = 0; h < hidden; h++) out[i * hidden + h] = sum[h]! / len;
    }
    return this.#normalized(out, b);
  }

  #normalized(values: Float32Array, rows: number): Float32Array {
    if (!this.spec.normalize || this.spec.task !== 'embedding') return values;
    const w = values.length / rows;
    for (let i = 0; i < rows; i++) {
      let norm = 0;
      for (let h = i * w; h < (i + 1) * w; h++) norm += values[h]! * values[h]!;
      // As torch.nn.functional.normalize: divide by max(‖v‖, 1e-12).
      const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
      for (let h = i * w; h < (i + 1) * w; h++) values[h] = values[h]! * scale;
    }
    return values;
  }

  /**
   * Logits to softmax probabilities and the label of the most probable class (first on ties).
   * A graph whose class count the signature does not fix is held to config.json's labels here.
   */
  #classes(logits: Float32Array, n: number, classes: number): OutputMessage[] {
    if (classes !== this.spec.labels.length) {
      throw new Error(`the graph gave ${classes} classes, but config.json's id2label has ${this.spec.labels.length} labels`);
    }
    const probabilities = new Float32Array(n * classes);
    const labels = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const o = i * classes;
      let max = -Infinity;
      let best = 0;
      for (let c = 0; c < classes; c++) {
        if (logits[o + c]! > max) {
          max = logits[o + c]!;
          best = c;
        }
      }
      let total = 0;
      for (let c = 0; c < classes; c++) total += Math.exp(logits[o + c]! - max);
      for (let c = 0; c < classes; c++) probabilities[o + c] = Math.exp(logits[o + c]! - max) / total;
      labels[i] = this.spec.labels[best] ?? `LABEL_${best}`;
    }
    return [
      { name: TEXT_OUTPUTS.label, type: 'string', dims: [n], data: labels },
      { name: TEXT_OUTPUTS.probabilities, type: 'float32', dims: [n, classes], data: probabilities },
    ];
  }
}
