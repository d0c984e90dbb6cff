/**
 * A `fetch` for the provider SDKs over `node:http` / `node:https` with one keep-alive
 * connection pool per process. Node's built-in `fetch` (undici behind the WHATWG streams)
 * costs two to three times the CPU per request of a plain `http.request`, and the SDKs
 * spend most of a small request's time there; the SDKs take a `fetch` option for this.
 *
 * Only what the SDKs' JSON calls need is handled here (a string or byte body, buffered
 * answers); anything else (a `Request` object, a stream or form body) goes to the global
 * `fetch`. An answer is buffered only up to a limit ({@link DEFAULT_MAX_RESPONSE_BYTES},
 * or the access policy's `maxResponseBytes`), counted as it arrives and again after
 * decompression: a server sending more (a huge or endless body, a gzip bomb) fails the
 * request with {@link ResponseTooLargeError} (54000) and its socket is closed. Idle sockets are dropped before the server's announced `Keep-Alive: timeout`
 * (Node's agent does this), so a reused connection is not one the server is closing.
 *
 * @example
 * new OpenAI({ apiKey, baseURL, fetch: httpFetch });
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { DEFAULT_MAX_RESPONSE_BYTES, redactUrl } from '../access-policy.js';
import { LimitExceededError } from '../inference-limits.js';

/**
 * 54000 program_limit_exceeded: a model server's answer is larger than this server accepts
 * (`maxResponseBytes`). Asking again would get the same answer: the stage stops.
 */
export class ResponseTooLargeError extends LimitExceededError {
  constructor(url: URL, max: number) {
    super('54000', `the answer of ${redactUrl(url.href)} is over this server's limit of ${max} bytes for a model server's response (maxResponseBytes)`);
  }
}

/** The process's connection pools: sockets are kept open between requests and statements. */
const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

/**
 * Request headers as a plain object, with the body's `content-length` (else Node sends the
 * body chunked, in more writes, and the server has more to parse).
 */
function requestHeaders(init: RequestInit['headers'], body: string | Uint8Array | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (init !== undefined) (init instanceof Headers ? init : new Headers(init)).forEach((value, name) => (out[name] = value));
  if (body !== undefined && body !== null && out['content-length'] === undefined) out['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  return out;
}

/**
 * The body of an answer, decoded when the server compressed it (`encoding`: its
 * `content-encoding`), at most `max` bytes once decoded (zlib stops there: RangeError
 * `ERR_BUFFER_TOO_LARGE`).
 */
function decoded(encoding: string | undefined, body: Buffer, max: number): Buffer {
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(body, { maxOutputLength: max });
    case 'deflate':
      return inflateSync(body, { maxOutputLength: max });
    case 'br':
      return brotliDecompressSync(body, { maxOutputLength: max });
    default:
      return body;
  }
}

/**
 * A `Response` over an answer already in memory. `text()`, `json()`, `arrayBuffer()` and
 * `blob()` read the bytes directly: a plain `Response` wraps them in a WHATWG body stream
 * and reads them back through it, a visible share of a small request's CPU. `body` is a
 * stream over the same bytes, made when asked for; `clone()` shares the bytes. As with any
 * `Response`, the body can be read once.
 */
class BufferedResponse extends Response {
  readonly #bytes: Buffer | null;
  #stream: ReadableStream<Uint8Array> | null | undefined;
  #used = false;

  constructor(bytes: Buffer | null, init: ResponseInit) {
    super(null, init);
    this.#bytes = bytes;
  }

