/**
 * What a local text model is (SPEC §2.6): from a model directory's files, the model's
 * options and its graph's signature, the plain-data {@link TextModelSpec} that a worker
 * runs, and the model's INPUT/OUTPUT columns. Every check happens here, at CREATE MODEL
 * time and again when the model loads, so that a bad directory fails before any inference.
 */
import { InvalidOptionError, ModelSqlError } from '../../errors.js';
import { getOption } from '../../catalog/model-options.js';
import { parseDataType, typeCategory } from '../../sql/types.js';
import { describeSignature, describeValue, type OnnxSignature, type OnnxValueInfo } from '../onnx-model.js';
import type { TextModelFiles } from './model-directory.js';
import type { EmbeddingTable } from './onnx-embedding-table.js';
import { TextTokenizer } from './text-tokenizer.js';
import type { ModelColumn } from '../../model-types.js';

/** Tasks of local text models. */
export type TextTask = 'embedding' | 'classification';

/** How token vectors become one embedding. */
export type Pooling = 'mean' | 'cls';

/** Graph inputs a text model may have; `input_ids` is required. */
export const TEXT_GRAPH_INPUTS = ['input_ids', 'attention_mask', 'token_type_ids'] as const;

/** Everything a worker needs to run a text model: plain data, safe to post to a thread. */
export interface TextModelSpec {
  readonly task: TextTask;
  readonly tokenizer: Readonly<Record<string, unknown>>;
  readonly tokenizerConfig: Readonly<Record<string, unknown>>;
  /** Tokens per text at most, special tokens included; longer texts are truncated. */
  readonly maxLength: number;
  /** Token id of padding. */
  readonly padId: number;
  /** Graph inputs present, and their integer type. */
  readonly inputs: readonly (typeof TEXT_GRAPH_INPUTS)[number][];
  readonly idType: 'int64' | 'int32';
  /** The graph output read: token vectors `[B, T, H]` (embedding), or `[B, H]` / `[B, C]`. */
  readonly output: string;
  /** Whether `output` is already one vector per text (`[B, H]`). */
  readonly pooled: boolean;
  readonly pooling: Pooling;
  readonly normalize: boolean;
  /** Classification labels by class index (`config.json` `id2label`). */
  readonly labels: readonly string[];
  /** Classification: whether the probabilities column is asked for. */
  readonly probabilities: boolean;
}

/** A checked text model: its spec and its INPUT/OUTPUT columns. */
export interface TextModel {
  readonly spec: TextModelSpec;
  readonly input: readonly ModelColumn[];
  readonly output: readonly ModelColumn[];
}

/** A model directory's files but the graph. */
export type TextModelMeta = Omit<TextModelFiles, 'graph'>;

/**
 * What a worker derives its {@link TextModelSpec} from, with the signature of the graph it
 * loaded (so that no session is created on the calling thread): plain data.
 */
export interface TextModelSource {
  readonly files: TextModelMeta;
  readonly options: Options;
  readonly input: readonly ModelColumn[];
  readonly output: readonly ModelColumn[];
}

/** Option keys of text models (besides the common ones and `path`). */
export const TEXT_MODEL_OPTIONS = ['pooling', 'normalize', 'max-length'] as const;

/** Default maximum length when neither tokenizer_config.json nor config.json gives one. */
const FALLBACK_MAX_LENGTH = 512;
/** `model_max_length` values above this are transformers' "no limit" sentinel. */
const SANE_MAX_LENGTH = 1_000_000;
/**
 * The largest `max_position_embeddings` config.json may give: 2^20 (1,048,576), above the
 * longest context of any text model (a few hundred thousand tokens); larger is 22023.
 */
export const MAX_POSITION_EMBEDDINGS = 1_048_576;

type Options = readonly (readonly [string, string])[];

/**
 * Checks a model directory against its options and declared columns, and derives the spec.
 *
 * @throws ModelSqlError 42804 graph or column mismatch; 22023 bad option value, or a
 *   config.json / tokenizer.json value out of its range (`id2label` keys, `max_position_embeddings`,
 *   `pad_token_id`, token ids); 0A000 unsupported tokenizer.
 */
