/**
 * The access policy's rules (core/runtime/access-policy.ts): URL prefixes compared as parsed
 * URLs, the `'*'` wildcard, and the checked `fetch` of provider SDKs against counting servers.
 */
import { AccessPolicy, isUrlAllowed } from '../../../core/runtime/access-policy.js';
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