  /** Whether the body was read: by a method, or through its stream (read, locked or cancelled). */
  #isUsed(): boolean {
    const stream = this.#stream;
    // Readable.isDisturbed reads web streams too (its types name only Node streams).
    return this.#used || (stream != null && (stream.locked || Readable.isDisturbed(stream as unknown as Readable)));
  }

  /** The bytes, once: later reads fail as `Response` reads do. */
  #take(): Buffer | null {
    if (this.#isUsed()) throw new TypeError('Body is unusable: Body has already been read');
    this.#used = true;
    return this.#bytes;
  }

  static {
    // Node's types declare these members as properties, so they are overridden here rather
    // than with `override` (they are accessors and methods of Response.prototype).
    Object.defineProperties(BufferedResponse.prototype, {
      body: {
        get(this: BufferedResponse) {
          if (this.#stream === undefined) this.#stream = this.#bytes === null ? null : new Response(this.#bytes).body;
          return this.#stream;
        },
      },
      bodyUsed: {
        get(this: BufferedResponse) {
          return this.#isUsed();
        },
      },
      text: {
        async value(this: BufferedResponse) {
          return this.#take()?.toString('utf8') ?? '';
        },
      },
      json: {
        async value(this: BufferedResponse) {
          return JSON.parse(this.#take()?.toString('utf8') ?? '') as unknown;
        },
      },
      arrayBuffer: {
        async value(this: BufferedResponse) {
          const b = this.#take();
          return b === null ? new ArrayBuffer(0) : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
        },
      },
      blob: {
        async value(this: BufferedResponse) {
          const b = this.#take();
          return new Blob(b === null ? [] : [b], { type: this.headers.get('content-type') ?? '' });
        },
      },
      clone: {
        value(this: BufferedResponse) {
          if (this.bodyUsed) throw new TypeError('Response.clone: Body has already been consumed.');
          return new BufferedResponse(this.#bytes, { status: this.status, statusText: this.statusText, headers: this.headers });
        },
      },
    });
  }
}

/** The error an aborted request rejects with (the SDKs look for `name === 'AbortError'`). */
function abortError(signal: AbortSignal): unknown {
  return signal.reason instanceof Error ? signal.reason : new DOMException('This operation was aborted', 'AbortError');
}

/**
 * `fetch` over `node:http(s)` with keep-alive pools, answers at most
 * {@link DEFAULT_MAX_RESPONSE_BYTES}; see the file comment.
 */
export const httpFetch: typeof fetch = (input, init) => fetchWithin(input, init, DEFAULT_MAX_RESPONSE_BYTES);

/**
 * {@link httpFetch} taking answers of at most `maxBytes` (raw and decoded).
 *
 * @throws ResponseTooLargeError (54000) for a larger answer.
 */
export function fetchWithin(input: Parameters<typeof fetch>[0], init: Parameters<typeof fetch>[1], maxBytes: number): Promise<Response> {
  const body = init?.body;
  if (input instanceof Request || !(body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array)) return fetch(input, init);
  const url = typeof input === 'string' ? new URL(input) : input;
  const https = url.protocol === 'https:';
  const signal = init?.signal ?? undefined;
  return new Promise<Response>((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = (): void => {
      req.destroy();
      reject(abortError(signal!));
    };
    const done = (): void => signal?.removeEventListener('abort', onAbort);
    const req = (https ? httpsRequest : httpRequest)(
      url,
      { method: init?.method ?? 'GET', headers: requestHeaders(init?.headers, body), agent: https ? agents.https : agents.http },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const tooLarge = (): void => {
          done();
          req.destroy();
          reject(new ResponseTooLargeError(url, maxBytes));
        };
        // An announced length over the limit fails before a byte of the body is read.
        if (Number(res.headers['content-length']) > maxBytes) return tooLarge();
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) tooLarge();
          else chunks.push(chunk);
        });
        res.on('error', (error) => {
          done();
          reject(error);
        });
        res.on('end', () => {
          done();
          try {
            // From the raw pairs: `res.headers` would build one more object per answer.
            const headers: [string, string][] = [];
            let encoding: string | undefined;
            for (let i = 0; i < res.rawHeaders.length; i += 2) {
              // The body is handed over decoded, without its content-encoding.
              if (res.rawHeaders[i]!.toLowerCase() === 'content-encoding') encoding = res.rawHeaders[i + 1];
              else headers.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
            }
            const status = res.statusCode ?? 500;
            const payload = status === 204 || status === 304 ? null : decoded(encoding, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), maxBytes);
            resolve(new BufferedResponse(payload, { status, statusText: res.statusMessage, headers }));
          } catch (error) {
            reject((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? new ResponseTooLargeError(url, maxBytes) : error);
          }
        });
      },
    );
    req.on('error', (error) => {
      done();
      reject(error);
    });
    signal?.addEventListener('abort', onAbort, { once: true });
    req.end(body ?? undefined);
  });
}
