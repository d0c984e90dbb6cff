/**
 * The shared part of the loopback provider servers: a `node:http` server on 127.0.0.1,
 * port 0, that records every request, injects faults, and lets a provider file
 * (openai-server.ts, gemini-server.ts, anthropic-server.ts) speak its own API on top.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What to do to one request instead of answering it. */
export type Fault =
  /** An HTTP error with the provider's own error body (the provider file builds it). */
  | { readonly kind: 'status'; readonly status: number; readonly message?: string; readonly headers?: Readonly<Record<string, string>>; readonly code?: string }
  /** The provider's context-length error. */
  | { readonly kind: 'context' }
  /** The connection is reset before any answer. */
  | { readonly kind: 'reset' }
  /** 200 with a body that is not JSON. */
  | { readonly kind: 'malformed' }
  /** The answer arrives after `ms` (past the client's timeout). */
  | { readonly kind: 'slow'; readonly ms: number }
  /** A packed answer with one item too few. */
  | { readonly kind: 'wrong-count' }
  /** The answer waits until `until` settles (a test releases it when it has seen what it waits for). */
  | { readonly kind: 'hold'; readonly until: Promise<unknown> };

/** One request as the server saw it. */
export interface SeenRequest {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
  /** The rows' prompts (or texts to embed) the request carried. */
  readonly prompts: readonly string[];
}

/** Decides a fault for a request: `attempt` counts earlier requests carrying the same first prompt. */
export type FaultRule = (request: SeenRequest, attempt: number) => Fault | undefined;

/** The answer for one prompt: text, or (structured output) an object. */
export type Answerer = (prompt: string, schema: Record<string, unknown> | undefined) => unknown;

/** Options every loopback server takes. */
export interface LoopbackOptions {
  /** The key clients must send; a wrong one gets the provider's 401 (which echoes it). */
  readonly apiKey?: string;
  /**
   * Fixed latency of every answer, in ms: the answer goes out this long after the request
   * arrived (its headers were read), the server's own work on it included.
   */
  readonly latencyMs?: number;
  readonly fault?: FaultRule;
  readonly answer?: Answerer;
  /**
   * Whether to keep every request, answer and attempt count (default true). A benchmark
   * sending tens of thousands of requests turns it off and reads {@link LoopbackServer.served}.
   */
  readonly record?: boolean;
  /** The port to listen on (default 0: a free one). */
  readonly port?: number;
}

/** A running loopback server. */
export interface LoopbackServer {
  readonly url: string;
  /** Every request, in arrival order. */
  readonly requests: SeenRequest[];
  /** Prompts answered with 200, in answer order. */
  readonly answered: string[];
  /** Requests received (counted even when not recorded). */
  served(): number;
  /** Replaces the fault rule. */
  setFault(rule: FaultRule | undefined): void;
  /** Forgets recorded requests, answers and attempt counts (and the fault rule). */
  reset(): void;
  close(): Promise<void>;
}

/** A provider's side of a loopback server. */
export interface ProviderProtocol {
  /** The prompts a request carries, or undefined when the path is not one of the API's. */
  prompts(path: string, body: unknown): string[] | undefined;
  /** Whether the request's credentials are right. */
  authorized(headers: IncomingMessage['headers'], apiKey: string): boolean;
  /** The 200 body answering a request. */
  answer(path: string, body: unknown, prompts: readonly string[], answer: Answerer, dropOne: boolean): unknown;
  /** The provider's error body (and headers) for a status. */
  error(status: number, message: string, code?: string): { body: unknown; headers?: Record<string, string> };
  /** The provider's context-length error. */
  contextError(): { status: number; body: unknown };
  /** The provider's 401 for a wrong key (echoing it, as real APIs partly do). */
  unauthorized(key: string): { status: number; body: unknown };
  /** The key a request carried. */
  keyOf(headers: IncomingMessage['headers']): string;
}

/** The default answerer: `echo: <prompt>`, or an object filled from the schema. */
export const echoAnswer: Answerer = (prompt, schema) => {
  if (!schema || schema['type'] !== 'object') return `echo: ${prompt}`;
  const properties = (schema['properties'] ?? {}) as Record<string, { type?: string }>;
  return Object.fromEntries(
    Object.entries(properties).map(([name, p]) => [name, p.type === 'integer' ? prompt.length : p.type === 'number' ? prompt.length / 2 : p.type === 'boolean' ? prompt.length % 2 === 0 : `${name} of ${prompt}`]),
  );
};

/**
 * How many requests asked for each row, by the row id `idOf` reads from a request's first
 * prompt. Retry tests check that every faulted row was asked again with it, not an exact
 * total: on a loaded machine a healthy request may outlast its timeout and be retried too.
 */
