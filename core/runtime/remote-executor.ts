/**
 * The executor of remote model calls (SPEC §2.3), written once for every provider: it
 * turns a batch of rows into payloads (a {@link RowCodec}: prompts for language models,
 * tensors for model servers), packs them `batch-size` rows per request, keeps up
 * to `max-concurrent-operations` requests in flight, gives each a `timeout`, retries with
 * exponential backoff and jitter that honours `Retry-After`, halves a pack on context
 * overflow or a wrong number of answers, and applies the error-handling strategy. A
 * provider file supplies only a {@link ProviderClient} (one request, one error meaning)
 * and a {@link RowCodec}.
 *
 * Cancellation: once the query's signal aborts, no new request starts (waiting requests
 * are released with 57014, backoff sleeps end, in-flight requests are aborted through the
 * SDK's signal). A FAILOVER failure stops the stage the same way.
 */
import { setMaxListeners } from 'node:events';
import { ModelRuntimeError, QueryCanceledError } from '../errors.js';
import { maskSecrets } from '../secrets.js';
import { refusalIn } from './access-policy.js';
import { LimitExceededError } from './inference-limits.js';
import { DEFAULT_RESOURCE_CAPS } from './resource-caps.js';
import type { ModelRuntime, PredictOptions, PredictStage } from './model-runtime.js';
import { MalformedReply, MismatchedReply, type FailureInfo, type ProviderClient, type ProviderReply, type ProviderRequest } from './providers/provider-client.js';
import { AnswerError } from './providers/structured-output.js';
import type { ColumnBatch, ColumnData } from '../model-types.js';

/** Rows per `predictBatch` the executor asks for by default (several waves of requests). */
const DEFAULT_STAGE_ROWS = 2048;
/** Retries of an answer that does not fit OUTPUT (a model repeating itself gains nothing from 100). */
const ANSWER_RETRIES = 2;
/** The longest error message a row or a failed query keeps from a provider (characters; the server writes it). */
const MAX_MESSAGE_CHARS = 1000;
/** The longest timer Node keeps (2^31-1 ms, about 24.8 days): a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The settings of one stage: the model's options with the call's CONFIG on top. */
export interface ExecutorSettings {
  readonly timeoutMs: number;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly strategy: 'RETRY' | 'FAILOVER' | 'IGNORE';
  readonly fallback: 'FAILOVER' | 'IGNORE' | 'DEFAULT';
  readonly retryNum: number;
  readonly retryInitialDelayMs: number;
  readonly retryMaxDelayMs: number;
  /**
   * The longest `Retry-After` waited out: the server's cap on retry delays (`--max-retry-delay`,
   * 5 min by default). The server chooses `Retry-After`: a day, or a year, would hold the
   * statement that long (and a wait past 2^31 ms would not be a wait at all).
   */
  readonly maxRetryAfterMs: number;
}

/**
 * What the executor needs of a model's options (`RemoteModelConfig` for language models,
 * `TritonConfig` for model servers). `retryFallbackStrategy` `DEFAULT` answers a failed row
 * with the codec's {@link RowCodec.fallback} values (Triton's `default-value`).
 */
export interface ExecutorConfig {
  readonly provider: string;
  readonly timeoutMs: number;
  readonly batchSize: number;
  readonly maxConcurrentOperations: number;
  readonly errorHandlingStrategy: 'RETRY' | 'FAILOVER' | 'IGNORE';
  readonly retryNum: number;
  readonly retryFallbackStrategy: 'FAILOVER' | 'IGNORE' | 'DEFAULT';
  readonly retryInitialDelayMs: number;
  readonly retryMaxDelayMs: number;
  readonly cache: boolean;
}

/**
 * One row as a provider sees it: `text` is what the row sends as text (prompts), also its
 * cache identity; `values` the row's input values, for providers that send values (tensors).
 * A row with neither is not sent.
 */
