/**
 * The `openai` provider over the official `openai` SDK: chat completions
 * (`POST {endpoint}/chat/completions`) and embeddings (`POST {endpoint}/embeddings`), on
 * api.openai.com or any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LiteLLM) via
 * `endpoint`. API reference: https://platform.openai.com/docs/api-reference/chat/create,
 * https://platform.openai.com/docs/api-reference/embeddings/create; errors:
 * https://platform.openai.com/docs/guides/error-codes (body `{"error": {"message",
 * "type", "param", "code"}}`, `retry-after` / `retry-after-ms` headers on 429).
 *
 * The SDK's own retries are off (`maxRetries: 0`): the executor retries. Requests go
 * through the access policy's fetch, over keep-alive `node:http` (providers/http-fetch.ts).
 */
import OpenAI from 'openai';
import { routeConsole, sdkLogger } from '../../logging.js';
import { RemoteRuntime } from '../remote-executor.js';
import { PromptCodec } from './prompt-codec.js';
import { classifyHttpError, MalformedReply, retryAfterFromHeaders, transportFailure, type FailureInfo, type ProviderClient, type ProviderReply, type ProviderRequest } from './provider-client.js';
import type { RemoteModelConfig } from './remote-options.js';

/**
 * One OpenAI (or compatible) model behind the {@link ProviderClient} interface.
 *
 * @example
 * const client = new OpenAIClient(config, apiKey, policy.fetch);
 * const reply = await client.send({ message: 'Hello' }, signal);
 */
export class OpenAIClient implements ProviderClient {
  readonly provider = 'openai' as const;
  private readonly sdk: OpenAI;

  constructor(
    private readonly config: RemoteModelConfig,
    apiKey: string,
    /** Every request goes through it: the access policy's checked fetch (core/runtime/access-policy.ts). */
    fetchFn: typeof fetch,
  ) {
    // The SDK's logger and any console warnings go to modelsql's log.
    this.sdk = routeConsole('openai', () => new OpenAI({ apiKey, baseURL: config.baseUrl, maxRetries: 0, timeout: config.timeoutMs * 2, fetch: fetchFn, logger: sdkLogger('openai'), logLevel: 'warn' }));
  }

  async send(request: ProviderRequest, signal: AbortSignal): Promise<ProviderReply> {
    const c = this.config;
    if (request.texts) {
      const response = await routeConsole('openai', () =>
        this.sdk.embeddings.create(
          { model: c.model, input: [...request.texts!], encoding_format: 'float', ...(c.dimension !== undefined ? { dimensions: c.dimension } : {}) },
          { signal },
        ),
      );
      return { vectors: inInputOrder(response.data, request.texts.length) as (readonly number[])[], tokens: response.usage?.total_tokens ?? 0 };
    }
    const responseFormat = request.schema
      ? ({ type: 'json_schema', json_schema: { name: 'answer', schema: request.schema, strict: true } } as const)
      : c.responseFormat
        ? ({ type: c.responseFormat } as const)
        : undefined;
    const completion = await routeConsole('openai', () => this.sdk.chat.completions.create(
      {
        model: c.model,
        messages: [
          { role: 'system', content: c.systemPrompt },
          { role: 'user', content: request.message ?? '' },
        ],
        ...(c.temperature !== undefined ? { temperature: c.temperature } : {}),
        ...(c.topP !== undefined ? { top_p: c.topP } : {}),
        ...(c.stop !== undefined ? { stop: [...c.stop] } : {}),
        ...(c.maxTokens !== undefined ? { max_tokens: c.maxTokens } : {}),
        ...(c.presencePenalty !== undefined ? { presence_penalty: c.presencePenalty } : {}),
        ...(c.frequencyPenalty !== undefined ? { frequency_penalty: c.frequencyPenalty } : {}),
        ...(c.seed !== undefined ? { seed: c.seed } : {}),
        ...(responseFormat ? { response_format: responseFormat } : {}),
      },
      { signal },
    ));
    const text = completion.choices?.[0]?.message?.content;
    if (typeof text !== 'string') throw new MalformedReply(`the chat completion has no message content`);
    return { text, tokens: completion.usage?.total_tokens ?? 0 };
  }

  describeError(error: unknown): FailureInfo {
    if (error instanceof OpenAI.APIError && error.status !== undefined) {
      const body = error.error as { message?: unknown } | undefined;
      const message = typeof body?.message === 'string' ? `${error.status} ${body.message}` : error.message;
      return {
        message,
        ...classifyHttpError(error.status, message, typeof error.code === 'string' ? error.code : null),
        retryAfterMs: retryAfterFromHeaders(error.headers),
      };
    }
    return transportFailure(error);
  }
}

/**
 * The embeddings of a reply in the order of the texts sent: each item's `index` names its
 * text. Indexes that are not each of `0 … count-1` exactly once (a repeated, missing or
 * out-of-range index, or none) would put a vector on another row: the reply is malformed
 * (a wrong number of items is left to the codec, which halves the pack).
 *
 * @throws MalformedReply
 */
function inInputOrder(data: readonly { readonly index: unknown; readonly embedding: unknown }[] | undefined, count: number): unknown[] {
  if (!Array.isArray(data)) throw new MalformedReply('the embeddings response has no "data" list');
  if (data.length !== count) return data.map((d) => d?.embedding);
  const vectors = new Array<unknown>(count);
  const seen = new Array<boolean>(count).fill(false);
  for (const d of data) {
    const i = d?.index;
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= count || seen[i]) {
      throw new MalformedReply(`the embeddings response's indexes are not each of 0 to ${count - 1} once (got ${JSON.stringify(data.map((x) => x?.index)).slice(0, 120)})`);
    }
    seen[i] = true;
    vectors[i] = d.embedding;
  }
  return vectors;
}

/** Creates the runtime of an `openai` model. */
export function createOpenAIRuntime(config: RemoteModelConfig, apiKey: string, inputCount: number, fetchFn: typeof fetch): RemoteRuntime {
  return new RemoteRuntime(config, new OpenAIClient(config, apiKey, fetchFn), inputCount, new PromptCodec(config));
}
