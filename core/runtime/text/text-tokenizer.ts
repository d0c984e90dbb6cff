/**
 * Tokenization of local text models with `@huggingface/tokenizers` (tokenizers.js, the
 * tokenizer library of transformers.js: pure JavaScript, no dependencies, reads a
 * `tokenizer.json` as is). Supported tokenizer models: WordPiece, BPE and Unigram.
 *
 * Truncation follows Python transformers' `truncation=True` for one sequence: the text's
 * tokens are cut to `maxLength` minus the special tokens the post-processor adds, then the
 * special tokens are added (`[CLS] … [SEP]` keeps its `[SEP]`).
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelSqlError, UnsupportedFeatureError } from '../../errors.js';

/** Tokenizer model types this build runs. */
export const TOKENIZER_MODEL_TYPES = ['WordPiece', 'BPE', 'Unigram'] as const;

/** One encoded text. */
export interface EncodedText {
  readonly ids: readonly number[];
  /** Segment ids (all 0 for one sequence with BERT's template). */
  readonly typeIds: readonly number[];
}

/**
 * A tokenizer that truncates at a maximum length.
 *
 * @example
 * const t = new TextTokenizer(tokenizerJson, tokenizerConfig, 128);
 * t.encode('hello world'); // { ids: [2, 7, 8, 3], typeIds: [0, 0, 0, 0] }
 */
export class TextTokenizer {
  readonly #tokenizer: Tokenizer;
  readonly #maxLength: number;
  /** Special tokens the post-processor adds to one sequence. */
  readonly #specials: number;
  readonly #unk: number;

  /**
   * @throws UnsupportedFeatureError (0A000) for a tokenizer model other than
   *   {@link TOKENIZER_MODEL_TYPES} or a component tokenizers.js does not know;
   *   ModelSqlError 22023 for a tokenizer.json it cannot read.
   */
  constructor(tokenizerJson: Readonly<Record<string, unknown>>, tokenizerConfig: Readonly<Record<string, unknown>>, maxLength: number) {
    const model = tokenizerJson.model as { type?: unknown } | undefined;
    const type = typeof model?.type === 'string' ? model.type : undefined;
    if (type === undefined || !(TOKENIZER_MODEL_TYPES as readonly string[]).includes(type)) {
      throw new UnsupportedFeatureError(`unsupported tokenizer type ${type === undefined ? '(none given in tokenizer.json "model.type")' : `'${type}'`}; supported: ${TOKENIZER_MODEL_TYPES.join(', ')}`);
    }
    this.#tokenizer = quietly(() => new Tokenizer(tokenizerJson, tokenizerConfig));
    this.#maxLength = maxLength;
    this.#specials = this.#withSpecials([]).tokens.length;
    if (this.#specials >= maxLength) throw new ModelSqlError('22023', `the maximum length ${maxLength} leaves no room for text after the tokenizer's ${this.#specials} special tokens`);
    const unk = (this.#tokenizer.model as unknown as { unk_token_id?: number } | null)?.unk_token_id;
    this.#unk = typeof unk === 'number' ? unk : 0;
  }

  /** Token id of `token`, if the vocabulary has it. */
  tokenId(token: string): number | undefined {
    return this.#tokenizer.token_to_id(token);
  }

  /** Encodes one text with special tokens, truncated to the maximum length. */
  encode(text: string): EncodedText {
    let tokens = this.#tokenizer.tokenize(text, { add_special_tokens: false });
    const room = this.#maxLength - this.#specials;
    if (tokens.length > room) tokens = tokens.slice(0, room);
    const out = this.#withSpecials(tokens);
    return { ids: out.tokens.map((t) => this.#tokenizer.token_to_id(t) ?? this.#unk), typeIds: out.token_type_ids ?? new Array<number>(out.tokens.length).fill(0) };
  }

  #withSpecials(tokens: string[]): { tokens: string[]; token_type_ids?: number[] } {
    const post = this.#tokenizer.post_processor as unknown as ((a: string[], b: null, add: boolean) => { tokens: string[]; token_type_ids?: number[] }) | null;
    return post ? post(tokens, null, true) : { tokens };
  }
}

/**
 * Runs `build` with `console.warn` captured: tokenizers.js warns (instead of failing) on
 * parts of a tokenizer.json it does not know; here that is an error, and nothing is printed.
 */
function quietly<T>(build: () => T): T {
  const warned: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => void warned.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
  let result: T;
  try {
    result = build();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw /^Unknown /.test(reason) ? new UnsupportedFeatureError(`tokenizer.json is not supported: ${reason}`) : new ModelSqlError('22023', `tokenizer.json cannot be read: ${reason}`, { cause: error });
  } finally {
    console.warn = original;
  }
  if (warned.length > 0) throw new UnsupportedFeatureError(`tokenizer.json is not supported: ${warned[0]}`);
  return result;
}