export interface RowPayload {
  readonly text?: string;
  /** Whether the row was left out on purpose (counted as an error, e.g. `SKIPPED` context overflow). */
  readonly skipped: boolean;
  readonly values?: readonly unknown[];
}

/** How one kind of provider turns rows into requests and replies into OUTPUT rows. */
export interface RowCodec {
  /** Everything that changes an answer (cache keys), and nothing that does not. */
  readonly fingerprint: string;
  /** OUTPUT columns, and where the error metadata columns sit among them. */
  readonly width: number;
  readonly errorString?: number;
  readonly httpStatus?: number;
  /** The OUTPUT row of a failed row under the `DEFAULT` fallback. */
  readonly fallback?: readonly unknown[];
  payloads(batch: ColumnBatch): RowPayload[];
  cacheKey(payload: RowPayload): string | null;
  request(rows: readonly RowPayload[]): ProviderRequest;
  /** One OUTPUT row per row of the request; throws AnswerError (retryable) or MismatchedReply (not). */
  answers(reply: ProviderReply, count: number): unknown[][];
}

/** The result of one row: its values, its error, or both (a fallback answer to a failed row). */
type RowResult = { readonly values?: readonly unknown[]; readonly error?: string; readonly status?: number };

/** A request that ran past its timeout. */
class RequestTimeout extends Error {}

/**
 * Backoff before retry `attempt` (1-based): exponential from `initial`, capped at `max`,
 * with "equal jitter" (half fixed, half random); a provider's `Retry-After` wins (the
 * executor bounds it first: {@link ExecutorSettings.maxRetryAfterMs}).
 *
 * @example backoffDelay(3, 500, 30000, undefined, () => 0.5) // 1500
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, retryAfterMs: number | undefined, random: () => number = Math.random): number {
  if (retryAfterMs !== undefined) return retryAfterMs + Math.round(random() * Math.min(1000, retryAfterMs * 0.1));
  const base = Math.min(maxMs, initialMs * 2 ** (attempt - 1));
  return Math.round(base / 2 + random() * (base / 2));
}

/** Per-stage shared state: the concurrency limit, a pause after `Retry-After`, and the stage's abort. */
class StageState {
  readonly controller = new AbortController();
  pausedUntil = 0;
  failure?: Error;
  private active = 0;
  private readonly waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];

  constructor(
    readonly concurrency: number,
    readonly query: AbortSignal | undefined,
  ) {
    // One listener per pack waiting to retry (`sleep`).
    setMaxListeners(0, this.controller.signal);
    const onAbort = (): void => this.stop(new QueryCanceledError());
    if (query?.aborted) onAbort();
    else query?.addEventListener('abort', onAbort, { once: true });
  }

  /**
   * The controllers of the requests in flight, aborted by `stop` (a set rather than one
   * listener per request on the stage's signal: adding and removing event listeners is a
   * visible share of a small request's CPU).
   */
  readonly inFlight = new Set<AbortController>();

  /** Ends the stage: no new request starts; in-flight ones are aborted. */
  stop(error: Error): void {
    this.failure ??= error;
    this.controller.abort();
    for (const request of this.inFlight) request.abort();
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }

  /** Waits for a request slot (and any `Retry-After` pause). */
  async acquire(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.active >= this.concurrency) await new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    else this.active++;
    try {
      while (Date.now() < this.pausedUntil) await this.sleep(this.pausedUntil - Date.now());
      if (this.failure) throw this.failure;
    } catch (error) {
      this.release();
      throw error;
    }
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next.resolve();
    else this.active--;
  }

  /** Sleeps, ending early (with the stage's failure) when the stage stops. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(this.failure);
      };
      const timer = setTimeout(() => {
        this.controller.signal.removeEventListener('abort', onAbort);
        resolve();
      }, Math.min(MAX_TIMER_MS, Math.max(0, ms)));
      this.controller.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

const states = new WeakMap<object, StageState>();

/**
 * A `ModelRuntime` over one provider: the executor of this file wrapped around a
 * {@link ProviderClient}.
 *
 * @example
 * const runtime = new RemoteRuntime(config, new OpenAIClient(config, apiKey, policy.fetch));
 * const out = await runtime.predictBatch(batch, { signal, stage });
 */
