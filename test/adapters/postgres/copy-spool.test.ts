/**
 * The spool of a binary stage's COPY TO (adapters/postgres/copy-spool.ts) past its memory
 * limit: the rows it writes to a temporary file are the rows of a table, so the file has
 * no name on disk while it is used (a crash of the process leaves nothing to read), and
 * comes back byte for byte.
 */
import { readlinkSync, readdirSync } from 'node:fs';
import { CopySpool, SPOOL_WRITE_BYTES } from '../../../adapters/postgres/copy-spool.js';

/** Files this process holds open in a stage's directory (`/proc/self/fd`: this process's alone), as their links read. */
function openStageFiles(): string[] {
  const links: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.includes('/modelsql-stage-')) links.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return links;
}

it('past its memory limit, spools to a file that has no name on disk, and reads everything back in order', async () => {
  const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(SPOOL_WRITE_BYTES / 8 + i, i));
  const spool = new CopySpool(1000);
  try {
    for (const chunk of chunks) await spool.push(chunk);
    // The rows went to a file (held open, unlinked): nothing of it is left to find by name.
    expect(openStageFiles().length).toBeGreaterThan(0);
    expect(openStageFiles().every((link) => link.endsWith(' (deleted)'))).toBe(true);
    const read: Buffer[] = [];
    for await (const chunk of spool.read()) read.push(Buffer.from(chunk));
    expect(Buffer.concat(read).equals(Buffer.concat(chunks))).toBe(true);
  } finally {
    await spool.close();
  }
  expect(openStageFiles()).toEqual([]);
});

it('closed before it is read: the file is closed, nothing left', async () => {
  const spool = new CopySpool(0);
  await spool.push(Buffer.alloc(SPOOL_WRITE_BYTES * 2, 7));
  expect(openStageFiles().length).toBeGreaterThan(0);
  await spool.close();
  expect(openStageFiles()).toEqual([]);
});
