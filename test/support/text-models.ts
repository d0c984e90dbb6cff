/**
 * Builds small Hugging Face-style text model directories for tests and benchmarks, with no
 * download: a BERT-shaped ONNX graph (word, position and segment embeddings, LayerNorm, one
 * or more single-head attention + GELU feed-forward layers) with fixed pseudo-random
 * weights, a WordPiece `tokenizer.json` as the `tokenizers` library writes it for BERT,
 * `tokenizer_config.json` and `config.json`, in the transformers.js layout
 * (`onnx/model.onnx`). Classification models add BERT's pooler and a classifier head
 * (`logits`) and an `id2label` map.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { floatTensor, int64Tensor, model, node, valueInfo } from './onnx-models.js';

/** The WordPiece vocabulary of the test models (ids by position). */
export const TEST_VOCAB: readonly string[] = [
  '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]',
  'the', 'a', 'cat', 'dog', 'sat', 'on', 'mat', 'sql', 'model', 'data', 'search', 'vector', 'text', 'embed',
  'hello', 'world', 'duck', 'postgres', 'query', 'fast', 'slow', 'good', 'bad', 'movie', 'great', 'terrible',
  'is', 'was', 'very', 'not', 'and', 'of', 'to', 'in', 'with', 'table', 'row', 'column', 'index', 'local',
  '##s', '##ing', '##ed', '##ly', '##er', '.', ',', '!', '?', "'", '-',
  'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z',
  '##a', '##b', '##c', '##d', '##e', '##f', '##g', '##h', '##i', '##j', '##k', '##l', '##m', '##n', '##o', '##p', '##q', '##r', '##t', '##u', '##v', '##w', '##x', '##y', '##z',
];

/** Options of {@link bertGraph} and {@link writeTextModel}. */
export interface TextModelOptions {
  readonly hidden?: number;
  readonly layers?: number;
  /** Position embeddings (and `model_max_length`). */
  readonly maxPositions?: number;
  /** Classes of a classification head; none for an embedding model. */
  readonly labels?: readonly string[];
  /** Whether the graph takes `token_type_ids` (default true). */
  readonly tokenTypes?: boolean;
  /** Names of the graph's id inputs, to build a wrong graph (default input_ids, attention_mask). */
  readonly inputNames?: readonly [string, string];
  /** Seed of the weights. */
  readonly seed?: number;
  /** Give min(classes, tokens) classes, so that only a run tells how many (`logits` is `[N, C]`). */
  readonly symbolicClasses?: boolean;
}