export class RemoteRuntime implements ModelRuntime {
  readonly remote = true;
  readonly provider: string;
  readonly preferredBatchSize = DEFAULT_STAGE_ROWS;
  readonly inputKinds: readonly ('number' | 'value')[];
  readonly cacheByDefault: boolean;

  constructor(
    readonly config: ExecutorConfig,
    private readonly client: ProviderClient,
    inputCount: number,
    private readonly codec: RowCodec,
  ) {
    this.provider = config.provider;
    this.inputKinds = new Array<'value'>(inputCount).fill('value');
    this.cacheByDefault = config.cache;
  }

  /** The settings of a stage: model options, then the call's CONFIG; `maxRetryDelayMs` the server's cap ({@link PredictStage.maxRetryDelayMs}). */
  settings(stage: PredictStage['config'] | undefined, maxRetryDelayMs?: number): ExecutorSettings {
    const strategy = stage?.errorHandlingStrategy ?? this.config.errorHandlingStrategy;
    return {
      timeoutMs: stage?.timeoutMs ?? this.config.timeoutMs,
      batchSize: stage?.batchSize ?? this.config.batchSize,
      concurrency: stage?.maxConcurrentOperations ?? this.config.maxConcurrentOperations,
      strategy,
      fallback: this.config.retryFallbackStrategy,
      // Flink retries only under RETRY.
      retryNum: strategy === 'RETRY' ? this.config.retryNum : 0,
      retryInitialDelayMs: this.config.retryInitialDelayMs,
      retryMaxDelayMs: this.config.retryMaxDelayMs,
      maxRetryAfterMs: maxRetryDelayMs ?? DEFAULT_RESOURCE_CAPS.maxRetryDelayMs,
    };
  }

  cacheKeys(batch: ColumnBatch): readonly (string | null)[] {
    return this.codec.payloads(batch).map((p) => this.codec.cacheKey(p));
  }

  async predictBatch(batch: ColumnBatch, options: PredictOptions = {}): Promise<ColumnBatch> {
    const stage: PredictStage = options.stage ?? { config: {}, counters: { errors: 0, tokens: 0, cacheHits: 0, requests: 0 } };
    const settings = this.settings(stage.config, stage.maxRetryDelayMs);
    let state = states.get(stage);
    if (!state) {
      state = new StageState(settings.concurrency, options.signal);
      states.set(stage, state);
    }
    if (state.failure) throw state.failure;
    const prompts = this.codec.payloads(batch);
    const oversized = promptOverCap(prompts, stage.maxPromptBytes);
    if (oversized) {
      state.stop(oversized);
      throw oversized;
    }
    const keys = stage.remember ? this.cacheKeys(batch) : undefined;
    const results: (RowResult | undefined)[] = new Array(batch.rowCount);
    const rows: number[] = [];
    let idle = 0;
    prompts.forEach((p, i) => {
      if (p.text !== undefined || p.values !== undefined) rows.push(i);
      else idle++;
      if (p.skipped) stage.counters.errors++;
    });
    if (idle > 0) stage.onRows?.(idle);
    const work: Promise<void>[] = [];
    for (let i = 0; i < rows.length; i += settings.batchSize) {
      const pack = rows.slice(i, i + settings.batchSize);
      work.push(this.runPack(pack, prompts, results, state, settings, stage, keys));
    }
    await Promise.all(work);
    return this.columns(batch.rowCount, results);
  }

  async close(): Promise<void> {}

