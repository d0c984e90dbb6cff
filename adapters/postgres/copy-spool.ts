/**
 * Where a one-pass stage (copy-stage.ts) keeps a COPY TO's output until it reads it again:
 * one connection cannot run a COPY FROM while its COPY TO streams, so the binary stage first
 * takes the whole COPY TO as it comes (no row parsed, the server's send the only work) and
 * parses, predicts and writes afterwards, while the COPY FROM keeps the server busy.
 *
 * The first `memoryLimit` bytes stay in memory as the chunks that arrived; the rest goes to
 * a file made (`O_EXCL`) in a new directory under `os.tmpdir()` that only this user may
 * enter (`mkdtemp`, mode 0700), and unlinked at once: it is read back through its open
 * descriptor, so no other process finds it by name, and a crash of this process leaves
 * no rows on disk. Written in pieces of about
 * {@link SPOOL_WRITE_BYTES}. `read()` yields everything in order once, letting go of each
 * chunk held in memory as it yields it, so memory stays near the limit however long the input.
 */
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelSqlError } from '../../core/errors.js';

/** Bytes gathered before one write to the spool file (and read back at a time). */
export const SPOOL_WRITE_BYTES = 1024 * 1024;

/**
 * A COPY TO's output, in memory up to a limit and in a file past it.
 *
 * @example
 * const spool = new CopySpool(64 * 1024 * 1024);
 * try { for await (const chunk of copyTo) await spool.push(chunk); for await (const chunk of spool.read()) use(chunk) }
 * finally { await spool.close() }
 */
export class CopySpool {
  /** Bytes taken so far. */
  bytes = 0;
  private held: (Uint8Array | undefined)[] = [];
  private heldBytes = 0;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private file: { readonly handle: FileHandle } | undefined;
  private state: 'writing' | 'read' | 'closed' = 'writing';

  constructor(private readonly memoryLimit: number) {}

  /** Takes the next chunk (kept as given: the caller must not reuse it). */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'writing') throw new ModelSqlError('XX000', 'internal error: write to a model stage spool after it was read');
    this.bytes += chunk.byteLength;
    if (!this.file && this.heldBytes + chunk.byteLength <= this.memoryLimit) {
      this.held.push(chunk);
      this.heldBytes += chunk.byteLength;
      return;
    }
    if (!this.file) {
      const dir = await mkdtemp(join(tmpdir(), 'modelsql-stage-'));
      try {
        this.file = { handle: await open(join(dir, 'copy.bin'), 'wx+', 0o600) };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.byteLength;
    if (this.pendingBytes >= SPOOL_WRITE_BYTES) await this.flush();
  }

  /** Everything pushed, in order; once. */
  async *read(): AsyncIterable<Uint8Array> {
    if (this.state !== 'writing') throw new ModelSqlError('XX000', 'internal error: a model stage spool read twice');
    this.state = 'read';
    if (this.file) await this.flush();
    for (let i = 0; i < this.held.length; i++) {
      const chunk = this.held[i]!;
      this.held[i] = undefined;
      yield chunk;
    }
    this.held = [];
    if (this.file) for await (const chunk of this.file.handle.createReadStream({ start: 0, highWaterMark: SPOOL_WRITE_BYTES, autoClose: false })) yield chunk as Buffer;
  }

  /** Frees the chunks and removes the file; idempotent. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.held = [];
    this.pending = [];
    await this.file?.handle.close().catch(() => undefined);
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const pieces = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    // writeFile writes all of it from the current position (write and writev may write part).
    await this.file!.handle.writeFile(pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces));
  }
}
