/**
 * Where ONNX model bytes come from: a local file or an http(s) URL, with the opt-in
 * file and network allow-lists of SPEC §5 ("no SSRF through a model definition") and a
 * content-addressed download cache (SPEC §2.1: "downloaded once, cached by content hash").
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, realpath, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelSqlError } from '../errors.js';
import { AccessPolicy, redactUrl as redact, type AccessOptions } from './access-policy.js';

export { isUrlAllowed } from './access-policy.js';

/** Options of {@link loadModelBytes}: the access lists of {@link AccessOptions} plus the cache. */
export interface LoadModelOptions extends AccessOptions {
  /** Directory of the download cache: `<sha256>.onnx` files plus `index.json` (URL → sha256). Created on demand. */
  readonly cacheDir: string;
  /** Largest download accepted, in bytes (default 2 GiB). */
  readonly maxDownloadBytes?: number;
}

/** Redirects followed at most when downloading a model. */
const MAX_REDIRECTS = 5;
const DEFAULT_MAX_DOWNLOAD = 2 * 1024 * 1024 * 1024;

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
 * Errors: `42501` outside the allow-lists, `58P01` missing file, `58030` download or
 * read failure (HTTP status included).
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
  try {
    return new Uint8Array(await readFile(real));
  } catch (error) {
    if (isErrno(error, 'ENOENT')) throw new ModelSqlError('58P01', `model file "${shown}" does not exist (resolved to ${filePath})`);
    throw readFailure(shown, error);
  }
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

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

async function loadFromUrl(url: string, options: LoadModelOptions): Promise<Uint8Array> {
  checkUrl(url, options);
  const cacheDir = path.resolve(process.cwd(), options.cacheDir);
  const index = await readIndex(cacheDir);
  const known = index[url];
  if (known !== undefined && /^[0-9a-f]{64}$/.test(known)) {
    try {
      const cached = new Uint8Array(await readFile(path.join(cacheDir, `${known}.onnx`)));
      if (sha256(cached) === known) return cached;
    } catch {
      // missing or unreadable cache entry: download again
    }
  }
  const bytes = await download(url, options);
  const hash = sha256(bytes);
  await mkdir(cacheDir, { recursive: true });
  await writeAtomic(path.join(cacheDir, `${hash}.onnx`), bytes);
  const fresh = await readIndex(cacheDir);
  fresh[url] = hash;
  await writeAtomic(path.join(cacheDir, 'index.json'), `${JSON.stringify(fresh, null, 2)}\n`);
  return bytes;
}

function checkUrl(url: string, options: LoadModelOptions): void {
  new AccessPolicy(options).checkUrl(url, 'model URL');
}

async function download(url: string, options: LoadModelOptions): Promise<Uint8Array> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    let response: Response;
    try {
      response = await fetch(current, { redirect: 'manual' });
    } catch (error) {
      const reason = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
      throw new ModelSqlError('58030', `could not download model from "${redact(current)}": ${reason}`, { cause: error });
    }
    if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
      await response.body?.cancel();
      current = new URL(response.headers.get('location') ?? '', current).href;
      checkUrl(current, options);
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ModelSqlError(
        '58030',
        `could not download model from "${redact(current)}": HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
      );
    }
    const max = options.maxDownloadBytes ?? DEFAULT_MAX_DOWNLOAD;
    const declared = Number(response.headers.get('content-length') ?? '0');
    if (declared > max) {
      await response.body?.cancel();
      throw new ModelSqlError('58030', `model at "${redact(current)}" is ${declared} bytes, more than the ${max} allowed`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.byteLength > max) {
      throw new ModelSqlError('58030', `model at "${redact(current)}" is more than the ${max} bytes allowed`);
    }
    return bytes;
  }
  throw new ModelSqlError('58030', `could not download model from "${redact(url)}": more than ${MAX_REDIRECTS} redirects`);
}
