/**
 * Node's `stream_wrap` binding, the native side of every stream socket: the write request
 * template (`WriteWrap`) and the state the last handle call left (bytes read or the error of
 * a read, whether a write was queued). `socket.write` and a socket's read callback use it
 * inside Node; the relay's hot path uses it directly (socket-writing.ts, socket-reading.ts)
 * to skip the stream machinery around each system call.
 *
 * Reached through `process.binding`, which Node keeps for this module
 * (https://nodejs.org/api/deprecations.html#DEP0111, documentation-only); where it is missing
 * or would warn (`--pending-deprecation`), callers use the streams as they are.
 */

/** The native write request: what a queued handle write refers to. */
export interface WriteRequest {
  /** Keeps a queued write's bytes alive. */
  buffer?: Buffer;
  /** Called by the handle when a queued write completes (status < 0: failed). */
  oncomplete?: (status: number) => void;
}

/** The part of the binding the relay uses. */
export interface StreamBinding {
  readonly WriteWrap: new () => WriteRequest;
  /** Shared state of the last handle call, indexed by the constants below. */
  readonly streamBaseState: Int32Array;
  /** Index: 1 when the last write was queued (not written at once). */
  readonly kLastWriteWasAsync: number;
  /** Index: bytes of the read being delivered, or its error (< 0, end of stream included). */
  readonly kReadBytesOrError: number;
}

/** Whether `process.binding` would print a deprecation warning (DEP0111). */
function pendingDeprecation(): boolean {
  return process.execArgv.includes('--pending-deprecation') || (process.env.NODE_OPTIONS ?? '').includes('--pending-deprecation') || process.env.NODE_PENDING_DEPRECATION === '1';
}

function load(): StreamBinding | undefined {
  if (pendingDeprecation()) return undefined;
  try {
    const b = (process as unknown as { binding?: (name: string) => Partial<StreamBinding> }).binding?.('stream_wrap');
    // ArrayBuffer.isView, not instanceof: under a vm context (jest) the binding's arrays come from another realm.
    if (b && typeof b.WriteWrap === 'function' && ArrayBuffer.isView(b.streamBaseState) && typeof b.kLastWriteWasAsync === 'number' && typeof b.kReadBytesOrError === 'number') {
      return b as StreamBinding;
    }
  } catch {
    // Not available: the streams are used.
  }
  return undefined;
}

let cached: StreamBinding | null | undefined;

/** The binding, looked up once; undefined where it cannot be had quietly. */
export function streamBinding(): StreamBinding | undefined {
  if (cached === undefined) cached = load() ?? null;
  return cached ?? undefined;
}