export function textModel(files: TextModelMeta, options: Options, signature: OnnxSignature, input?: readonly ModelColumn[], output?: readonly ModelColumn[]): TextModel {
  const inputs = graphInputs(signature);
  const target = graphOutput(signature, taskOf(options));
  const task = target.task;
  const largestId = largestTokenId(files.tokenizer);
  const maxLength = maxLengthOf(files, options);
  const labels = task === 'classification' ? labelsOf(files.config, target.value, signature) : [];
  const tokenizer = new TextTokenizer(files.tokenizer, files.tokenizerConfig, maxLength);
  const columns = input && output ? checkColumns(task, input, output) : defaultColumns(task);
  const spec: TextModelSpec = {
    task,
    tokenizer: files.tokenizer,
    tokenizerConfig: files.tokenizerConfig,
    maxLength,
    padId: padIdOf(files, tokenizer, largestId),
    inputs: inputs.names,
    idType: inputs.idType,
    output: target.value.name,
    pooled: target.pooled,
    pooling: poolingOf(files, options),
    normalize: booleanOption(options, 'normalize') ?? files.normalizeModule,
    labels,
    probabilities: columns.output.length > 1,
  };
  return { spec, ...columns };
}

function mismatch(message: string, signature: OnnxSignature): ModelSqlError {
  return new ModelSqlError('42804', `${message}; the graph has ${describeSignature(signature)}`);
}

function graphInputs(signature: OnnxSignature): { names: (typeof TEXT_GRAPH_INPUTS)[number][]; idType: 'int64' | 'int32' } {
  const names: (typeof TEXT_GRAPH_INPUTS)[number][] = [];
  let idType: 'int64' | 'int32' | undefined;
  for (const i of signature.inputs) {
    if (!(TEXT_GRAPH_INPUTS as readonly string[]).includes(i.name)) {
      throw mismatch(`the text model's graph input ${describeValue(i)} is not one of ${TEXT_GRAPH_INPUTS.join(', ')}`, signature);
    }
    if ((i.elementType !== 'int64' && i.elementType !== 'int32') || (i.shape !== null && i.shape.length !== 2)) {
      throw mismatch(`the text model's graph input ${describeValue(i)} is not an int64 or int32 [batch, tokens] tensor`, signature);
    }
    if (idType !== undefined && idType !== i.elementType) throw mismatch(`the text model's graph inputs mix int32 and int64`, signature);
    idType = i.elementType as 'int64' | 'int32';
    names.push(i.name as (typeof TEXT_GRAPH_INPUTS)[number]);
  }
  if (!names.includes('input_ids')) throw mismatch(`a text model's graph needs an input_ids input`, signature);
  return { names, idType: idType! };
}

function taskOf(options: Options): TextTask | undefined {
  const task = getOption(options, 'task')?.trim().toLowerCase();
  if (task === undefined) return undefined;
  if (task !== 'embedding' && task !== 'classification') {
    throw new InvalidOptionError(`a text model's task is 'embedding' or 'classification', not '${task}'`);
  }
  return task;
}

const isFloat = (v: OnnxValueInfo): boolean => v.elementType === 'float32';

/** The graph output a task reads; without a task, the graph decides (logits → classification). */
function graphOutput(signature: OnnxSignature, task: TextTask | undefined): { task: TextTask; value: OnnxValueInfo; pooled: boolean } {
  const named = (name: string): OnnxValueInfo | undefined => signature.outputs.find((o) => o.name === name && isFloat(o));
  const rank = (n: number): OnnxValueInfo | undefined => signature.outputs.find((o) => isFloat(o) && o.shape?.length === n);
  if (task === undefined) task = named('logits') ? 'classification' : 'embedding';
  if (task === 'classification') {
    const value = named('logits') ?? rank(2);
    if (!value || value.shape?.length !== 2) throw mismatch(`a text classification model needs a float32 [batch, classes] output (logits)`, signature);
    return { task, value, pooled: true };
  }
  const tokens = named('last_hidden_state') ?? named('token_embeddings') ?? rank(3);
  if (tokens && tokens.shape?.length === 3) return { task, value: tokens, pooled: false };
  const pooled = named('sentence_embedding') ?? named('pooler_output');
  if (pooled && pooled.shape?.length === 2) return { task, value: pooled, pooled: true };
  throw mismatch(`a text embedding model needs a float32 [batch, tokens, hidden] output (last_hidden_state) or a [batch, hidden] sentence_embedding`, signature);
}

