/**
 * Where ONNX model bytes come from: a local file or an http(s) URL, with the opt-in
 * file and network allow-lists of SPEC §5 ("no SSRF through a model definition") and a
 * content-addressed download cache (SPEC §2.1: "downloaded once, cached by content hash").
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, realpath, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelSqlError } from '../errors.js';
import { readBoundedFile } from './bounded-file.js';
import { AccessPolicy, redactUrl as redact, type AccessOptions } from './access-policy.js';
import { DEFAULT_DOWNLOAD_LIMITS, downloadModel, type DownloadLimits } from './model-download.js';

export { isUrlAllowed } from './access-policy.js';

/** Options of {@link loadModelBytes}: the access lists of {@link AccessOptions}, the cache and the bounds of model files. */
export interface LoadModelOptions extends AccessOptions, ModelFileLimits {
  /** Directory of the download cache: `<sha256>.onnx` files plus `index.json` (URL → sha256). Created on demand. */
  readonly cacheDir: string;
  /** The SHA-256 (hex) the model's bytes must have (the model's `sha256` option), checked before a download enters the cache. */
  readonly sha256?: string;
  /** Aborted when the statement is cancelled or times out: a download stops. */
  readonly signal?: AbortSignal;
}

/** Bounds of model files (docs/security.md, "Model downloads"); unset ones take {@link DEFAULT_DOWNLOAD_LIMITS}. */
export interface ModelFileLimits {
  /** Largest model file, downloaded or local, in bytes (default 2 GiB): past it, `54000`. */
  readonly maxModelBytes?: number;
  /**
   * Largest JSON file of a local text model's directory (`tokenizer.json`, `config.json`,
   * `tokenizer_config.json`, ...), in bytes (default {@link DEFAULT_MODEL_JSON_BYTES}, 64 MiB):
   * past it, `54000`. The files are parsed whole on the calling thread, and the tokenizer
   * built from them on every worker.
   */
  readonly maxModelJsonBytes?: number;
  /** Time allowed to connect to a model URL's server, in ms (default 10 s). */
  readonly connectTimeoutMs?: number;
  /** Longest wait for a model URL's answer or its next bytes, in ms (default 30 s). */
  readonly idleTimeoutMs?: number;
}

/**
 * The default largest JSON file of a text model's directory: 64 MiB. The largest common
 * `tokenizer.json` files (multilingual vocabularies of 250,000 tokens) are about 35 MB.
 */
export const DEFAULT_MODEL_JSON_BYTES = 64 * 1024 * 1024;

/** True when `location` is an `http://` or `https://` URL. */
export function isModelUrl(location: string): boolean {
  return /^https?:\/\//i.test(location.trim());
}

/**
 * Reads the bytes of an ONNX model from a local path or an http(s) URL.
 *
 * - Local paths resolve against `process.cwd()`; `file://` URLs are accepted too.
 * - URLs are fetched once with the global `fetch` and cached by content hash in
 *   `cacheDir`; later loads of the same URL are served from the cache without network.
 *   Redirects are followed by hand so that each hop is checked against the allow-list.
 *
 * - Downloads are streamed to a temporary file and bounded ({@link ModelFileLimits},
 *   model-download.ts); `sha256`, when given, must match before the file enters the cache.
 *
 * Errors: `42501` outside the allow-lists, `58P01` missing file, `54000` over
 * `maxModelBytes`, `58030` download or read failure (HTTP status, timeouts, a SHA-256
 * mismatch), `57014` when `signal` aborts a download.
 *
 * @example
 * const bytes = await loadModelBytes('examples/models/house_price.onnx', { cacheDir: '.modelsql/cache' });
 */
export async function loadModelBytes(location: string, options: LoadModelOptions): Promise<Uint8Array> {
  const trimmed = location.trim();
  if (isModelUrl(trimmed)) return loadFromUrl(trimmed, options);
  const filePath = /^file:\/\//i.test(trimmed) ? fileURLToPath(trimmed) : path.resolve(process.cwd(), trimmed);
  return loadFromFile(filePath, location, options);
}