  /** Runs one pack of rows to its end: answered, halved, retried, or failed under the strategy. */
  private async runPack(
    pack: readonly number[],
    prompts: readonly RowPayload[],
    results: (RowResult | undefined)[],
    state: StageState,
    settings: ExecutorSettings,
    stage: PredictStage,
    keys: readonly (string | null)[] | undefined,
  ): Promise<void> {
    let request: ProviderRequest | undefined;
    let attempt = 0;
    for (;;) {
      await state.acquire();
      // Built once the pack has a slot: a batch's packs are then not all built in one go,
      // while the answers of the packs in flight wait for the event loop.
      request ??= this.codec.request(pack.map((r) => prompts[r]!));
      let reply: ProviderReply | undefined;
      let failure: (FailureInfo & { answer?: boolean }) | undefined;
      try {
        stage.counters.requests++;
        const sent = performance.now();
        try {
          reply = await this.send(request, state, settings.timeoutMs);
        } finally {
          stage.onRequest?.((performance.now() - sent) / 1000, reply === undefined);
        }
      } catch (error) {
        if (state.failure) throw state.failure;
        // A request the access policy refused (a redirect outside the allowed endpoints, an
        // answer over maxResponseBytes) is not retried: the stage stops with its SQLSTATE.
        const refused = refusalIn(error);
        if (refused) {
          state.stop(refused);
          throw refused;
        }
        failure = this.describe(error);
      } finally {
        state.release();
      }
      if (reply) {
        stage.counters.tokens += reply.tokens;
        try {
          const answers = this.codec.answers(reply, pack.length);
          pack.forEach((row, i) => {
            results[row] = { values: answers[i]! };
            const key = keys?.[row];
            if (key) stage.remember?.(key, answers[i]!);
          });
          stage.onRows?.(pack.length);
          return;
        } catch (error) {
          if (error instanceof MismatchedReply || error instanceof MalformedReply) failure = { message: shortMessage(error.message), retryable: error instanceof MalformedReply, contextOverflow: false };
          else if (error instanceof AnswerError) failure = { message: shortMessage(error.message), retryable: true, contextOverflow: false, answer: true };
          // The server's data broke reading it (nested past the stack's depth, an array too long): a malformed answer.
          else if (error instanceof RangeError) failure = { message: shortMessage(`the answer could not be read: ${error.message}`), retryable: true, contextOverflow: false };
          else throw error;
        }
      }
      if (pack.length > 1 && (failure!.contextOverflow || failure!.answer)) {
        const half = Math.ceil(pack.length / 2);
        await Promise.all([
          this.runPack(pack.slice(0, half), prompts, results, state, settings, stage, keys),
          this.runPack(pack.slice(half), prompts, results, state, settings, stage, keys),
        ]);
        return;
      }
      const retries = failure!.answer ? Math.min(settings.retryNum, ANSWER_RETRIES) : settings.retryNum;
      if (failure!.retryable && attempt < retries) {
        attempt++;
        const asked = failure!.retryAfterMs === undefined ? undefined : Math.min(failure!.retryAfterMs, settings.maxRetryAfterMs);
        if (asked !== undefined) state.pausedUntil = Math.max(state.pausedUntil, Date.now() + asked);
        await state.sleep(backoffDelay(attempt, settings.retryInitialDelayMs, settings.retryMaxDelayMs, asked));
        continue;
      }
      const message = `${failure!.message}${attempt > 0 ? ` (after ${attempt} ${attempt === 1 ? 'retry' : 'retries'})` : ''}`;
      const final = settings.strategy === 'RETRY' ? settings.fallback : settings.strategy;
      if (final === 'FAILOVER') {
        const error = new ModelRuntimeError(this.provider, `${this.provider} model request failed: ${message}`, { retryable: failure!.retryable });
        state.stop(error);
        throw error;
      }
      const fallback = final === 'DEFAULT' ? this.codec.fallback : undefined;
      for (const row of pack) results[row] = { ...(fallback ? { values: fallback } : {}), error: message, status: failure!.status };
      stage.counters.errors += pack.length;
      stage.onRows?.(pack.length);
      return;
    }
  }

