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
  // One buffer of the size the file said, and a byte more to see whether it grew: the bytes
  // are read into it in place (no chunks joined afterwards, so no second copy at the peak).
  const handle = await open(real, 'r');
  let bytes = Buffer.allocUnsafeSlow(info.size + 1); // never a slice of the shared pool: callers may hand its memory over
  let total = 0;
  try {
    for (;;) {
      if (total === bytes.byteLength) {
        // It grew: on, up to a byte past the limit.
        if (total > limit) break;
        const larger = Buffer.allocUnsafeSlow(Math.min(limit + 1, total * 2));
        bytes.copy(larger, 0, 0, total);
        bytes = larger;
      }
      const { bytesRead } = await handle.read(bytes, total, Math.min(bytes.byteLength - total, READ_BYTES), null);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
  } finally {
    await handle.close();
  }
  if (total > limit) throw tooLarge(total);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, total);
}
