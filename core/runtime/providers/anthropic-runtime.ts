/**
 * The `anthropic` provider over the official `@anthropic-ai/sdk`: the Messages API,
 * `POST {endpoint}/v1/messages` (https://docs.claude.com/en/api/messages). Structured
 * output goes in `output_config.format` (`{"type": "json_schema", "schema": ...}`).
 * Errors: https://docs.claude.com/en/api/errors — body `{"type": "error", "error":
 * {"type", "message"}}`; 429 `rate_limit_error` with `retry-after`, 529 `overloaded_error`.
 * Anthropic has no embeddings API: an ARRAY<FLOAT> OUTPUT is refused at CREATE.
 *
 * The SDK's own retries are off (`maxRetries: 0`): the executor retries. Requests go
 * through the access policy's fetch, over keep-alive `node:http` (providers/http-fetch.ts).
 */
import Anthropic, { APIError } from '@anthropic-ai/sdk';
import { routeConsole, sdkLogger } from '../../logging.js';
import { RemoteRuntime } from '../remote-executor.js';
import { PromptCodec } from './prompt-codec.js';
import { classifyHttpError, MalformedReply, retryAfterFromHeaders, transportFailure, type FailureInfo, type ProviderClient, type ProviderReply, type ProviderRequest } from './provider-client.js';
import { REMOTE_DEFAULTS, type RemoteModelConfig } from './remote-options.js';

/**
 * One Claude model behind the {@link ProviderClient} interface.
 *
 * @example
 * const client = new AnthropicClient(config, apiKey, policy.fetch);
 */
export class AnthropicClient implements ProviderClient {
  readonly provider = 'anthropic' as const;
  private readonly sdk: Anthropic;

  constructor(
    private readonly config: RemoteModelConfig,
    apiKey: string,
    /** Every request goes through it: the access policy's checked fetch (core/runtime/access-policy.ts). */
    fetchFn: typeof fetch,
  ) {
    // The SDK's logger and its console warnings (model deprecation, per request) go to modelsql's log.
    this.sdk = routeConsole('anthropic', () => new Anthropic({ apiKey, baseURL: config.baseUrl, maxRetries: 0, timeout: config.timeoutMs * 2, fetch: fetchFn, logger: sdkLogger('anthropic'), logLevel: 'warn' }));
  }

  async send(request: ProviderRequest, signal: AbortSignal): Promise<ProviderReply> {
    const c = this.config;
    const message = await routeConsole('anthropic', () => this.sdk.messages.create(
      {
        model: c.model,
        // The Messages API requires max_tokens.
        max_tokens: c.maxTokens ?? REMOTE_DEFAULTS.anthropicMaxTokens,
        system: c.systemPrompt,
        messages: [{ role: 'user', content: request.message ?? '' }],
        ...(c.temperature !== undefined ? { temperature: Math.min(1, c.temperature) } : {}),
        ...(c.topP !== undefined ? { top_p: c.topP } : {}),
        ...(c.stop !== undefined ? { stop_sequences: [...c.stop] } : {}),
        ...(request.schema ? { output_config: { format: { type: 'json_schema' as const, schema: request.schema } } } : {}),
      },
      { signal },
    ));
    const text = (message.content ?? [])
      .filter((block): block is Extract<typeof block, { type: 'text' }> => block.type === 'text')
      .map((block) => block.text)
      .join('');
    if (!Array.isArray(message.content)) throw new MalformedReply('the message has no content');
    return { text, tokens: (message.usage?.input_tokens ?? 0) + (message.usage?.output_tokens ?? 0) };
  }

  describeError(error: unknown): FailureInfo {
    if (error instanceof APIError && typeof error.status === 'number') {
      const body = error.error as { error?: { type?: string; message?: string } } | undefined;
      const message = body?.error?.message ? `${error.status} ${body.error.type ?? 'error'}: ${body.error.message}` : error.message;
      return { message, ...classifyHttpError(error.status, message, body?.error?.type), retryAfterMs: retryAfterFromHeaders(error.headers) };
    }
    return transportFailure(error);
  }
}

/** Creates the runtime of an `anthropic` model. */
export function createAnthropicRuntime(config: RemoteModelConfig, apiKey: string, inputCount: number, fetchFn: typeof fetch): RemoteRuntime {
  return new RemoteRuntime(config, new AnthropicClient(config, apiKey, fetchFn), inputCount, new PromptCodec(config));
}
