/**
 * `prompt` templates over a remote model's INPUT columns (SPEC §2.2):
 * `'prompt' = 'Review of {product}: {text}'`. `{name}` is replaced by the value of INPUT
 * column `name` (matched case-insensitively); `{{` and `}}` are literal braces. Without a
 * template, a single input is sent as it is, and several as `name: value` lines.
 */
import { InvalidOptionError } from '../../errors.js';
import type { ModelColumn } from '../../model-types.js';

/** A parsed template. */
export interface PromptTemplate {
  /** The template text, or undefined for the default rendering. */
  readonly source?: string;
  /** The prompt for one row (values in INPUT order); undefined when an input is NULL. */
  render(values: readonly unknown[]): string | undefined;
}

type Piece = { readonly text: string } | { readonly column: number };

/**
 * Parses a template against the model's INPUT columns.
 *
 * @example parsePromptTemplate('Review of {product}: {text}', input).render(['lamp', 'bright']) // 'Review of lamp: bright'
 * @throws InvalidOptionError (22023) for an unknown column or an unbalanced brace.
 */
export function parsePromptTemplate(source: string | undefined, input: readonly ModelColumn[]): PromptTemplate {
  if (source === undefined) {
    return {
      render: (values) => {
        if (values.some((v) => v === null || v === undefined)) return undefined;
        if (values.length === 1) return valueText(values[0]);
        return values.map((v, i) => `${input[i]!.name}: ${valueText(v)}`).join('\n');
      },
    };
  }
  const pieces: Piece[] = [];
  let text = '';
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if ((ch === '{' || ch === '}') && source[i + 1] === ch) {
      text += ch;
      i++;
      continue;
    }
    if (ch === '}') throw new InvalidOptionError(`option 'prompt' has an unmatched '}' at character ${i + 1}; write '}}' for a literal brace`);
    if (ch !== '{') {
      text += ch;
      continue;
    }
    const end = source.indexOf('}', i);
    if (end < 0) throw new InvalidOptionError(`option 'prompt' has an unmatched '{' at character ${i + 1}; write '{{' for a literal brace`);
    const name = source.slice(i + 1, end).trim();
    const column = input.findIndex((c) => c.name.toLowerCase() === name.toLowerCase());
    if (column < 0) {
      throw new InvalidOptionError(`option 'prompt' names {${name}}, which is not an INPUT column; INPUT columns: ${input.map((c) => c.name).join(', ')}`);
    }
    if (text) pieces.push({ text });
    text = '';
    pieces.push({ column });
    i = end;
  }
  if (text) pieces.push({ text });
  return {
    source,
    render: (values) => {
      if (values.some((v) => v === null || v === undefined)) return undefined;
      return pieces.map((p) => ('text' in p ? p.text : valueText(values[p.column]))).join('');
    },
  };
}

/** A value as prompt text: strings as they are, everything else as JSON. */
export function valueText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  if (ArrayBuffer.isView(value)) return JSON.stringify(Array.from(value as unknown as ArrayLike<number>));
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** Rough token count used by `max-context-size`: about four characters per token. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * Applies `max-context-size` with Flink's `context-overflow-action`: `TRUNCATED_TAIL`
 * keeps the start, `TRUNCATED_HEAD` the end, `SKIPPED` drops the row (undefined: NULL
 * outputs). The `_LOG` variants act the same (modelsql counts them in the run's errors
 * instead of logging). Tokens are estimated ({@link estimateTokens}).
 */
export function fitContext(text: string, maxContextSize: number | undefined, action: string): { readonly text?: string; readonly overflowed: boolean } {
  if (maxContextSize === undefined || estimateTokens(text) <= maxContextSize) return { text, overflowed: false };
  const chars = maxContextSize * 4;
  if (action.startsWith('SKIPPED')) return { overflowed: true };
  if (action.startsWith('TRUNCATED_HEAD')) return { text: text.slice(text.length - chars), overflowed: true };
  return { text: text.slice(0, chars), overflowed: true };
}
