/**
 * docs/reference/model-names.md runs as shown on DuckDB: its ```sql blocks in order, in a
 * temporary working directory (the page attaches `catalog1.duckdb`). The first block's
 * answer is the table the page prints; in the second, each statement runs on its own and a
 * `-- names` comment is the model names SHOW MODELS answers (`nothing`: none).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { ADAPTERS } from '../support/adapters.js';
import { ROOT } from '../support/run-cli.js';

const PAGE = readFileSync(join(ROOT, 'docs', 'reference', 'model-names.md'), 'utf8');
const BLOCKS = [...PAGE.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
/** The first table the page prints after a ```sql block: its data rows, as cells. */
const PRINTED = /```sql\n[\s\S]*?```\n\n```\n([\s\S]*?)```/.exec(PAGE)![1]!
  .split('\n')
  .filter((line) => line.startsWith('│'))
  .slice(1)
  .map((line) => line.split('│').slice(1, -1).map((cell) => Number(cell.trim())));

(ADAPTERS.some((a) => a.name === 'duckdb') ? describe : describe.skip)('docs/reference/model-names.md on duckdb', () => {
  const cwd = process.cwd();
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'modelsql-names-'));
    process.chdir(work);
  });
  afterAll(() => {
    process.chdir(cwd);
    rmSync(work, { recursive: true, force: true });
  });

  it('runs its examples and answers what it prints', async () => {
    expect(BLOCKS).toHaveLength(2);
    const db = await openDuckDB();
    try {
      const predicted = await db.sql(BLOCKS[0]!);
      expect(predicted.rows.map((r) => r.map(Number))).toEqual(PRINTED);
      expect(PRINTED).toHaveLength(3);
      for (const line of BLOCKS[1]!.split('\n').filter((l) => l.trim() !== '')) {
        const [statement, comment] = line.split('--').map((part) => part.trim());
        const r = await db.sql(statement!);
        if (comment === undefined) continue;
        const names = r.rows.map((row) => String(row[0]));
        expect({ statement, names }).toEqual({ statement, names: comment.startsWith('nothing') ? [] : comment.split(', ') });
      }
    } finally {
      await db.close();
    }
  });
});
