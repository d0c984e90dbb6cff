/**
 * A model file downloaded over http(s), bounded (SPEC §2.1, §5; docs/security.md,
 * "Model downloads"): the body is streamed to a temporary file beside the cache and hashed
 * as it arrives, so memory stays flat and the event loop never holds the whole body; it
 * stops past a byte limit (`54000`), when no connection is made in time or no byte arrives
 * for a while (`58030`), and when the statement is cancelled or times out (its signal). A
 * failed download leaves no file behind. Redirects are followed by hand, each hop checked.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ModelSqlError, QueryCanceledError } from '../errors.js';
import { redactUrl } from './access-policy.js';

/** Bounds of one download. */
export interface DownloadLimits {
  /** Largest body accepted, in bytes. */
  readonly maxBytes: number;
  /** Time allowed to open the TCP connection, in ms. */
  readonly connectTimeoutMs: number;
  /** Longest wait for the answer's headers or for the next bytes of its body, in ms. */
  readonly idleTimeoutMs: number;
  /** Aborted when the statement is cancelled or runs past its timeout. */
  readonly signal?: AbortSignal;
}

/** Defaults of {@link DownloadLimits}: 2 GiB (ONNX's own protobuf limit), 10 s to connect, 30 s idle. */
export const DEFAULT_DOWNLOAD_LIMITS: DownloadLimits = Object.freeze({ maxBytes: 2 * 1024 * 1024 * 1024, connectTimeoutMs: 10_000, idleTimeoutMs: 30_000 });

/** A finished download: a temporary file the caller renames or removes. */
export interface DownloadedFile {
  readonly file: string;
  readonly sha256: string;
  readonly bytes: number;
}

/** Redirects followed at most. */
const MAX_REDIRECTS = 5;

/**
 * Downloads `url` into a new temporary file in `dir` (which must exist); `checkUrl` vets
 * every redirect target.
 *
 * @throws ModelSqlError `54000` past `maxBytes`, `58030` for network errors, timeouts, HTTP
 *   errors and too many redirects, `57014` when the signal aborts; `42501` from `checkUrl`.
 */
export async function downloadModel(url: string, dir: string, limits: DownloadLimits, checkUrl: (url: string) => void): Promise<DownloadedFile> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const exchange = new Exchange(current, limits);
    const response = await exchange.response;
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (status >= 300 && status < 400 && location !== undefined) {
      exchange.close();
      current = new URL(location, current).href;
      checkUrl(current);
      continue;
    }
    if (status < 200 || status >= 300) {
      exchange.close();
      throw new ModelSqlError('58030', `could not download model from "${redactUrl(current)}": HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''}`);
    }
    const declared = Number(response.headers['content-length'] ?? Number.NaN);
    if (declared > limits.maxBytes) {
      exchange.close();
      throw overLimit(current, limits.maxBytes, declared);
    }
    return exchange.save(dir);
  }
  throw new ModelSqlError('58030', `could not download model from "${redactUrl(url)}": more than ${MAX_REDIRECTS} redirects`);
}

/** The 54000 error of a model over the byte limit. */
function overLimit(url: string, max: number, declared?: number): ModelSqlError {
  const size = declared === undefined ? `more than ${max} bytes` : `${declared} bytes`;
  return new ModelSqlError('54000', `model at "${redactUrl(url)}" is ${size}, over this server's limit of ${max} bytes (--max-model-bytes)`);
}

/** One request and its answer, with the reason it was stopped, if it was. */
class Exchange {
  readonly response: Promise<IncomingMessage>;
  private readonly request: ClientRequest;
  /** Why the exchange was stopped by us (a timeout, the limit), reported in place of the socket error it causes. */
  private failure: ModelSqlError | undefined;

  constructor(
    private readonly url: string,
    private readonly limits: DownloadLimits,
  ) {
    const target = new URL(url);
    this.request = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, { agent: false, signal: limits.signal, headers: { accept: '*/*' } });
    const connecting = setTimeout(() => this.stop(this.networkError(`no connection within ${limits.connectTimeoutMs} ms`)), limits.connectTimeoutMs);
    this.request.once('socket', (socket) => socket.once('connect', () => clearTimeout(connecting)));
    this.request.once('close', () => clearTimeout(connecting));
    // Socket inactivity: waiting for the headers, then between chunks of the body.
    this.request.setTimeout(limits.idleTimeoutMs, () => this.stop(this.networkError(`no data for ${limits.idleTimeoutMs} ms`)));
    this.response = new Promise((resolve, reject) => {
      this.request.once('response', resolve);
      this.request.once('error', (error) => reject(this.reason(error)));
    });
    this.request.end();
  }

  /** Ends the exchange without reading the rest of the answer. */
  close(): void {
    this.request.destroy();
  }

  /** Streams the answer's body to a new temporary file in `dir`, hashing it; removes the file on failure. */
  async save(dir: string): Promise<DownloadedFile> {
    const response = await this.response;
    const file = path.join(dir, `.download-${process.pid}-${randomBytes(8).toString('hex')}.part`);
    const hash = createHash('sha256');
    let bytes = 0;
    const max = this.limits.maxBytes;
    const count = new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        bytes += chunk.byteLength;
        if (bytes > max) {
          this.failure = overLimit(this.url, max);
          done(this.failure);
          return;
        }
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(response, count, createWriteStream(file, { flags: 'wx' }));
    } catch (error) {
      this.close();
      await unlink(file).catch(() => undefined);
      throw this.reason(error);
    }
    return { file, sha256: hash.digest('hex'), bytes };
  }

  private stop(error: ModelSqlError): void {
    this.failure ??= error;
    this.request.destroy(error);
  }

  private networkError(why: string): ModelSqlError {
    return new ModelSqlError('58030', `could not download model from "${redactUrl(this.url)}": ${why}`);
  }

  /** What a failure is reported as: our own reason, a cancellation, else the network error. */
  private reason(error: unknown): ModelSqlError {
    if (this.failure) return this.failure;
    if (this.limits.signal?.aborted) return new QueryCanceledError();
    if (error instanceof ModelSqlError) return error;
    const reason = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    return new ModelSqlError('58030', `could not download model from "${redactUrl(this.url)}": ${reason}`, { cause: error });
  }
}
