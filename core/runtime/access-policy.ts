/**
 * Server-side file and network access of model definitions (SPEC §5: "model files only
 * from allowed directories, model URLs and provider endpoints only from allowed prefixes;
 * no SSRF through a model definition"). One policy per runtime loader, checked where model
 * files are read, where model URLs are downloaded and before every request a remote
 * provider's SDK sends (its `fetch` goes through {@link AccessPolicy.fetch}).
 *
 * Defaults: the embedded library is unrestricted (both lists unset); the proxy starts with
 * both lists empty (only catalog-held model bytes, no network) unless `--model-dir` /
 * `--allow-endpoint` name what is allowed.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { ModelSqlError } from '../errors.js';
import { LimitExceededError } from './inference-limits.js';
import type { fetchWithin } from './providers/http-fetch.js';

/** {@link fetchWithin}, loaded with the first request (it loads Node's `fetch` classes). */
let loadedFetch: Promise<typeof fetchWithin> | undefined;
const providerFetch = (): Promise<typeof fetchWithin> => (loadedFetch ??= import('./providers/http-fetch.js').then((m) => m.fetchWithin));

/** The largest answer a model server may send unless `maxResponseBytes` says otherwise: 64 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/**
 * Request headers that carry a model's credentials (the providers' API key headers, a
 * model server's token, cookies): not sent on to another origin by a redirect, as `fetch`
 * drops `Authorization` (https://fetch.spec.whatwg.org/#http-redirect-fetch, step 13).
 */
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'x-goog-api-key', 'api-key'];

/** The access settings of a session or proxy; each list unset means "no limit". */
export interface AccessOptions {
  /**
   * When set, local model files must lie inside one of these directories (compared after
   * `realpath`, so `..` and symbolic links cannot escape). `[]` forbids every local file.
   */
  readonly allowedDirectories?: readonly string[];
  /**
   * When set, model URLs, provider endpoints and every redirect hop must lie under one of
   * these prefixes: same scheme, host and port, and a path under the prefix's path (at a
   * `/` boundary). `'*'` allows every URL. `[]` forbids every URL.
   */
  readonly allowedUrlPrefixes?: readonly string[];
  /**
   * The largest answer body a remote model's server may send, in bytes, counted as it
   * arrives and after decompression (default 64 MiB). Larger: the statement fails with
   * 54000.
   */
  readonly maxResponseBytes?: number;
}

/** Redirects a provider request may follow under a restricted policy. */
const MAX_REDIRECTS = 5;

/**
 * 42501 insufficient_privilege: a model definition reaches outside what the server allows.
 */
export class AccessDeniedError extends ModelSqlError {
  constructor(message: string) {
    super('42501', message);
  }
}

/**
 * Checks model files and URLs against {@link AccessOptions}.
 *
 * @example
 * const policy = new AccessPolicy({ allowedDirectories: ['/srv/models'], allowedUrlPrefixes: ['https://api.openai.com/v1/'] });
 * const file = await policy.checkFile('/srv/models/m.onnx', 'm.onnx');
 * policy.checkUrl('https://api.openai.com/v1/chat/completions', 'endpoint');
 */
export class AccessPolicy {
  constructor(readonly options: AccessOptions = {}) {}

  /** Whether both lists are unset (the embedded library's default). */
  get unrestricted(): boolean {
    return this.options.allowedDirectories === undefined && this.options.allowedUrlPrefixes === undefined;
  }

  /**
   * Checks a local model file (absolute `file`, shown to the user as `shown`); `real` is
   * its `realpath` when it exists. A missing file is checked lexically, so that the error
   * does not reveal whether a file exists outside the allowed directories.
   *
   * @throws AccessDeniedError (42501)
   */
  async checkFile(file: string, real: string | undefined, shown: string): Promise<void> {
    const allowed = this.options.allowedDirectories;
    if (allowed === undefined) return;
    if (await isInsideAllowedDirectory(real ?? file, allowed)) return;
    throw new AccessDeniedError(
      `model file "${shown}" is outside the allowed model directories` + (allowed.length === 0 ? ' (local model files are disabled on this server)' : ''),
    );
  }

  /**
   * Checks a URL the server would fetch: `what` names it in the error (`model URL`,
   * `endpoint`).
   *
   * @throws AccessDeniedError (42501)
   */
  checkUrl(url: string, what: string): void {
    const prefixes = this.options.allowedUrlPrefixes;
    if (prefixes === undefined || isUrlAllowed(url, prefixes)) return;
    throw new AccessDeniedError(
      `${what} "${redactUrl(url)}" is outside the allowed endpoints` + (prefixes.length === 0 ? ' (network access of models is disabled on this server)' : ''),
    );
  }

