/**
 * The access policy's rules (core/runtime/access-policy.ts): URL prefixes compared as parsed
 * URLs, the `'*'` wildcard, and the checked `fetch` of provider SDKs against counting servers.
 */
import { AccessPolicy, isUrlAllowed } from '../../../core/runtime/access-policy.js';
import { createRemoteRuntime } from '../../../core/runtime/providers/create-remote-runtime.js';
import { startAnthropicServer } from '../../providers/anthropic-server.js';
import { startGeminiServer } from '../../providers/gemini-server.js';
import { startOpenAIServer } from '../../providers/openai-server.js';
import { expectSqlError } from '../../support/expect-error.js';
import { startCountingServer } from '../../support/counting-server.js';

describe('isUrlAllowed', () => {
  const prefixes = ['https://api.example.com/v1/', 'http://10.0.0.5:8000/openai'];
  test.each([
    ['https://api.example.com/v1/chat/completions', true],
    ['https://api.example.com/v1', true],
    ['https://api.example.com/v10/chat', false],
    ['https://api.example.com/v1/../admin', false],
    ['https://api.example.com/v1/%2e%2e/admin', false],
    ['http://api.example.com/v1/chat', false],
    ['https://api.example.com:444/v1/chat', false],
    ['https://api.example.com.evil.test/v1/chat', false],
    ['https://api.example.com@127.0.0.1/v1/chat', false],
    ['https://user:pw@api.example.com/v1/chat', false],
    ['http://10.0.0.5:8000/openai/chat/completions', true],
    ['http://10.0.0.5:8000/openaix', false],
    ['http://10.0.0.5/openai/chat', false],
    ['not a url', false],
  ])('%s → %s', (url, expected) => {
    expect(isUrlAllowed(url, prefixes)).toBe(expected);
  });

  test("'*' allows every http(s) URL, nothing else", () => {
    expect(isUrlAllowed('http://127.0.0.1:9/x', ['*'])).toBe(true);
    expect(isUrlAllowed('file:///etc/passwd', ['*'])).toBe(false);
    expect(isUrlAllowed('https://a/b', [])).toBe(false);
  });
});

describe('AccessPolicy.fetch', () => {
  test('unrestricted: the global fetch; restricted: the URL is checked before any request', async () => {
    const server = await startCountingServer();
    try {
      const open = new AccessPolicy();
      expect(open.unrestricted).toBe(true);
      expect((await open.fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: '{}' })).status).toBe(200);
      const closed = new AccessPolicy({ allowedUrlPrefixes: [] });
      await expectSqlError(closed.fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: '{}' }), '42501', /network access of models is disabled/);
      expect(server.count).toBe(1);
    } finally {
      await server.close();
    }
  });

  test('307 to an allowed URL is followed; to another one it is refused before the request', async () => {
    const target = await startCountingServer();
    const bouncer = await startCountingServer({ redirectTo: target.url });
    try {
      const both = new AccessPolicy({ allowedUrlPrefixes: [bouncer.url, target.url] });
      expect((await both.fetch(`${bouncer.url}/v1/bounce/chat/completions`, { method: 'POST', body: '{}' })).status).toBe(200);
      expect(target.paths).toEqual(['/v1/chat/completions']);
      const one = new AccessPolicy({ allowedUrlPrefixes: [bouncer.url] });
      await expectSqlError(one.fetch(`${bouncer.url}/v1/bounce/chat/completions`, { method: 'POST', body: '{}' }), '42501', /redirect target/);
      expect(target.count).toBe(1);
    } finally {
      await target.close();
      await bouncer.close();
    }
  });
});

/** A policy that records the URLs its fetch was asked for. */
class RecordingPolicy extends AccessPolicy {
  readonly urls: string[] = [];
  override readonly fetch: typeof fetch = (input, init) => {
    this.urls.push(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    return fetch(input, init);
  };
}

describe.each([
  ['openai', startOpenAIServer, (url: string) => `${url}/v1/chat/completions`],
  ['gemini', startGeminiServer, (url: string) => url],
  ['anthropic', startAnthropicServer, (url: string) => url],
] as const)('every %s request goes through the policy', (provider, start, endpoint) => {
  test('the SDK fetches through it; a refused endpoint creates no runtime', async () => {
    const server = await start({ apiKey: 'k' });
    try {
      const options: [string, string][] = [['provider', provider], ['endpoint', endpoint(server.url)], ['model', 'm'], ['api-key', 'k'], ['retry-num', '0']];
      const columns = { input: [{ name: 'txt', type: 'STRING' }], output: [{ name: 'answer', type: 'STRING' }] };
      const policy = new RecordingPolicy({ allowedUrlPrefixes: [server.url] });
      const runtime = await createRemoteRuntime(provider, options, columns.input, columns.output, undefined, policy);
      const out = await runtime.predictBatch({ rowCount: 2, columns: [{ kind: 'value', values: ['a', 'b'] }] });
      expect(out.rowCount).toBe(2);
      expect(policy.urls).toHaveLength(2);
      expect(policy.urls.every((u) => u.startsWith(server.url))).toBe(true);
      await expectSqlError(createRemoteRuntime(provider, options, columns.input, columns.output, undefined, new AccessPolicy({ allowedUrlPrefixes: ['https://elsewhere.example/'] })), '42501');
      expect(server.requests).toHaveLength(2);
    } finally {
      await server.close();
    }
  });
});