function positiveNumber(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/**
 * The largest token id of tokenizer.json: of its model's vocabulary (an object of ids for
 * WordPiece and BPE, a list for Unigram, whose ids are the positions) and its added tokens.
 * -1 when it has none.
 *
 * @throws ModelSqlError 22023 for an id that is not a non-negative safe integer, naming its token.
 */
export function largestTokenId(tokenizer: Readonly<Record<string, unknown>>): number {
  const model = tokenizer.model as { vocab?: unknown } | null | undefined;
  const vocab = typeof model === 'object' && model !== null ? model.vocab : undefined;
  let largest = -1;
  const take = (token: string, id: unknown, where: string): void => {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new ModelSqlError('22023', `tokenizer.json's ${where} gives the token ${JSON.stringify(token)} the id ${JSON.stringify(id)}; token ids are non-negative integers`);
    }
    if (id > largest) largest = id;
  };
  if (Array.isArray(vocab)) largest = vocab.length - 1;
  else if (typeof vocab === 'object' && vocab !== null) for (const [token, id] of Object.entries(vocab)) take(token, id, 'vocabulary');
  const added = tokenizer.added_tokens;
  if (Array.isArray(added)) {
    for (const t of added) {
      const token = t as { id?: unknown; content?: unknown } | null;
      take(typeof token?.content === 'string' ? token.content : '?', token?.id, 'added_tokens');
    }
  }
  return largest;
}

/**
 * Refuses a tokenizer whose token ids reach past the graph's embedding table (when the
 * graph says how large it is: onnx-embedding-table.ts): every run would fail in the graph.
 *
 * @throws ModelSqlError 42804 naming the largest id and the table's rows.
 */
export function checkVocabulary(files: Pick<TextModelMeta, 'tokenizer'>, table: EmbeddingTable | undefined): void {
  if (table === undefined) return;
  const largest = largestTokenId(files.tokenizer);
  if (largest >= table.rows) {
    throw new ModelSqlError('42804', `tokenizer.json has token ids up to ${largest}, but the graph's embedding table ${JSON.stringify(table.name)} has ${table.rows} rows (ids 0 to ${table.rows - 1}): the tokenizer is not the graph's`);
  }
}

/** config.json's `pad_token_id` (null or absent: undefined), which must be a token id of the vocabulary (0..`largestId`). */
function configPadId(config: Readonly<Record<string, unknown>>, largestId: number): number | undefined {
  const id = config.pad_token_id;
  if (id === undefined || id === null) return undefined;
  return tokenIdIn(id, largestId, `config.json's pad_token_id`);
}

/** `id` when it is a token id of a vocabulary whose largest id is `largestId`; else 22023 naming `what`. */
function tokenIdIn(id: unknown, largestId: number, what: string): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id > largestId) {
    throw new ModelSqlError('22023', `${what} is ${JSON.stringify(id)}, not a token id of the vocabulary (0 to ${largestId})`);
  }
  return id;
}

/** config.json's `max_position_embeddings` (null or absent: undefined): a positive integer up to {@link MAX_POSITION_EMBEDDINGS}. */
function maxPositionsOf(config: Readonly<Record<string, unknown>>): number | undefined {
  const value = config.max_position_embeddings;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_POSITION_EMBEDDINGS) {
    throw new ModelSqlError('22023', `config.json's max_position_embeddings is ${JSON.stringify(value)}; it must be an integer from 1 to ${MAX_POSITION_EMBEDDINGS}`);
  }
  return value;
}

/** The model's maximum length: tokenizer_config's `model_max_length`, else config's `max_position_embeddings`, capped by 'max-length'. */
function maxLengthOf(files: TextModelMeta, options: Options): number {
  const fromTokenizer = positiveNumber(files.tokenizerConfig.model_max_length);
  // config.json's value is read (and checked) only when the tokenizer's does not decide.
  const limit = (fromTokenizer !== undefined && fromTokenizer <= SANE_MAX_LENGTH ? fromTokenizer : undefined) ?? maxPositionsOf(files.config) ?? FALLBACK_MAX_LENGTH;
  const option = getOption(options, 'max-length');
  if (option === undefined) return limit;
  if (!/^[1-9][0-9]*$/.test(option.trim())) throw new InvalidOptionError(`option 'max-length' must be a positive integer, not '${option}'`);
  const n = Number(option);
  if (n > limit) throw new InvalidOptionError(`option 'max-length' is ${n}, more than the model's maximum length ${limit}`);
  return n;
}

function poolingOf(files: TextModelMeta, options: Options): Pooling {
  const option = getOption(options, 'pooling')?.trim().toLowerCase();
  if (option !== undefined) {
    if (option !== 'mean' && option !== 'cls') throw new InvalidOptionError(`option 'pooling' is 'mean' or 'cls', not '${option}'`);
    return option;
  }
  return files.pooling?.pooling_mode_cls_token === true ? 'cls' : 'mean';
}