  /** Sends one request with the stage's signal and a timeout of its own. */
  private async send(request: ProviderRequest, state: StageState, timeoutMs: number): Promise<ProviderReply> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    if (state.failure) throw state.failure;
    state.inFlight.add(controller);
    try {
      return await this.client.send(request, controller.signal);
    } catch (error) {
      if (timedOut && !state.failure) {
        this.client.timedOut?.();
        throw new RequestTimeout(`request timed out after ${timeoutMs} ms`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
      state.inFlight.delete(controller);
    }
  }

  private describe(error: unknown): FailureInfo {
    if (error instanceof RequestTimeout) return { message: error.message, retryable: true, contextOverflow: false };
    const info = this.client.describeError(error);
    return { ...info, message: shortMessage(info.message) };
  }

  /** The OUTPUT columns of a batch from the row results. */
  private columns(rowCount: number, results: readonly (RowResult | undefined)[]): ColumnBatch {
    const plan = this.codec;
    const columns: unknown[][] = Array.from({ length: plan.width }, () => new Array<unknown>(rowCount).fill(null));
    for (let row = 0; row < rowCount; row++) {
      const r = results[row];
      if (!r) continue;
      r.values?.forEach((v, c) => (columns[c]![row] = v));
      if (r.error !== undefined) {
        if (plan.errorString !== undefined) columns[plan.errorString]![row] = r.error;
        if (plan.httpStatus !== undefined) columns[plan.httpStatus]![row] = r.status ?? null;
      }
    }
    return { rowCount, columns: columns.map((values): ColumnData => ({ kind: 'value', values })) };
  }
}

/** The value of one row of a column (NULL for a null slot of a numeric column). */
export function valueAt(column: ColumnData, row: number): unknown {
  if (column.kind === 'number') return column.nulls?.[row] ? null : column.values[row];
  return column.values[row] ?? null;
}

/** How the executor's stage loop should drive a remote runtime. */
export interface RemoteStageShape {
  /** Rows per `predictBatch`: several waves of requests, so the request pool never runs dry. */
  readonly rows: number;
  /** Batches in the runtime at once: one being appended, others answering. */
  readonly batchesInFlight: number;
  /** Whether the prediction cache is on (the call's `cache`, else the model's). */
  readonly cache: boolean;
}

/**
 * The stage shape for a remote runtime under a call's CONFIG, or undefined for a local one
 * (whose `batch-size` and concurrency mean rows per batch and batches in flight).
 */
export function remoteStageShape(runtime: ModelRuntime, call: PredictStage['config'] & { readonly cache?: boolean }): RemoteStageShape | undefined {
  if (!(runtime instanceof RemoteRuntime)) return undefined;
  const s = runtime.settings(call);
  return { rows: Math.max(runtime.preferredBatchSize, 2 * s.concurrency * s.batchSize), batchesInFlight: 3, cache: call.cache ?? runtime.cacheByDefault };
}

/**
 * A provider's message as rows and errors keep it: secrets masked (before it is cut, so no
 * part of a key survives), at most {@link MAX_MESSAGE_CHARS} characters.
 */
function shortMessage(text: string): string {
  const masked = maskSecrets(text);
  return masked.length <= MAX_MESSAGE_CHARS ? masked : `${masked.slice(0, MAX_MESSAGE_CHARS)}… (${masked.length} characters)`;
}

/** The error for the first prompt longer than `max` UTF-8 bytes, if any (54000: the data is over a server limit). */
function promptOverCap(prompts: readonly RowPayload[], max: number | undefined): LimitExceededError | undefined {
  if (max === undefined) return undefined;
  for (const p of prompts) {
    // One UTF-16 unit is at most 3 UTF-8 bytes: a string of at most max / 3 units cannot be over.
    if (p.text === undefined || p.text.length * 3 <= max) continue;
    const bytes = Buffer.byteLength(p.text, 'utf8');
    if (bytes > max) return new LimitExceededError('54000', `a row's prompt is ${bytes} bytes, over this server's cap of ${max} bytes (--max-prompt-bytes)`);
  }
  return undefined;
}