  /**
   * A `fetch` for provider SDKs, over {@link httpFetch} (keep-alive pools): restricted,
   * every request URL is checked first; redirects are followed by hand (307/308 only, which
   * keep the method and body), each hop checked when restricted, so that an allowed host
   * cannot bounce a request elsewhere. A redirect to another origin (scheme, host, port) does
   * not carry the request's credentials ({@link CREDENTIAL_HEADERS}). Answers are read up to
   * `maxResponseBytes`.
   */
  readonly fetch: typeof fetch = async (input, init) => {
    const open = this.options.allowedUrlPrefixes === undefined;
    const maxBytes = this.options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    let url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    let headers = init?.headers;
    for (let hop = 0; ; hop++) {
      if (!open) this.checkUrl(url, hop === 0 ? 'endpoint' : 'redirect target');
      const response = await (await providerFetch())(typeof input === 'string' || input instanceof URL || hop > 0 ? url : input, { ...init, headers, redirect: 'manual' }, maxBytes);
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || location === null) return response;
      const next = new URL(location, url).href;
      try {
        if (!open) this.checkUrl(next, 'redirect target');
      } catch (error) {
        await response.body?.cancel();
        throw error;
      }
      // Other redirects (and too many) reach the SDK as the HTTP error they are.
      if ((response.status !== 307 && response.status !== 308) || hop >= MAX_REDIRECTS) return response;
      await response.body?.cancel();
      if (new URL(next).origin !== new URL(url).origin) headers = withoutCredentials(headers);
      url = next;
    }
  };
}

/** Request headers without {@link CREDENTIAL_HEADERS}. */
function withoutCredentials(headers: RequestInit['headers']): Headers | undefined {
  if (headers === undefined) return undefined;
  const copy = new Headers(headers);
  for (const name of CREDENTIAL_HEADERS) copy.delete(name);
  return copy;
}

/**
 * The {@link AccessDeniedError} or {@link LimitExceededError} (an answer over
 * `maxResponseBytes`) that `error` is or was caused by, if any (SDKs wrap what `fetch` throws).
 */
export function refusalIn(error: unknown): AccessDeniedError | LimitExceededError | undefined {
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof AccessDeniedError || e instanceof LimitExceededError) return e;
  }
  return undefined;
}

async function isInsideAllowedDirectory(file: string, allowed: readonly string[]): Promise<boolean> {
  for (const dir of allowed) {
    const absolute = path.resolve(process.cwd(), dir);
    let root: string;
    try {
      root = await realpath(absolute);
    } catch {
      root = absolute;
    }
    const rel = path.relative(root, file);
    if (rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel))) return true;
  }
  return false;
}

/**
 * True when `url` lies under one of `prefixes`: same scheme, host and port, and a path
 * equal to the prefix's path or under it at a `/` boundary, both compared after
 * percent-decoding and dot-segment removal (`..%2f` cannot climb out of a prefix). `'*'` matches every http(s)
 * URL. URLs with a user name or password never match.
 */
export function isUrlAllowed(url: string, prefixes: readonly string[]): boolean {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return false;
  }
  if (target.username !== '' || target.password !== '') return false;
  for (const prefix of prefixes) {
    if (prefix.trim() === '*') {
      if (target.protocol === 'http:' || target.protocol === 'https:') return true;
      continue;
    }
    let p: URL;
    try {
      p = new URL(prefix);
    } catch {
      continue;
    }
    if (p.protocol !== target.protocol || p.host !== target.host) continue;
    const where = normalizedPath(target.pathname);
    const base = normalizedPath(p.pathname)?.replace(/\/+$/, '');
    if (where === undefined || base === undefined) continue;
    if (base === '' || where === base || where.startsWith(`${base}/`)) return true;
  }
  return false;
}

/**
 * A URL path as a server may read it: percent-decoded (until nothing changes, so `%252f`
 * too), backslashes as slashes, dot segments resolved, so that `/v1/..%2fadmin` is
 * compared as `/admin`. Undefined for a path that does not decode (never allowed).
 */
function normalizedPath(pathname: string): string | undefined {
  let decoded = pathname;
  for (let round = 0; ; round++) {
    let next: string;
    try {
      next = decodeURIComponent(decoded);
    } catch {
      return undefined;
    }
    if (next === decoded) break;
    if (round === 3) return undefined; // encoded four times over: no server means that
    decoded = next;
  }
  return path.posix.normalize(`/${decoded.replace(/\\/g, '/')}`).replace(/^\/+/, '/');
}

/** A URL for messages: no credentials, no query string (it may carry a token). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return url;
  }
}