function booleanOption(options: Options, key: string): boolean | undefined {
  const value = getOption(options, key)?.trim().toLowerCase();
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw new InvalidOptionError(`option '${key}' is 'true' or 'false', not '${value}'`);
  return value === 'true';
}

/**
 * The padding id: tokenizer.json's `padding.pad_id`, else tokenizer_config's `pad_token`, else
 * config.json's `pad_token_id`, else 0; the one chosen must be a token id of the vocabulary
 * (one not used, such as a `pad_token_id` of -1 behind a tokenizer's own, is not checked).
 */
function padIdOf(files: TextModelMeta, tokenizer: TextTokenizer, largestId: number): number {
  const padding = files.tokenizer.padding as { pad_id?: unknown } | null | undefined;
  const padId = typeof padding === 'object' && padding !== null ? padding.pad_id : undefined;
  const fromPadding = padId === undefined || padId === null ? undefined : tokenIdIn(padId, largestId, `tokenizer.json's padding.pad_id`);
  const token = files.tokenizerConfig.pad_token;
  const fromToken = typeof token === 'string' ? tokenizer.tokenId(token) : undefined;
  return fromPadding ?? fromToken ?? configPadId(files.config, largestId) ?? 0;
}

function labelsOf(config: Readonly<Record<string, unknown>>, logits: OnnxValueInfo, signature: OnnxSignature): string[] {
  const classes = typeof logits.shape?.[1] === 'number' ? logits.shape[1] : undefined;
  const id2label = config.id2label;
  if (id2label === undefined || id2label === null) {
    if (classes === undefined) throw mismatch(`config.json has no id2label and the logits output does not say how many classes there are`, signature);
    return Array.from({ length: classes }, (_, i) => `LABEL_${i}`);
  }
  if (typeof id2label !== 'object' || Array.isArray(id2label)) throw new ModelSqlError('22023', `config.json's id2label is not an object`);
  const entries = Object.entries(id2label as Record<string, unknown>);
  const labels = new Array<string>(entries.length);
  for (const [key, value] of entries) {
    // Keys are class indexes written as Python writes them ("0", "1", ...): "00", "1.0", "-1" or " 1" is none.
    const index = /^(0|[1-9][0-9]*)$/.test(key) ? Number(key) : NaN;
    if (!(index < entries.length) || typeof value !== 'string') {
      throw new ModelSqlError('22023', `config.json's id2label must map the class indexes 0..${entries.length - 1} ("0", "1", ...) to label strings; found ${JSON.stringify(key)}: ${JSON.stringify(value)}`);
    }
    labels[index] = value;
  }
  if (classes !== undefined && classes !== labels.length) throw mismatch(`config.json's id2label has ${labels.length} labels but the logits output has ${classes} classes`, signature);
  return labels;
}

const category = (type: string): string => {
  const t = parseDataType(type);
  return typeCategory(t) === 'array' ? `array:${typeCategory(t.elements![0]!)}` : typeCategory(t);
};

function checkColumns(task: TextTask, input: readonly ModelColumn[], output: readonly ModelColumn[]): { input: readonly ModelColumn[]; output: readonly ModelColumn[] } {
  const list = (cols: readonly ModelColumn[]): string => cols.map((c) => `${c.name} ${c.type}`).join(', ');
  if (input.length !== 1 || category(input[0]!.type) !== 'string') {
    throw new ModelSqlError('42804', `a text model takes one STRING INPUT column, not (${list(input)})`);
  }
  if (task === 'embedding') {
    if (output.length !== 1 || category(output[0]!.type) !== 'array:float') {
      throw new ModelSqlError('42804', `a text embedding model gives one ARRAY<FLOAT> OUTPUT column, not (${list(output)})`);
    }
  } else if (output.length < 1 || output.length > 2 || category(output[0]!.type) !== 'string' || (output[1] !== undefined && category(output[1].type) !== 'array:float')) {
    throw new ModelSqlError('42804', `a text classification model gives a label STRING OUTPUT column, optionally followed by probabilities ARRAY<FLOAT>, not (${list(output)})`);
  }
  return { input, output };
}

function defaultColumns(task: TextTask): { input: readonly ModelColumn[]; output: readonly ModelColumn[] } {
  const input = [{ name: 'text', type: 'STRING' }];
  return task === 'embedding'
    ? { input, output: [{ name: 'embedding', type: 'ARRAY<FLOAT>' }] }
    : { input, output: [{ name: 'label', type: 'STRING' }, { name: 'probabilities', type: 'ARRAY<FLOAT>' }] };
}
