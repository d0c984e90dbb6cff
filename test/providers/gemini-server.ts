/**
 * A loopback server speaking the Gemini Developer API (streaming off), for driving the
 * unmodified `@google/genai` SDK through `httpOptions.baseUrl`:
 * `POST /v1beta/models/{model}:generateContent` (https://ai.google.dev/api/generate-content)
 * and `POST /v1beta/models/{model}:batchEmbedContents` (https://ai.google.dev/api/embeddings).
 * Errors are `google.rpc.Status` bodies, `{"error": {"code", "message", "status", "details"}}`;
 * a 429 carries a `google.rpc.RetryInfo` detail.
 */
import { answersFor, packedPrompts, startLoopback, structuredPrompt, type LoopbackOptions, type LoopbackServer, type ProviderProtocol } from './loopback-server.js';
import { fakeEmbedding } from './openai-server.js';

interface GenerateBody {
  readonly contents: readonly { role?: string; parts: readonly { text?: string }[] }[];
  readonly systemInstruction?: { parts: readonly { text?: string }[] };
  readonly generationConfig?: { responseMimeType?: string; responseJsonSchema?: Record<string, unknown>; responseSchema?: Record<string, unknown>; temperature?: number };
}

interface BatchEmbedBody {
  readonly requests: readonly { model: string; content: { parts: readonly { text?: string }[] }; outputDimensionality?: number }[];
}

const STATUS: Readonly<Record<number, string>> = { 400: 'INVALID_ARGUMENT', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };

const userText = (b: GenerateBody): string => b.contents.flatMap((c) => c.parts.map((p) => p.text ?? '')).join('\n');
const tokens = (text: string): number => Math.ceil(text.length / 4);

const GEMINI: ProviderProtocol = {
  prompts(path, body) {
    if (/^\/v1beta\/models\/[^/]+:generateContent$/.test(path)) {
      const text = userText(body as GenerateBody);
      return packedPrompts(text) ?? [structuredPrompt(text)];
    }
    if (/^\/v1beta\/models\/[^/]+:batchEmbedContents$/.test(path)) return (body as BatchEmbedBody).requests.map((r) => r.content.parts.map((p) => p.text ?? '').join(''));
    return undefined;
  },
  authorized: (headers, key) => headers['x-goog-api-key'] === key,
  keyOf: (headers) => String(headers['x-goog-api-key'] ?? ''),
  answer(path, body, prompts, answer, dropOne) {
    if (path.endsWith(':batchEmbedContents')) {
      const b = body as BatchEmbedBody;
      const embeddings = prompts.map((p, i) => ({ values: fakeEmbedding(p, b.requests[i]!.outputDimensionality ?? 4) }));
      if (dropOne) embeddings.pop();
      return { embeddings };
    }
    const b = body as GenerateBody;
    const text = userText(b);
    const schema = b.generationConfig?.responseJsonSchema ?? b.generationConfig?.responseSchema;
    const content = answersFor(prompts, schema, answer, packedPrompts(text) !== undefined, dropOne);
    return {
      candidates: [{ content: { parts: [{ text: content }], role: 'model' }, finishReason: 'STOP', index: 0 }],
      usageMetadata: { promptTokenCount: tokens(text), candidatesTokenCount: tokens(content), totalTokenCount: tokens(text) + tokens(content) },
      modelVersion: 'gemini-loop',
    };
  },
  error(status, message) {
    return { body: { error: { code: status, message, status: STATUS[status] ?? 'UNKNOWN' } } };
  },
  contextError: () => ({
    status: 400,
    body: { error: { code: 400, message: 'The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).', status: 'INVALID_ARGUMENT' } },
  }),
  unauthorized: () => ({
    status: 400,
    body: { error: { code: 400, message: 'API key not valid. Please pass a valid API key.', status: 'INVALID_ARGUMENT', details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID' }] } },
  }),
};

/** A Gemini 429 body with a `RetryInfo` detail asking for `seconds`. */
export function geminiRateLimit(seconds: number): { kind: 'status'; status: 429; message: string } {
  return { kind: 'status', status: 429, message: `Resource has been exhausted (e.g. check quota). retry in ${seconds}s` };
}

/**
 * Starts a Gemini loopback server; its `url` is the SDK's `httpOptions.baseUrl`.
 *
 * @example
 * const server = await startGeminiServer({ apiKey: 'g-test' });
 */
export function startGeminiServer(options: LoopbackOptions & { readonly retryDelaySeconds?: number } = {}): Promise<LoopbackServer> {
  const protocol: ProviderProtocol = {
    ...GEMINI,
    error(status, message) {
      const body = GEMINI.error(status, message).body as { error: Record<string, unknown> };
      if (status === 429 && options.retryDelaySeconds !== undefined) {
        body.error['details'] = [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${options.retryDelaySeconds}s` }];
      }
      return { body };
    },
  };
  return startLoopback(protocol, options);
}
