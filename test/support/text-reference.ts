/**
 * The independent reference path of the text model tests, run as its own Node process
 * (onnxruntime's tensors do not cross into jest's module sandbox): the tokenizer library's
 * own `encode` (special tokens included), cut to the maximum length by hand as Python
 * transformers does (`[CLS] … [SEP]` keeps its `[SEP]`), then onnxruntime with ONE text per
 * run (no padding, no length buckets), pooled and normalized in float64 here.
 *
 * Input (stdin, JSON): {@link ReferenceRequest}. Output (stdout, JSON): one answer per text,
 * `number[]` (embedding) or `{ label, probabilities }` (classification).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { ROOT } from './run-cli.js';

/** What to compute. */
export interface ReferenceRequest {
  readonly dir: string;
  readonly texts: readonly string[];
  readonly maxLength: number;
  readonly task: 'embedding' | 'classification';
  readonly pooling?: 'mean' | 'cls';
  readonly normalize?: boolean;
  readonly labels?: readonly string[];
}

/** A reference answer. */
export type ReferenceAnswer = number[] | { readonly label: string; readonly probabilities: number[] };

/** Runs the reference in a child process (needs `npm run build`). */
export function reference(request: ReferenceRequest): ReferenceAnswer[] {
  const script = join(ROOT, 'dist', 'test', 'support', 'text-reference.js');
  return JSON.parse(execFileSync(process.execPath, [script], { input: JSON.stringify(request), maxBuffer: 1 << 28 }).toString('utf8')) as ReferenceAnswer[];
}

/** Token ids of `text`, cut to `max` keeping the final special token. */
export function referenceIds(tokenizer: Tokenizer, text: string, max: number): number[] {
  const ids = tokenizer.encode(text).ids;
  return ids.length <= max ? ids : [...ids.slice(0, max - 1), ids[ids.length - 1]!];
}

async function main(): Promise<void> {
  const ort = await import('onnxruntime-node');
  const request = JSON.parse(readFileSync(0, 'utf8')) as ReferenceRequest;
  const read = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(request.dir, name), 'utf8')) as Record<string, unknown>;
  const tokenizer = new Tokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
  const session = await ort.InferenceSession.create(readFileSync(join(request.dir, 'onnx', 'model.onnx')));
  const answers: ReferenceAnswer[] = [];
  for (const text of request.texts) {
    const ids = referenceIds(tokenizer, text, request.maxLength);
    const t = (v: number[]): InstanceType<typeof ort.Tensor> => new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [1, v.length]);
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = { input_ids: t(ids), attention_mask: t(ids.map(() => 1)) };
    if (session.inputNames.includes('token_type_ids')) feeds['token_type_ids'] = t(ids.map(() => 0));
    const out = await session.run(feeds);
    const tensor = out[session.outputNames[0]!]!;
    const data = Array.from(tensor.data as Float32Array);
    if (request.task === 'classification') {
      const max = Math.max(...data);
      const e = data.map((l) => Math.exp(l - max));
      const sum = e.reduce((a, b) => a + b, 0);
      const probabilities = e.map((x) => x / sum);
      answers.push({ label: request.labels![probabilities.indexOf(Math.max(...probabilities))]!, probabilities });
      continue;
    }
    const [, T, H] = tensor.dims as [number, number, number];
    let v = Array.from({ length: H }, (_, h) => (request.pooling === 'cls' ? data[h]! : Array.from({ length: T }, (_, k) => data[k * H + h]!).reduce((a, b) => a + b, 0) / T));
    if (request.normalize) {
      const norm = Math.sqrt(v.reduce((a, b) => a + b * b, 0));
      v = v.map((x) => x / norm);
    }
    answers.push(v);
  }
  process.stdout.write(JSON.stringify(answers));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
