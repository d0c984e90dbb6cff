/**
 * The `gemini` provider over the official `@google/genai` SDK (Gemini Developer API):
 * `POST {endpoint}/{version}/models/{model}:generateContent` and, for embeddings,
 * `POST .../models/{model}:batchEmbedContents` (the SDK's `embedContent` with several
 * contents). API reference: https://ai.google.dev/api/generate-content,
 * https://ai.google.dev/api/embeddings; errors are `google.rpc.Status` bodies
 * (`{"error": {"code", "message", "status", "details"}}`), a 429 carrying a
 * `google.rpc.RetryInfo` detail with `retryDelay` (https://ai.google.dev/gemini-api/docs/troubleshooting).
 *
 * The SDK does not retry without `retryOptions` (none are given): the executor retries.
 * Its `ApiError` keeps no headers, so a `fetch` wrapper captures `Retry-After`.
 */
import { ApiError, GoogleGenAI } from '@google/genai';
import { routeConsole } from '../../logging.js';
import { RemoteRuntime } from '../remote-executor.js';
import { PromptCodec } from './prompt-codec.js';
import { classifyHttpError, MalformedReply, retryAfterFromHeaders, transportFailure, type FailureInfo, type ProviderClient, type ProviderReply, type ProviderRequest } from './provider-client.js';
import type { RemoteModelConfig } from './remote-options.js';

/** An SDK error with the `Retry-After` its response carried. */
const retryAfterOf = new WeakMap<object, number>();

/**
 * One Gemini model behind the {@link ProviderClient} interface.
 *
 * @example
 * const client = new GeminiClient(config, apiKey, policy.fetch);
 */
export class GeminiClient implements ProviderClient {
  readonly provider = 'gemini' as const;
  private readonly sdk: GoogleGenAI;

  constructor(
    private readonly config: RemoteModelConfig,
    apiKey: string,
    /** Every request goes through it: the access policy's checked fetch (core/runtime/access-policy.ts). */
    private readonly fetchFn: typeof fetch,
  ) {
    // The SDK writes its warnings with console.warn (as `response.text` is read): they go to modelsql's log.
    this.sdk = routeConsole('gemini', () => new GoogleGenAI({ apiKey, httpOptions: { baseUrl: config.baseUrl, ...(config.apiVersion ? { apiVersion: config.apiVersion } : {}) } }));
  }

  async send(request: ProviderRequest, signal: AbortSignal): Promise<ProviderReply> {
    const c = this.config;
    let retryAfter: number | undefined;
    const fetchCapturing = async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]): Promise<Response> => {
      const response = await this.fetchFn(input, init);
      if (!response.ok) retryAfter = retryAfterFromHeaders(response.headers);
      return response;
    };
    const httpOptions = { fetch: fetchCapturing as typeof fetch };
    try {
      if (request.texts) {
        const response = await routeConsole('gemini', () =>
          this.sdk.models.embedContent({
            model: c.model,
            contents: [...request.texts!],
            config: { abortSignal: signal, httpOptions, ...(c.dimension !== undefined ? { outputDimensionality: c.dimension } : {}) },
          }),
        );
        const vectors = (response.embeddings ?? []).map((e) => e.values ?? []);
        return { vectors, tokens: 0 };
      }
      const response = await routeConsole('gemini', () => this.sdk.models.generateContent({
        model: c.model,
        contents: request.message ?? '',
        config: {
          abortSignal: signal,
          httpOptions,
          systemInstruction: c.systemPrompt,
          ...(c.temperature !== undefined ? { temperature: c.temperature } : {}),
          ...(c.topP !== undefined ? { topP: c.topP } : {}),
          ...(c.stop !== undefined ? { stopSequences: [...c.stop] } : {}),
          ...(c.maxTokens !== undefined ? { maxOutputTokens: c.maxTokens } : {}),
          ...(c.presencePenalty !== undefined ? { presencePenalty: c.presencePenalty } : {}),
          ...(c.frequencyPenalty !== undefined ? { frequencyPenalty: c.frequencyPenalty } : {}),
          ...(c.seed !== undefined ? { seed: c.seed } : {}),
          ...(request.schema ? { responseMimeType: 'application/json', responseJsonSchema: request.schema } : c.responseFormat === 'json_object' ? { responseMimeType: 'application/json' } : {}),
        },
      }));
      const text = routeConsole('gemini', () => response.text);
      if (typeof text !== 'string') throw new MalformedReply(`the generateContent response has no text (finishReason ${response.candidates?.[0]?.finishReason ?? 'unknown'})`);
      return { text, tokens: response.usageMetadata?.totalTokenCount ?? 0 };
    } catch (error) {
      if (retryAfter !== undefined && typeof error === 'object' && error !== null) retryAfterOf.set(error, retryAfter);
      throw error;
    }
  }

  describeError(error: unknown): FailureInfo {
    if (error instanceof ApiError) {
      const body = parseStatus(error.message);
      const message = `${error.status} ${body?.message ?? error.message}`;
      return {
        message,
        ...classifyHttpError(error.status, message, body?.status),
        retryAfterMs: retryAfterOf.get(error) ?? body?.retryDelayMs,
      };
    }
    return transportFailure(error);
  }
}

/** The `google.rpc.Status` in an ApiError message (the SDK puts the JSON body there). */
function parseStatus(text: string): { message?: string; status?: string; retryDelayMs?: number } | undefined {
  try {
    const body = JSON.parse(text) as { error?: { message?: string; status?: string; details?: { '@type'?: string; retryDelay?: string }[] } };
    const retry = body.error?.details?.find((d) => d['@type']?.endsWith('google.rpc.RetryInfo'))?.retryDelay;
    const seconds = retry !== undefined ? /^(\d+(?:\.\d+)?)s$/.exec(retry)?.[1] : undefined;
    return { message: body.error?.message, status: body.error?.status, retryDelayMs: seconds !== undefined ? Number(seconds) * 1000 : undefined };
  } catch {
    return undefined;
  }
}

/** Creates the runtime of a `gemini` model. */
export function createGeminiRuntime(config: RemoteModelConfig, apiKey: string, inputCount: number, fetchFn: typeof fetch): RemoteRuntime {
  return new RemoteRuntime(config, new GeminiClient(config, apiKey, fetchFn), inputCount, new PromptCodec(config));
}
