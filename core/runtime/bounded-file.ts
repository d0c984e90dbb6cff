/**
 * Reads a local model file whole, within a byte limit. Regular files only: a device or a
 * pipe says nothing of its size (`/dev/zero` never ends), so a limit checked against the
 * size it reports would not hold. A file is read at most one byte past the limit, in case
 * it grew after its size was read.
 */
import { open, stat } from 'node:fs/promises';
import { ModelSqlError } from '../errors.js';

/** Bytes asked of the file per read. */
const READ_BYTES = 8 << 20;

/**
 * The bytes of file `real` (a resolved path), named `shown` in errors.
 *
 * @throws ModelSqlError 58030 when it is not a regular file; whatever `tooLarge(size)`
 *   returns when it holds more than `limit` bytes. Other failures are the file system's.
 * @example
 * const bytes = await readBoundedFile(real, 'model file "m.onnx"', max, (size) => new ModelSqlError('54000', `... ${size} bytes`));
 */
export async function readBoundedFile(real: string, shown: string, limit: number, tooLarge: (size: number) => ModelSqlError): Promise<Uint8Array> {
  const info = await stat(real);
  if (!info.isFile()) throw new ModelSqlError('58030', `${shown} is not a regular file`);
  if (info.size > limit) throw tooLarge(info.size);
  const handle = await open(real, 'r');
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(limit + 1 - total, READ_BYTES));
      if (chunk.byteLength === 0) break;
      const { bytesRead } = await handle.read(chunk, 0, chunk.byteLength, null);
      if (bytesRead === 0) break;
      // A short read is copied out: its chunk's unused bytes are not kept alive with it.
      chunks.push(bytesRead === chunk.byteLength ? chunk : Buffer.from(chunk.subarray(0, bytesRead)));
      total += bytesRead;
    }
  } finally {
    await handle.close();
  }
  if (total > limit) throw tooLarge(total);
  const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
