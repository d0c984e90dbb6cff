/**
 * A tiny HTTP server that counts every request it receives (the access-control tests
 * prove that a refused model reaches nothing): it answers OpenAI chat completions with
 * `ok`, redirects `/v1/bounce/...` with a 307 to `redirectTo` when set, and `404`s the rest.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A running counting server. */
export interface CountingServer {
  /** `http://host:port` */
  readonly url: string;
  /** Requests received so far. */
  readonly count: number;
  /** Paths of the requests, in order. */
  readonly paths: readonly string[];
  close(): Promise<void>;
}

/** Starts a counting server on `host` (default 127.0.0.1), port 0. */
export async function startCountingServer(options: { readonly host?: string; readonly redirectTo?: string } = {}): Promise<CountingServer> {
  const paths: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    paths.push(path);
    req.resume();
    req.on('end', () => {
      if (path.startsWith('/v1/bounce/') && options.redirectTo) {
        res.writeHead(307, { location: `${options.redirectTo}${path.replace('/v1/bounce', '/v1')}` });
        res.end();
      } else if (path.endsWith('/chat/completions')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'chatcmpl-count',
            object: 'chat.completion',
            created: 0,
            model: 'm',
            choices: [{ index: 0, message: { role: 'assistant', content: 'ok', refusal: null }, logprobs: null, finish_reason: 'stop' }],
            usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          }),
        );
      } else {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error": {"message": "not found"}}');
      }
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    get count() {
      return paths.length;
    },
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