/** Deterministic uniform numbers in [-scale, scale) (a 32-bit LCG). */
function weights(count: number, scale: number, state: { s: number }): number[] {
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    state.s = (Math.imul(state.s, 1664525) + 1013904223) >>> 0;
    out[i] = (state.s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

/**
 * The ONNX graph of a small BERT: inputs `input_ids`, `attention_mask` (and
 * `token_type_ids`) int64 `[N, T]`; output `last_hidden_state` float `[N, T, H]`, or
 * `logits` `[N, C]` with `labels`.
 */
export function bertGraph(options: TextModelOptions = {}): Uint8Array {
  const H = options.hidden ?? 16;
  const P = options.maxPositions ?? 32;
  const V = TEST_VOCAB.length;
  const layers = options.layers ?? 1;
  const rng = { s: options.seed ?? 42 };
  const [ids, mask] = options.inputNames ?? ['input_ids', 'attention_mask'];
  const types = options.tokenTypes ?? true;
  const w = 1 / Math.sqrt(H);
  const init = [
    floatTensor('word_emb', [V, H], weights(V * H, 1, rng)),
    floatTensor('pos_emb', [P, H], weights(P * H, 0.5, rng)),
    floatTensor('type_emb', [2, H], weights(2 * H, 0.5, rng)),
    int64Tensor('one_i', [], [1]),
    int64Tensor('zero_i', [], [0]),
    int64Tensor('axes1', [1], [1]),
    floatTensor('one_f', [], [1]),
    floatTensor('half_f', [], [0.5]),
    floatTensor('sqrt2_f', [], [Math.SQRT2]),
    floatTensor('neg_f', [], [-10000]),
    floatTensor('scale_f', [], [1 / Math.sqrt(H)]),
  ];
  const layerNorm = (x: string, out: string, name: string): ReturnType<typeof node> => {
    init.push(floatTensor(`${name}_g`, [H], weights(H, 0.2, rng).map((v) => 1 + v)), floatTensor(`${name}_b`, [H], weights(H, 0.1, rng)));
    return node('LayerNormalization', [x, `${name}_g`, `${name}_b`], [out], { axis: -1, epsilon: 1e-12 }, '', ['epsilon']);
  };
  const dense = (x: string, out: string, name: string, from: number, to: number, scale = w): ReturnType<typeof node>[] => {
    init.push(floatTensor(`${name}_w`, [from, to], weights(from * to, scale, rng)), floatTensor(`${name}_bias`, [to], weights(to, 0.1, rng)));
    return [node('MatMul', [x, `${name}_w`], [`${out}_mm`]), node('Add', [`${out}_mm`, `${name}_bias`], [out])];
  };
  const nodes = [
    node('Gather', ['word_emb', ids], ['we']),
    node('Shape', [ids], ['ids_shape']),
    node('Gather', ['ids_shape', 'one_i'], ['seq_len'], { axis: 0 }),
    node('Range', ['zero_i', 'seq_len', 'one_i'], ['positions']),
    node('Gather', ['pos_emb', 'positions'], ['pe']),
    node('Add', ['we', 'pe'], [types ? 'wpe' : 'emb']),
    ...(types ? [node('Gather', ['type_emb', 'token_type_ids'], ['te']), node('Add', ['wpe', 'te'], ['emb'])] : []),
    layerNorm('emb', 'x0', 'ln_emb'),
    node('Cast', [mask], ['mask_f'], { to: 1 }),
    node('Sub', ['one_f', 'mask_f'], ['unmask']),
    node('Mul', ['unmask', 'neg_f'], ['mask_add2']),
    node('Unsqueeze', ['mask_add2', 'axes1'], ['mask_add']),
  ];
  let x = 'x0';
  for (let l = 0; l < layers; l++) {
    const p = `l${l}`;
    nodes.push(
      ...dense(x, `${p}_q`, `${p}_q`, H, H),
      ...dense(x, `${p}_k`, `${p}_k`, H, H),
      ...dense(x, `${p}_v`, `${p}_v`, H, H),
      node('Transpose', [`${p}_k`], [`${p}_kt`], { perm: [0, 2, 1] }),
      node('MatMul', [`${p}_q`, `${p}_kt`], [`${p}_s0`]),
      node('Mul', [`${p}_s0`, 'scale_f'], [`${p}_s1`]),
      node('Add', [`${p}_s1`, 'mask_add'], [`${p}_s2`]),
      node('Softmax', [`${p}_s2`], [`${p}_p`], { axis: -1 }),
      node('MatMul', [`${p}_p`, `${p}_v`], [`${p}_c`]),
      ...dense(`${p}_c`, `${p}_o`, `${p}_o`, H, H),
      node('Add', [x, `${p}_o`], [`${p}_r1`]),
      layerNorm(`${p}_r1`, `${p}_x1`, `${p}_ln1`),
      ...dense(`${p}_x1`, `${p}_h`, `${p}_ff1`, H, 2 * H),
      node('Div', [`${p}_h`, 'sqrt2_f'], [`${p}_hs`]),
      node('Erf', [`${p}_hs`], [`${p}_erf`]),
      node('Add', [`${p}_erf`, 'one_f'], [`${p}_erf1`]),
      node('Mul', [`${p}_h`, 'half_f'], [`${p}_hh`]),
      node('Mul', [`${p}_hh`, `${p}_erf1`], [`${p}_g`]),
      ...dense(`${p}_g`, `${p}_f`, `${p}_ff2`, 2 * H, H),
      node('Add', [`${p}_x1`, `${p}_f`], [`${p}_r2`]),
      layerNorm(`${p}_r2`, l === layers - 1 && !options.labels ? 'last_hidden_state' : `${p}_out`, `${p}_ln2`),
    );
    x = `${p}_out`;
  }
  const inputs = [valueInfo(ids, 'int64', ['N', 'T']), valueInfo(mask, 'int64', ['N', 'T']), ...(types ? [valueInfo('token_type_ids', 'int64', ['N', 'T'])] : [])];
  if (!options.labels) {
    return model({ name: 'bert_embedding', nodes, inputs, outputs: [valueInfo('last_hidden_state', 'float', ['N', 'T', H])], initializers: init });
  }
  const C = options.labels.length;
  const head = options.symbolicClasses ? 'all_logits' : 'logits';
  nodes.push(node('Gather', [x, 'zero_i'], ['cls'], { axis: 1 }), ...dense('cls', 'pool0', 'pooler', H, H, 1), node('Tanh', ['pool0'], ['pooled']), ...dense('pooled', head, 'classifier', H, C, 2));
  if (options.symbolicClasses) {
    init.push(int64Tensor('zero_1d', [1], [0]), int64Tensor('axes0', [1], [0]));
    nodes.push(node('Unsqueeze', ['seq_len', 'axes0'], ['seq_len_1d']), node('Slice', [head, 'zero_1d', 'seq_len_1d', 'axes1'], ['logits']));
  }
  return model({ name: 'bert_classification', nodes, inputs, outputs: [valueInfo('logits', 'float', ['N', options.symbolicClasses ? 'C' : C])], initializers: init });
}

/** BERT's `tokenizer.json` for {@link TEST_VOCAB}: BertNormalizer (lower case), BertPreTokenizer, WordPiece, `[CLS] … [SEP]`. */
export function bertTokenizerJson(): Record<string, unknown> {
  const vocab = Object.fromEntries(TEST_VOCAB.map((t, i) => [t, i]));
  const special = (content: string): Record<string, unknown> => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map(special),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

/** Writes a model directory (transformers.js layout) and returns its path. */
export function writeTextModel(dir: string, options: TextModelOptions = {}): string {
  const H = options.hidden ?? 16;
  const P = options.maxPositions ?? 32;
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  const labels = options.labels;
  const config = {
    model_type: 'bert',
    architectures: [labels ? 'BertForSequenceClassification' : 'BertModel'],
    hidden_size: H,
    num_hidden_layers: options.layers ?? 1,
    num_attention_heads: 1,
    max_position_embeddings: P,
    type_vocab_size: 2,
    vocab_size: TEST_VOCAB.length,
    pad_token_id: 0,
    ...(labels ? { id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])), label2id: Object.fromEntries(labels.map((l, i) => [l, i])) } : {}),
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(bertTokenizerJson()));
  writeFileSync(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ tokenizer_class: 'BertTokenizer', do_lower_case: true, model_max_length: P, cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', unk_token: '[UNK]', mask_token: '[MASK]' }),
  );
  writeFileSync(join(dir, 'onnx', 'model.onnx'), bertGraph(options));
  return dir;
}

/** Paths of the standard test model directories. */
export interface TextModelDirs {
  readonly root: string;
  readonly embedding: string;
  readonly classification: string;
}

/** Labels of the test classifier. */
export const TEST_LABELS = ['negative', 'neutral', 'positive'] as const;

/** Writes an embedding and a classification model into a new temporary directory. */
export function writeTextModels(): TextModelDirs {
  const root = mkdtempSync(join(tmpdir(), 'modelsql-text-'));
  return {
    root,
    embedding: writeTextModel(join(root, 'embedder'), { seed: 7 }),
    classification: writeTextModel(join(root, 'classifier'), { seed: 11, labels: TEST_LABELS }),
  };
}
