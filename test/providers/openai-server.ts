/**
 * A loopback server speaking the OpenAI HTTP API (chat completions and embeddings, streaming
 * off), for driving the unmodified `openai` SDK through `baseURL`. Bodies follow
 * https://platform.openai.com/docs/api-reference/chat/object and
 * https://platform.openai.com/docs/api-reference/embeddings/object; errors are
 * `{"error": {"message", "type", "param", "code"}}` with `retry-after` on 429
 * (https://platform.openai.com/docs/guides/error-codes).
 */
import { answersFor, packedPrompts, startLoopback, structuredPrompt, type LoopbackOptions, type LoopbackServer, type ProviderProtocol } from './loopback-server.js';

interface ChatBody {
  readonly model: string;
  readonly messages: readonly { role: string; content: string }[];
  readonly response_format?: { type: string; json_schema?: { schema?: Record<string, unknown> } };
}

interface EmbeddingBody {
  readonly model: string;
  readonly input: string | readonly string[];
  readonly encoding_format?: 'float' | 'base64';
  readonly dimensions?: number;
}

/** A deterministic embedding of `text` with `dims` components. */
export function fakeEmbedding(text: string, dims = 4): number[] {
  const out: number[] = [];
  for (let i = 0; i < dims; i++) out.push(((text.length * (i + 1) + (text.charCodeAt(i % Math.max(1, text.length)) || 0)) % 97) / 97);
  return out;
}

const tokens = (text: string): number => Math.ceil(text.length / 4);

const OPENAI: ProviderProtocol = {
  prompts(path, body) {
    if (path === '/v1/chat/completions') {
      const b = body as ChatBody;
      const user = b.messages.filter((m) => m.role === 'user').map((m) => m.content).join('\n');
      return packedPrompts(user) ?? [structuredPrompt(user)];
    }
    if (path === '/v1/embeddings') {
      const input = (body as EmbeddingBody).input;
      return typeof input === 'string' ? [input] : [...input];
    }
    return undefined;
  },
  authorized: (headers, key) => headers.authorization === `Bearer ${key}`,
  keyOf: (headers) => String(headers.authorization ?? '').replace(/^Bearer /, ''),
  answer(path, body, prompts, answer, dropOne) {
    if (path === '/v1/embeddings') {
      const b = body as EmbeddingBody;
      const data = prompts.map((p, index) => {
        const vector = fakeEmbedding(p, b.dimensions ?? 4);
        const embedding = b.encoding_format === 'base64' ? Buffer.from(Float32Array.from(vector).buffer).toString('base64') : vector;
        return { object: 'embedding', index, embedding };
      });
      if (dropOne) data.pop();
      const used = prompts.reduce((n, p) => n + tokens(p), 0);
      return { object: 'list', data, model: b.model, usage: { prompt_tokens: used, total_tokens: used } };
    }
    const b = body as ChatBody;
    const user = b.messages.filter((m) => m.role === 'user').map((m) => m.content).join('\n');
    const schema = b.response_format?.type === 'json_schema' ? b.response_format.json_schema?.schema : undefined;
    const content = answersFor(prompts, schema, answer, packedPrompts(user) !== undefined, dropOne);
    const promptTokens = b.messages.reduce((n, m) => n + tokens(m.content), 0);
    return {
      id: `chatcmpl-${Math.random().toString(36).slice(2)}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: b.model,
      choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: promptTokens, completion_tokens: tokens(content), total_tokens: promptTokens + tokens(content) },
    };
  },
  error(status, message, code) {
    const type = status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error';
    return { body: { error: { message, type, param: null, code: code ?? (status === 429 ? 'rate_limit_exceeded' : null) } } };
  },
  contextError: () => ({
    status: 400,
    body: {
      error: {
        message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
        type: 'invalid_request_error',
        param: 'messages',
        code: 'context_length_exceeded',
      },
    },
  }),
  unauthorized: (key) => ({
    status: 401,
    body: { error: { message: `Incorrect API key provided: ${key}. You can find your API key at https://platform.openai.com/account/api-keys.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } },
  }),
};

/**
 * Starts an OpenAI-compatible loopback server; its `url` + `/v1` is the SDK's `baseURL`.
 *
 * @example
 * const server = await startOpenAIServer({ apiKey: 'sk-test' });
 * // CREATE MODEL m ... WITH ('provider'='openai', 'endpoint'='${server.url}/v1/chat/completions', ...)
 */
export function startOpenAIServer(options: LoopbackOptions = {}): Promise<LoopbackServer> {
  return startLoopback(OPENAI, options);
}