export function requestsPerRow(requests: readonly SeenRequest[], idOf: (prompt: string) => number): Map<number, number> {
  const asked = new Map<number, number>();
  for (const q of requests) asked.set(idOf(q.prompts[0]!), (asked.get(idOf(q.prompts[0]!)) ?? 0) + 1);
  return asked;
}

/** The prompts of a packed message (`Inputs:` then a JSON array; see provider-client.ts `packedMessage`). */
export function packedPrompts(message: string): string[] | undefined {
  const i = message.lastIndexOf('\nInputs:\n');
  if (i < 0) return undefined;
  try {
    return JSON.parse(message.slice(i + '\nInputs:\n'.length)) as string[];
  } catch {
    return undefined;
  }
}

/** The row prompt of a structured message (before the schema instruction). */
export function structuredPrompt(message: string): string {
  const i = message.lastIndexOf('\n\nReply with a JSON object only');
  return i < 0 ? message : message.slice(0, i);
}

/**
 * The answers of a request: one per prompt, following `schema` (a packed schema wraps
 * the row schema in `{"answers": [...]}`).
 */
export function answersFor(prompts: readonly string[], schema: Record<string, unknown> | undefined, answer: Answerer, packed: boolean, dropOne: boolean): string {
  if (!packed) {
    const a = answer(prompts[0]!, schema);
    return typeof a === 'string' ? a : JSON.stringify(a);
  }
  const items = ((schema?.['properties'] as Record<string, Record<string, unknown>> | undefined)?.['answers']?.['items'] ?? undefined) as Record<string, unknown> | undefined;
  const answers = prompts.map((p) => answer(p, items));
  if (dropOne) answers.pop();
  return JSON.stringify({ answers });
}

/** Starts a loopback server speaking `protocol`. */
export async function startLoopback(protocol: ProviderProtocol, options: LoopbackOptions = {}): Promise<LoopbackServer> {
  const requests: SeenRequest[] = [];
  const answered: string[] = [];
  const attempts = new Map<string, number>();
  let rule = options.fault;
  const record = options.record ?? true;
  let served = 0;
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(text);
  };
  const server: Server = createServer((req, res) => {
    const arrived = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = (req.url ?? '').split('?')[0]!;
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
        } catch {
          return send(res, 400, protocol.error(400, 'could not parse the JSON body').body);
        }
        const prompts = protocol.prompts(path, body);
        if (!prompts) return send(res, 404, protocol.error(404, `no route ${req.method} ${path}`).body);
        const seen: SeenRequest = { path, headers: req.headers, body, prompts };
        served++;
        if (record) requests.push(seen);
        if (options.apiKey !== undefined && !protocol.authorized(req.headers, options.apiKey)) {
          const e = protocol.unauthorized(protocol.keyOf(req.headers));
          return send(res, e.status, e.body);
        }
        const first = prompts[0] ?? '';
        const attempt = attempts.get(first) ?? 0;
        if (record) attempts.set(first, attempt + 1);
        const fault = rule?.(seen, attempt);
        if (options.latencyMs) await new Promise((r) => setTimeout(r, arrived + options.latencyMs! - performance.now()));
        if (fault?.kind === 'reset') {
          req.socket.destroy();
          return;
        }
        if (fault?.kind === 'status') {
          const e = protocol.error(fault.status, fault.message ?? `injected ${fault.status}`, fault.code);
          return send(res, fault.status, e.body, { ...e.headers, ...fault.headers });
        }
        if (fault?.kind === 'context') {
          const e = protocol.contextError();
          return send(res, e.status, e.body);
        }
        if (fault?.kind === 'malformed') return send(res, 200, '{"choices": [ {"message": ');
        if (fault?.kind === 'slow' || fault?.kind === 'hold') {
          await (fault.kind === 'slow' ? new Promise((r) => setTimeout(r, fault.ms)) : fault.until);
          if (res.destroyed || req.socket.destroyed) return;
        }
        const reply = protocol.answer(path, body, prompts, options.answer ?? echoAnswer, fault?.kind === 'wrong-count');
        if (res.destroyed || req.socket.destroyed) return;
        if (record) answered.push(...prompts);
        send(res, 200, reply);
      })().catch((error: unknown) => send(res, 500, protocol.error(500, String(error)).body));
    });
  });
  const listening = await listenOnLoopback(server, options.port);
  return {
    url: listening.url,
    requests,
    answered,
    served: () => served,
    setFault: (r) => {
      rule = r;
    },
    reset: () => {
      rule = undefined;
      requests.length = 0;
      answered.length = 0;
      attempts.clear();
    },
    close: listening.close,
  };
}

/**
 * Listens on 127.0.0.1, port 0, keeping track of the connections so that `close` ends
 * them (a keep-alive client would otherwise hold the server open).
 */
export async function listenOnLoopback(server: Server, port = 0): Promise<{ readonly url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Node's default; a shorter one makes clients (undici, Node's agent) open a connection per
  // request, since they drop a socket 1 s before the server's announced timeout.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