async function loadFromFile(filePath: string, shown: string, options: LoadModelOptions): Promise<Uint8Array> {
  let real: string | undefined;
  let failure: unknown;
  try {
    real = await realpath(filePath);
  } catch (error) {
    failure = error;
  }
  // The access check comes first: every file outside the allowed directories gets the same
  // refusal, whether it exists, loops (ELOOP) or cannot be read.
  await new AccessPolicy(options).checkFile(filePath, real, shown);
  if (real === undefined) {
    if (!isErrno(failure, 'ENOENT') && !isErrno(failure, 'ENOTDIR')) throw readFailure(shown, failure);
    throw new ModelSqlError('58P01', `model file "${shown}" does not exist (resolved to ${filePath})`);
  }
  let bytes: Uint8Array;
  try {
    const max = options.maxModelBytes ?? DEFAULT_DOWNLOAD_LIMITS.maxBytes;
    bytes = await readBoundedFile(real, `model file "${shown}"`, max, (size) => new ModelSqlError('54000', `model file "${shown}" is ${size} bytes, over this server's limit of ${max} bytes (--max-model-bytes)`));
    if (options.sha256 !== undefined) {
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== options.sha256.toLowerCase()) throw hashMismatch(shown, actual, options.sha256.toLowerCase());
    }
  } catch (error) {
    if (error instanceof ModelSqlError) throw error;
    if (isErrno(error, 'ENOENT')) throw new ModelSqlError('58P01', `model file "${shown}" does not exist (resolved to ${filePath})`);
    throw readFailure(shown, error);
  }
  return bytes;
}

function readFailure(shown: string, error: unknown): ModelSqlError {
  const reason = error instanceof Error ? error.message : String(error);
  return new ModelSqlError('58030', `could not read model file "${shown}": ${reason}`, { cause: error });
}

function isErrno(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

type CacheIndex = Record<string, string>;

async function readIndex(cacheDir: string): Promise<CacheIndex> {
  try {
    const parsed: unknown = JSON.parse(await readFile(path.join(cacheDir, 'index.json'), 'utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as CacheIndex) : {};
  } catch {
    return {};
  }
}

/** Writes a file atomically (temp file + rename) so that readers never see half a file. */
async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

/** The SHA-256 of a file, read in chunks (a large model does not stall the event loop). */
async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The 58030 error of bytes that are not the ones the model's `sha256` option names. */
function hashMismatch(shown: string, actual: string, expected: string): ModelSqlError {
  return new ModelSqlError('58030', `model "${shown}" has SHA-256 ${actual}, not the ${expected} its 'sha256' option expects`);
}

async function loadFromUrl(url: string, options: LoadModelOptions): Promise<Uint8Array> {
  checkUrl(url, options);
  const cacheDir = path.resolve(process.cwd(), options.cacheDir);
  const expected = options.sha256?.toLowerCase();
  const known = (await readIndex(cacheDir))[url];
  if (known !== undefined && /^[0-9a-f]{64}$/.test(known) && (expected === undefined || known === expected)) {
    const cached = path.join(cacheDir, `${known}.onnx`);
    try {
      if ((await hashFile(cached)) === known) return new Uint8Array(await readFile(cached));
    } catch {
      // missing or unreadable cache entry: download again
    }
  }
  await mkdir(cacheDir, { recursive: true });
  const limits = { ...DEFAULT_DOWNLOAD_LIMITS, ...definedLimits(options) };
  const got = await downloadModel(url, cacheDir, limits, (next) => checkUrl(next, options));
  const cached = path.join(cacheDir, `${got.sha256}.onnx`);
  try {
    // Checked before it enters the cache: a file that is not the one asked for never does.
    if (expected !== undefined && got.sha256 !== expected) throw hashMismatch(redact(url), got.sha256, expected);
    await rename(got.file, cached);
  } catch (error) {
    await unlink(got.file).catch(() => undefined);
    throw error;
  }
  const fresh = await readIndex(cacheDir);
  fresh[url] = got.sha256;
  await writeAtomic(path.join(cacheDir, 'index.json'), `${JSON.stringify(fresh, null, 2)}\n`);
  return new Uint8Array(await readFile(cached));
}

/** The download limits `options` set. */
function definedLimits(options: LoadModelOptions): Partial<DownloadLimits> {
  return {
    ...(options.maxModelBytes === undefined ? {} : { maxBytes: options.maxModelBytes }),
    ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
    ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
}

function checkUrl(url: string, options: LoadModelOptions): void {
  new AccessPolicy(options).checkUrl(url, 'model URL');
}
