/**
 * The bridge to the native relay (native/native-relay.cc, built at `npm install` by
 * native/build.mjs): loads the addon when it was built, and hands sessions to its thread
 * and takes them back. Where the addon is missing or does not load, {@link loadNativeRelay}
 * says why and the proxy keeps its JavaScript relay.
 *
 * The thread relays a session's plain traffic between two file descriptors without entering
 * JavaScript, and gives the session back (see native-handover.ts for when and how) with the
 * bytes it read but did not relay, the bytes it relayed but could not write, and its
 * counters. It only reports; the JavaScript objects own the session's state.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the thread did with one session. */
export interface NativeCounters {
  readonly bytesFromClient: number;
  readonly bytesToUpstream: number;
  readonly bytesFromUpstream: number;
  readonly bytesToClient: number;
  /** Query messages relayed upstream. */
  readonly queries: number;
  /** CommandComplete messages relayed to the client. */
  readonly commands: number;
  /** ReadyForQuery messages relayed to the client. */
  readonly readyForQuery: number;
  /** Messages relayed, both ways. */
  readonly messages: number;
  /** Status byte of the last ReadyForQuery relayed (`I`, `T`, `E` as a char code); 0 when none. */
  readonly lastStatus: number;
}

/** A session given back by the thread. */
export interface NativeHandBack {
  /** Why: `message` (one the thread does not relay), `large`, `blocked` (a write would block), `end`, `error`, `reclaimed` (asked for). */
  readonly reason: string;
  /** Read from the client, not relayed: to be handled as if just read. */
  readonly fromClient: Buffer;
  /** Read from the upstream, not relayed: to be handled as if just read. */
  readonly fromUpstream: Buffer;
  /** Relayed toward the client but not written yet: to be written before anything else. */
  readonly toClient: Buffer;
  /** Relayed toward the upstream but not written yet. */
  readonly toUpstream: Buffer;
  readonly counters: NativeCounters;
}

/** The addon's exports. */
interface Addon {
  open(onHandBack: (id: number) => void): void;
  attach(id: number, clientFd: number, upstreamFd: number, maxClientMessage: number, maxUpstreamMessage: number): boolean;
  release(id: number): NativeHandBack | undefined;
  counters(id: number): NativeCounters | undefined;
  mayHoldModelSyntax(bytes: Buffer): boolean;
  schedule(batch: boolean): void;
  threadId(): number;
}

/**
 * The native relay thread's Linux scheduling policy: `batch` (SCHED_BATCH, the default) or
 * `normal` (SCHED_OTHER). See docs/proxy.md, "The native relay".
 */
export type RelayScheduling = 'batch' | 'normal';

/**
 * The native relay of this process.
 *
 * @example
 * const native = loadNativeRelay();
 * if (native.relay) native.relay.attach(clientFd, upstreamFd, limits, (back) => resume(back));
 */
export class NativeRelay {
  private nextId = 1;
  private readonly waiting = new Map<number, (back: NativeHandBack) => void>();
  private opened = false;

  constructor(private readonly addon: Addon) {}

  /**
   * Hands the session over `clientFd` and `upstreamFd` (whose reading by libuv the caller
   * stopped) to the thread; `onBack` gets it back, once, when the thread gives it back.
   * Returns the session's id, or undefined when the thread refused it.
   */
  attach(clientFd: number, upstreamFd: number, maxClientMessage: number, maxUpstreamMessage: number, onBack: (back: NativeHandBack) => void): number | undefined {
    if (!this.opened) {
      this.addon.open((id) => this.handedBack(id));
      this.opened = true;
    }
    const id = this.nextId++;
    this.waiting.set(id, onBack);
    if (this.addon.attach(id, clientFd, upstreamFd, maxClientMessage, maxUpstreamMessage)) return id;
    this.waiting.delete(id);
    return undefined;
  }

  /** Takes session `id` back now (synchronously); undefined when it is back already. */
  release(id: number): NativeHandBack | undefined {
    this.waiting.delete(id);
    return this.addon.release(id);
  }

  /** The live counters of session `id` while the thread holds it. */
  counters(id: number): NativeCounters | undefined {
    return this.addon.counters(id);
  }

  /**
   * The thread's scheduling policy, from now on (and for the thread once it starts). One
   * thread serves every proxy of the process: the last call sets it.
   */
  schedule(scheduling: RelayScheduling): void {
    this.addon.schedule(scheduling === 'batch');
  }

  /** The thread's Linux thread id (for `/proc/<pid>/task/<tid>`), undefined before it starts. */
  threadId(): number | undefined {
    return this.addon.threadId() || undefined;
  }

  /** The thread's pre-filter for model syntax (the same test as model-router.ts's `bytesMayHoldModelSyntax`). */
  mayHoldModelSyntax(bytes: Buffer): boolean {
    return this.addon.mayHoldModelSyntax(bytes);
  }

  /** The thread gave session `id` back: whoever attached it gets it. */
  private handedBack(id: number): void {
    const onBack = this.waiting.get(id);
    if (!onBack) return;
    const back = this.release(id);
    if (back) onBack(back);
  }
}

/** The addon's path: native/build/native-relay.node in the package (above dist/ once built). */
function addonPath(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    const candidate = join(dir, 'native', 'build', 'native-relay.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

let loaded: { readonly relay?: NativeRelay; readonly problem?: string } | undefined;

/** The native relay, loaded once per module instance, or why it is not available. */
export function loadNativeRelay(): { readonly relay?: NativeRelay; readonly problem?: string } {
  if (loaded) return loaded;
  const path = addonPath();
  if (process.platform !== 'linux') loaded = { problem: 'not Linux' };
  else if (!path) loaded = { problem: 'not built (native/build/native-relay.node is missing)' };
  else {
    try {
      const module = { exports: {} as Addon };
      process.dlopen(module, path);
      loaded = { relay: new NativeRelay(module.exports) };
    } catch (error) {
      loaded = { problem: `cannot load ${path}: ${error instanceof Error ? error.message : String(error)}` };
    }
  }
  return loaded;
}
