/**
 * The pure parts of the remote executor: backoff, Retry-After, error classes, prompt
 * templates, the context limit, and secret redaction.
 */
import { backoffDelay } from '../../core/runtime/remote-executor.js';
import { classifyHttpError, retryAfterFromHeaders } from '../../core/runtime/providers/provider-client.js';
import { fitContext, parsePromptTemplate } from '../../core/runtime/providers/prompt-template.js';
import { maskSecrets, redactSql, registerSecret, splitSecrets } from '../../core/secrets.js';

const headers = (h: Record<string, string>) => ({ get: (name: string) => h[name] ?? null });

describe('backoff', () => {
  it('grows exponentially with equal jitter, capped', () => {
    expect(backoffDelay(1, 500, 30_000, undefined, () => 0)).toBe(250);
    expect(backoffDelay(1, 500, 30_000, undefined, () => 1)).toBe(500);
    expect(backoffDelay(4, 500, 30_000, undefined, () => 0.5)).toBe(3000);
    expect(backoffDelay(20, 500, 30_000, undefined, () => 1)).toBe(30_000);
  });
  it('waits what the provider asks for, plus a little jitter', () => {
    expect(backoffDelay(1, 500, 30_000, 2000, () => 0)).toBe(2000);
    expect(backoffDelay(1, 500, 30_000, 2000, () => 1)).toBe(2200);
  });
  it('reads retry-after-ms, Retry-After seconds and HTTP dates', () => {
    expect(retryAfterFromHeaders(headers({ 'retry-after-ms': '150', 'retry-after': '9' }))).toBe(150);
    expect(retryAfterFromHeaders(headers({ 'retry-after': '3' }))).toBe(3000);
    expect(retryAfterFromHeaders(headers({ 'retry-after': 'Wed, 21 Oct 2015 07:28:05 GMT' }), Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(5000);
    expect(retryAfterFromHeaders(headers({}))).toBeUndefined();
  });
});

describe('error classes', () => {
  it('retries rate limits and server errors, not client errors', () => {
    for (const s of [408, 429, 500, 502, 503, 504, 529]) expect(classifyHttpError(s, 'x').retryable).toBe(true);
    for (const s of [400, 401, 403, 404]) expect(classifyHttpError(s, 'x').retryable).toBe(false);
    expect(classifyHttpError(undefined, 'fetch failed').retryable).toBe(true);
  });
  it('recognises context overflow by code, status and message', () => {
    expect(classifyHttpError(400, 'x', 'context_length_exceeded').contextOverflow).toBe(true);
    expect(classifyHttpError(413, 'too big').contextOverflow).toBe(true);
    expect(classifyHttpError(400, 'prompt is too long: 250000 tokens > 200000 maximum').contextOverflow).toBe(true);
    expect(classifyHttpError(400, 'The input token count (9) exceeds the maximum number of tokens allowed (8).').contextOverflow).toBe(true);
    expect(classifyHttpError(400, 'bad temperature').contextOverflow).toBe(false);
  });
});

describe('prompt templates', () => {
  const input = [
    { name: 'product', type: 'STRING' },
    { name: 'Text', type: 'STRING' },
    { name: 'n', type: 'INT' },
  ];
  it('fills columns by name, case-insensitively, with literal braces', () => {
    expect(parsePromptTemplate('Review of {product}: {text} ({{n}}={n})', input).render(['lamp', 'ok', 3])).toBe('Review of lamp: ok ({n}=3)');
  });
  it('renders a default without a template, and nothing for NULL inputs', () => {
    expect(parsePromptTemplate(undefined, input.slice(0, 1)).render(['lamp'])).toBe('lamp');
    expect(parsePromptTemplate(undefined, input).render(['lamp', 'ok', 3])).toBe('product: lamp\nText: ok\nn: 3');
    expect(parsePromptTemplate('{product}', input).render([null, 'ok', 3])).toBeUndefined();
  });
  it('refuses unknown columns and unbalanced braces', () => {
    expect(() => parsePromptTemplate('{nope}', input)).toThrow(/not an INPUT column/);
    expect(() => parsePromptTemplate('{product', input)).toThrow(/unmatched '\{'/);
    expect(() => parsePromptTemplate('x}', input)).toThrow(/unmatched '\}'/);
  });
  it('applies max-context-size the Flink ways', () => {
    const text = 'a'.repeat(20) + 'b'.repeat(20);
    expect(fitContext(text, 5, 'TRUNCATED_TAIL').text).toBe('a'.repeat(20));
    expect(fitContext(text, 5, 'TRUNCATED_HEAD').text).toBe('b'.repeat(20));
    expect(fitContext(text, 5, 'SKIPPED_LOG').text).toBeUndefined();
    expect(fitContext(text, 100, 'SKIPPED')).toEqual({ text, overflowed: false });
  });
});

describe('secrets', () => {
  it('splits literal keys from readable options and keeps them through ALTER', () => {
    const first = splitSecrets([['provider', 'openai'], ['api-key', 'sk-abcdef'], ['x.token', '${env:T}']]);
    expect(first.options).toEqual([['provider', 'openai'], ['api-key', '******'], ['x.token', '${env:T}']]);
    expect(first.secrets).toEqual([['api-key', 'sk-abcdef']]);
    expect(splitSecrets(first.options, first.secrets).secrets).toEqual([['api-key', 'sk-abcdef']]);
  });
  it('redacts secret literals in SQL, keeping offsets mappable, and ignores look-alikes in comments', () => {
    const sql = `CREATE MODEL m WITH ('api-key' = 'sk-longsecret', 'colour' = 'blue') -- 'api-key' = 'not a literal'`;
    const r = redactSql(sql);
    expect(r.text).toBe(`CREATE MODEL m WITH ('api-key' = '******', 'colour' = 'blue') -- 'api-key' = 'not a literal'`);
    const at = sql.indexOf(`'colour'`);
    expect(r.text.slice(r.mapOffset(at))).toMatch(/^'colour'/);
  });
  it('masks registered secrets anywhere', () => {
    registerSecret('sk-registered-999');
    expect(maskSecrets('401 Incorrect API key provided: sk-registered-999.')).toBe('401 Incorrect API key provided: ******.');
  });
});
