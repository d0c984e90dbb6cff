/**
 * A loopback server speaking the Anthropic Messages API (streaming off), for driving the
 * unmodified `@anthropic-ai/sdk` through `baseURL`: `POST /v1/messages`
 * (https://docs.claude.com/en/api/messages). Errors are `{"type": "error", "error":
 * {"type", "message"}}` with a `request-id` header; 429 `rate_limit_error` carries
 * `retry-after`, 529 is `overloaded_error` (https://docs.claude.com/en/api/errors).
 */
import { answersFor, packedPrompts, startLoopback, structuredPrompt, type LoopbackOptions, type LoopbackServer, type ProviderProtocol } from './loopback-server.js';

interface MessagesBody {
  readonly model: string;
  readonly max_tokens: number;
  readonly system?: string;
  readonly messages: readonly { role: string; content: string | readonly { type: string; text?: string }[] }[];
  readonly output_config?: { format?: { type: string; schema?: Record<string, unknown> } };
}

const TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

const userText = (b: MessagesBody): string =>
  b.messages
    .filter((m) => m.role === 'user')
    .map((m) => (typeof m.content === 'string' ? m.content : m.content.map((c) => c.text ?? '').join('')))
    .join('\n');
const tokens = (text: string): number => Math.ceil(text.length / 4);

const ANTHROPIC: ProviderProtocol = {
  prompts(path, body) {
    if (path !== '/v1/messages') return undefined;
    const text = userText(body as MessagesBody);
    return packedPrompts(text) ?? [structuredPrompt(text)];
  },
  // The SDK sends `Authorization: Bearer` (1.x); the documented header is `x-api-key`.
  authorized: (headers, key) => headers['x-api-key'] === key || headers.authorization === `Bearer ${key}`,
  keyOf: (headers) => String(headers['x-api-key'] ?? String(headers.authorization ?? '').replace(/^Bearer /, '')),
  answer(_path, body, prompts, answer, dropOne) {
    const b = body as MessagesBody;
    const text = userText(b);
    const content = answersFor(prompts, b.output_config?.format?.schema, answer, packedPrompts(text) !== undefined, dropOne);
    return {
      id: `msg_${Math.random().toString(36).slice(2)}`,
      type: 'message',
      role: 'assistant',
      model: b.model,
      content: [{ type: 'text', text: content }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: tokens(text) + tokens(b.system ?? ''), output_tokens: tokens(content) },
    };
  },
  error(status, message) {
    return { body: { type: 'error', error: { type: TYPES[status] ?? 'api_error', message } }, headers: { 'request-id': 'req_loopback' } };
  },
  contextError: () => ({ status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'prompt is too long: 250000 tokens > 200000 maximum' } } }),
  unauthorized: () => ({ status: 401, body: { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } } }),
};

/**
 * Starts an Anthropic loopback server; its `url` is the SDK's `baseURL`.
 *
 * @example
 * const server = await startAnthropicServer({ apiKey: 'sk-ant-test' });
 */
export function startAnthropicServer(options: LoopbackOptions = {}): Promise<LoopbackServer> {
  return startLoopback(ANTHROPIC, options);
}
