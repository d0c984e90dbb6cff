/**
 * The SDKs' `fetch` over `node:http`: what it sends (a sized body, on a reused
 * connection), what it hands back (status, headers, a decoded body), and how it stops.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { httpFetch } from '../../core/runtime/providers/http-fetch.js';

interface Seen {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly port: number;
}

describe('httpFetch', () => {
  let server: Server;
  let url: string;
  const seen: Seen[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), port: req.socket.remotePort! });
        if (req.url === '/gzip') {
          res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
          return res.end(gzipSync('{"ok":true}'));
        }
        if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2000);
        res.writeHead(429, { 'retry-after': '3', 'x-two': 'a' });
        res.end('{"error":{"message":"slow down"}}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends a sized body with the headers, and returns status, headers and body', async () => {
    const body = JSON.stringify({ prompt: 'é' });
    const r = await httpFetch(`${url}/x`, { method: 'POST', headers: new Headers({ authorization: 'Bearer k' }), body });
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('3');
    expect(await r.json()).toEqual({ error: { message: 'slow down' } });
    const last = seen.at(-1)!;
    expect(last.body).toBe(body);
    expect(last.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(last.headers['transfer-encoding']).toBeUndefined();
    expect(last.headers.authorization).toBe('Bearer k');
  });

  it('keeps the connection for the next request', async () => {
    await (await httpFetch(`${url}/a`, { method: 'POST', body: '{}' })).text();
    await (await httpFetch(`${url}/b`, { method: 'POST', body: '{}' })).text();
    expect(seen.at(-1)!.port).toBe(seen.at(-2)!.port);
  });

  it('answers with a Response whose text, JSON, bytes, blob, body stream and clone are the same answer, each read once', async () => {
    const reads: ((r: Response) => Promise<string>)[] = [
      async (r) => r.text(),
      async (r) => JSON.stringify(await r.json()),
      async (r) => Buffer.from(await r.arrayBuffer()).toString(),
      async (r) => (await r.blob()).text(),
      async (r) => new Response(r.body).text(),
    ];
    for (const read of reads) {
      const r = await httpFetch(`${url}/gzip`, { method: 'GET' });
      expect(r).toBeInstanceOf(Response);
      const copy = r.clone();
      expect(r.bodyUsed).toBe(false);
      expect(await read(r)).toBe('{"ok":true}');
      expect(r.bodyUsed).toBe(true);
      await expect(r.text()).rejects.toThrow(TypeError);
      expect(() => r.clone()).toThrow(TypeError);
      expect([copy.status, copy.headers.get('content-type'), await copy.text()]).toEqual([200, 'application/json', '{"ok":true}']);
    }
    expect((await (await httpFetch(`${url}/gzip`, { method: 'GET' })).blob()).type).toBe('application/json');
  });

  it('counts a cancelled body stream as read, as Response does (an SDK cancels it before a retry)', async () => {
    const r = await httpFetch(`${url}/gzip`, { method: 'GET' });
    const body = r.body!;
    expect(r.bodyUsed).toBe(false);
    await body.cancel();
    expect(r.bodyUsed).toBe(true);
    await expect(r.text()).rejects.toThrow(TypeError);
    expect(() => r.clone()).toThrow(TypeError);
  });

  it('decodes a gzip answer', async () => {
    const r = await httpFetch(`${url}/gzip`, { method: 'GET' });
    expect(r.headers.get('content-encoding')).toBeNull();
    expect(await r.json()).toEqual({ ok: true });
  });

  it('rejects with an AbortError when the signal aborts, and before sending when already aborted', async () => {
    const controller = new AbortController();
    const pending = httpFetch(`${url}/slow`, { method: 'POST', body: '{}', signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    const before = seen.length;
    await expect(httpFetch(`${url}/x`, { method: 'POST', body: '{}', signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen.length).toBe(before);
  });
});
