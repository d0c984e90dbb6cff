/**
 * Reads a file named on the command line, or stdin for `-`, whole and within a byte limit:
 * a regular file is refused by its size before it is read; stdin, and a file whose size
 * says nothing (a pipe, a device such as `/dev/zero`), as soon as it has sent more than the
 * limit, so that no more than about the limit is ever held. The limit may depend on the
 * input's first bytes (`catalog import` tells a bundle from a script by them).
 */
import { open } from 'node:fs/promises';
import { ModelSqlError } from '../core/errors.js';

/**
 * The largest SQL script `modelsql run`, the shell and `catalog import` read by default:
 * 256 MiB, the proxy's default longest message (a script is parsed whole, and parsing takes
 * many times its size in memory).
 */
export const DEFAULT_MAX_SCRIPT_BYTES = 256 * 1024 * 1024;

/** How much of an input may be read, and the error past it. */
export interface InputLimit {
  readonly limit: number;
  /** The error for an input of `size` bytes (undefined: more than the limit, size unknown). */
  readonly tooLarge: (size: number | undefined) => ModelSqlError;
}

/**
 * The bytes of `file` (`-`: stdin). `limitOf` gets the first `peek` bytes (all of them when
 * the input is shorter) and gives the limit. A file that cannot be read is 58P01 (missing),
 * 42501 (no permission) or 58030 (a directory, other failures); `suffix` ends those messages.
 *
 * @example
 * const text = (await readBoundedInput(file, 0, () => ({ limit, tooLarge }))).toString('utf8');
 */
export async function readBoundedInput(file: string, peek: number, limitOf: (head: Buffer) => InputLimit, suffix = ''): Promise<Buffer> {
  const name = file === '-' ? 'the input on stdin' : file;
  if (file === '-') return readBounded(process.stdin, () => process.stdin.destroy(), peek, limitOf);
  try {
    const handle = await open(file, 'r');
    try {
      const stats = await handle.stat();
      if (stats.isDirectory()) throw new ModelSqlError('58030', `cannot read ${name}: it is a directory${suffix}`);
      if (stats.isFile()) {
        const head = Buffer.alloc(Math.min(peek, stats.size));
        await handle.read(head, 0, head.length, 0);
        const { limit, tooLarge } = limitOf(head);
        if (stats.size > limit) throw tooLarge(stats.size);
      }
      const stream = handle.createReadStream({ autoClose: false });
      try {
        return await readBounded(stream, () => stream.destroy(), peek, limitOf);
      } finally {
        stream.destroy();
      }
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof ModelSqlError) throw error;
    const code = (error as { code?: unknown }).code;
    const state = code === 'ENOENT' || code === 'ENOTDIR' ? '58P01' : code === 'EACCES' || code === 'EPERM' ? '42501' : '58030';
    throw new ModelSqlError(state, `cannot read ${name}: ${error instanceof Error ? error.message : String(error)}${suffix}`, { cause: error });
  }
}

/** Reads `source` whole, stopping as soon as it is over its limit. */
async function readBounded(source: AsyncIterable<unknown>, stop: () => void, peek: number, limitOf: (head: Buffer) => InputLimit): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  let known: InputLimit | undefined;
  for await (const chunk of source) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    chunks.push(bytes);
    total += bytes.byteLength;
    if (known === undefined && total >= peek) known = limitOf(Buffer.concat(chunks).subarray(0, peek));
    if (known !== undefined && total > known.limit) {
      stop();
      throw known.tooLarge(undefined);
    }
  }
  const all = Buffer.concat(chunks);
  const { limit, tooLarge } = known ?? limitOf(all);
  if (all.byteLength > limit) throw tooLarge(undefined);
  return all;
}
