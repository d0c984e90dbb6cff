/**
 * The small interface each provider file implements over its SDK (`openai-runtime.ts`,
 * `gemini-runtime.ts`, `anthropic-runtime.ts`): send one request, and say what an error
 * means. Everything else (prompts, packing, retries, timeouts, concurrency, strategies,
 * the cache) is written once, in `remote-executor.ts`.
 */

/** One request: several rows when packed. */
export interface ProviderRequest {
  /**
   * Chat: the user message (one for the whole request). Embeddings: unused.
   */
  readonly message?: string;
  /** Embeddings: the texts to embed, one per row. */
  readonly texts?: readonly string[];
  /** Model servers: each row's input values, in INPUT order. */
  readonly rows?: readonly (readonly unknown[])[];
  /** A JSON schema the answer must follow (structured output or a packed request). */
  readonly schema?: Record<string, unknown>;
}

/** What a provider answered. */
export interface ProviderReply {
  /** Chat: the answer text. */
  readonly text?: string;
  /** Embeddings: one vector per text, in order. */
  readonly vectors?: readonly (readonly number[])[];
  /** Model servers: the parsed response body. */
  readonly body?: unknown;
  /** Tokens the provider reported for the request (0 when it reports none). */
  readonly tokens: number;
}

/** What an error from the SDK means. */
export interface FailureInfo {
  /** A one-line message, without secrets. */
  readonly message: string;
  /** The HTTP status, when the provider answered. */
  readonly status?: number;
  /** Whether trying again may help (429, 5xx, timeouts, connection errors, malformed bodies). */
  readonly retryable: boolean;
  /** Whether the request was too large for the model's context (pack halving helps). */
  readonly contextOverflow: boolean;
  /** How long the provider asked us to wait (`Retry-After`, `retry-after-ms`, Gemini's `RetryInfo`). */
  readonly retryAfterMs?: number;
}

/** One provider's SDK behind a uniform call. */
export interface ProviderClient {
  /** The provider's name (`openai`, `triton`, ...). */
  readonly provider: string;
  /** Sends one request; rejects with the SDK's error (see {@link describeError}). */
  send(request: ProviderRequest, signal: AbortSignal): Promise<ProviderReply>;
  /** What an error thrown by `send` means. */
  describeError(error: unknown): FailureInfo;
  /** Told when the executor aborted a request for running past its timeout (a model server's circuit breaker counts it). */
  timedOut?(): void;
}

/** HTTP statuses worth retrying: timeouts, conflicts, rate limits, server errors, Anthropic's 529. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 409, 425, 429, 500, 502, 503, 504, 529]);

/** Messages providers use for a prompt longer than the model's context. */
const OVERFLOW = /context[_ ]length|context window|maximum context|too many tokens|prompt is too long|input is too long|exceeds the maximum (number of )?tokens|token limit/i;

/**
 * The common part of classifying an HTTP error: retryable by status, context overflow by
 * code or message (OpenAI's `context_length_exceeded`, 413 request too large).
 */
export function classifyHttpError(status: number | undefined, message: string, code?: string | null): Omit<FailureInfo, 'message' | 'retryAfterMs'> {
  if (status === undefined) return { retryable: true, contextOverflow: false };
  const overflow = status === 413 || ((status === 400 || status === 422) && (code === 'context_length_exceeded' || OVERFLOW.test(message)));
  return { status, retryable: !overflow && RETRYABLE_STATUSES.has(status), contextOverflow: overflow };
}

/**
 * Milliseconds to wait from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or an
 * HTTP date, https://www.rfc-editor.org/rfc/rfc9110#field.retry-after).
 */
export function retryAfterFromHeaders(headers: { get(name: string): string | null } | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The instruction that goes with a packed request (several rows in one message). */
export function packedMessage(prompts: readonly string[], structured: boolean): string {
  return [
    `Answer each of the ${prompts.length} inputs below separately${structured ? ', each as a JSON object of the requested fields' : ''}.`,
    `Reply with a JSON object {"answers": [...]} holding exactly ${prompts.length} answers, in the same order as the inputs.`,
    '',
    'Inputs:',
    JSON.stringify(prompts),
  ].join('\n');
}

/** The instruction that goes with one structured-output request. */
export function structuredMessage(prompt: string, schema: Record<string, unknown>): string {
  return `${prompt}\n\nReply with a JSON object only, matching this JSON schema:\n${JSON.stringify(schema)}`;
}

/** A reply the SDK accepted but that lacks what the API promises. */
export class MalformedReply extends Error {}

/**
 * A well-formed reply that cannot fit the model's OUTPUT (a model server's tensors of
 * another name, type or shape): asking again gives the same answer, so it is not retried.
 */
export class MismatchedReply extends Error {}

/** A failure without an HTTP status: connection reset, malformed body, timeout inside the SDK. */
export function transportFailure(error: unknown): FailureInfo {
  if (error instanceof SyntaxError) return { message: `malformed response body: ${error.message}`, retryable: true, contextOverflow: false };
  if (error instanceof MalformedReply) return { message: error.message, retryable: true, contextOverflow: false };
  const e = error as { message?: string; cause?: { message?: string; code?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return { message: `${e?.message ?? String(error)}${cause ? ` (${cause})` : ''}`, retryable: true, contextOverflow: false };
}
